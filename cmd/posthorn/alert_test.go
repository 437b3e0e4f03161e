package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
)

// fakeSendmail writes a script that records each run's arguments and
// standard input in dir (args.N, msg.N) and exits with status exit.
func fakeSendmail(t *testing.T, dir string, exit int) string {
	t.Helper()
	path := filepath.Join(dir, "sendmail")
	script := fmt.Sprintf(`#!/bin/sh
d=$(dirname "$0")
n=$(ls "$d" | grep -c '^msg\.')
printf '%%s\n' "$@" >"$d/args.$n"
cat >"$d/msg.$n"
[ %d = 0 ] || echo "sendmail: fatal: no way" >&2
exit %d
`, exit, exit)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// recorded returns the runs the fake sendmail recorded, in order.
func recorded(t *testing.T, dir string) []string {
	t.Helper()
	var runs []string
	for n := 0; ; n++ {
		args, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("args.%d", n)))
		if os.IsNotExist(err) {
			return runs
		}
		if err != nil {
			t.Fatal(err)
		}
		msg, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("msg.%d", n)))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, fmt.Sprintf("args: %q\n%s", strings.Fields(string(args)), msg))
	}
}

// randomID is the random part of a Message-ID.
var randomID = regexp.MustCompile(`<[0-9a-f]{24}@`)

// TestAlertWatcher plays attempts and checks against a fake clock and
// compares the log lines and mails with testdata/alert/NAME.golden.
func TestAlertWatcher(t *testing.T) {
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	type step struct {
		at    time.Duration // after start
		state string        // an attempt's state, or "" for a check
	}
	fail := func(at time.Duration) step { return step{at, dispatcher.StateDeferred} }
	ok := func(at time.Duration) step { return step{at, dispatcher.StateSucceeded} }
	check := func(at time.Duration) step { return step{at: at} }
	tests := []struct {
		name   string
		mailTo string
		exit   int // of the fake sendmail
		steps  []step
	}{
		{"short_failure", "admin@example.com", 0, []step{
			fail(0), check(30 * time.Minute), fail(59 * time.Minute), check(59 * time.Minute),
			ok(61 * time.Minute), check(61 * time.Minute), check(3 * time.Hour),
		}},
		{"alert_repeat_recover", "admin@example.com", 0, []step{
			fail(0), check(59 * time.Minute), check(time.Hour), fail(70 * time.Minute),
			check(90 * time.Minute), check(119 * time.Minute), check(2 * time.Hour),
			ok(130 * time.Minute), check(131 * time.Minute), check(5 * time.Hour),
		}},
		{"log_only", "", 0, []step{
			fail(0), {10 * time.Minute, dispatcher.StateFailed}, check(time.Hour), ok(90 * time.Minute), check(90 * time.Minute),
		}},
		{"sendmail_fails", "admin@example.com", 1, []step{
			fail(0), check(time.Hour), ok(90 * time.Minute), check(90 * time.Minute),
		}},
		{"fails_again_after_recovery", "admin@example.com", 0, []step{
			fail(0), check(time.Hour), ok(90 * time.Minute), fail(91 * time.Minute),
			check(92 * time.Minute), check(150 * time.Minute), check(151 * time.Minute),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			now := start
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
				ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey && len(groups) == 0 {
						return slog.Attr{}
					}
					return a
				},
			}))
			w := newAlertWatcher("Event Webhook", config.Alerts{
				After:        config.Duration(time.Hour),
				MailTo:       tc.mailTo,
				From:         "posthorn@mx1.example.com",
				Sendmail:     fakeSendmail(t, dir, tc.exit),
				SendmailArgs: []string{"-C", "/etc/postfix-out"},
			}, log, func() time.Time { return now })
			for _, s := range tc.steps {
				now = start.Add(s.at)
				fmt.Fprintf(&logs, "# +%v %s\n", s.at, or(s.state, "check"))
				if s.state == "" {
					w.check(context.Background())
				} else {
					w.attempt(now, "https://hooks.example.com/in", s.state, "dial tcp 192.0.2.1:443: connection refused")
				}
			}
			got := logs.String() + "\n# mails\n" + strings.Join(recorded(t, dir), "\n# next\n")
			got = strings.ReplaceAll(got, dir, "TMP")
			checkGolden(t, filepath.Join("alert", tc.name+".golden"), []byte(randomID.ReplaceAllString(got, "<ID@")))
		})
	}
}

func or(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// TestAlertOutbox checks that the dispatcher's recorded attempts reach the
// watcher, and that the wake channel nudges run without blocking.
func TestAlertOutbox(t *testing.T) {
	w := newAlertWatcher("Event Webhook", config.Alerts{After: config.Duration(time.Minute)}, slog.New(slog.DiscardHandler), time.Now)
	at := time.Now()
	for range 3 { // more than the channel holds: attempt must not block
		w.attempt(at, "https://e.example", dispatcher.StateFailed, "x")
	}
	if len(w.wake) != 1 {
		t.Errorf("wake holds %d nudges, want 1", len(w.wake))
	}
	if !w.since.Equal(at) {
		t.Errorf("since = %v, want %v", w.since, at)
	}
}
