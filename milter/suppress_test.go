package milter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/posthorn/posthorn/event"
)

// fakeList is a suppression list in memory; it stores each event id once,
// as the store does.
type fakeList struct {
	mu        sync.Mutex
	blocked   map[string]bool
	lookupErr error
	recordErr error
	records   []event.Event
	seen      map[string]bool
}

func (f *fakeList) IsBlocked(_ context.Context, addr string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked[addr], f.lookupErr
}

func (f *fakeList) RecordSuppressed(_ context.Context, evs []event.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recordErr != nil {
		return f.recordErr
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	for _, e := range evs {
		if !f.seen[e.ID] {
			f.seen[e.ID] = true
			f.records = append(f.records, e)
		}
	}
	return nil
}

func suppressHarness(t *testing.T, l *fakeList, action SuppressAction) *harness {
	return startHarness(t, testSettings(), "", func(o *Options) {
		o.Suppression, o.SuppressAction = l, action
	})
}

const plainMail = "From: shop@shop.example\r\nSubject: hi\r\n\r\nbody\r\n"

// describe renders what the client saw and what was recorded, for the
// golden file.
func describe(res result, l *fakeList, observed []event.Observation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stage %s action %v\n", res.stage, res.action)
	for i, r := range res.rcpts {
		fmt.Fprintf(&b, "rcpt %d: %s\n", i, r)
	}
	for _, m := range res.modify {
		fmt.Fprintf(&b, "modify: %d %s\n", m.Type, m.Rcpt)
	}
	for _, o := range observed {
		fmt.Fprintf(&b, "observed %s: %q\n", o.QueueID, o.Recipients)
	}
	for _, e := range l.records {
		fmt.Fprintf(&b, "record %s %s %s q=%q from=%q to=%q dsn=%s class=%d reason=%q\n",
			e.ID, e.Type, e.Time.Format("2006-01-02T15:04:05Z"), e.QueueID, e.ReturnPath, e.To, e.DSN, e.Class, e.Reason)
	}
	return b.String()
}

func TestOutboundSuppression(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action SuppressAction
		rcpts  []string
		// errors of the list's two operations
		lookupErr, recordErr error
	}{
		{"reject_one_of_two", SuppressReject, []string{"ok@b.example", "Gone@b.example"}, nil, nil},
		{"reject_first", SuppressReject, []string{"Gone@b.example", "ok@b.example"}, nil, nil},
		{"reject_all", SuppressReject, []string{"Gone@b.example"}, nil, nil},
		// The same RCPT given twice in one transaction is recorded once.
		{"reject_repeated", SuppressReject, []string{"Gone@b.example", "Gone@b.example", "ok@b.example"}, nil, nil},
		{"discard_one_of_two", SuppressDiscard, []string{"ok@b.example", "Gone@b.example"}, nil, nil},
		{"discard_all", SuppressDiscard, []string{"Gone@b.example"}, nil, nil},
		{"none_blocked", SuppressReject, []string{"ok@b.example", "ok2@b.example"}, nil, nil},
		// The store failing must never let a suppressed address through
		// or lose its record: the recipient is tempfailed.
		{"lookup_error", SuppressReject, []string{"ok@b.example", "Gone@b.example"}, errors.New("disk I/O error"), nil},
		{"record_error", SuppressReject, []string{"ok@b.example", "Gone@b.example"}, nil, errors.New("database is locked")},
		{"record_error_discard", SuppressDiscard, []string{"ok@b.example", "Gone@b.example"}, nil, errors.New("database is locked")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeList{blocked: map[string]bool{"Gone@b.example": true}, lookupErr: tc.lookupErr, recordErr: tc.recordErr}
			h := suppressHarness(t, l, tc.action)
			m := dial(t, h.out)
			res := m.send("OUTQ1", "bounce@shop.example", tc.rcpts, plainMail)
			golden(t, "suppress/"+tc.name+".txt", []byte(describe(res, l, h.spool.observed)))
		})
	}
}

// TestOutboundDiscardAbandoned: in discard mode a suppressed recipient is
// recorded when its message is accepted; a transaction the client
// abandons after RCPT sends nothing and records nothing.
func TestOutboundDiscardAbandoned(t *testing.T) {
	l := &fakeList{blocked: map[string]bool{"Gone@b.example": true}}
	h := suppressHarness(t, l, SuppressDiscard)
	m := dial(t, h.out)
	m.must(m.s.Mail("bounce@shop.example", ""))
	if a := m.must(m.s.Rcpt("Gone@b.example", "")); a.Type != gomilter.ActionContinue {
		t.Fatalf("RCPT of a suppressed address in discard mode: %s", a)
	}
	if err := m.s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	// The next transaction on the session goes to its end: only then
	// are its records, and only its own, written.
	res := m.send("OUTQ9", "bounce@shop.example", []string{"ok@b.example"}, plainMail)
	if res.stage != "eom" || res.action.Type != gomilter.ActionAccept {
		t.Fatalf("next transaction: %s", res)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.records) != 0 {
		t.Errorf("records of an abandoned transaction: %+v", l.records)
	}
}

// TestOutboundWithoutSuppression: with no list the role still answers
// nothing before the end of the message (no RCPT reply is awaited).
func TestOutboundWithoutSuppression(t *testing.T) {
	h := startHarness(t, testSettings(), "", nil)
	m := dial(t, h.out)
	if !m.s.ProtocolOption(gomilter.OptNoRcptReply) {
		t.Error("without a suppression list the outbound role asks for RCPT replies")
	}
	res := m.send("OUTQ2", "bounce@shop.example", []string{"Gone@b.example"}, plainMail)
	if res.stage != "eom" || res.action.Type != gomilter.ActionAccept {
		t.Errorf("answer %s", res)
	}
}

func TestSuppressActionValidated(t *testing.T) {
	p, err := NewPolicy(testSettings(), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewServer(Options{Policy: p, Spool: &fakeSpool{}, SuppressAction: "bounce"})
	if err == nil || !strings.Contains(err.Error(), `"bounce"`) {
		t.Errorf("NewServer with a bad action: %v", err)
	}
}

// TestSuppressedEventIDs: ids depend on the transaction and the
// recipient, not on the queue ID appearing halfway.
func TestSuppressedEventIDs(t *testing.T) {
	a := suppressedEvents("mx", 1, testNow, "", "s@x", "r@y")
	b := suppressedEvents("mx", 1, testNow, "Q1", "s@x", "r@y")
	c := suppressedEvents("mx", 2, testNow, "", "s@x", "r@y")
	if !slices.Equal(ids(a), ids(b)) {
		t.Errorf("same refusal, ids %v and %v", ids(a), ids(b))
	}
	if slices.Equal(ids(a), ids(c)) || a[0].ID == a[1].ID {
		t.Errorf("ids collide: %v %v", ids(a), ids(c))
	}
}

func ids(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}
