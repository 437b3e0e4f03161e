package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// TestSuppressionList: the adapter compares normalised addresses and wakes
// the Event Webhook only after records were stored.
func TestSuppressionList(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if _, _, err := st.AddBlock(ctx, sqlite.NewBlock{Address: "Gone@example.org", Reason: "manual", Now: now}); err != nil {
		t.Fatal(err)
	}
	woken := 0
	l := suppressionList{st, func() { woken++ }}
	for addr, want := range map[string]bool{
		"Gone@example.org":     true,
		"Gone@EXAMPLE.ORG.":    true, // the domain's case and root dot do not matter
		"<Gone@example.org>":   true,
		"gone@example.org":     false, // the local part's case does (RFC 5321 §2.4)
		"postmaster":           false, // cannot be on the list
		"other@example.org":    false,
		"Gone@example.org x":   false,
		"":                     false,
		"Gone@sub.example.org": false,
	} {
		got, err := l.IsBlocked(ctx, addr)
		if err != nil || got != want {
			t.Errorf("IsBlocked(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	evs := []event.Event{{ID: "s-failed", Type: event.Failed, Time: now, To: "Gone@example.org"},
		{ID: "s-bounced", Type: event.Bounced, Time: now, To: "Gone@example.org", Class: event.ClassBlocked}}
	if err := l.RecordSuppressed(ctx, evs); err != nil || woken != 1 {
		t.Fatalf("RecordSuppressed: %v, woken %d", err, woken)
	}
	st.Close()
	if err := l.RecordSuppressed(ctx, evs); err == nil || woken != 1 {
		t.Errorf("RecordSuppressed on a closed store: %v, woken %d", err, woken)
	}
	if _, err := l.IsBlocked(ctx, "Gone@example.org"); err == nil {
		t.Error("IsBlocked on a closed store: no error")
	}
}
