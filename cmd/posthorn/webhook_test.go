package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

func TestWebhookCommands(t *testing.T) {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	for _, want := range []string{"serve", "settings", "log", "replay", "test-webhook"} {
		if !slices.Contains(names, want) {
			t.Errorf("command %s is not registered (have %v)", want, names)
		}
	}
}

// webhookConfig writes a config whose store is in a fresh directory.
func webhookConfig(t *testing.T) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "posthorn.db")
	cfgPath = filepath.Join(dir, "posthorn.toml")
	cfg := fmt.Sprintf("hostname = \"mx1\"\n[store]\npath = %q\n[maillog]\npath = %q\n", dbPath, filepath.Join(dir, "mail.log"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath
}

const goodSettings = `event_webhook:
  endpoint: https://hook.example.com/events?token=t
  deliveries: true
  bounces: true
  version: 2
  json: true
  timezone: Asia/Tokyo
  basic_user: mailer
  basic_password: "s3cret"
  api_key: key-1
  interval: 10
  max_events: 1000
  timeout: 15
  retry_period: 3d
  signing_secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`

func TestSettingsImportExport(t *testing.T) {
	cfg, _ := webhookConfig(t)
	in := writeFile(t, "in.yaml", []byte(goodSettings))
	code, out, errs := runCmd(t, "settings", "import", in, "--config", cfg)
	if code != exitOK || strings.Contains(out, "s3cret") || !strings.Contains(out, "hook.example.com") {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	exported := filepath.Join(t.TempDir(), "out.yaml")
	if code, _, errs := runCmd(t, "settings", "export", exported, "--config", cfg); code != exitOK {
		t.Fatalf("export: %d %s", code, errs)
	}
	fi, err := os.Stat(exported)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("exported file: %v, mode %v", err, fi.Mode())
	}
	data, _ := os.ReadFile(exported)
	for _, want := range []string{"s3cret", "retry_period: 3d", "max_events: 1000", "timezone: Asia/Tokyo", "blocks: false", "ca_file: \"\""} {
		if !strings.Contains(string(data), want) {
			t.Errorf("export lacks %q:\n%s", want, data)
		}
	}
	// The export imports again to the same settings.
	if code, _, errs := runCmd(t, "settings", "import", exported, "--config", cfg); code != exitOK {
		t.Fatalf("re-import: %s", errs)
	}
	if code, out, _ := runCmd(t, "settings", "export", "-", "--config", cfg); code != exitOK || out != string(data) {
		t.Errorf("second export differs:\n%s", out)
	}

	for _, c := range []struct{ name, doc, want string }{
		{"unknown key", strings.Replace(goodSettings, "json:", "jsn:", 1), "bad.yaml:6: event_webhook.jsn: unknown key: did you mean json?"},
		{"no event_webhook", "endpoint: https://x.example/\n", "bad.yaml:1: endpoint: unknown key"},
		{"empty", "", "bad.yaml: the document is empty"},
		{"invalid values", strings.NewReplacer("max_events: 1000", "max_events: 5", "https://", "http://").Replace(goodSettings),
			"bad.yaml:2: event_webhook.endpoint: must start with https://"},
		{"bad duration", strings.Replace(goodSettings, "3d", "three days", 1), `bad.yaml:14: event_webhook.retry_period: must be a duration from 1h to 10d, such as "36h" or "3d", got "three days"`},
		{"not yaml", "event_webhook: [", "bad.yaml:1: not valid YAML"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := runCmd(t, "settings", "import", writeFile(t, "bad.yaml", []byte(c.doc)), "--config", cfg)
			if code != exitConfig || !strings.Contains(errs, c.want) {
				t.Errorf("code %d, stderr %q; want %q", code, errs, c.want)
			}
		})
	}
	if code, _, errs := runCmd(t, "settings", "frobnicate", "--config", cfg); code != exitConfig || !strings.Contains(errs, "unknown subcommand") {
		t.Errorf("unknown subcommand: %d %q", code, errs)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-03-14T09:30:00+09:00": time.Date(2026, 3, 14, 0, 30, 0, 0, time.UTC),
		"2h":                        now.Add(-2 * time.Hour),
		"3d":                        now.Add(-72 * time.Hour),
		"2026-03-14 09:30":          time.Date(2026, 3, 14, 9, 30, 0, 0, time.Local),
		"2026-03-14":                time.Date(2026, 3, 14, 0, 0, 0, 0, time.Local),
	} {
		got, err := parseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseTime("yesterday", now); err == nil {
		t.Error("parseTime accepted yesterday")
	}
}

// TestLogAndReplay drives `log events` and `replay` over a store with a
// succeeded and a failed batch.
func TestLogAndReplay(t *testing.T) {
	cfg, db := webhookConfig(t)
	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 3, 14, 5, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 4 {
		evs = append(evs, event.Event{ID: fmt.Sprintf("e%d", i), Type: event.Succeeded, Time: t0.Add(time.Duration(i) * time.Hour), To: "a@example.com"})
	}
	if err := store.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	pend, _ := store.Unformed(ctx, 0, 10)
	b := dispatcher.NewBatcher(2, time.Hour)
	var formed []dispatcher.Formed
	for _, p := range pend {
		if got, full, _ := b.Add(t0, p); full {
			formed = append(formed, dispatcher.FromBatch(got, "mx1", "https://user:PASSWORD@hook.example.com/events?token=SECRET"))
		}
	}
	if err := store.Form(ctx, formed, map[string]int64{"deliveries": 4}, t0); err != nil {
		t.Fatal(err)
	}
	ids, _ := store.ClaimDue(ctx, t0, t0.Add(time.Minute), 10)
	for i, id := range ids {
		st, code, reason := sqlite.StateSucceeded, 200, "HTTP 200 OK"
		if id == formed[1].ID {
			st, code, reason = sqlite.StateFailed, 404, "HTTP 404 Not Found, \"quoted\"\nnext line"
		}
		store.Record(ctx, sqlite.Attempt{BatchID: id, Attempt: 1, At: t0.Add(time.Duration(i) * time.Second), Host: "mx1",
			Endpoint: "https://hook.example.com/events?token=SECRET", State: st, Status: code, Reason: reason, Response: []byte("nope")})
	}
	store.Close()

	saved := time.Local
	time.Local = time.UTC
	defer func() { time.Local = saved }()
	code, out, errs := runCmd(t, "log", "events", "--csv", "--config", cfg)
	// WIRE.md §5: a reason only for deferred and failed rows; the
	// endpoint without its query and user information.
	want := "received,status,hostName,endpointUrl,reason\n" +
		"2026-03-14T05:00:00Z,succeeded,mx1,https://hook.example.com/events,\n" +
		"2026-03-14T07:00:00Z,failed,mx1,https://hook.example.com/events,\"HTTP 404 Not Found, \"\"quoted\"\"\nnext line\"\n"
	if code != exitOK || out != want {
		t.Errorf("log events --csv: %d %s\n%s\nwant\n%s", code, errs, out, want)
	}
	code, out, _ = runCmd(t, "log", "events", "--status", "failed", "--since", "2026-03-14T06:30:00Z", "--config", cfg)
	if code != exitOK || strings.Count(out, "\n") != 2 || !strings.Contains(out, formed[1].ID) {
		t.Errorf("log events --status failed:\n%s", out)
	}
	// The table: the code in its own column, the reason only where WIRE.md
	// has one, no secret.
	code, out, _ = runCmd(t, "log", "events", "--config", cfg)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != exitOK || len(lines) != 3 || !strings.HasPrefix(lines[0], "RECEIVED") ||
		strings.Join(strings.Fields(lines[1])[:3], " ") != "2026-03-14T05:00:00Z succeeded 200" || strings.Contains(lines[1], "OK") ||
		strings.Join(strings.Fields(lines[2])[:3], " ") != "2026-03-14T07:00:00Z failed 404" || !strings.Contains(lines[2], `HTTP 404 Not Found, "quoted" next line`) ||
		strings.Contains(out, "SECRET") || strings.Contains(out, "PASSWORD") {
		t.Errorf("log events:\n%s", out)
	}
	// Selection by any event in the period: the failed batch's events are
	// at 07:00 and 08:00.
	code, out, _ = runCmd(t, "log", "events", "--csv", "--since", "2026-03-14T07:30:00Z", "--until", "2026-03-14T07:45:00Z", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "\n2026-03-14T07:00:00Z,failed,") || strings.Contains(out, "succeeded") {
		t.Errorf("log events of a period inside a batch:\n%s", out)
	}
	code, out, _ = runCmd(t, "log", "events", "--batch", formed[1].ID, "--config", cfg)
	if code != exitOK || !strings.Contains(out, `answer: "nope"`) || !strings.Contains(out, "e3") || !strings.Contains(out, "HTTP 404") || strings.Contains(out, "SECRET") {
		t.Errorf("log events --batch:\n%s", out)
	}
	if code, _, errs := runCmd(t, "log", "events", "--status", "lost", "--config", cfg); code != exitConfig || !strings.Contains(errs, "unknown status") {
		t.Errorf("bad status: %d %s", code, errs)
	}

	if code, _, errs := runCmd(t, "replay", "--config", cfg); code != exitConfig || !strings.Contains(errs, "--since is required") {
		t.Errorf("replay without --since: %d %s", code, errs)
	}
	// A period between the failed batch's two events selects it.
	code, out, errs = runCmd(t, "replay", "--since", "2026-03-14T07:30:00Z", "--until", "2026-03-14T07:45:00Z", "--status", "failed", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "re-queued 1 batches (2 events)") {
		t.Errorf("replay: %d %q %q", code, out, errs)
	}
	code, out, _ = runCmd(t, "log", "events", "--csv", "--status", "queued", "--config", cfg)
	if code != exitOK || out != "received,status,hostName,endpointUrl,reason\n2026-03-14T07:00:00Z,queued,mx1,https://hook.example.com/events,\n" {
		t.Errorf("after replay:\n%s", out)
	}
	code, out, _ = runCmd(t, "log", "events", "--batch", formed[1].ID, "--config", cfg)
	if code != exitOK || !strings.Contains(out, "replayed  queued again by posthorn replay") || strings.Contains(out, "reason    ") {
		t.Errorf("log events --batch after replay:\n%s", out)
	}
}
