package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

var tokenPattern = regexp.MustCompile(`ph_[0-9a-f]{64}`)

// TestTokenCommand runs a session of `posthorn token` and keeps what it
// printed in testdata/token.golden (the tokens themselves replaced).
func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "posthorn.db")
	cfg := filepath.Join(dir, "posthorn.toml")
	text := fmt.Sprintf("hostname = \"mx1\"\n[store]\npath = %q\n[ui]\nlisten = \"127.0.0.1:8025\"\ntimezone = \"Asia/Tokyo\"\n", db)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	clockFile := filepath.Join(dir, "clock")
	t.Setenv(testClockEnv, clockFile)
	t0 := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC) // 10:00 in Tokyo

	var printed []string // every token printed, in order
	var out bytes.Buffer
	for _, st := range []struct {
		at   time.Duration // after t0
		args []string
	}{
		{0, []string{"add", "crm-sync"}},
		{time.Minute, []string{"add", "ops", "--config", cfg}},
		{time.Minute, []string{"add", "crm-sync"}},
		{time.Minute, []string{"add", "two words"}},
		{time.Minute, []string{"add"}},
		{time.Minute, []string{"rotate", "crm-sync"}},
		{time.Minute, []string{"list"}},
		{time.Hour, []string{"revoke", "crm-sync"}},
		{time.Hour, []string{"revoke", "crm-sync"}},
		{time.Hour, []string{"revoke", "nobody"}},
		{2 * time.Hour, []string{"add", "crm-sync"}},
		{2 * time.Hour, []string{"list", "x"}},
		{2 * time.Hour, []string{"list"}},
	} {
		setTestClock(t, clockFile, t0.Add(st.at))
		args := append([]string{"token"}, st.args...)
		if !strings.Contains(strings.Join(st.args, " "), "--config") {
			args = append(args, "--config", cfg)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		printed = append(printed, tokenPattern.FindAllString(stdout.String(), -1)...)
		if tokenPattern.MatchString(stderr.String()) {
			t.Errorf("%q printed a token on stderr", st.args)
		}
		shown := strings.ReplaceAll(strings.Join(st.args, " "), cfg, "CONFIG")
		fmt.Fprintf(&out, "$ posthorn token %s\nexit %d\n", shown, code)
		for _, s := range []struct{ name, text string }{{"stdout", stdout.String()}, {"stderr", stderr.String()}} {
			if s.text == "" {
				continue
			}
			if strings.HasPrefix(s.text, "usage:") || strings.Contains(s.text, "\n\nusage:") {
				s.text, _, _ = strings.Cut(s.text, "usage:")
				s.text += "(usage)\n"
			}
			fmt.Fprintf(&out, "%s:\n%s", s.name, tokenPattern.ReplaceAllString(s.text, "ph_<64 hex digits>"))
		}
		out.WriteString("\n")
	}
	checkGolden(t, "token.golden", out.Bytes())

	// Three tokens were made, each printed once, all different.
	if len(printed) != 3 || printed[0] == printed[1] || printed[0] == printed[2] {
		t.Fatalf("printed tokens %q", printed)
	}
	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, want := range []struct {
		name    string
		revoked bool
	}{{"crm-sync", true}, {"ops", false}, {"crm-sync", false}} {
		name, revoked, _, ok, err := store.APIToken(ctx, ui.APITokenHash(printed[i]))
		if err != nil || !ok || name != want.name || revoked != want.revoked {
			t.Errorf("token %d: %q revoked %v ok %v %v; want %q revoked %v", i, name, revoked, ok, err, want.name, want.revoked)
		}
	}
	store.Close()
	// Only the hashes are stored: no file of the database holds a token.
	files, _ := filepath.Glob(db + "*")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range printed {
			if bytes.Contains(data, []byte(tok)) || bytes.Contains(data, []byte(tok[3:])) {
				t.Errorf("%s holds a token in clear", filepath.Base(f))
			}
		}
	}
}

// TestTokenNotes: add warns when the console that serves the API will not
// start.
func TestTokenNotes(t *testing.T) {
	cfg, db := userConfig(t)
	base, _ := os.ReadFile(cfg)
	add := func(ui, name string) string {
		t.Helper()
		if err := os.WriteFile(cfg, append(base, ui...), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"token", "add", name, "--config", cfg}, &stdout, &stderr); code != exitOK {
			t.Fatalf("add: %d %s", code, stderr.String())
		}
		return stderr.String()
	}
	if msg := add("[ui]\nlisten = \"\"\n", "a"); !strings.Contains(msg, "[ui] listen is empty") {
		t.Errorf("console off: %q", msg)
	}
	if msg := add("", "b"); !strings.Contains(msg, "restart it to serve the API") {
		t.Errorf("no user: %q", msg)
	}
	store, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.AddUser(context.Background(), "admin", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"); err != nil {
		t.Fatal(err)
	}
	if msg := add("", "c"); strings.Contains(msg, "note:") {
		t.Errorf("with a console and a user: %q", msg)
	}
}
