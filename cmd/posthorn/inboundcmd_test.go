package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/zipaes/zipaestest"
)

// inboundConfig writes a config with extra TOML appended; the store is in
// a fresh directory.
func inboundConfig(t *testing.T, extra string) (cfgPath, dbPath string) {
	t.Helper()
	cfgPath, dbPath = webhookConfig(t)
	if extra != "" {
		f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(extra)
		f.Close()
	}
	return cfgPath, dbPath
}

func TestInboundCommandsRegistered(t *testing.T) {
	byName := map[string]int{}
	for _, c := range commands {
		byName[c.name]++
	}
	for _, name := range []string{"log", "settings", "postfix-config"} {
		if byName[name] != 1 {
			t.Errorf("command %s registered %d times", name, byName[name])
		}
	}
}

// fillInboundLog stores a capture and some denials, as the milter would.
func fillInboundLog(t *testing.T, dbPath string) {
	t.Helper()
	store, err := sqlite.Open(dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	at := time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)
	err = store.LogInbound(ctx, []event.InboundLogEntry{
		{Time: at, Status: event.InboundDenied, To: "root@other.example", Host: "mx1", Reason: "recipient domain not allowed"},
		{Time: at.Add(time.Minute), Status: event.InboundDenied, From: `"Spam, Inc." <ceo@shop.example>`, To: "orders@shop.example",
			Host: "mx1", MessageID: "<s@x>", Reason: "spam rule: header From is in an allowed domain"},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = store.Capture(ctx, &event.InboundMessage{
		Host: "mx1", QueueID: "Q1", Received: at.Add(2 * time.Minute), EnvelopeFrom: "a@customer.example",
		Recipients: []event.InboundRecipient{{Address: "orders@shop.example", Filters: []string{"orders"}}},
		From:       "山田 <a@customer.example>", Subject: "注文", MessageID: "<m1@customer.example>",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLogInbound(t *testing.T) {
	cfg, db := inboundConfig(t, "")
	fillInboundLog(t, db)
	t.Setenv("TZ", "UTC")

	code, out, errs := runCmd(t, "log", "inbound", "--csv", "--config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		inboundCSVHeader,
		{received(time.Date(2026, 3, 14, 9, 30, 0, 0, time.UTC)), "denied", "", "root@other.example", "mx1", "", "", "recipient domain not allowed"},
		{received(time.Date(2026, 3, 14, 9, 31, 0, 0, time.UTC)), "denied", `"Spam, Inc." <ceo@shop.example>`, "orders@shop.example", "mx1", "<s@x>", "", "spam rule: header From is in an allowed domain"},
		{received(time.Date(2026, 3, 14, 9, 32, 0, 0, time.UTC)), "queued", "山田 <a@customer.example>", "orders@shop.example", "mx1", "<m1@customer.example>", "orders", ""},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("CSV (-want +got):\n%s", diff)
	}
	if strings.Contains(out, "\r") {
		t.Error("CSV has CR line ends; WIRE.md §5 wants LF")
	}

	code, out, _ = runCmd(t, "log", "inbound", "--status", "queued", "--since", "2026-03-14T09:31:30Z", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "RECEIVED") || strings.Count(out, "\n") != 2 || !strings.Contains(out, "<m1@customer.example>") {
		t.Errorf("table (%d):\n%s", code, out)
	}

	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--status", "lost"}, `unknown status "lost"`},
		{[]string{"--zip", "x.zip"}, "--zip and --password-file go together"},
		{[]string{"--csv", "--zip", "x.zip", "--password-file", "p"}, "--csv and --zip cannot be combined"},
		{[]string{"--since", "yesterday-ish"}, "--since"},
		{[]string{"--since", "2026-03-15", "--until", "2026-03-14"}, "is not after"},
		{[]string{"--zip", "x.zip", "--password-file", filepath.Join(t.TempDir(), "missing")}, "read --password-file"},
	} {
		code, _, errs := runCmd(t, append(append([]string{"log", "inbound"}, c.args...), "--config", cfg)...)
		if code != exitConfig || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errs, c.msg)
		}
	}
	// Help shows both logs.
	if _, _, errs := runCmd(t, "log", "-h"); !strings.Contains(errs, "log events") || !strings.Contains(errs, "log inbound") {
		t.Errorf("log -h:\n%s", errs)
	}
}

// TestLogInboundZip: the export opens with the real 7-Zip and holds the
// same CSV as --csv.
func TestLogInboundZip(t *testing.T) {
	bin := zipaestest.SevenZip(t)
	cfg, db := inboundConfig(t, "")
	fillInboundLog(t, db)
	dir := t.TempDir()
	pw := writeFile(t, "pw", []byte("s3cret pass\nignored second line\n"))
	zipPath := filepath.Join(dir, "inbound.zip")
	code, _, errs := runCmd(t, "log", "inbound", "--zip", zipPath, "--password-file", pw, "--config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if fi, err := os.Stat(zipPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("zip file mode: %v %v", fi, err)
	}
	if out, err := exec.Command(bin, "x", "-ps3cret pass", "-o"+filepath.Join(dir, "x"), zipPath).CombinedOutput(); err != nil {
		t.Fatalf("7-Zip: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "x", "inbound-log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	_, csvOut, _ := runCmd(t, "log", "inbound", "--csv", "--config", cfg)
	if string(got) != csvOut {
		t.Errorf("zipped CSV differs from --csv:\n%s\n---\n%s", got, csvOut)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".posthorn-log-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

const inboundSettingsDoc = `inbound:
  domains: [Shop.Example, mail.shop.example]
  log_denied: true
  filters:
    - name: orders
      endpoint: https://hooks.example.com/orders
      conditions:
        - {header: To, pattern: '^orders@shop\.example$'}
        - {header: Subject, pattern: '(?i)order'}
      basic_user: mailer
      basic_password: pw-SECRET
      api_key: key-SECRET
      retry_interval: 120
      retry_period: 3d
    - name: support
      endpoint: https://hooks.example.com/support
      json: true
      conditions:
        - {header: To, pattern: '^support@'}
      disabled: true
`

func TestSettingsInbound(t *testing.T) {
	cfg, db := inboundConfig(t, "")
	// The inbound map alone: the Event Webhook's settings stay unsaved.
	code, out, errs := runCmd(t, "settings", "import", writeFile(t, "in.yaml", []byte(inboundSettingsDoc)), "--config", cfg)
	if code != exitOK || !strings.Contains(out, `imported inbound domains [shop.example mail.shop.example]`) || strings.Contains(out, "SECRET") {
		t.Fatalf("import inbound: %d %q %q", code, out, errs)
	}
	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, ok, err := store.InboundSettings(context.Background())
	_, ewSaved, _ := store.EventWebhookSettings(context.Background())
	store.Close()
	if err != nil || !ok || ewSaved || len(s.Filters) != 2 || s.Filters[0].RetryInterval != 120 || s.Filters[1].Timeout != 30 ||
		s.Filters[1].RetryInterval != 60 || !s.Filters[1].Disabled || string(s.Filters[0].BasicPassword) != "pw-SECRET" {
		t.Fatalf("saved %+v %v %v (event webhook saved %v)", s, ok, err, ewSaved)
	}

	// Both maps in one document; export gives both back.
	both := goodSettings + inboundSettingsDoc
	if code, _, errs := runCmd(t, "settings", "import", writeFile(t, "both.yaml", []byte(both)), "--config", cfg); code != exitOK {
		t.Fatalf("import both: %d %s", code, errs)
	}
	exported := filepath.Join(t.TempDir(), "export.yaml")
	if code, _, errs := runCmd(t, "settings", "export", exported, "--config", cfg); code != exitOK {
		t.Fatalf("export: %d %s", code, errs)
	}
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(exported)
	if !bytes.Contains(data, []byte("event_webhook:")) || !bytes.Contains(data, []byte("inbound:")) ||
		!bytes.Contains(data, []byte("pw-SECRET")) || fi.Mode().Perm() != 0o600 {
		t.Errorf("export (mode %v):\n%s", fi.Mode(), data)
	}
	// The export imports again unchanged.
	if code, _, errs := runCmd(t, "settings", "import", exported, "--config", cfg); code != exitOK {
		t.Fatalf("re-import: %d %s", code, errs)
	}
	if code, out, _ := runCmd(t, "settings", "export", "-", "--config", cfg); code != exitOK || out != string(data) {
		t.Errorf("export after re-import differs:\n%s\n---\n%s", out, data)
	}

	// An invalid inbound map changes nothing, the event webhook included.
	for _, c := range []struct{ doc, msg string }{
		{goodSettings + strings.Replace(inboundSettingsDoc, "(?i)order", "(order", 1), "filters[0].conditions[1].pattern"},
		{strings.Replace(inboundSettingsDoc, "log_denied", "log_refused", 1), "inbound.log_refused: unknown key"},
		{"inbound: [a, b]\n", "bad.yaml:1: inbound: must be a map"},
		{strings.Replace(inboundSettingsDoc, "https://hooks.example.com/support", "http://hooks.example.com/support", 1), "filters[1].endpoint"},
	} {
		code, _, errs := runCmd(t, "settings", "import", writeFile(t, "bad.yaml", []byte(c.doc)), "--config", cfg)
		if code != exitConfig || !strings.Contains(errs, c.msg) {
			t.Errorf("import: exit %d, stderr %q, want %q", code, errs, c.msg)
		}
	}
	if _, out, _ := runCmd(t, "settings", "export", "-", "--config", cfg); out != string(data) {
		t.Error("a refused import changed the settings")
	}
	// Help mentions the inbound map.
	if _, _, errs := runCmd(t, "settings", "-h"); !strings.Contains(errs, "inbound:") || !strings.Contains(errs, "event_webhook:") {
		t.Errorf("settings -h:\n%s", errs)
	}
}

func TestPostfixConfigGolden(t *testing.T) {
	saved := runCommand
	t.Cleanup(func() { runCommand = saved })
	runCommand = func(_ context.Context, name string, args ...string) ([]byte, error) {
		if name == "postconf" && slices.Contains(args, "queue_directory") {
			return []byte("/var/spool/postfix\n"), nil
		}
		return nil, fmt.Errorf("unexpected %s %v", name, args)
	}
	for _, c := range []struct {
		name, toml string
		args       []string
		err        string
	}{
		{name: "inet", toml: "[milter]\ninbound = \"inet:127.0.0.1:10030\"\noutbound = \"inet:127.0.0.1:10031\"\n"},
		{name: "unix-in-queue-dir", toml: "[milter]\ninbound = \"unix:/var/spool/postfix/posthorn/inbound.sock\"\noutbound = \"unix:/var/spool/postfix/posthorn/outbound.sock\"\n",
			args: []string{"--service", "submission/inet", "--service", "smtps/inet", "--non-smtpd"}},
		{name: "inbound-only", toml: "[milter]\ninbound = \"inet:127.0.0.1:10030\"\n"},
		{name: "unix-outside", toml: "[milter]\ninbound = \"unix:/run/posthorn/inbound.sock\"\n",
			err: "socket /run/posthorn/inbound.sock is outside Postfix's queue directory /var/spool/postfix"},
		{name: "none", toml: "", err: "no milter role is configured"},
		{name: "bad-service", toml: "[milter]\ninbound = \"inet:127.0.0.1:10030\"\n", args: []string{"--service", "submission"}, err: "want NAME/TYPE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := inboundConfig(t, c.toml)
			code, out, errs := runCmd(t, append(append([]string{"postfix-config"}, c.args...), "--config", cfg)...)
			if c.err != "" {
				if code != exitConfig || !strings.Contains(errs, c.err) {
					t.Errorf("exit %d, stderr %q, want %q", code, errs, c.err)
				}
				return
			}
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			checkInboundGolden(t, filepath.Join("testdata", "postfix-config", c.name+".golden"), out)
		})
	}
}

func checkInboundGolden(t *testing.T, path, got string) {
	t.Helper()
	if updateGolden() {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

// TestPostfixConfigApply: --apply runs postconf for main.cf and for each
// existing master.cf service, skips a missing one, and reloads a running
// Postfix.
func TestPostfixConfigApply(t *testing.T) {
	saved := runCommand
	t.Cleanup(func() { runCommand = saved })
	var ran []string
	runCommand = func(_ context.Context, name string, args ...string) ([]byte, error) {
		line := name + " " + strings.Join(args, " ")
		ran = append(ran, line)
		switch {
		case slices.Contains(args, "queue_directory"):
			return []byte("/var/spool/postfix\n"), nil
		case slices.Contains(args, "-M") && args[len(args)-1] == "smtps/inet":
			return nil, nil // not in master.cf
		case slices.Contains(args, "-M"):
			return []byte(args[len(args)-1] + " ... smtpd\n"), nil
		}
		return nil, nil
	}
	cfg, _ := inboundConfig(t, "[milter]\ninbound = \"inet:127.0.0.1:10030\"\noutbound = \"inet:127.0.0.1:10031\"\n")
	code, out, errs := runCmd(t, "postfix-config", "--apply", "--postfix-dir", "/etc/postfix-x", "--service", "submission/inet",
		"--service", "smtps/inet", "--config", cfg)
	if code != exitFail || !strings.Contains(errs, "master.cf has no service smtps/inet") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
	want := []string{
		"postconf -c /etc/postfix-x -h queue_directory",
		"postconf -c /etc/postfix-x -e milter_protocol=6 milter_default_action=tempfail " +
			"smtpd_milters={ inet:127.0.0.1:10030, default_action=tempfail, command_timeout=30s, content_timeout=300s } " +
			"posthorn_outbound_milters={ inet:127.0.0.1:10031, default_action=accept }",
		"postconf -c /etc/postfix-x -M submission/inet",
		"postconf -c /etc/postfix-x -P submission/inet/smtpd_milters=$posthorn_outbound_milters",
		"postconf -c /etc/postfix-x -M smtps/inet",
		"postfix -c /etc/postfix-x status",
		"postfix -c /etc/postfix-x reload",
	}
	if diff := cmp.Diff(want, ran); diff != "" {
		t.Errorf("commands (-want +got):\n%s\noutput:\n%s", diff, out)
	}
}

// updateGolden reports -update, which help_test.go declares; looked up by
// name so that this file does not depend on that variable.
func updateGolden() bool {
	f := flag.Lookup("update")
	if f == nil {
		return false
	}
	g, ok := f.Value.(flag.Getter)
	return ok && g.Get() == true
}
