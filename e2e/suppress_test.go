package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// TestSuppressionAtRCPT: a submission smtpd consulting serve's outbound
// role refuses a suppressed recipient at RCPT while the message goes on to
// its other recipient, and the Event Webhook receiver gets the refusal's
// failed deliveries record and its bounces record of class 10.
func TestSuppressionAtRCPT(t *testing.T) { testSuppression(t, "reject") }

// TestSuppressionDiscard: with suppressed = "discard" the client sees the
// suppressed recipient accepted, Postfix delivers only to the other one,
// and the receiver gets the same two records.
func TestSuppressionDiscard(t *testing.T) { testSuppression(t, "discard") }

func testSuppression(t *testing.T, mode string) {
	recv := startReceiver(t)
	outPort, subPort := freePort(t), freePort(t)
	inst := postfixtest.Start(t, postfixtest.Options{
		MainCF: []string{"milter_protocol = 6", "milter_default_action = tempfail"},
		MasterCF: []string{
			fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n  -o smtpd_milters=inet:127.0.0.1:%d", subPort, outPort),
		},
	})
	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	cfg := writeConfig(t, dir, inst.MaillogPath(), fmt.Sprintf("[milter]\noutbound = \"inet:127.0.0.1:%d\"\nsuppressed = %q\n", outPort, mode))
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644)
	importSettings(t, dir, cfg, hookSettings(recv.url, recv.caFile, ""))

	ok, gone := "keep@"+postfixtest.DomainOK, "Gone@"+postfixtest.DomainOK
	// Listed with the domain in capitals: the list compares normalised
	// addresses, and the domain's case does not matter (RFC 5321 §2.4).
	posthornCmd(t, 0, "blocks", "add", "Gone@"+strings.ToUpper(postfixtest.DomainOK), "--now", "--config", cfg)
	d := startServe(t, cfg)
	waitDial(t, d, fmt.Sprintf("127.0.0.1:%d", outPort))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	out, err := exec.Command("swaks", "--server", "127.0.0.1", "--port", fmt.Sprint(subPort), "--helo", postfixtest.ClientHelo,
		"--from", "app@shop.test", "--to", gone+","+ok, "--header", "Subject: suppression e2e").CombinedOutput()
	if err != nil {
		t.Logf("swaks: %v", err) // one refused recipient may make swaks report failure
	}
	refused := strings.Contains(string(out), "550 5.7.1 <"+gone+">: recipient is suppressed")
	if refused != (mode == "reject") {
		t.Fatalf("%s mode: refusal of %s at RCPT: %v\n%s", mode, gone, refused, out)
	}
	m := regexpQueued.FindSubmatch(out)
	if m == nil {
		t.Fatalf("the message was not accepted for %s:\n%s", ok, out)
	}
	qid := string(m[1])
	inst.WaitLog(t, ctx, postfixtest.Delivery(qid, ok, "sent"))
	inst.WaitLog(t, ctx, postfixtest.Removed(qid))
	if mode == "discard" {
		// Taken off the message: Postfix never tried to deliver to it.
		if log := readFile(t, inst.MaillogPath()); strings.Contains(log, "to=<"+gone+">") {
			t.Errorf("Postfix handled %s:\n%s", gone, log)
		}
	}

	// The records as the receiver must get them: the stored events of the
	// refusal, encoded with the imported settings.
	s := settings.Default()
	s.Timezone, s.APIKey, s.Deliveries, s.Bounces = "UTC", hookKey, true, true
	var failed, bounced *event.Event
	waitFor(t, d, time.Minute, "the refusal's records in the store", func() bool {
		for _, e := range storedEvents(t, db) {
			if e.To == gone && e.Type == event.Failed {
				failed = &e
			} else if e.To == gone && e.Type == event.Bounced {
				bounced = &e
			}
		}
		return failed != nil && bounced != nil
	})
	if bounced.Class != event.ClassBlocked || failed.DSN != "5.7.1" || failed.Reason != "550 5.7.1 <"+gone+">: recipient is suppressed" {
		t.Errorf("stored records %+v and %+v", *failed, *bounced)
	}
	if mode == "discard" {
		// Recorded at the end of the message: its queue ID and Message-ID
		// are known, and the dispatcher adds the observed header fields,
		// as to every record of the message.
		if failed.QueueID != qid || failed.MessageID == "" {
			t.Errorf("discarded recipient's record without the message's queue ID %s or Message-ID: %+v", qid, *failed)
		}
		for _, e := range []*event.Event{failed, bounced} {
			e.Subject = "suppression e2e"
			e.From = "app@shop.test"
		}
	}
	want := map[string]bool{
		recordKey("deliveries", wantRecord(t, s, *failed)): false,
		recordKey("bounces", wantRecord(t, s, *bounced)):   false,
	}
	for {
		posts, _, errs := recv.snapshot()
		if len(errs) > 0 {
			t.Fatalf("receiver: %v", errs)
		}
		missing := 0
		for k := range want {
			want[k] = false
		}
		for _, p := range posts {
			for _, r := range p.records {
				if _, w := want[recordKey(p.family, r)]; w {
					want[recordKey(p.family, r)] = true
				}
				if p.family == "deliveries" && r["status"] == "failed" && r["email"] == ok {
					t.Errorf("the delivered recipient got a failed record: %v", r)
				}
			}
		}
		for _, got := range want {
			if !got {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		select {
		case <-recv.notify:
		case <-ctx.Done():
			t.Fatalf("receiver lacks %d of %v; got %d posts; serve log:\n%s", missing, want, len(posts), readFile(t, filepath.Join(dir, "serve.log")))
		case err := <-d.done:
			t.Fatalf("serve exited: %v", err)
		}
	}
}
