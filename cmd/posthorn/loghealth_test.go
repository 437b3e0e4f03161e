package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
	"github.com/posthorn/posthorn/sqlite"
)

func TestLogHealth(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	ex := func(n int) []string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf("unknown status: line %d", i))
		}
		return s
	}
	type step struct {
		at   time.Duration // after t0
		sum  logtail.Summary
		want []string // warnings logged by this check, in order
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"a Postfix log", []step{
			{0, logtail.Summary{Lines: 5000, Postfix: 4990, NotPostfix: 10}, nil},
		}},
		{"no Postfix line", []step{
			{0, logtail.Summary{Lines: 999, NotPostfix: 999}, nil},
			{time.Second, logtail.Summary{Lines: 1500, NotPostfix: 1500}, []string{"no Postfix line in the first 1500 lines of /var/log/mail.log: is this the maillog?"}},
			{2 * time.Second, logtail.Summary{Lines: 3000, NotPostfix: 3000}, nil}, // once
		}},
		{"a Postfix line in time", []step{
			{0, logtail.Summary{Lines: 999, NotPostfix: 999}, nil},
			{time.Second, logtail.Summary{Lines: 1500, Postfix: 1, NotPostfix: 1499}, nil},
		}},
		{"not understood: examples, then a count a minute", []step{
			{0, logtail.Summary{Lines: 10, Postfix: 8, NotUnderstood: 2, Examples: ex(2)}, []string{
				"Postfix line not understood; its events are missing\" line=\"unknown status: line 0\"",
				"Postfix line not understood; its events are missing\" line=\"unknown status: line 1\"",
			}},
			{time.Second, logtail.Summary{Lines: 100, Postfix: 50, NotUnderstood: 50, Examples: ex(5)}, []string{
				"line 2", "line 3", "line 4",
				"more Postfix lines not understood; their events are missing (posthorn parse on the log shows them)\" lines=45 total=50",
			}},
			{30 * time.Second, logtail.Summary{Lines: 200, Postfix: 100, NotUnderstood: 100, Examples: ex(5)}, nil},
			{61 * time.Second, logtail.Summary{Lines: 300, Postfix: 150, NotUnderstood: 150, Examples: ex(5)}, []string{"lines=100 total=150"}},
			{200 * time.Second, logtail.Summary{Lines: 400, Postfix: 250, NotUnderstood: 150, Examples: ex(5)}, nil},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			var cur step
			h := newLogHealth(log, "/var/log/mail.log", func() logtail.Summary { return cur.sum }, func() time.Time { return t0.Add(cur.at) })
			for i, s := range c.steps {
				cur = s
				buf.Reset()
				h.check()
				lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
				if buf.Len() == 0 {
					lines = nil
				}
				if len(lines) != len(s.want) {
					t.Fatalf("step %d: logged %d lines, want %d:\n%s", i, len(lines), len(s.want), buf.String())
				}
				for j, w := range s.want {
					if !strings.Contains(lines[j], "level=WARN") || !strings.Contains(lines[j], w) {
						t.Errorf("step %d line %d = %s, want a warning with %q", i, j, lines[j], w)
					}
				}
			}
		})
	}
}

// serve on a file that is not a maillog warns once it has read enough of it.
func TestServeWarnsNotAMaillog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "shadow")
	writeAt(t, logPath, bytes.Repeat([]byte("root:$y$j9T$abcdefgh$ijklmnop:20000:0:99999:7:::\n"), noPostfixAfter+5))
	cfgPath, _ := storeConfig(t, dir, logPath)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Maillog.Start = string(logtail.StartBegin)
	store, err := sqlite.Open(cfg.Store.Path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var buf lockedBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tailer, err := newTailer(ctx, cfg, store, log)
	if err != nil {
		t.Fatal(err)
	}
	defer tailer.Source.Close()
	// As serve wires it; the run ends once every line is committed.
	tailer.Sink = healthSink{stopAfter{store, func() bool { return tailer.Summary().Lines >= noPostfixAfter+5 }, cancel},
		newLogHealth(log, logPath, tailer.Summary, time.Now)}
	if err := tailer.Run(ctx); err != context.Canceled {
		t.Fatalf("Run: %v", err)
	}
	want := fmt.Sprintf("no Postfix line in the first %d lines of %s: is this the maillog?", noPostfixAfter+5, logPath)
	if got := buf.String(); !strings.Contains(got, want) || !strings.Contains(got, "level=WARN") {
		t.Errorf("log lacks the warning %q:\n%s", want, got)
	}
}

// stopAfter cancels the run once done says every line is in.
type stopAfter struct {
	logtail.Sink
	done   func() bool
	cancel context.CancelFunc
}

func (s stopAfter) Commit(ctx context.Context, b event.Batch) error {
	err := s.Sink.Commit(ctx, b)
	if s.done() {
		s.cancel()
	}
	return err
}

// lockedBuffer is a log destination written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
