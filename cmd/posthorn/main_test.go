package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Bad input gets a clear message and never a panic; the exit code is
// non-zero only when nothing could be read.
func TestParseBadInput(t *testing.T) {
	good := "Nov  7 10:00:01 mx postfix/smtpd[1]: 4A1B2C3D4E: client=a.example[192.0.2.1]\n" +
		"Nov  7 10:00:01 mx postfix/qmgr[2]: 4A1B2C3D4E: from=<a@a.example>, size=1, nrcpt=1 (queue active)\n" +
		"Nov  7 10:00:02 mx postfix/smtp[3]: 4A1B2C3D4E: to=<b@b.example>, relay=b.example[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 ok)\n"
	binary := make([]byte, 64<<10)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	huge := append(bytes.Repeat([]byte("x"), 10<<20), '\n')
	missing := filepath.Join(t.TempDir(), "missing.log")
	for _, c := range []struct {
		name     string
		args     []string
		code     int
		stderr   []string // substrings
		events   int
		notFound bool
	}{
		{"directory", []string{"parse", t.TempDir()}, exitFail, []string{"is a directory"}, 0, false},
		{"missing", []string{"parse", missing}, exitFail, []string{"missing.log", "no such file"}, 0, false},
		{"binary", []string{"parse", writeFile(t, "bin.log", binary)}, exitOK, []string{"Postfix lines recognised: 0", "not a Postfix log"}, 0, false},
		{"10 MB line then a good log", []string{"parse", writeFile(t, "huge.log", append(huge, good...))}, exitOK, []string{"Postfix lines recognised: 3"}, 2, false},
		{"invalid UTF-8", []string{"parse", writeFile(t, "utf8.log", []byte(strings.Replace(good, "250 ok", "250 \xff\xfe ok", 1)))}, exitOK, nil, 2, false},
		{"not a maillog", []string{"parse", writeFile(t, "poem.txt", []byte("roses are red\nviolets are blue\n"))}, exitOK, []string{"non-Postfix lines skipped: 2", "not a Postfix log"}, 0, false},
		{"one readable of two", []string{"parse", missing, writeFile(t, "good.log", []byte(good))}, exitOK, []string{"missing.log"}, 2, false},
		{"bad format flag", []string{"parse", "--format", "xml"}, exitConfig, []string{"--format"}, 0, false},
		{"bad zone", []string{"parse", "--tz", "Mars/Olympus"}, exitConfig, []string{"--tz"}, 0, false},
		{"bad year", []string{"parse", "--year", "12"}, exitConfig, []string{"--year"}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runCmd(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, c.code, errs)
			}
			for _, s := range c.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			if n := strings.Count(out, "\n"); n != c.events {
				t.Errorf("%d events printed, want %d:\n%s", n, c.events, out)
			}
		})
	}
}

func TestParseSampleCSV(t *testing.T) {
	code, out, errs := runCmd(t, "parse", "--sample", "--format", "csv")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != strings.Join(csvHeader, ",") || len(lines) < 50 || strings.Contains(out, "\r") {
		t.Errorf("unexpected CSV (%d lines):\n%.500s", len(lines), out)
	}
}

func TestServeRefusesACorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	db := writeFile(t, "posthorn.db", bytes.Repeat([]byte("not a database "), 1000))
	cfg := writeFile(t, "posthorn.toml", []byte("[store]\npath = \""+db+"\"\n[maillog]\npath = \""+filepath.Join(dir, "mail.log")+"\"\n"))
	code, _, errs := runCmd(t, "serve", "--config", cfg)
	if code != exitConfig || !strings.Contains(errs, db) || !strings.Contains(errs, "not a SQLite database") {
		t.Errorf("exit %d, stderr:\n%s", code, errs)
	}
}

func TestCheckConfig(t *testing.T) {
	good := writeFile(t, "good.toml", []byte("[maillog]\npath = \"/var/log/mail.log\"\n"))
	bad := writeFile(t, "bad.toml", []byte("[maillog]\npath = \"/var/log/mail.log\"\nstart = \"middle\"\n"))
	// The file alone: its store directory need not exist here.
	if code, out, errs := runCmd(t, "check-config", "--config-only", "--config", good); code != exitOK || !strings.Contains(out, "ok") {
		t.Errorf("good config: exit %d %s %s", code, out, errs)
	}
	code, _, errs := runCmd(t, "check-config", "--config", bad)
	if code != exitConfig || !strings.Contains(errs, "bad.toml:3") || !strings.Contains(errs, "maillog.start") {
		t.Errorf("bad config: exit %d, stderr %s", code, errs)
	}
	if code, _, _ := runCmd(t, "no-such-command"); code != exitConfig {
		t.Errorf("unknown command: exit %d", code)
	}
}
