package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
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
	// A Postfix-looking line of 10 MB: its head is parsed (a bounce with
	// the reason capped), the rest is skipped, not read as more lines.
	huge := []byte("Nov  7 10:00:00 mx postfix/smtp[3]: 5B2C3D4E5F: to=<c@c.example>, relay=none, delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (" +
		strings.Repeat("x", 10<<20) + ")\n")
	missing := filepath.Join(t.TempDir(), "missing.log")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat(good, 200)))
	zw.Close()
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
		{"10 MB line then a good log", []string{"parse", writeFile(t, "huge.log", append(huge, good...))}, exitOK,
			[]string{"lines read: 4\n", "Postfix lines recognised: 4", "non-Postfix lines skipped: 0", "warning: over-long lines (only their first 1048576 bytes read; Postfix writes at most 2000): 1"}, 5, false},
		{"gzip failing at its header", []string{"parse", writeFile(t, "bad.gz", []byte("\x1f\x8bgarbage"))}, exitFail,
			[]string{"posthorn parse: read log ", "bad.gz: not a gzip file or truncated", "lines read: 0"}, 0, false},
		{"gzip with a bad header", []string{"parse", writeFile(t, "bad2.gz", []byte{0x1f, 0x8b, 99, 0, 0, 0, 0, 0, 0, 0, 0})}, exitFail,
			[]string{"not a gzip file or truncated"}, 0, false},
		{"truncated gzip: a partial read", []string{"parse", writeFile(t, "cut.gz", gz.Bytes()[:gz.Len()/2])}, exitOK,
			[]string{"gzip data truncated"}, -1, false},
		{"invalid UTF-8", []string{"parse", writeFile(t, "utf8.log", []byte(strings.Replace(good, "250 ok", "250 \xff\xfe ok", 1)))}, exitOK, nil, 2, false},
		{"not a maillog", []string{"parse", writeFile(t, "poem.txt", []byte("roses are red\nviolets are blue\n"))}, exitOK, []string{"non-Postfix lines skipped: 2", "not a Postfix log"}, 0, false},
		{"only Postfix lines not understood", []string{"parse", writeFile(t, "odd.log", []byte("Nov  7 10:00:02 mx postfix/smtp[3]: FGHIJ67890: to=<b@b.example>, relay=b.example[192.0.2.2]:25, dsn=2.0.0, status=sent (250 ok)\n"))}, exitOK,
			[]string{"Postfix lines not understood: 1", "FGHIJ67890", "no Postfix line was understood"}, 0, false},
		{"logger dropped messages", []string{"parse", writeFile(t, "loss.log", []byte(good+"Nov  7 10:00:03 mx rsyslogd: imjournal: 143847 messages lost due to rate-limit\n"))}, exitOK,
			[]string{"warning: the system logger reported dropping messages (1 reports)"}, 2, false},
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
			if c.name == "only Postfix lines not understood" && strings.Contains(errs, "not a Postfix log") {
				t.Errorf("a log of Postfix lines called not a Postfix log:\n%s", errs)
			}
			if strings.Count(errs, "bad.gz") > 1 {
				t.Errorf("the path is named more than once:\n%s", errs)
			}
			if n := strings.Count(out, "\n"); c.events >= 0 && n != c.events {
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

// An input that ends after a "sent" to a loopback relay (a tunnel, its
// queue ID never seen) and before the message's "removed" still gives the
// delivery.
func TestParseSettlesHeldAtEnd(t *testing.T) {
	log := writeFile(t, "cut.log", []byte(`Nov 20 09:00:00 mx postfix/smtpd[100]: 5A1B2C3D4E: client=app.example.net[198.51.100.7]
Nov 20 09:00:00 mx postfix/qmgr[102]: 5A1B2C3D4E: from=<app@example.net>, size=1500, nrcpt=1 (queue active)
Nov 20 09:00:02 mx postfix/smtp[103]: 5A1B2C3D4E: to=<a@remote.example>, relay=127.0.0.1[127.0.0.1]:10465, delay=2, delays=0/0/1/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F8E7D6C5B)
`))
	code, out, errs := runCmd(t, "parse", log)
	if code != exitOK || !strings.Contains(out, `"event":"succeeded"`) || !strings.Contains(errs, "succeeded 1") {
		t.Errorf("exit %d, output:\n%s\nstderr:\n%s", code, out, errs)
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

// The head of an over-long line is parsed, but its reason is capped and
// nothing of its tail becomes a line of its own.
func TestParseOverlongLine(t *testing.T) {
	huge := "Nov  7 10:00:00 mx postfix/smtp[3]: 5B2C3D4E5F: to=<c@c.example>, relay=none, delay=1, delays=0/0/0/1, dsn=5.0.0, status=bounced (" +
		strings.Repeat("é", 5<<20) + ")\n"
	code, out, errs := runCmd(t, "parse", writeFile(t, "huge.log", []byte(huge)))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var types []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var ev struct{ Event, Reason string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Event)
		if ev.Event != "queued" && (len(ev.Reason) != 2000 || !strings.HasPrefix(ev.Reason, "éé")) {
			t.Errorf("%s reason of %d bytes, want its first 2000", ev.Event, len(ev.Reason))
		}
	}
	if got := strings.Join(types, " "); got != "queued failed bounced" {
		t.Errorf("events %s", got)
	}
	if !strings.Contains(errs, "over-long lines") || !strings.Contains(errs, "lines read: 1\n") {
		t.Errorf("stderr:\n%s", errs)
	}
}

// Log lines are bytes from anywhere: the CSV is valid UTF-8 like the JSON,
// and a line not understood cannot send escape sequences to a terminal.
func TestParseOutputHygiene(t *testing.T) {
	log := "Nov  7 10:00:01 mx postfix/smtpd[1]: 4A1B2C3D4E: client=a.example[192.0.2.1]\n" +
		"Nov  7 10:00:01 mx postfix/qmgr[2]: 4A1B2C3D4E: from=<a@a.example>, size=1234, nrcpt=1 (queue active)\n" +
		"Nov  7 10:00:02 mx postfix/smtp[3]: 4A1B2C3D4E: to=<b@b.example>, relay=b.example[192.0.2.2]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 \xff\xfe ok)\n" +
		"Nov  7 10:00:03 mx postfix/smtp[3]: 4A1B2C3D4E: to=<c@b.example>\x1b]0;pwned\x07\x1b[31m, relay=b.example[192.0.2.2]:25\n"
	code, out, errs := runCmd(t, "parse", "--format", "csv", writeFile(t, "mixed.log", []byte(log)))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !utf8.ValidString(out) || !strings.Contains(out, "250 \uFFFD\uFFFD ok") {
		t.Errorf("CSV is not valid UTF-8 with U+FFFD:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if want := "4A1B2C3D4E,,a@a.example,b@b.example,,,,,,,1234,192.0.2.1"; !strings.HasSuffix(lines[1], want) {
		t.Errorf("queued row %q, want it to end in %q", lines[1], want)
	}
	if strings.ContainsAny(errs, "\x1b\x07") || !strings.Contains(errs, `\x1b]0;pwned\a\x1b[31m`) {
		t.Errorf("example not escaped:\n%q", errs)
	}
}
