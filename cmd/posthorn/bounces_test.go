package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/milter"
	"github.com/posthorn/posthorn/sqlite"
)

// fixedClock is the suppression list's clock stopped at one instant.
type fixedClock time.Time

func (c fixedClock) Now() time.Time         { return time.Time(c) }
func (fixedClock) Changed() <-chan struct{} { return nil }
func (fixedClock) Stop()                    {}

// A real Postfix's notification (blocks' corpus) about a message sent
// with the return path nobody@local.test to User.Name@rcpt5xx.test.
const (
	corpusDSN     = "../../blocks/testdata/dsn/postfix-rcpt-5xx.eml"
	corpusOrigID  = "<1795777673368678374.2@client.posthorn.test>"
	corpusRcpt    = "User.Name@rcpt5xx.test"
	corpusBounces = "nobody@local.test"
)

// delayNotice is a delay warning in Postfix's form: a report whose only
// recipient is "delayed", which is no bounce.
const delayNotice = `From: MAILER-DAEMON@mx.example
Subject: Delayed Mail (still being retried)
Message-Id: <delay-1@mx.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

This is the mail system. Your message could not be delivered for 4 hours.

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example

Final-Recipient: rfc822; User.Name@rcpt5xx.test
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.rcpt5xx.test: Connection timed out

--b
Content-Type: text/rfc822-headers

Message-Id: <1795777673368678374.2@client.posthorn.test>

--b--
`

func testBounceSetup(t *testing.T) (*sqlite.Store, *bounceRules) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Default()
	cfg.Blocks.ExecTime, cfg.Blocks.Timezone, cfg.Blocks.WatchDays = "12:00", "Asia/Tokyo", 30
	cfg.Blocks.BounceAddresses = []string{corpusBounces}
	cfg.Blocks.AutoRegister.UnknownUser = 1
	svc := newBlockService(cfg, st, fixedClock(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)), nil)
	rules, err := newBounceRules(cfg, svc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st.SetBounceRules(rules)
	return st, rules
}

func TestBounceRules(t *testing.T) {
	_, r := testBounceSetup(t)
	for rp, want := range map[string]bool{corpusBounces: true, "Nobody@LOCAL.test": true, "nobody+x=y.z@local.test": false, "app@local.test": false, "": false} {
		if got := r.Tracks(rp); got != want {
			t.Errorf("Tracks(%q) = %v", rp, got)
		}
	}
	if a, ok := r.Address("User.Name@RCPT5XX.test."); !ok || a != "User.Name@rcpt5xx.test" {
		t.Errorf("Address = %q, %v", a, ok)
	}
	if _, ok := r.Address("postmaster"); ok {
		t.Error("postmaster is countable")
	}
	if !r.Register(event.ClassUnknownUser, 1) || r.Register(event.ClassOverCapacity, 100) || r.Register(event.ClassBlocked, 100) {
		t.Error("Register does not follow [blocks.auto_register]")
	}
	// 10:00 UTC is 19:00 in Tokyo: the next 12:00 there is tomorrow's,
	// 03:00 UTC; the watch period of 30 days ends at the execution time.
	now, at, expires := r.Schedule(t.Context())
	if !now.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)) || !at.Equal(time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)) ||
		!expires.Equal(time.Date(2026, 12, 28, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("Schedule = %v, %v, %v", now, at, expires)
	}
}

// TestBounceIntake: what each kind of bounce mail becomes, what the
// milter is told for its metrics, when the Event Webhook is woken, and
// what is logged.
func TestBounceIntake(t *testing.T) {
	corpus, err := os.ReadFile(corpusDSN)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := testBounceSetup(t)
	ctx := t.Context()
	sent := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	if err := st.Commit(ctx, event.Batch{Events: []event.Event{{ID: "d1", Type: event.Succeeded, Time: sent, Host: "mx",
		QueueID: "4Q", MessageID: corpusOrigID, ReturnPath: corpusBounces, To: corpusRcpt}}}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	woken := 0
	in := bounceIntake{store: st, notify: func() { woken++ }, log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	mail := func(id, text string) *milter.BounceMail {
		return &milter.BounceMail{Host: "mx", QueueID: "QB", Received: sent.Add(time.Hour), MessageID: id, ID: id,
			Recipients: []milter.BounceRecipient{{Address: corpusBounces}}, Message: strings.NewReader(text)}
	}
	for _, c := range []struct {
		name     string
		mail     *milter.BounceMail
		decision string
		woken    int
		log      string
	}{
		{"a delay notice", mail("<delay-1@mx.example>", delayNotice), milter.DecisionBounceIgnored, 0,
			`level=INFO msg="bounce mail ignored: the report says no delivery failed" message_id=<delay-1@mx.example>`},
		{"not a bounce", mail("<hello@customer.test>", "Subject: out of office\n\nI am away.\n"), milter.DecisionBounceUnmatched, 0,
			`level=WARN msg="bounce mail unmatched" message_id=<hello@customer.test> queue_id=QB to=[nobody@local.test] from="" why="not a bounce`},
		{"matched", mail("<20261127110753.7AEF79BE798@mx.posthorn.test>", string(corpus)), milter.DecisionBounce, 1,
			`level=INFO msg="bounce recorded" message_id=<20261127110753.7AEF79BE798@mx.posthorn.test> queue_id=QB to=[nobody@local.test] from="" original_message_id=<1795777673368678374.2@client.posthorn.test> recipient=User.Name@rcpt5xx.test class=2 dsn=5.1.1 original_queue_id=4Q`},
		{"delivered again", mail("<20261127110753.7AEF79BE798@mx.posthorn.test>", string(corpus)), milter.DecisionBounceIgnored, 1,
			`msg="bounce mail read before: nothing changed"`},
		{"another report of the same bounce", mail("<second@mx.posthorn.test>", string(corpus)), milter.DecisionBounceIgnored, 1,
			`level=DEBUG msg="bounce mail about a known bounce" message_id=<second@mx.posthorn.test>`},
		{"about a message never seen", mail("<third@mx.posthorn.test>", strings.ReplaceAll(string(corpus), "1795777673368678374.2@", "other@")),
			milter.DecisionBounceUnmatched, 1,
			`level=WARN msg="bounce mail unmatched" message_id=<third@mx.posthorn.test> queue_id=QB to=[nobody@local.test] from="" original_message_id=<other@client.posthorn.test> recipient=User.Name@rcpt5xx.test why="no delivery of <other@client.posthorn.test> to User.Name@rcpt5xx.test is stored; waiting a day for its delivery to be read from the maillog"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			d, err := in.Bounce(ctx, c.mail)
			if err != nil || d != c.decision || woken != c.woken {
				t.Errorf("Bounce = %q, %v; woken %d; want %q, woken %d", d, err, woken, c.decision, c.woken)
			}
			if !strings.Contains(logs.String(), c.log) {
				t.Errorf("log:\n%s\nwant a line with\n%s", logs.String(), c.log)
			}
		})
	}
	// The matched bounce: its record, its count, and the registration it
	// caused, scheduled at the execution time.
	evs, err := st.Events(ctx, event.Query{Types: []event.Type{event.Bounced}})
	if err != nil || len(evs) != 1 || evs[0].Class != event.ClassUnknownUser || evs[0].QueueID != "4Q" ||
		evs[0].Reason != "550 5.1.1 Error: mailbox unavailable (rcpt5xx.test sink)" {
		t.Fatalf("bounced events %+v, %v", evs, err)
	}
	bs, err := st.Blocks(ctx, sqlite.BlockQuery{})
	if err != nil || len(bs) != 1 || bs[0].Address != corpusRcpt || bs[0].Reason != "2" ||
		!bs[0].Scheduled.Equal(time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)) || bs[0].Status() != "scheduled" {
		t.Errorf("entries %+v, %v", bs, err)
	}

	// A store that fails: the milter must tempfail.
	st.Close()
	if _, err := in.Bounce(context.Background(), mail("<fourth@mx.posthorn.test>", string(corpus))); err == nil {
		t.Error("Bounce on a closed store: no error")
	}
}
