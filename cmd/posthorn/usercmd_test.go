package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// userConfig writes a config whose store is in a temp dir.
func userConfig(t *testing.T) (cfg, db string) {
	t.Helper()
	dir := t.TempDir()
	db = filepath.Join(dir, "posthorn.db")
	cfg = filepath.Join(dir, "posthorn.toml")
	text := fmt.Sprintf("hostname = \"mx1\"\n[store]\npath = %q\n", db)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, db
}

func runUserCmd(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writePasswordFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// storedHash opens the store and returns alice's hash.
func storedHash(t *testing.T, db, name string) (string, bool) {
	t.Helper()
	s, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, ok, err := s.UserPasswordHash(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return h, ok
}

func TestUserCommand(t *testing.T) {
	cfg, db := userConfig(t)
	pw := writePasswordFile(t, "first password\n")

	// The command is in the table, flags before or after the name.
	code, out, errs := runUserCmd("user", "add", "alice", "--password-file", pw, "--config", cfg)
	if code != exitOK || out != "user alice added\n" {
		t.Fatalf("add: %d %q %q", code, out, errs)
	}
	h, ok := storedHash(t, db, "alice")
	if !ok || !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("stored hash %q", h)
	}
	if ok, _ := ui.VerifyPassword(h, "first password"); !ok {
		t.Error("the stored hash does not match the password (newline not stripped?)")
	}
	if code, _, errs := runUserCmd("user", "--config", cfg, "add", "alice", "--password-file", pw); code != exitFail || !strings.Contains(errs, "user already exists") {
		t.Errorf("add again: %d %q", code, errs)
	}

	// passwd from standard input ("-"), CRLF tolerated.
	stdin := os.Stdin
	r, w, _ := os.Pipe()
	os.Stdin = r
	io.WriteString(w, "second password\r\nignored\n")
	w.Close()
	code, out, errs = runUserCmd("user", "passwd", "alice", "--password-file", "-", "--config", cfg)
	os.Stdin = stdin
	if code != exitOK || !strings.Contains(out, "password of alice changed") {
		t.Fatalf("passwd: %d %q %q", code, out, errs)
	}
	h, _ = storedHash(t, db, "alice")
	if ok, _ := ui.VerifyPassword(h, "second password"); !ok {
		t.Error("passwd did not store the new password")
	}

	// From the terminal: asked twice.
	answers := []string{"third password", "third password"}
	passwordInput = func(*os.File, io.Writer) (string, error) {
		a := answers[0]
		answers = answers[1:]
		return a, nil
	}
	defer func() { passwordInput = func(f *os.File, p io.Writer) (string, error) { return readPasswordTTY(f, p) } }()
	code, _, errs = runUserCmd("user", "add", "bob", "--config", cfg)
	if code != exitOK {
		t.Fatalf("add from the terminal: %d %q", code, errs)
	}
	if !strings.Contains(errs, "Password: ") || !strings.Contains(errs, "Password again: ") {
		t.Errorf("prompts %q", errs)
	}
	answers = []string{"fourth password", "fourth passwort"}
	if code, _, errs := runUserCmd("user", "passwd", "bob", "--config", cfg); code != exitConfig || !strings.Contains(errs, "differ") {
		t.Errorf("passwd with two different answers: %d %q", code, errs)
	}
	passwordInput = func(*os.File, io.Writer) (string, error) { return "", errors.New("standard input is not a terminal") }
	if code, _, errs := runUserCmd("user", "add", "carol", "--config", cfg); code != exitConfig || !strings.Contains(errs, "not a terminal") {
		t.Errorf("add without a terminal: %d %q", code, errs)
	}

	code, out, _ = runUserCmd("user", "list", "--config", cfg)
	if code != exitOK || out != "alice\nbob\n" {
		t.Errorf("list: %d %q", code, out)
	}
	if code, out, _ := runUserCmd("user", "del", "bob", "--config", cfg); code != exitOK || out != "user bob deleted\n" {
		t.Errorf("del: %d %q", code, out)
	}
	if code, _, errs := runUserCmd("user", "del", "bob", "--config", cfg); code != exitFail || !strings.Contains(errs, "no such user") {
		t.Errorf("del again: %d %q", code, errs)
	}
	if code, _, errs := runUserCmd("user", "passwd", "nobody", "--config", cfg, "--password-file", pw); code != exitFail || !strings.Contains(errs, "no such user") {
		t.Errorf("passwd of a missing user: %d %q", code, errs)
	}
}

func TestUserCommandErrors(t *testing.T) {
	cfg, _ := userConfig(t)
	short := writePasswordFile(t, "short\n")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"user"}, exitConfig, "usage:"},
		{[]string{"user", "rename", "a"}, exitConfig, `unknown action "rename"`},
		{[]string{"user", "add"}, exitConfig, "want 1 argument(s), got 0"},
		{[]string{"user", "add", "a", "b"}, exitConfig, "want 1 argument(s), got 2"},
		{[]string{"user", "list", "x"}, exitConfig, "want 0 argument(s)"},
		{[]string{"user", "add", "two words", "--config", cfg}, exitConfig, "spaces"},
		{[]string{"user", "del", "a", "--password-file", short, "--config", cfg}, exitConfig, "only for add and passwd"},
		{[]string{"user", "add", "dave", "--password-file", short, "--config", cfg}, exitConfig, "password too short"},
		{[]string{"user", "add", "dave", "--password-file", "/nonexistent/pw", "--config", cfg}, exitConfig, "no such file"},
		{[]string{"user", "list", "--config", "/nonexistent/posthorn.toml"}, exitConfig, "read config"},
		{[]string{"user", "add", "dave", "--bogus"}, exitConfig, "flag provided but not defined"},
	} {
		code, _, errs := runUserCmd(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: %d %q, want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
}
