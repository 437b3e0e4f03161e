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
	"github.com/posthorn/posthorn/sqlite"
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
		at     time.Duration // after start
		state  string        // an attempt's state, or "" for a check
		filter string        // an inbound filter's attempt; "": the Event Webhook's
	}
	fail := func(at time.Duration) step { return step{at: at, state: dispatcher.StateDeferred} }
	ok := func(at time.Duration) step { return step{at: at, state: dispatcher.StateSucceeded} }
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
			fail(0), {at: 10 * time.Minute, state: dispatcher.StateFailed}, check(time.Hour), ok(90 * time.Minute), check(90 * time.Minute),
		}},
		{"sendmail_fails", "admin@example.com", 1, []step{
			fail(0), check(time.Hour), ok(90 * time.Minute), check(90 * time.Minute),
		}},
		{"event_and_inbound", "admin@example.com", 0, []step{
			fail(0), {20 * time.Minute, dispatcher.StateDeferred, "support"}, check(time.Hour),
			{70 * time.Minute, dispatcher.StateSucceeded, "support"}, check(80 * time.Minute),
			{90 * time.Minute, dispatcher.StateFailed, "orders"}, ok(100 * time.Minute), check(100 * time.Minute),
			check(150 * time.Minute),
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
			w := newAlertWatcher(config.Alerts{
				After:        config.Duration(time.Hour),
				MailTo:       tc.mailTo,
				From:         "posthorn@mx1.example.com",
				Sendmail:     fakeSendmail(t, dir, tc.exit),
				SendmailArgs: []string{"-C", "/etc/postfix-out"},
			}, log, func() time.Time { return now })
			for _, s := range tc.steps {
				now = start.Add(s.at)
				fmt.Fprintf(&logs, "# +%v %s\n", s.at, strings.TrimSpace(or(s.state, "check")+" "+s.filter))
				r := dispatcher.PostReport{Webhook: dispatcher.WebhookEvent, Endpoint: "https://hooks.example.com/in",
					At: now, State: s.state, Reason: "dial tcp 192.0.2.1:443: connection refused"}
				if s.filter != "" {
					r.Webhook, r.Filter, r.Endpoint = dispatcher.WebhookInbound, s.filter, "https://crm.example.com/"+s.filter
				}
				if s.state == "" {
					w.check(context.Background())
				} else {
					w.observe(r)
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

// TestAlertObserve checks that attempts never block the dispatcher that
// reports them: the wake channel holds one nudge.
func TestAlertObserve(t *testing.T) {
	w := newAlertWatcher(config.Alerts{After: config.Duration(time.Minute)}, slog.New(slog.DiscardHandler), time.Now)
	at := time.Now()
	for range 3 { // more than the channel holds
		w.observe(dispatcher.PostReport{Webhook: dispatcher.WebhookEvent, At: at, State: dispatcher.StateFailed, Reason: "x"})
	}
	if len(w.wake) != 1 {
		t.Errorf("wake holds %d nudges, want 1", len(w.wake))
	}
	if f := w.failures[eventWebhook]; f == nil || !f.since.Equal(at) {
		t.Errorf("failure = %+v, want since %v", f, at)
	}
}

// TestAlertResume checks that a restart keeps "failing since": the
// watcher starts from the attempts a real store recorded.
func TestAlertResume(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	w := newAlertWatcher(config.Alerts{After: config.Duration(time.Hour)}, slog.New(slog.DiscardHandler), func() time.Time { return t0 })
	if err := w.resume(ctx, store); err != nil || len(w.failures) != 0 {
		t.Fatalf("resume with no attempts: %v, %+v", err, w.failures)
	}
	formed := make([]sqlite.Formed, 3)
	for i := range formed {
		formed[i] = sqlite.Formed{ID: fmt.Sprint("batch-", i), Family: "deliveries", First: int64(i + 1), Last: int64(i + 1),
			Events: 1, FirstTime: t0, LastTime: t0, Endpoint: "https://hooks.example.com/in"}
	}
	if err := store.Form(ctx, formed, map[string]int64{"deliveries": 3}, t0); err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{dispatcher.StateSucceeded, dispatcher.StateDeferred, dispatcher.StateDeferred} {
		if err := store.Record(ctx, dispatcher.Attempt{BatchID: formed[i].ID, Attempt: 1, At: t0.Add(time.Duration(i) * time.Minute),
			Endpoint: "https://u:p@hooks.example.com/in?token=SECRET", State: st, Reason: fmt.Sprint("reason ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.resume(ctx, store); err != nil {
		t.Fatal(err)
	}
	f := w.failures[eventWebhook]
	if f == nil || !f.since.Equal(t0.Add(time.Minute)) || f.endpoint != "https://hooks.example.com/in" || f.reason != "reason 2" {
		t.Errorf("resumed %+v, want since %v at the redacted endpoint with the latest reason", f, t0.Add(time.Minute))
	}
}
