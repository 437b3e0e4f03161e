package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// setTestClock points the suppression list's clock at a file holding t.
func setTestClock(t *testing.T, path string, now time.Time) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(now.Format(time.RFC3339Nano)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil { // never half-written
		t.Fatal(err)
	}
}

func TestBlocksCommand(t *testing.T) {
	cfg, db := userConfig(t)
	clockFile := filepath.Join(t.TempDir(), "clock")
	t.Setenv(testClockEnv, clockFile)
	// 10:00 in Tokyo; the default execution time is the next 00:00 there.
	setTestClock(t, clockFile, time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC))
	z := "--zone=Asia/Tokyo"

	steps := []struct {
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{[]string{"add", "Now@Example.ORG", "--now", z}, exitOK, "Now@example.org: registered", ""},
		{[]string{"add", "Later@Example.ORG", "--reason", "2", "--watch", "30", z}, exitOK, "Later@example.org: scheduled for 2026-11-28 00:00:00", ""},
		{[]string{"add", "now@example.org", "--now", z}, exitOK, "registered", ""}, // another local part
		{[]string{"add", "Now@example.org", "--now", z}, exitFail, "", "already on the suppression list"},
		{[]string{"add", "not-an-address", z}, exitFail, "", "no @"},
		{[]string{"add", "x@example.org", "--at", "2020-01-01 00:00", z}, exitFail, "", "in the past"},
		{[]string{"add", "x@example.org", "--at", "tomorrow", z}, exitFail, "", "want YYYY-MM-DD"},
		{[]string{"add", "x@example.org", "--now", "--at", "2030-01-01", z}, exitConfig, "", "exclude each other"},
		{[]string{"add", "x@example.org", "--reason", "10", z}, exitConfig, "", "want manual, unsubscribe or a bounce class"},
		{[]string{"add", "x@example.org", "--exec-time", "25:00", z}, exitConfig, "", "want HH:MM"},
		{[]string{"add", z}, exitConfig, "", "no address given"},
		{[]string{"frobnicate"}, exitConfig, "", `unknown action "frobnicate"`},
		{[]string{"del", "Later@example.org", z}, exitFail, "", "cancel it instead"},
		{[]string{"cancel", "Now@example.org", z}, exitFail, "", "delete it instead"},
		{[]string{"del", "nobody@example.org", z}, exitFail, "", "not on the suppression list"},
		{[]string{"del", "Now@EXAMPLE.org", z}, exitOK, "Now@example.org: deleted", ""},
		{[]string{"list", z}, exitOK, "Later@example.org", ""},
		{[]string{"list", "--removed", "--address", "NOW", z}, exitOK, "deleted", ""},
		{[]string{"list", "--limit", "1", z}, exitOK, "ADDRESS", "the newest 1 shown"},
		{[]string{"list", "--since", "yesterday", z}, exitConfig, "", "--since"},
		{[]string{"list", "extra", z}, exitConfig, "", `unexpected argument "extra"`},
	}
	for _, s := range steps {
		args := append([]string{"blocks"}, s.args...)
		args = append(args, "--config", cfg)
		code, out, errOut := runUserCmd(args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Errorf("posthorn %s = %d\nstdout: %s\nstderr: %s\nwant %d, %q, %q", strings.Join(args, " "), code, out, errOut, s.code, s.stdout, s.stderr)
		}
	}

	// import: header, reasons, an address already listed, a bad line.
	csvFile := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(csvFile, []byte("address,reason\na@example.org,unsubscribe\nb@Example.org\nLater@example.org\nbad-line,manual\nc@example.org,42\n'-list@example.org,manual\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runUserCmd("blocks", "import", csvFile, "--now", z, "--config", cfg)
	if code != exitFail || !strings.Contains(out, "imported 3, already listed 1, refused 2") || !strings.Contains(errOut, "in.csv:5") {
		t.Errorf("import = %d\n%s\n%s", code, out, errOut)
	}

	// export: CSV with the header import skips.
	code, out, errOut = runUserCmd("blocks", "export", z, "--config", cfg)
	// The console's formula guard on '-list@... was undone by import.
	if code != exitOK || !strings.HasPrefix(out, "address,reason,status,") || !strings.Contains(out, "a@example.org,unsubscribe,registered,") || strings.Contains(out, "Now@example.org") ||
		!strings.Contains(out, "\n-list@example.org,manual,") {
		t.Errorf("export = %d\n%s\n%s", code, out, errOut)
	}

	// The events: registered for each immediate add, deleted for del.
	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	evs, err := store.Events(context.Background(), event.Query{Types: []event.Type{event.Registered, event.Deleted}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, string(e.Type)+" "+e.To)
	}
	// All at one clock time: the store orders them by id, not by step.
	slices.Sort(got)
	want := "deleted Now@example.org|registered -list@example.org|registered Now@example.org|registered a@example.org|registered b@example.org|registered now@example.org"
	if strings.Join(got, "|") != want {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

// fakeClock is a clock that moves only when the test sets it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	changed chan struct{}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *fakeClock) Changed() <-chan struct{} { return c.changed }
func (c *fakeClock) Stop()                    {}
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
	c.changed <- struct{}{}
}

func TestBlockScheduler(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	at := t0.Add(14 * time.Hour)
	if _, _, err := store.AddBlock(ctx, sqlite.NewBlock{Address: "x@example.org", Reason: "manual", At: at, Expires: at.Add(24 * time.Hour), Now: t0}); err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{now: t0, changed: make(chan struct{})}
	notified := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		runBlockScheduler(ctx, store, clk, func() { notified <- struct{}{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	count := func(typ event.Type) int {
		evs, err := store.Events(ctx, event.Query{Types: []event.Type{typ}})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	// The unbuffered send returns once the scheduler is waiting again, so
	// its run at the old time is over.
	clk.set(at.Add(-time.Second))
	if n := count(event.Registered); n != 0 {
		t.Fatalf("registered %d before the time", n)
	}
	clk.set(at)
	<-notified
	if n := count(event.Registered); n != 1 {
		t.Fatalf("registered %d at the time, want 1", n)
	}
	clk.set(at.Add(24 * time.Hour))
	<-notified
	if n := count(event.Deleted); n != 1 {
		t.Fatalf("deleted %d at the end of the watch period, want 1", n)
	}
	cancel()
	<-done
}

func TestFileClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	if _, err := newFileClock(path, time.Millisecond); err == nil {
		t.Error("a missing clock file was accepted")
	}
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	setTestClock(t, path, t0)
	c, err := newFileClock(path, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if !c.Now().Equal(t0) {
		t.Errorf("Now = %v", c.Now())
	}
	setTestClock(t, path, t0.Add(time.Hour))
	<-c.Changed()
	if !c.Now().Equal(t0.Add(time.Hour)) {
		t.Errorf("Now after change = %v", c.Now())
	}
}
