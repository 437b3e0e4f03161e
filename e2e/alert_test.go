package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/internal/nettest"
)

// TestAlertMailThroughPostfix points the Event Webhook at a port nobody
// listens on and checks that, once it has failed for [alerts] after, the
// alert mail goes through the private Postfix's own sendmail into a local
// mailbox, and that the error is logged.
func TestAlertMailThroughPostfix(t *testing.T) {
	inst := postfixtest.Start(t, postfixtest.Options{})
	dir := testDir(t)

	dead := "https://" + nettest.RefusedAddr(t) + "/hook"

	alerts := fmt.Sprintf(`[alerts]
after = "1m"
mail_to = "nobody@%s"
sendmail = "/usr/sbin/sendmail"
sendmail_args = ["-C", %q]
`, postfixtest.LocalDomain, inst.ConfigDir())
	cfg := writeConfig(t, dir, inst.MaillogPath(), alerts)
	importSettings(t, dir, cfg, hookSettings(dead, "", ""))
	d := startServe(t, cfg)

	// One delivery gives the dispatcher events to post.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := inst.Send(t, "alice@"+postfixtest.DomainOK, []string{"bob@" + postfixtest.DomainOK}, postfixtest.Header("Subject", "alert e2e"))
	inst.WaitLog(t, ctx, postfixtest.Removed(m.QueueID))

	// local(8) appends to mail_spool_directory/nobody (postfixtest).
	mailbox := filepath.Join(inst.Dir(), "mail", "nobody")
	const subject = "Subject: posthorn: Event Webhook failing since "
	var mail string
	waitFor(t, d, 3*time.Minute, "the alert mail in "+mailbox, func() bool {
		data, err := os.ReadFile(mailbox)
		mail = string(data)
		return err == nil && strings.Contains(mail, subject)
	})
	for _, want := range []string{"From: posthorn@e2e", "To: nobody@" + postfixtest.LocalDomain, "Endpoint:    " + dead, "connection refused"} {
		if !strings.Contains(mail, want) {
			t.Errorf("alert mail lacks %q:\n%s", want, mail)
		}
	}
	if n := strings.Count(mail, subject); n != 1 {
		t.Errorf("mailbox holds %d alert mails, want 1 (at most hourly):\n%s", n, mail)
	}
	log, err := os.ReadFile(d.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), `msg="Event Webhook failing"`); n != 1 {
		t.Errorf("serve logged the failure %d times, want once:\n%s", n, tail(d.log.Name(), 20))
	}
}
