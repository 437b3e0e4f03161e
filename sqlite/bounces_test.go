package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
)

// testRules is a BounceRules with per-class thresholds and a fixed
// schedule.
type testRules struct {
	after            map[event.Class]int // 0 or absent: off
	now, at, expires time.Time

	mu         sync.Mutex
	registered []Block
}

// Tracks: the test's bounce addresses are on bounce.shop.test.
func (r *testRules) Tracks(rp string) bool { return strings.HasSuffix(rp, "@bounce.shop.test") }

func (r *testRules) Address(a string) (string, bool) {
	at := strings.LastIndexByte(a, '@')
	if at <= 0 {
		return "", false
	}
	return a[:at] + "@" + strings.ToLower(a[at+1:]), true
}

func (r *testRules) Register(c event.Class, n int) bool {
	return r.after[c] > 0 && n >= r.after[c]
}

func (r *testRules) Schedule(context.Context) (time.Time, time.Time, time.Time) {
	return r.now, r.at, r.expires
}

func (r *testRules) Registered(b []Block) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.registered = append(r.registered, b...)
}

func (r *testRules) told() []Block {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Block(nil), r.registered...)
}

var (
	bounceNow  = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	bounceExec = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
)

// bounce is a bounced event of the log reader's shape.
func bounce(n int, to string, c event.Class) event.Event {
	return event.Event{
		ID: fmt.Sprintf("bounce-%d", n), Type: event.Bounced, Time: bounceNow.Add(time.Duration(n) * time.Second),
		Host: "mx1", QueueID: fmt.Sprintf("Q%d", n), MessageID: fmt.Sprintf("<m%d@app.test>", n),
		To: to, DSN: "5.2.2", Reason: "550 5.2.2 mailbox full", Class: c,
	}
}

func counts(t *testing.T, s *Store, addr string) map[event.Class]int {
	t.Helper()
	cs, err := s.BounceCounts(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	out := map[event.Class]int{}
	for _, c := range cs {
		out[c.Class] = c.Count
	}
	return out
}

func liveEntries(t *testing.T, s *Store) []Block {
	t.Helper()
	bs, err := s.Blocks(context.Background(), BlockQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func TestBounceCountingRegisters(t *testing.T) {
	rules := &testRules{after: map[event.Class]int{event.ClassOverCapacity: 3}, now: bounceNow, at: bounceExec}
	s := openTest(t, Options{BounceRules: rules})
	ctx := context.Background()
	const addr = "Full@example.org"

	commit := func(evs ...event.Event) {
		t.Helper()
		if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	// Two bounces of class 5 (the domain's case does not matter), and
	// events that never count: a delivery, a class-10 refusal, a bounce
	// of another class.
	succeeded := bounce(100, addr, 0)
	succeeded.Type, succeeded.ID = event.Succeeded, "ok-100"
	commit(bounce(1, addr, event.ClassOverCapacity), succeeded, bounce(2, "Full@EXAMPLE.org", event.ClassBlocked))
	commit(bounce(3, "Full@Example.Org", event.ClassOverCapacity), bounce(4, addr, event.ClassUnknownUser))
	if got, want := counts(t, s, "Full@example.org"), map[event.Class]int{5: 2, 2: 1}; !cmp.Equal(got, want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	if bs := liveEntries(t, s); len(bs) != 0 {
		t.Fatalf("registered after two bounces: %+v", bs)
	}

	// The third: registered at the execution time, reason the class,
	// occurrences the count, which starts again from 0.
	commit(bounce(5, addr, event.ClassOverCapacity))
	bs := liveEntries(t, s)
	if len(bs) != 1 {
		t.Fatalf("entries %+v", bs)
	}
	b := bs[0]
	if b.Address != "Full@example.org" || b.Reason != "5" || b.Occurrences != 3 || !b.Created.Equal(bounceNow) ||
		!b.Scheduled.Equal(bounceExec) || b.Status() != "scheduled" || !b.Expires.IsZero() {
		t.Errorf("entry %+v", b)
	}
	if got := counts(t, s, "Full@example.org")[5]; got != 0 {
		t.Errorf("count after registration = %d, want 0", got)
	}
	if told := rules.told(); len(told) != 1 || told[0].ID != b.ID {
		t.Errorf("Registered told %+v", told)
	}
	// Listed: more bounces count, but register nothing new.
	for i := 6; i < 10; i++ {
		commit(bounce(i, addr, event.ClassOverCapacity))
	}
	if bs := liveEntries(t, s); len(bs) != 1 {
		t.Errorf("entries %+v", bs)
	}
	if got := counts(t, s, "Full@example.org")[5]; got != 4 {
		t.Errorf("count while listed = %d, want 4", got)
	}
}

// TestBounceCountingOneBatch: bounces to one address in one batch are
// added up and register it once, with all of them as its occurrences.
func TestBounceCountingOneBatch(t *testing.T) {
	rules := &testRules{after: map[event.Class]int{event.ClassOverCapacity: 3}, now: bounceNow, at: bounceExec}
	s := openTest(t, Options{BounceRules: rules})
	var evs []event.Event
	for i := range 4 {
		evs = append(evs, bounce(i, "list@example.org", event.ClassOverCapacity), bounce(10+i, fmt.Sprintf("u%d@example.org", i), event.ClassOverCapacity))
	}
	if err := s.Commit(context.Background(), event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	bs := liveEntries(t, s)
	if len(bs) != 1 || bs[0].Address != "list@example.org" || bs[0].Occurrences != 4 {
		t.Fatalf("entries %+v", bs)
	}
	cs, err := s.BounceCounts(context.Background(), "list@example.org")
	if err != nil || len(cs) != 1 || cs[0].Count != 0 || !cs[0].Last.Equal(bounceNow.Add(3*time.Second)) {
		t.Errorf("counts %+v, %v", cs, err)
	}
	if got := counts(t, s, "u2@example.org")[event.ClassOverCapacity]; got != 1 {
		t.Errorf("u2's count = %d", got)
	}
}

// TestBounceCountingReplay: a batch committed again (the log reader
// restarting from its last cursor after a crash) stores nothing new and
// counts nothing new; a transaction that fails after storing its events
// counts nothing, and the same batch then counts once.
func TestBounceCountingReplay(t *testing.T) {
	rules := &testRules{after: map[event.Class]int{event.ClassUnknownUser: 2}, now: bounceNow, at: bounceExec}
	path := filepath.Join(t.TempDir(), "posthorn.db")
	s, err := Open(path, Options{BounceRules: rules})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	const addr = "gone@example.org"
	batch := event.Batch{Events: []event.Event{bounce(1, addr, event.ClassUnknownUser)},
		Cursor: event.Cursor{Source: "file:/var/log/mail.log", Offset: 10}}
	for range 3 {
		if err := s.Commit(bg, batch); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(t, s, addr)[2]; got != 1 {
		t.Fatalf("count after the same batch three times = %d, want 1", got)
	}

	// The second bounce would register; the transaction is cancelled
	// after its events stage, as a crash before COMMIT would end it.
	next := event.Batch{Events: []event.Event{bounce(2, addr, event.ClassUnknownUser)},
		Cursor: event.Cursor{Source: "file:/var/log/mail.log", Offset: 20}}
	ctx, cancel := context.WithCancel(bg)
	s.afterStage = func(stage string) {
		if stage == "events" {
			cancel()
		}
	}
	if err := s.Commit(ctx, next); err == nil {
		t.Fatal("cancelled commit succeeded")
	}
	s.afterStage = nil
	if got := counts(t, s, addr)[2]; got != 1 {
		t.Errorf("count after a rolled-back batch = %d, want 1", got)
	}
	if bs := liveEntries(t, s); len(bs) != 0 || len(rules.told()) != 0 {
		t.Errorf("a rolled-back batch registered %+v (told %+v)", bs, rules.told())
	}
	for range 2 {
		if err := s.Commit(bg, next); err != nil {
			t.Fatal(err)
		}
	}
	if bs := liveEntries(t, s); len(bs) != 1 || bs[0].Occurrences != 2 || bs[0].Reason != "2" {
		t.Errorf("entries %+v", bs)
	}
	if got := counts(t, s, addr)[2]; got != 0 {
		t.Errorf("count = %d, want 0 after the registration", got)
	}

	// The same file opened again: the counts and the entry are durable.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openPath(t, path, Options{BounceRules: rules})
	if bs := liveEntries(t, s2); len(bs) != 1 {
		t.Errorf("after reopening: %+v", bs)
	}
	if err := s2.Commit(bg, next); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s2, addr)[2]; got != 0 {
		t.Errorf("count after replaying into the reopened file = %d, want 0", got)
	}
}

func openPath(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestBounceCountingImmediate: rules that register at once store the
// `registered` event with the entry, and the dispatcher sees it.
func TestBounceCountingImmediate(t *testing.T) {
	rules := &testRules{after: map[event.Class]int{event.ClassUnknownHost: 1}, now: bounceNow, at: bounceNow,
		expires: bounceNow.AddDate(0, 0, 30)}
	s := openTest(t, Options{BounceRules: rules})
	ctx := context.Background()
	if err := s.Commit(ctx, event.Batch{Events: []event.Event{bounce(1, "a@nxdomain.test", event.ClassUnknownHost)}}); err != nil {
		t.Fatal(err)
	}
	bs := liveEntries(t, s)
	if len(bs) != 1 || bs[0].Status() != "registered" || !bs[0].Expires.Equal(bounceNow.AddDate(0, 0, 30)) {
		t.Fatalf("entries %+v", bs)
	}
	pend, err := s.Unformed(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var types []event.Type
	for _, p := range pend {
		types = append(types, p.Type)
	}
	if !cmp.Equal(types, []event.Type{event.Bounced, event.Registered}) {
		t.Errorf("unformed %v", pend)
	}
}

func TestBounceCountingWithoutRules(t *testing.T) {
	s := openTest(t, Options{})
	if err := s.Commit(context.Background(), event.Batch{Events: []event.Event{bounce(1, "a@example.org", event.ClassUnknownUser)}}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, s, "a@example.org"); len(got) != 0 {
		t.Errorf("counted without rules: %v", got)
	}
}

// original is a message delivered to two recipients and bounced (by
// Postfix itself, in the maillog) for a third.
const origID = "<order-42@shop.test>"

func storeOriginal(t *testing.T, s *Store) {
	t.Helper()
	base := event.Event{
		Time: bounceNow.Add(-time.Hour), Host: "mx1", QueueID: "4Q1", MessageID: origID, ReturnPath: "bounces@bounce.shop.test",
		From: "Shop <shop@shop.test>", Subject: "Your order", APIData: `{"order":42}`,
	}
	evs := []event.Event{}
	for i, r := range []struct {
		typ    event.Type
		to     string
		origTo string
	}{
		{event.Queued, "alice@example.org", ""},
		{event.Succeeded, "alice@example.org", ""},
		{event.Succeeded, "bob@mail.example.net", "Bob@Example.NET"}, // forwarded
		{event.Failed, "carol@example.org", ""},
		{event.Bounced, "carol@example.org", ""},
	} {
		e := base
		e.ID, e.Type, e.To, e.OrigTo = fmt.Sprintf("orig-%d", i), r.typ, r.to, r.origTo
		e.Time = e.Time.Add(time.Duration(i) * time.Second)
		if r.typ == event.Bounced {
			e.Class = event.ClassUnknownUser
		}
		evs = append(evs, e)
	}
	// A message with a return path that is no bounce address: its DSNs
	// do not come to Posthorn, and it is not tracked.
	other := base
	other.ID, other.Type, other.To, other.MessageID, other.ReturnPath = "other-1", event.Succeeded, "alice@example.org", untrackedID, "shop@shop.test"
	evs = append(evs, other)
	if err := s.Commit(context.Background(), event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
}

const untrackedID = "<newsletter-7@shop.test>"

// storeNewsletter stores only the delivery whose return path is no bounce
// address.
func storeNewsletter(t *testing.T, s *Store) {
	t.Helper()
	e := event.Event{ID: "other-1", Type: event.Succeeded, Time: bounceNow.Add(-time.Hour), Host: "mx1", QueueID: "4Q2",
		MessageID: untrackedID, ReturnPath: "shop@shop.test", To: "alice@example.org"}
	if err := s.Commit(context.Background(), event.Batch{Events: []event.Event{e}}); err != nil {
		t.Fatal(err)
	}
}

func TestRecordDSN(t *testing.T) {
	full := DSNRecipient{Status: "5.2.2", Diagnostic: "552 5.2.2 mailbox full", Class: event.ClassOverCapacity}
	rcpt := func(addr string) DSNRecipient { r := full; r.Address = addr; return r }
	type want struct {
		addr    string
		outcome DSNOutcome
		why     string // substring
	}
	cases := []struct {
		name    string
		dsn     DSN
		outcome DSNOutcome
		want    []want
		// the stored record of the first recipient, when recorded
		queueID, to, origTo, returnPath, subject string
		// only the newsletter, whose return path is no bounce address, was
		// delivered
		untracked bool
	}{
		{name: "matched by Message-ID",
			dsn:     DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("alice@example.org")}},
			outcome: DSNRecorded, want: []want{{"alice@example.org", DSNRecorded, ""}},
			queueID: "4Q1", to: "alice@example.org", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "recipient spelled otherwise",
			dsn:     DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("Alice@EXAMPLE.org")}},
			outcome: DSNRecorded, want: []want{{"Alice@EXAMPLE.org", DSNRecorded, ""}},
			queueID: "4Q1", to: "alice@example.org", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "original recipient of a forwarded delivery",
			dsn:     DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("bob@example.net")}},
			outcome: DSNRecorded, want: []want{{"bob@example.net", DSNRecorded, ""}},
			queueID: "4Q1", to: "bob@mail.example.net", origTo: "Bob@Example.NET", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "Postfix's own notification of a failure in the maillog",
			dsn:     DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("carol@example.org")}},
			outcome: DSNKnown, want: []want{{"carol@example.org", DSNKnown, "already stored"}}},
		{name: "one recipient matched, one not",
			dsn:     DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("dave@example.org"), rcpt("alice@example.org")}},
			outcome: DSNRecorded, want: []want{{"dave@example.org", DSNUnmatched, "no delivery of <order-42@shop.test> to dave@example.org"}, {"alice@example.org", DSNRecorded, ""}}},
		{name: "unknown Message-ID",
			dsn:     DSN{MessageID: "<other@shop.test>", Recipients: []DSNRecipient{rcpt("alice@example.org")}},
			outcome: DSNUnmatched, want: []want{{"alice@example.org", DSNUnmatched, "no delivery of <other@shop.test>"}}},
		{name: "return path not a bounce address",
			dsn:     DSN{MessageID: untrackedID, Recipients: []DSNRecipient{rcpt("alice@example.org")}},
			outcome: DSNUnmatched, want: []want{{"alice@example.org", DSNUnmatched, "no delivery of <newsletter-7@shop.test>"}}},
		{name: "no Message-ID",
			dsn:     DSN{Recipients: []DSNRecipient{rcpt("alice@example.org")}},
			outcome: DSNUnmatched, want: []want{{"alice@example.org", DSNUnmatched, "does not return the original's Message-ID"}}},
		{name: "VERP and Message-ID",
			dsn: DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("alice@example.org")},
				VERP: []VERPRecipient{{"alice@example.org", "bounces+alice=example.org@bounce.shop.test"}}},
			outcome: DSNRecorded, want: []want{{"alice@example.org", DSNRecorded, ""}},
			queueID: "4Q1", to: "alice@example.org", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "VERP names the recipient the report spells as forwarded",
			dsn: DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("bob@mail.example.net")},
				VERP: []VERPRecipient{{"Bob@Example.NET", "bounces+Bob=Example.NET@bounce.shop.test"}}},
			outcome: DSNRecorded, want: []want{{"Bob@Example.NET", DSNRecorded, ""}},
			queueID: "4Q1", to: "bob@mail.example.net", origTo: "Bob@Example.NET", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "VERP without the original, recipient mailed",
			dsn: DSN{Recipients: []DSNRecipient{rcpt("alice@example.org")},
				VERP: []VERPRecipient{{"Alice@example.org", "bounces+Alice=example.org@bounce.shop.test"}}},
			outcome: DSNRecorded, want: []want{{"Alice@example.org", DSNRecorded, ""}},
			queueID: "4Q1", to: "alice@example.org", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "VERP with an unknown Message-ID, recipient mailed",
			dsn: DSN{MessageID: "<gone@shop.test>", Recipients: []DSNRecipient{rcpt("alice@example.org")},
				VERP: []VERPRecipient{{"alice@example.org", "bounces+alice=example.org@bounce.shop.test"}}},
			outcome: DSNRecorded, want: []want{{"alice@example.org", DSNRecorded, ""}},
			to: "alice@example.org", returnPath: "bounces+alice=example.org@bounce.shop.test"},
		{name: "VERP for a recipient never mailed (forged)",
			dsn: DSN{Recipients: []DSNRecipient{rcpt("erin@example.org")},
				VERP: []VERPRecipient{{"erin@example.org", "bounces+erin=example.org@bounce.shop.test"}}},
			outcome: DSNUnmatched, want: []want{{"erin@example.org", DSNUnmatched, "no mail to it from a bounce address"}}},
		{name: "VERP for a recipient mailed only from another return path",
			dsn: DSN{Recipients: []DSNRecipient{rcpt("alice@example.org")},
				VERP: []VERPRecipient{{"alice@example.org", "bounces+alice=example.org@bounce.shop.test"}}},
			untracked: true,
			outcome:   DSNUnmatched, want: []want{{"alice@example.org", DSNUnmatched, "no mail to it from a bounce address"}}},
		{name: "VERP, original found, recipient's delivery not stored",
			dsn: DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("frank@example.org")},
				VERP: []VERPRecipient{{"frank@example.org", "bounces+frank=example.org@bounce.shop.test"}}},
			outcome: DSNRecorded, want: []want{{"frank@example.org", DSNRecorded, ""}},
			queueID: "4Q1", to: "frank@example.org", returnPath: "bounces@bounce.shop.test", subject: "Your order"},
		{name: "VERP and a report about other recipients",
			dsn: DSN{MessageID: origID, Recipients: []DSNRecipient{rcpt("x@example.org"), rcpt("y@example.org")},
				VERP: []VERPRecipient{{"alice@example.org", "bounces+alice=example.org@bounce.shop.test"}}},
			outcome: DSNUnmatched},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules := &testRules{now: bounceNow, at: bounceExec}
			s := openTest(t, Options{BounceRules: rules})
			if c.untracked {
				storeNewsletter(t, s)
			} else {
				storeOriginal(t, s)
			}
			ctx := context.Background()
			d := c.dsn
			d.ID, d.Host, d.Received = "<dsn-1@remote.test>", "mx1", bounceNow
			res, err := s.RecordDSN(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != c.outcome {
				t.Errorf("outcome %s, want %s (%+v)", res.Outcome, c.outcome, res.Recipients)
			}
			if len(res.Recipients) != len(c.want) {
				t.Fatalf("recipients %+v, want %+v", res.Recipients, c.want)
			}
			recorded := 0
			for i, w := range c.want {
				got := res.Recipients[i]
				if got.Address != w.addr || got.Outcome != w.outcome || !strings.Contains(got.Why, w.why) {
					t.Errorf("recipient %d = %+v, want %+v", i, got, w)
				}
				if got.Outcome == DSNRecorded {
					recorded++
				}
			}
			if len(res.Events) != recorded {
				t.Fatalf("events %+v, want %d", res.Events, recorded)
			}
			stored := storedBounces(t, s)
			if len(stored) != recorded {
				t.Fatalf("stored %d DSN records, want %d", len(stored), recorded)
			}
			if recorded > 0 && c.to != "" {
				e := stored[0]
				if e.QueueID != c.queueID || e.To != c.to || e.OrigTo != c.origTo || e.ReturnPath != c.returnPath ||
					e.Subject != c.subject || e.Class != event.ClassOverCapacity || e.DSN != "5.2.2" ||
					e.Reason != "552 5.2.2 mailbox full" || !e.Time.Equal(bounceNow) || !strings.HasPrefix(e.ID, "dsn-") {
					t.Errorf("stored %+v", e)
				}
				if c.queueID != "" && (e.From != "Shop <shop@shop.test>" || e.APIData != `{"order":42}` || e.MessageID != origID) {
					t.Errorf("message details %+v", e)
				}
				addr, _ := rules.Address(e.Recipient())
				if got := counts(t, s, addr)[event.ClassOverCapacity]; got != 1 {
					t.Errorf("count of %s = %d, want 1", e.Recipient(), got)
				}
			}

			// Delivered again: nothing changes.
			d.Received = bounceNow.Add(time.Minute)
			again, err := s.RecordDSN(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if again.Outcome != DSNRepeated || len(again.Events) != 0 {
				t.Errorf("again: %+v", again)
			}
			if n := len(storedBounces(t, s)); n != recorded {
				t.Errorf("stored %d records after the repeat, want %d", n, recorded)
			}
		})
	}
}

// storedBounces are the bounced events RecordDSN stored.
func storedBounces(t *testing.T, s *Store) []event.Event {
	t.Helper()
	evs, err := s.Events(context.Background(), event.Query{Types: []event.Type{event.Bounced}})
	if err != nil {
		t.Fatal(err)
	}
	var out []event.Event
	for _, e := range evs {
		if strings.HasPrefix(e.ID, "dsn-") {
			out = append(out, e)
		}
	}
	return out
}

// TestRecordDSNRegisters: a bounce from a DSN counts like one from the
// maillog, and the registration it causes is stored with it.
func TestRecordDSNRegisters(t *testing.T) {
	rules := &testRules{after: map[event.Class]int{event.ClassUnknownUser: 1}, now: bounceNow, at: bounceExec}
	s := openTest(t, Options{BounceRules: rules})
	storeOriginal(t, s)
	res, err := s.RecordDSN(context.Background(), DSN{ID: "<dsn-2@remote.test>", Host: "mx1", Received: bounceNow,
		MessageID: origID, Recipients: []DSNRecipient{{Address: "alice@example.org", Status: "5.1.1",
			Diagnostic: "550 5.1.1 no such user", Class: event.ClassUnknownUser}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Registered) != 1 || res.Registered[0].Address != "alice@example.org" || res.Registered[0].Reason != "2" ||
		res.Registered[0].Occurrences != 1 || !res.Registered[0].Scheduled.Equal(bounceExec) {
		t.Errorf("registered %+v", res.Registered)
	}
	// carol's bounce from the maillog registered her when it was
	// committed; then alice's from the DSN.
	told := rules.told()
	if len(told) != 2 || told[0].Address != "carol@example.org" || told[1].Address != "alice@example.org" {
		t.Errorf("Registered told %+v", told)
	}
	if bs := liveEntries(t, s); len(bs) != 2 {
		t.Errorf("entries %+v", bs)
	}
}

func TestRecordDSNErrors(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if _, err := s.RecordDSN(ctx, DSN{Received: bounceNow}); err == nil || !strings.Contains(err.Error(), "no id") {
		t.Errorf("no id: %v", err)
	}
	if _, err := s.RecordDSN(ctx, DSN{ID: "x"}); err == nil || !strings.Contains(err.Error(), "cannot be stored") {
		t.Errorf("no time: %v", err)
	}
}

// TestDSNLookupUsesIndex: the lookup reads bounce_lookup by its key and
// events by rowid, never a whole table.
func TestDSNLookupUsesIndex(t *testing.T) {
	s := openTest(t, Options{})
	for _, q := range []struct {
		sql  string
		args []any
	}{{dsnLookup, []any{origID, "a@example.org", "a@example.org"}}, {dsnAnyDelivery, []any{origID}}} {
		p := queryPlan(t, s.r, q.sql, q.args...)
		if !strings.Contains(p, "SEARCH bounce_lookup USING PRIMARY KEY (message_id=?)") ||
			!strings.Contains(p, "SEARCH events USING INTEGER PRIMARY KEY (rowid=?)") || strings.Contains(p, "SCAN") {
			t.Errorf("plan of %q: %s", q.sql, p)
		}
	}
}

// BenchmarkCommitBounces measures what bounce bookkeeping adds to the log
// reader's commit, with batches of genEvents (a sixth of them bounced, far
// more than a real log has) under random Message-IDs, as most senders make
// them: no rules (as before issue 7); the default rules, no bounce
// address and automatic registration off (bounces are counted); with
// registration on for the class of every bounce (each count is read
// back); and with every return path a bounce address (each delivery and
// bounce also goes into bounce_lookup, whose keys land on random pages).
// MB/op is what the process wrote per batch.
func BenchmarkCommitBounces(b *testing.B) {
	const size = 5000
	for _, c := range []struct {
		name  string
		rules BounceRules
	}{
		{"no-rules", nil},
		{"counting", &trackRules{testRules{now: bounceNow, at: bounceExec}, false}},
		{"counting+registration", &trackRules{testRules{after: map[event.Class]int{event.ClassUnknownUser: 3}, now: bounceNow, at: bounceExec}, false}},
		{"counting+registration+tracking", &trackRules{testRules{after: map[event.Class]int{event.ClassUnknownUser: 3}, now: bounceNow, at: bounceExec}, true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := openTest(b, Options{BounceRules: c.rules})
			ctx := context.Background()
			gen := func(i int) event.Batch {
				evs := genEvents(i*size, size)
				for j := range evs {
					sum := sha256.Sum256([]byte(evs[j].MessageID))
					evs[j].MessageID = "<" + hex.EncodeToString(sum[:12]) + "@app.example.com>"
				}
				return event.Batch{Events: evs}
			}
			w0 := writtenBytes()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				batch := gen(i)
				b.StartTimer()
				if err := s.Commit(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(writtenBytes()-w0)/float64(b.N)/1e6, "MB/op")
		})
	}
}

// trackRules tracks every return path, or none.
type trackRules struct {
	testRules
	all bool
}

func (r *trackRules) Tracks(string) bool { return r.all }

// writtenBytes is what this process has written so far (Linux's
// /proc/self/io wchar); 0 elsewhere.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestDSNWaitsForItsDelivery: a bounce that arrives before the log reader
// has stored the delivery it is about is matched when the delivery is
// stored — once, however often the batch is committed — and not after a
// day.
func TestDSNWaitsForItsDelivery(t *testing.T) {
	full := DSNRecipient{Address: "alice@example.org", Status: "5.2.2", Diagnostic: "552 5.2.2 mailbox full", Class: event.ClassOverCapacity}
	for _, late := range []bool{false, true} {
		now := bounceNow
		rules := &testRules{now: bounceNow, at: bounceExec}
		s := openTest(t, Options{BounceRules: rules, Now: func() time.Time { return now }})
		ctx := context.Background()
		d := DSN{ID: "<dsn-early@remote.test>", Host: "mx1", Received: bounceNow, MessageID: origID, Recipients: []DSNRecipient{full}}
		res, err := s.RecordDSN(ctx, d)
		if err != nil || res.Outcome != DSNUnmatched {
			t.Fatalf("before the delivery: %+v, %v; want unmatched", res, err)
		}
		if late {
			now = bounceNow.Add(dsnPendingFor + time.Minute)
		}
		storeOriginal(t, s)
		storeOriginal(t, s) // committed again, as after a crash
		got := storedBounces(t, s)
		var fromDSN []event.Event
		for _, e := range got {
			if strings.HasPrefix(e.ID, "dsn-") {
				fromDSN = append(fromDSN, e)
			}
		}
		if late {
			if len(fromDSN) != 0 {
				t.Errorf("a DSN a day old was matched: %+v", fromDSN)
			}
			continue
		}
		if len(fromDSN) != 1 || fromDSN[0].To != "alice@example.org" || fromDSN[0].QueueID != "4Q1" || fromDSN[0].Subject != "Your order" ||
			fromDSN[0].Class != event.ClassOverCapacity || !fromDSN[0].Time.Equal(bounceNow) {
			t.Fatalf("records of the waiting DSN: %+v", fromDSN)
		}
		if c := counts(t, s, "alice@example.org")[event.ClassOverCapacity]; c != 1 {
			t.Errorf("counted %d times, want once", c)
		}
		var outcome string
		var pending sql.NullString
		if err := s.r.QueryRowContext(ctx, `SELECT outcome, pending FROM dsns WHERE id = ?`, d.ID).Scan(&outcome, &pending); err != nil {
			t.Fatal(err)
		}
		if outcome != "recorded" || pending.Valid {
			t.Errorf("dsns row: outcome %s, still waiting %v", outcome, pending.Valid)
		}
		// The same DSN delivered again changes nothing.
		if res, err := s.RecordDSN(ctx, d); err != nil || res.Outcome != DSNRepeated {
			t.Errorf("repeated DSN: %+v, %v", res, err)
		}
	}
}
