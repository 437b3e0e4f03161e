package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
)

// lifecycle orders events of one recipient that carry the same second
// (syslog stamps have no fraction): the order Postfix produces them in.
var lifecycle = map[event.Type]int{event.Queued: 0, event.Deferred: 1, event.Succeeded: 2, event.Failed: 2, event.Bounced: 3}

// sequence returns the types of evs as "queued deferred ... failed bounced".
func sequence(evs []event.Event) string {
	evs = slices.Clone(evs)
	slices.SortStableFunc(evs, func(a, b event.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return lifecycle[a.Type] - lifecycle[b.Type]
	})
	var s []string
	for _, e := range evs {
		s = append(s, string(e.Type))
	}
	return strings.Join(s, " ")
}

// TestEventsFromRealPostfix runs a private Postfix with smtp-sink peers
// that accept, refuse (5xx at RCPT, 5xx after DATA), defer forever, defer
// then accept, or are not there at all, plus local delivery, aliases and a
// local submission; `posthorn serve` follows its maillog, and every
// recipient's stored events must be exactly what Postfix did.
func TestEventsFromRealPostfix(t *testing.T) {
	for _, long := range []bool{false, true} {
		name := map[bool]string{false: "short-queue-ids", true: "long-queue-ids"}[long]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testEventsFromRealPostfix(t, long)
		})
	}
}

func testEventsFromRealPostfix(t *testing.T, long bool) {
	const ok, rcpt5xx, data5xx = postfixtest.DomainOK, postfixtest.DomainRcpt5xx, postfixtest.DomainData5xx
	const deferD, flaky, dead, local = postfixtest.DomainDefer, postfixtest.DomainFlaky, postfixtest.DomainDead, postfixtest.LocalDomain
	inst := postfixtest.Start(t, postfixtest.Options{
		LongQueueIDs:  long,
		QueueLifetime: 20 * time.Second,
		Aliases: map[string]string{
			"forward": "forwarded@" + ok,
			"team":    "team-a@" + ok + ", team-b@" + rcpt5xx,
		},
	})
	dir := testDir(t)
	db := filepath.Join(dir, "posthorn.db")
	d := startServe(t, writeConfig(t, dir, inst.MaillogPath(), ""))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// One message whose recipients meet every outcome, one plain message,
	// and one local submission through sendmail(1) and pickup(8).
	mixed := []string{
		"bob@" + ok, "u@" + rcpt5xx, "u@" + data5xx, "u@" + deferD, "u@" + flaky, "u@" + dead,
		"nosuchuser@" + local, "nobody@" + local, "forward@" + local, "team@" + local,
	}
	a := inst.Send(t, "alice@"+ok, mixed, postfixtest.Header("Subject", "mixed outcomes"))
	b := inst.Send(t, "carol@"+ok, []string{"dave@" + ok})
	cMID := inst.Submit(t, "app@"+local, []string{"erin@" + ok}, "Subject: local submission\n\nhello\n")

	inst.WaitLog(t, ctx, postfixtest.Delivery(a.QueueID, "u@"+flaky, "deferred"))
	inst.Heal(t, flaky)
	inst.Flush(t)
	inst.WaitLog(t, ctx, postfixtest.Expired(a.QueueID))
	inst.WaitQueueEmpty(t, ctx)
	// The whole maillog is in the store once the committed cursor is at its
	// end; the queue is empty, so Postfix writes nothing more for these.
	maillog := inst.MaillogPath()
	waitFor(t, d, time.Minute, "serve to consume the maillog", func() bool {
		c, ok := storeCursor(t, db, "file:"+maillog)
		return ok && c.Inode == inode(t, maillog) && c.Offset == fileSize(t, maillog)
	})
	evs := storedEvents(t, db)

	byRcpt := func(mid, rcpt string) []event.Event {
		var out []event.Event
		for _, e := range evs {
			if e.MessageID == mid && e.Recipient() == rcpt {
				out = append(out, e)
			}
		}
		return out
	}
	aMID, bMID := "<"+a.MessageID+">", "<"+b.MessageID+">"
	// The deferrals each recipient must have: one per status=deferred
	// line Postfix wrote for it, counted in the maillog itself rather than
	// by the parser under test.
	maillogLines := inst.Lines(t)
	deferrals := func(rcpt string) string {
		n := 0
		for _, l := range maillogLines {
			if postfixtest.Delivery(a.QueueID, rcpt, "deferred")(l) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s: no status=deferred line in the maillog", rcpt)
		}
		return strings.Repeat("deferred ", n)
	}
	type key struct{ mid, rcpt string }
	expected := []struct {
		mid, rcpt string
		seq       string // regular expression over the type sequence, exact but for the order of events in one second
		class     event.Class
	}{
		{aMID, "bob@" + ok, "queued succeeded", 0},
		{aMID, "u@" + rcpt5xx, "queued failed bounced", event.ClassUnknownUser},
		{aMID, "u@" + data5xx, "queued failed bounced", event.ClassPolicy},
		{aMID, "u@" + deferD, "queued " + deferrals("u@"+deferD) + "failed bounced", event.ClassTimeout},
		{aMID, "u@" + flaky, "queued " + deferrals("u@"+flaky) + "succeeded", 0},
		{aMID, "u@" + dead, "queued " + deferrals("u@"+dead) + "failed bounced", event.ClassTimeout},
		{aMID, "nosuchuser@" + local, "queued failed bounced", event.ClassUnknownUser},
		{aMID, "nobody@" + local, "queued succeeded", 0},
		{aMID, "forward@" + local, "queued succeeded", 0},
		{aMID, "team@" + local, "queued (succeeded failed|failed succeeded) bounced", event.ClassForwarding},
		{bMID, "dave@" + ok, "queued succeeded", 0},
		{"<" + cMID + ">", "erin@" + ok, "queued succeeded", 0},
	}
	// No event for anything else: the (message, recipient) keys of the
	// store are exactly the expected ones.
	want := map[key]bool{}
	for _, c := range expected {
		want[key{c.mid, c.rcpt}] = true
	}
	extra := map[key]int{}
	for _, e := range evs {
		if k := (key{e.MessageID, e.Recipient()}); !want[k] {
			extra[k]++
		}
	}
	for k, n := range extra {
		t.Errorf("%d unexpected events for message %s, recipient %s", n, k.mid, k.rcpt)
	}
	for _, c := range expected {
		got := byRcpt(c.mid, c.rcpt)
		seq := sequence(got)
		if !regexp.MustCompile("^" + c.seq + "$").MatchString(seq) {
			t.Errorf("%s %s: events %q, want %q", c.mid, c.rcpt, seq, c.seq)
			continue
		}
		for _, e := range got {
			if e.Type == event.Bounced && e.Class != c.class {
				t.Errorf("%s: bounce class %d, want %d (%s %s)", c.rcpt, e.Class, c.class, e.DSN, e.Reason)
			}
			if e.Host == "" || e.ID == "" || e.Time.IsZero() {
				t.Errorf("%s: incomplete event %+v", c.rcpt, e)
			}
		}
	}

	// Message-level facts on every event of the mixed message.
	for _, e := range evs {
		if e.MessageID != aMID {
			continue
		}
		if e.ReturnPath != "alice@"+ok {
			t.Errorf("%s %s: returnPath %q", e.Type, e.To, e.ReturnPath)
		}
		if e.Type == event.Queued && e.QueueID != a.QueueID {
			t.Errorf("queued %s: queueId %q, want %q", e.To, e.QueueID, a.QueueID)
		}
		// The client and the size (the original's, also for an alias's
		// new message) are on every recipient event.
		if e.SourceIP != "127.0.0.1" || e.Size < 100 {
			t.Errorf("%s %s: sourceIp %q size %d, want 127.0.0.1 and the message's size", e.Type, e.To, e.SourceIP, e.Size)
		}
		if (e.Type == event.Succeeded || e.Type == event.Failed) && strings.HasSuffix(e.To, "@"+ok) && e.SenderIP != "127.0.0.1" {
			t.Errorf("%s %s: senderIp %q", e.Type, e.To, e.SenderIP)
		}
	}
	// Postfix's own non-delivery notifications go back to alice; they are
	// linked to the original, not reported as her mail.
	for _, e := range evs {
		if e.To == "alice@"+ok {
			t.Errorf("a notification to the sender was reported: %s %s %s", e.Type, e.QueueID, e.Reason)
		}
	}
	// And the one-shot parser agrees with the daemon, and understands
	// every line this real Postfix wrote.
	if want := parseOracle(t, maillog); len(want) != len(evs) {
		t.Errorf("serve stored %d events, posthorn parse prints %d", len(evs), len(want))
	}
	var summary bytes.Buffer
	cmd := exec.Command(posthorn, "parse", maillog)
	cmd.Stderr = &summary
	if err := cmd.Run(); err != nil || !strings.Contains(summary.String(), "Postfix lines not understood: 0\n") ||
		strings.Contains(summary.String(), "messages still open") {
		t.Errorf("posthorn parse: %v\n%s", err, summary.String())
	}
	took, err := d.stop(t)
	if err != nil || took > 5*time.Second {
		t.Errorf("stop: %v after %v", err, took)
	}
	if t.Failed() {
		t.Logf("maillog:\n%s", strings.Join(inst.Lines(t), "\n"))
		for _, e := range evs {
			t.Logf("%s", fmt.Sprint(e.Type, " ", e.QueueID, " ", e.To, " ", e.OrigTo, " ", e.Class))
		}
	}
}
