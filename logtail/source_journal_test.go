package logtail

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// journalStub is a stand-in for journalctl: run N prints runN.json to
// stdout and runN.stderr (then "stderr") to stderr, records its arguments
// and pid, and then exits 1, or stays up like `journalctl --follow` when
// runN.stay exists, or exits 0 when runN.ok exists.
type journalStub struct {
	t   *testing.T
	dir string
	bin string
}

const journalStubScript = `#!/bin/sh
dir=%s
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
printf '%%s\n' "$*" >> "$dir/args"
echo $$ > "$dir/pid$n"
[ -f "$dir/run$n.json" ] && cat "$dir/run$n.json"
[ -f "$dir/run$n.stderr" ] && cat "$dir/run$n.stderr" >&2
[ -f "$dir/stderr" ] && cat "$dir/stderr" >&2
[ -f "$dir/run$n.stay" ] && exec sleep 600
[ -f "$dir/run$n.ok" ] && exit 0
exit 1
`

func newJournalStub(t *testing.T) *journalStub {
	dir := t.TempDir()
	bin := filepath.Join(dir, "journalctl")
	script := fmt.Sprintf(journalStubScript, shellQuote(dir))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &journalStub{t: t, dir: dir, bin: bin}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (s *journalStub) put(name, content string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *journalStub) copy(name, testdata string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "source", "journal", testdata))
	if err != nil {
		s.t.Fatal(err)
	}
	s.put(name, string(b))
	return string(b)
}

func (s *journalStub) args() string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "args"))
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

func (s *journalStub) open(c event.Cursor, o JournalOptions) (*JournalSource, *syncBuffer) {
	s.t.Helper()
	logger, buf := testLogger()
	o.Journalctl = s.bin
	o.Logger = logger
	if o.MinBackoff == 0 {
		o.MinBackoff = time.Millisecond // keeps the test fast; nothing waits on it
	}
	j, err := NewJournalSource(c, o)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { j.Close() })
	return j, buf
}

// readN reads until n lines or an error; the deadline only bounds a hang.
func readN(t *testing.T, src Source, n int) ([]Line, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []Line
	for len(out) < n {
		lines, err := src.Read(ctx, nil, n-len(out))
		out = append(out, lines...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// journalctl exits; it is restarted after the last record read, and the
// records pass through unchanged, each with its __CURSOR.
func TestJournalSourceRestart(t *testing.T) {
	stub := newJournalStub(t)
	run1 := stub.copy("run1.json", "run1.json")
	run2 := stub.copy("run2.json", "run2.json")
	stub.put("run1.stderr", "journalctl: stub run 1 ends\n")
	stub.put("run2.stay", "")

	src, log := stub.open(event.Cursor{Source: "journald", Journal: "s=start;i=1"}, JournalOptions{})
	lines, err := readN(t, src, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSpace(run1+run2), "\n")
	sameStrings(t, "records", texts(lines), want)
	for i, l := range lines {
		if l.Cursor.Source != "journald" || l.Cursor.Journal != journalCursor([]byte(want[i])) || l.Cursor.Journal == "" {
			t.Errorf("line %d cursor %+v", i, l.Cursor)
		}
	}
	if !strings.Contains(log.String(), "journalctl: stub run 1 ends") {
		t.Errorf("restart log lacks the child's stderr:\n%s", log)
	}

	pid := stub.pid(2)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("journalctl (pid %d) still there after Close: %v", pid, err)
	}
	if _, err := src.Read(context.Background(), nil, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	checkGolden(t, "journal/restart-args.golden", []byte(stub.args()))
}

func (s *journalStub) pid(n int) int {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, fmt.Sprintf("pid%d", n)))
	if err != nil {
		s.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		s.t.Fatal(err)
	}
	return pid
}

// journalctl that fails the same way every time (a bad match, no
// permission) ends the source with its stderr in the error.
func TestJournalSourceGivesUp(t *testing.T) {
	stub := newJournalStub(t)
	stub.put("stderr", "Failed to add match 'SYSLOG_FACILITY=x': Invalid argument\n")
	src, _ := stub.open(event.Cursor{}, JournalOptions{MaxFailures: 3})
	_, err := readN(t, src, 1)
	want := "follow journal: 3 runs in a row without a record, giving up: journalctl exited: exit status 1: Failed to add match 'SYSLOG_FACILITY=x': Invalid argument"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
	if n := strings.Count(stub.args(), "\n"); n != 3 {
		t.Errorf("journalctl ran %d times, want 3", n)
	}
}

func TestJournalSourceNoProgram(t *testing.T) {
	src, err := NewJournalSource(event.Cursor{}, JournalOptions{Journalctl: filepath.Join(t.TempDir(), "journalctl")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	_, err = readN(t, src, 1)
	if err == nil || !strings.HasPrefix(err.Error(), "start journalctl: ") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %v", err)
	}
}

// Records longer than MaxLine are skipped whole; records longer than the
// read buffer but within MaxLine come through intact.
func TestJournalSourceLongRecords(t *testing.T) {
	stub := newJournalStub(t)
	rec := func(i int, msg string) string {
		return fmt.Sprintf(`{"__CURSOR":"s=a;i=%d","MESSAGE":"%s"}`, i, msg)
	}
	big := rec(2, strings.Repeat("b", 200<<10))
	huge := rec(3, strings.Repeat("h", 600<<10))
	stub.put("run1.json", rec(1, "short")+"\n"+big+"\n"+huge+"\n"+rec(4, "after")+"\n")
	stub.put("run1.stay", "")
	src, log := stub.open(event.Cursor{}, JournalOptions{MaxLine: 512 << 10})
	lines, err := readN(t, src, 3)
	if err != nil {
		t.Fatal(err)
	}
	sameStrings(t, "records", texts(lines), []string{rec(1, "short"), big, rec(4, "after")})
	if lines[2].Cursor.Journal != "s=a;i=4" {
		t.Errorf("cursor %q", lines[2].Cursor.Journal)
	}
	if !strings.Contains(log.String(), "journal record too long; skipped") {
		t.Errorf("no warning:\n%s", log)
	}
}

func TestJournalSourceCancel(t *testing.T) {
	stub := newJournalStub(t)
	stub.put("run1.stay", "")
	src, _ := stub.open(event.Cursor{}, JournalOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := src.Read(ctx, nil, 10)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel: %v", err)
	}
}

func TestJournalArgs(t *testing.T) {
	since := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		opts   JournalOptions
		cursor string
	}{
		{"defaults", JournalOptions{Start: StartEnd}, ""},
		{"begin", JournalOptions{Start: StartBegin}, ""},
		{"since", JournalOptions{Start: StartEnd, Since: since}, ""},
		{"cursor wins", JournalOptions{Start: StartBegin, Since: since}, "s=abc;i=1"},
		{"unit", JournalOptions{Units: []string{"postfix@-.service"}}, ""},
		{"identifiers", JournalOptions{Identifiers: []string{"postfix/smtp", "postfix/qmgr"}}, "s=abc;i=2"},
		{"matches", JournalOptions{Matches: []string{"SYSLOG_FACILITY=2", "_HOSTNAME=mx"}}, ""},
	}
	var b strings.Builder
	for _, tt := range tests {
		fmt.Fprintf(&b, "%s: %s\n", tt.name, strings.Join(journalArgs(tt.opts, tt.cursor), " "))
	}
	checkGolden(t, "journal/args.golden", []byte(b.String()))
}

func TestJournalCursor(t *testing.T) {
	tests := []struct{ rec, want string }{
		{`{"__CURSOR":"s=1;i=2","MESSAGE":"x"}`, "s=1;i=2"},
		{`{"MESSAGE":"x","__CURSOR":"s=1;i=3"}`, "s=1;i=3"},
		{`{ "__CURSOR" : "s=1;i=4" }`, "s=1;i=4"},   // spaced: full decode
		{`{"__CURSOR":"s=1\u003bi=5"}`, "s=1;i=5"},  // escaped: full decode
		{`{"MESSAGE":"\"__CURSOR\":\"fake\""}`, ""}, // inside a value, and no real one
		{`{"__CURSOR":"s=1;i=6"`, "s=1;i=6"},        // cut record: the quick search still finds it
		{`not json`, ""},
	}
	for _, tt := range tests {
		if got := journalCursor([]byte(tt.rec)); got != tt.want {
			t.Errorf("journalCursor(%s) = %q, want %q", tt.rec, got, tt.want)
		}
	}
}

func TestJournalSourceBadStart(t *testing.T) {
	if _, err := NewJournalSource(event.Cursor{}, JournalOptions{Start: "now"}); err == nil {
		t.Error("no error for Start \"now\"")
	}
}

// BenchmarkJournalSource measures the pipe from journalctl's stdout to
// Read, with records the size of real Postfix entries.
func BenchmarkJournalSource(b *testing.B) {
	rec, err := os.ReadFile(filepath.Join("testdata", "source", "journal", "run2.json"))
	if err != nil {
		b.Fatal(err)
	}
	const records = 50000
	dir := b.TempDir()
	bin := filepath.Join(dir, "journalctl")
	script := fmt.Sprintf("#!/bin/sh\ncat %s\nexec sleep 600\n", shellQuote(filepath.Join(dir, "records.json")))
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "records.json"), []byte(strings.Repeat(string(rec), records)), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rec) * records))
	b.ReportAllocs()
	ctx := context.Background()
	var buf []Line
	for b.Loop() {
		src, err := NewJournalSource(event.Cursor{}, JournalOptions{Journalctl: bin})
		if err != nil {
			b.Fatal(err)
		}
		for n := 0; n < records; {
			buf, err = src.Read(ctx, buf[:0], 5000)
			if err != nil {
				b.Fatal(err)
			}
			n += len(buf)
		}
		src.Close()
	}
}

// JournalEnd takes the cursor of the newest entry from one
// `journalctl --lines=1` run; an empty journal has none; a failing
// journalctl is an error with its stderr.
func TestJournalEnd(t *testing.T) {
	stub := newJournalStub(t)
	run1 := stub.copy("run1.json", "run1.json")
	stub.put("run1.ok", "")
	stub.put("run2.ok", "") // no output: an empty journal
	stub.put("run3.stderr", "Failed to open journal: Permission denied\n")

	recs := strings.Split(strings.TrimSpace(run1), "\n")
	want := journalCursor([]byte(recs[len(recs)-1]))
	cur, ok, err := JournalEnd(context.Background(), stub.bin)
	if err != nil || !ok || cur != (event.Cursor{Source: "journald", Journal: want}) || want == "" {
		t.Errorf("JournalEnd = %+v, %v, %v; want the cursor %q", cur, ok, err, want)
	}
	if _, ok, err := JournalEnd(context.Background(), stub.bin); ok || err != nil {
		t.Errorf("empty journal: ok %v, err %v", ok, err)
	}
	_, _, err = JournalEnd(context.Background(), stub.bin)
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		t.Errorf("failing journalctl: err %v", err)
	}
	if got := stub.args(); got != strings.Repeat("--quiet --no-pager --lines=1 --output=json\n", 3) {
		t.Errorf("arguments:\n%s", got)
	}
}
