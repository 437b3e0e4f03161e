package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/config"
)

// TestDemo runs the whole demo without pauses: it must print every event
// `posthorn parse --sample` derives from the same sample, one line each,
// and leave a config that serve accepts.
func TestDemo(t *testing.T) {
	var want, errb bytes.Buffer
	if code := run(context.Background(), []string{"parse", "--sample"}, &want, &errb); code != exitOK {
		t.Fatalf("parse --sample = %d: %s", code, errb.String())
	}
	wantEvents := strings.Count(want.String(), "\n")

	dir := filepath.Join(t.TempDir(), "demo")
	var out bytes.Buffer
	errb.Reset()
	if code := run(context.Background(), []string{"demo", "--exit", "--speed", "0", "--listen", "127.0.0.1:0", "--dir", dir}, &out, &errb); code != exitOK {
		t.Fatalf("demo = %d, stderr:\n%s", code, errb.String())
	}
	var printed int
	for _, l := range strings.Split(out.String(), "\n") {
		if len(l) > 10 && l[2] == ':' && l[5] == ':' {
			printed++
		}
	}
	if printed != wantEvents {
		t.Errorf("demo printed %d events, parse --sample derives %d:\n%s", printed, wantEvents, out.String())
	}
	if !strings.Contains(out.String(), "events from 177 log lines") {
		t.Errorf("no summary in:\n%s", out.String())
	}
	if _, err := config.Load(filepath.Join(dir, "posthorn.toml")); err != nil {
		t.Errorf("the kept config does not load: %v", err)
	}
	// A second run into the same directory would mix two replays.
	errb.Reset()
	if code := run(context.Background(), []string{"demo", "--exit", "--speed", "0", "--listen", "127.0.0.1:0", "--dir", dir}, &out, &errb); code != exitFail ||
		!strings.Contains(errb.String(), "already holds a demo's database") {
		t.Errorf("second demo into %s = %d, %q; want a refusal", dir, code, errb.String())
	}
}

// TestDemoPace checks the pauses asked of the clock: the gaps between the
// sample's time stamps, each at most demoMaxGap.
func TestDemoPace(t *testing.T) {
	var gaps []time.Duration
	d := &demo{
		lines: []string{
			"Nov 27 10:04:24 mx postfix/smtpd[1]: connect from localhost[127.0.0.1]\n",
			"Nov 27 10:04:24 mx postfix/smtpd[1]: 62C0D985691: client=localhost[127.0.0.1]\n",
			"not a log line at all\n",
			"Nov 27 10:04:26 mx postfix/qmgr[2]: 62C0D985691: removed\n",
			"2026-11-27T10:05:26.5+00:00 mx postfix/qmgr[2]: 62C0D985692: removed\n",
		},
		pace: func(_ context.Context, gap time.Duration) error { gaps = append(gaps, gap); return nil },
	}
	path := filepath.Join(t.TempDir(), "maillog")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.replay(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	// The RFC 3339 line has a year and the first ones have none: the gap
	// between them is huge and is capped.
	want := []time.Duration{0, 2 * time.Second, demoMaxGap}
	if len(gaps) != len(want) {
		t.Fatalf("gaps = %v, want %v", gaps, want)
	}
	for i := range want {
		if gaps[i] != want[i] {
			t.Errorf("gap %d = %v, want %v", i, gaps[i], want[i])
		}
	}
	if got := readAll(t, path); got != strings.Join(d.lines, "") {
		t.Errorf("maillog = %q", got)
	}
}

// syncWriter signals once its output contains a text.
type syncWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	text string
	seen chan struct{}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.seen != nil && strings.Contains(w.buf.String(), w.text) {
		close(w.seen)
		w.seen = nil
	}
	return n, err
}

// TestDemoInterrupted: without --exit the demo keeps running once the
// sample is stored, and an interrupt ends it cleanly.
func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncWriter{text: "press Ctrl-C to stop", seen: make(chan struct{})}
	seen := out.seen
	var errb bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"demo", "--speed", "0", "--listen", "127.0.0.1:0"}, out, &errb) }()
	select {
	case <-seen:
	case c := <-code:
		t.Fatalf("demo ended (%d) before the sample was stored: %s", c, errb.String())
	}
	cancel()
	if c := <-code; c != exitOK {
		t.Errorf("interrupted demo = %d, stderr:\n%s", c, errb.String())
	}
}

func TestLineTime(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Time
		ok   bool
	}{
		{"Nov 27 10:04:24 mx postfix/qmgr[1]: x", time.Date(0, 11, 27, 10, 4, 24, 0, time.UTC), true},
		{"Jan  2 03:04:05 mx postfix/qmgr[1]: x", time.Date(0, 1, 2, 3, 4, 5, 0, time.UTC), true},
		{"2026-11-27T10:04:24.123456+01:00 mx postfix/qmgr[1]: x", time.Date(2026, 11, 27, 9, 4, 24, 123456000, time.UTC), true},
		{"garbage", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := lineTime(tc.line)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("lineTime(%q) = %v, %v; want %v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
