package blocks

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
)

var capture = flag.Bool("capture", false, "run TestCaptureDSN: write a real Postfix's non-delivery notifications to testdata/dsn/")

// TestCaptureDSN has a private Postfix bounce mail to a local mailbox and
// stores each notification as a parser fixture. Postfix's notifications are
// RFC 3464 multipart/report (bounce(8)), which is what the corpus needs from
// a real MTA. It only runs with -capture:
//
//	go test ./blocks -run CaptureDSN -capture -v
func TestCaptureDSN(t *testing.T) {
	if !*capture {
		t.Skip("fixture capture runs only with -capture")
	}
	i := postfixtest.Start(t, postfixtest.Options{QueueLifetime: 8 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// The sender is a real local account so that local(8) stores the
	// notifications in a mailbox of the instance's own spool.
	sender := "nobody@" + postfixtest.LocalDomain
	scenarios := []struct {
		file string
		to   []string
	}{
		{"postfix-local-unknown-user.eml", []string{"nosuchuser@" + postfixtest.LocalDomain}},
		{"postfix-rcpt-5xx.eml", []string{"User.Name@" + postfixtest.DomainRcpt5xx}},
		{"postfix-data-5xx.eml", []string{"user@" + postfixtest.DomainData5xx}},
		{"postfix-expired.eml", []string{"user@" + postfixtest.DomainDefer}},
		{"postfix-two-recipients.eml", []string{"a@" + postfixtest.DomainRcpt5xx, "b@" + postfixtest.DomainRcpt5xx}},
	}
	for _, s := range scenarios {
		sent := i.Send(t, sender, s.to, postfixtest.Header("Subject", "capture "+s.file))
		// One notification at a time, so that the mailbox order is the
		// scenario order.
		i.WaitLog(t, ctx, postfixtest.Removed(sent.QueueID))
		i.WaitQueueEmpty(t, ctx)
	}
	box, err := os.ReadFile(filepath.Join(i.Dir(), "mail", "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := splitMbox(string(box))
	if len(msgs) != len(scenarios) {
		t.Fatalf("mailbox holds %d messages, want %d", len(msgs), len(scenarios))
	}
	dirRE := regexp.MustCompile(regexp.QuoteMeta(i.Dir()) + `\S*`)
	for n, s := range scenarios {
		m := dirRE.ReplaceAllString(msgs[n], "/var/tmp/postfixtest")
		if err := os.WriteFile(filepath.Join("testdata", "dsn", s.file), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", s.file, len(m))
	}
}

// splitMbox splits an mbox (local(8)'s "From " separated format) into its
// messages, without the separator lines and with ">From " unquoted.
func splitMbox(box string) []string {
	var msgs []string
	var cur []string
	for _, line := range strings.SplitAfter(box, "\n") {
		if strings.HasPrefix(line, "From ") {
			if cur != nil {
				msgs = append(msgs, strings.Join(cur, ""))
			}
			cur = []string{}
			continue
		}
		if cur == nil {
			continue
		}
		if strings.HasPrefix(line, ">From ") {
			line = line[1:]
		}
		cur = append(cur, line)
	}
	if cur != nil {
		msgs = append(msgs, strings.Join(cur, ""))
	}
	for n, m := range msgs {
		// local(8) ends each message with an empty line before the next
		// separator; it is not part of the message.
		msgs[n] = strings.TrimSuffix(m, "\n")
	}
	return msgs
}
