package logtail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// fileLab is a log directory that a test writes to the way Postfix and
// logrotate do, with a follower driven by explicit wake-ups.
type fileLab struct {
	t      *testing.T
	dir    string
	path   string
	wake   chan struct{}
	log    *syncBuffer
	logger *slog.Logger
	labels map[uint64]string // inode → "name#k", to show which file a line came from
	count  map[string]int
}

func newFileLab(t *testing.T) *fileLab {
	dir := t.TempDir()
	logger, buf := testLogger()
	return &fileLab{
		t: t, dir: dir, path: filepath.Join(dir, "mail.log"),
		wake: make(chan struct{}, 1), log: buf, logger: logger,
		labels: map[uint64]string{}, count: map[string]int{},
	}
}

func (l *fileLab) file(name string) string { return filepath.Join(l.dir, name) }

// append writes s at the end of name, creating it, as an O_APPEND writer.
func (l *fileLab) append(name, s string) {
	l.t.Helper()
	f, err := os.OpenFile(l.file(name), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		l.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		l.t.Fatal(err)
	}
	l.label(name)
}

func (l *fileLab) label(name string) {
	l.t.Helper()
	fi, err := os.Stat(l.file(name))
	if err != nil {
		l.t.Fatal(err)
	}
	ino := identity(fi).ino
	if _, ok := l.labels[ino]; !ok {
		l.count[name]++
		l.labels[ino] = fmt.Sprintf("%s#%d", name, l.count[name])
	}
}

func (l *fileLab) rename(from, to string) {
	l.t.Helper()
	if err := os.Rename(l.file(from), l.file(to)); err != nil {
		l.t.Fatal(err)
	}
}

// remove deletes name; its inode may be reused by the next file.
func (l *fileLab) remove(name string) {
	l.t.Helper()
	fi, err := os.Stat(l.file(name))
	if err != nil {
		l.t.Fatal(err)
	}
	delete(l.labels, identity(fi).ino)
	if err := os.Remove(l.file(name)); err != nil {
		l.t.Fatal(err)
	}
}

func (l *fileLab) truncate(name string) {
	l.t.Helper()
	if err := os.Truncate(l.file(name), 0); err != nil {
		l.t.Fatal(err)
	}
}

// open starts a follower with no timer: only l.wake drives it.
func (l *fileLab) open(c event.Cursor, o FileOptions) *FileSource {
	l.t.Helper()
	o.Poll = -1
	o.Wake = l.wake
	o.Logger = l.logger
	src, err := NewFileSource(l.path, c, o)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { src.Close() })
	return src
}

// show renders lines as "text @file#k:offset".
func (l *fileLab) show(lines []Line) []string {
	out := make([]string, len(lines))
	for i, ln := range lines {
		c := ln.Cursor
		label, ok := l.labels[c.Inode]
		if !ok {
			label = fmt.Sprintf("inode%d", c.Inode)
		}
		if c.Source != "file:"+l.path {
			label += "(source " + c.Source + ")"
		}
		out[i] = fmt.Sprintf("%s @%s:%d", ln.Text, label, c.Offset)
	}
	return out
}

func (l *fileLab) expect(src *FileSource, max int, want ...string) []Line {
	l.t.Helper()
	got := drain(l.t, src, max)
	sameStrings(l.t, "lines", l.show(got), want)
	return got
}

func (l *fileLab) notLogged(substr string) {
	l.t.Helper()
	if strings.Contains(l.log.String(), substr) {
		l.t.Errorf("log has %q:\n%s", substr, l.log.String())
	}
}

func (l *fileLab) logged(substr string) {
	l.t.Helper()
	if !strings.Contains(l.log.String(), substr) {
		l.t.Errorf("log lacks %q:\n%s", substr, l.log.String())
	}
}

var batchSizes = []int{1, 3, 100}

func TestFileSourceAppend(t *testing.T) {
	for _, max := range batchSizes {
		t.Run(fmt.Sprint("max", max), func(t *testing.T) {
			l := newFileLab(t)
			l.append("mail.log", "a\nbb\n")
			src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
			l.expect(src, max, "a @mail.log#1:2", "bb @mail.log#1:5")
			l.expect(src, max)
			l.append("mail.log", "c\r\n\nd\n")
			l.expect(src, max, "c @mail.log#1:8", " @mail.log#1:9", "d @mail.log#1:11")
		})
	}
}

func TestFileSourcePartialLine(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\npar")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	l.expect(src, 10, "a @mail.log#1:2")
	l.append("mail.log", "ti")
	l.expect(src, 10)
	l.append("mail.log", "al\nb")
	l.expect(src, 10, "partial @mail.log#1:10")
}

func TestFileSourceStart(t *testing.T) {
	tests := []struct {
		name    string
		content string // before the source starts; "-" for no file
		start   Start
		want    []string // after "f\nnew\n" is appended
	}{
		{"begin", "old\nhal", StartBegin, []string{"old @mail.log#1:4", "half @mail.log#1:9", "new @mail.log#1:13"}},
		{"end at a line end", "old\n", StartEnd, []string{"f @mail.log#1:6", "new @mail.log#1:10"}},
		// The writer is in mid-line: that line is completed from now on.
		{"end in mid-line", "old\nhal", StartEnd, []string{"half @mail.log#1:9", "new @mail.log#1:13"}},
		{"end in the first line", "hal", StartEnd, []string{"half @mail.log#1:5", "new @mail.log#1:9"}},
		{"default is end", "old\n", "", []string{"f @mail.log#1:6", "new @mail.log#1:10"}},
		{"end of an empty file", "", StartEnd, []string{"f @mail.log#1:2", "new @mail.log#1:6"}},
		// A file that appears after the start is new: all of it is read.
		{"end of a missing file", "-", StartEnd, []string{"f @mail.log#1:2", "new @mail.log#1:6"}},
		{"begin of a missing file", "-", StartBegin, []string{"f @mail.log#1:2", "new @mail.log#1:6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newFileLab(t)
			if tt.content != "-" {
				l.append("mail.log", tt.content)
			}
			src := l.open(event.Cursor{}, FileOptions{Start: tt.start})
			if tt.start == StartEnd || tt.start == "" {
				l.expect(src, 10)
			}
			l.append("mail.log", "f\nnew\n")
			l.expect(src, 10, tt.want...)
		})
	}
}

// The writer appends, then the log is renamed, before the follower has
// read the new lines: they must all come, in order, before the new file's.
// This is where a reopen-on-rename tailer loses the end of the log
// (nxadm/tail#28).
func TestFileSourceRenameRotation(t *testing.T) {
	for _, max := range batchSizes {
		t.Run(fmt.Sprint("max", max), func(t *testing.T) {
			l := newFileLab(t)
			l.append("mail.log", "a\nb\n")
			src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
			l.expect(src, max, "a @mail.log#1:2", "b @mail.log#1:4")

			// postfix logrotate: mv, then postlogd creates the new file at
			// its next write.
			l.append("mail.log", "c\nd\n")
			l.rename("mail.log", "mail.log.20261127-000000")
			l.append("mail.log", "e\n")
			l.expect(src, max, "c @mail.log#1:6", "d @mail.log#1:8", "e @mail.log#2:2")
			l.append("mail.log", "f\n")
			l.expect(src, max, "f @mail.log#2:4")
		})
	}
}

// logrotate's create mode: mv, an empty new file, and the writer keeps
// appending to the old inode until it is told to reopen.
func TestFileSourceRotationCreateMode(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	l.expect(src, 10, "a @mail.log#1:2")

	l.append("mail.log", "b\n")
	l.rename("mail.log", "mail.log.1")
	l.append("mail.log", "") // create 0640 syslog adm
	l.append("mail.log.1", "c\n")
	l.expect(src, 10, "b @mail.log#1:4", "c @mail.log#1:6")
	l.append("mail.log.1", "d\n") // the last line before the HUP
	l.append("mail.log", "e\n")
	l.expect(src, 10, "d @mail.log#1:8", "e @mail.log#2:2")
	l.logged("log file rotated")
}

func TestFileSourceRotationNewFileLate(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	l.expect(src, 10, "a @mail.log#1:2")
	l.append("mail.log", "b\n")
	l.rename("mail.log", "mail.log.1")
	l.expect(src, 10, "b @mail.log#1:4")
	l.expect(src, 10) // no file at the path yet
	l.append("mail.log.1", "c\n")
	l.expect(src, 10, "c @mail.log#1:6")
	l.append("mail.log", "d\n")
	l.expect(src, 10, "d @mail.log#2:2")
}

// A rotated file that ends without a newline will never be completed:
// its last bytes come out as a line of their own, then the new file.
func TestFileSourceRotationPartialLast(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\nunfinish")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	l.expect(src, 10, "a @mail.log#1:2")
	l.append("mail.log", "ed")
	l.rename("mail.log", "mail.log.1")
	l.append("mail.log", "n\n")
	got := l.expect(src, 1, "unfinished @mail.log#1:12", "n @mail.log#2:2")

	// A restart at the cursor of that cut line repeats nothing.
	src.Close()
	src2 := l.open(got[0].Cursor, FileOptions{})
	l.expect(src2, 10, "n @mail.log#2:2")
	l.notLogged("not found")
}

// The cursor of a cut line is its end, so a restart there goes on with the
// next line. A cursor inside a line (stored by a version that handed out
// long lines in pieces) goes on from there, and is not taken for a reused
// inode.
func TestFileSourceRestartInCutLine(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "first\n0123456789abcdefghijKLMNO\nlast\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin, MaxLine: 10})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lines, err := src.Read(ctx, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	sameStrings(t, "first read", l.show(lines), []string{"first @mail.log#1:6", "0123456789 @mail.log#1:32"})
	src.Close()
	src2 := l.open(lines[1].Cursor, FileOptions{MaxLine: 10})
	l.expect(src2, 10, "last @mail.log#1:37")
	src2.Close()
	mid := lines[1].Cursor
	mid.Offset = 16
	src3 := l.open(mid, FileOptions{MaxLine: 10})
	l.expect(src3, 10, "abcdefghij @mail.log#1:32", "last @mail.log#1:37")
	l.notLogged("reused")
}

// Posthorn was stopped; the log was rotated meanwhile. The rest of the old
// file (found by its inode, under any rotated name) comes first, then the
// new file from its start.
func TestFileSourceRotatedWhileStopped(t *testing.T) {
	for _, rotated := range []string{"mail.log.1", "mail.log-20261127", "mail.log.20261127-010000"} {
		t.Run(rotated, func(t *testing.T) {
			l := newFileLab(t)
			l.append("mail.log", "a\nb\n")
			src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
			got := l.expect(src, 10, "a @mail.log#1:2", "b @mail.log#1:4")
			src.Close()

			l.append("mail.log", "c\nd\n") // after the last commit
			l.rename("mail.log", rotated)
			l.append("mail.log.2.gz", "never read\n") // compressed siblings are skipped
			l.append("maillog.1", "other log\n")      // not a sibling of mail.log
			l.append("mail.log", "e\n")

			src2 := l.open(got[1].Cursor, FileOptions{})
			l.expect(src2, 1, "c @mail.log#1:6", "d @mail.log#1:8", "e @mail.log#2:2")
			l.logged("finishing the rotated file first")
		})
	}
}

func TestFileSourceRotatedWhileStoppedNoNewFile(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	got := l.expect(src, 10, "a @mail.log#1:2")
	src.Close()
	l.append("mail.log", "b\n")
	l.rename("mail.log", "mail.log.1")

	src2 := l.open(got[0].Cursor, FileOptions{})
	l.expect(src2, 10, "b @mail.log#1:4")
	l.append("mail.log", "c\n")
	l.expect(src2, 10, "c @mail.log#2:2")
}

// The rotated file was compressed and removed while stopped: what it held
// after the cursor cannot be had; say so, and read the new file whole.
func TestFileSourceRotatedFileGone(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	got := l.expect(src, 10, "a @mail.log#1:2")
	src.Close()
	l.append("mail.log", "lost\n")
	l.rename("mail.log", "mail.log.1")
	l.append("mail.log.1.gz", "compressed\n")
	l.remove("mail.log.1")
	// The new file may well get the freed inode number back.
	l.append("mail.log", "bb\n")

	src2 := l.open(got[0].Cursor, FileOptions{Start: StartEnd})
	l.expect(src2, 10, "bb @mail.log#2:3")
	l.logged("rotated file was not found")
}

// A cursor whose (dev, inode) now names a new file: the offset is not at
// a line end there, so the file is read from its start.
func TestFileSourceReusedInode(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a new file\n")
	fi, err := os.Stat(l.path)
	if err != nil {
		t.Fatal(err)
	}
	id := identity(fi)
	c := event.Cursor{Source: "file:" + l.path, Dev: id.dev, Inode: id.ino, Offset: 4}
	src := l.open(c, FileOptions{})
	l.expect(src, 10, "a new file @mail.log#1:11")
	l.logged("the inode was reused")
}

func TestFileSourceCopyTruncate(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\nb\npart")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	l.expect(src, 10, "a @mail.log#1:2", "b @mail.log#1:4")
	l.truncate("mail.log")
	l.append("mail.log", "c\n")
	l.expect(src, 10, "c @mail.log#1:2")
	l.logged("log file truncated")
	l.logged("partial_bytes_dropped=4")
	l.append("mail.log", "d\n")
	l.expect(src, 10, "d @mail.log#1:4")
}

func TestFileSourceTruncatedWhileStopped(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\nb\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	got := l.expect(src, 10, "a @mail.log#1:2", "b @mail.log#1:4")
	src.Close()
	l.truncate("mail.log")
	l.append("mail.log", "c\n")

	src2 := l.open(got[1].Cursor, FileOptions{})
	l.expect(src2, 10, "c @mail.log#1:2")
	l.logged("truncated while stopped")
}

// Stop after every Read and start again from the last line's cursor while
// the writer goes on, cutting lines anywhere, and the log is rotated
// halfway while stopped: every line comes exactly once, in order.
func TestFileSourceRestartAtCursor(t *testing.T) {
	l := newFileLab(t)
	var (
		full strings.Builder
		want []string
	)
	for i := range 60 {
		s := fmt.Sprintf("line %02d %s", i, strings.Repeat("x", i%13))
		want = append(want, s)
		full.WriteString(s + "\n")
	}
	content := full.String()
	l.append("mail.log", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Read returns what is there and never waits

	var (
		got     []string
		cursor  event.Cursor
		written int
		rotated bool
	)
	for round := 0; ; round++ {
		if round > 1000 {
			t.Fatalf("no progress; got %q", got)
		}
		if written < len(content) {
			n := min(len(content)-written, 5+(round*7)%23)
			if !rotated && written+n > len(content)/2 {
				// The writer finishes its line, then the log is rotated.
				n = strings.IndexByte(content[written:], '\n') + 1
				l.append("mail.log", content[written:written+n])
				l.rename("mail.log", "mail.log.1")
				rotated = true
			} else {
				l.append("mail.log", content[written:written+n])
			}
			written += n
		}
		src := l.open(cursor, FileOptions{Start: StartBegin})
		lines, err := src.Read(ctx, nil, round%4+1)
		src.Close()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		for _, ln := range lines {
			got = append(got, ln.Text)
		}
		if len(lines) > 0 {
			cursor = lines[len(lines)-1].Cursor
		}
		if written == len(content) && len(lines) == 0 {
			break
		}
	}
	sameStrings(t, "lines across restarts", got, want)
}

func TestFileSourceLongLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string // after the last write
	}{
		{"exactly max", []string{"0123456789\n"}, []string{"0123456789 @mail.log#1:11"}},
		{"max plus one", []string{"0123456789A\n"}, []string{"0123456789 @mail.log#1:12"}},
		{"two max", []string{"0123456789abcdefghij\n"}, []string{"0123456789 @mail.log#1:21"}},
		{"cut while incomplete", []string{"0123456789abcdefghijKLMNO", "P\nq\n"}, []string{"0123456789 @mail.log#1:27", "q @mail.log#1:29"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newFileLab(t)
			l.append("mail.log", "")
			src := l.open(event.Cursor{}, FileOptions{Start: StartBegin, MaxLine: 10})
			var got []Line
			for _, w := range tt.writes {
				l.append("mail.log", w)
				got = append(got, drain(t, src, 100)...)
			}
			sameStrings(t, "lines", l.show(got), tt.want)
		})
	}
}

// A line far longer than the limit comes as its head, marked cut, at the
// line's end; the rest is skipped, and the follower's buffer stays bounded
// by the limit, not by the line.
func TestFileSourceHugeLine(t *testing.T) {
	l := newFileLab(t)
	const max = 64 << 10
	huge := strings.Repeat("0123456789abcdef", (5*max)/16) + "tail"
	l.append("mail.log", huge+"\nafter\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin, MaxLine: max})
	got := drain(t, src, 3)
	if len(got) != 2 {
		t.Fatalf("got %d lines, want the head of the long one and \"after\"", len(got))
	}
	if got[0].Text != huge[:max] || !got[0].Cut || got[0].Cursor.Offset != int64(len(huge)+1) {
		t.Errorf("long line: %d bytes, cut %v, ends at %d; want %d bytes, cut, at %d", len(got[0].Text), got[0].Cut, got[0].Cursor.Offset, max, len(huge)+1)
	}
	if got[1].Text != "after" || got[1].Cut {
		t.Errorf("next line %q cut %v", got[1].Text, got[1].Cut)
	}
	if c := cap(src.sp.buf); c > max+readChunk {
		t.Errorf("buffer grew to %d bytes for a %d-byte limit", c, max)
	}
}

// A long line written in parts is cut at its end however it arrives, and
// a line of exactly the limit is whole.
func TestFileSourceHugeLineInParts(t *testing.T) {
	l := newFileLab(t)
	const max = 64 << 10
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin, MaxLine: max})
	l.append("mail.log", strings.Repeat("a", max+10))
	if got := drain(t, src, 3); len(got) != 0 {
		t.Fatalf("a line without its end came out: %d lines", len(got))
	}
	l.append("mail.log", strings.Repeat("b", 3*max))
	if got := drain(t, src, 3); len(got) != 0 {
		t.Fatalf("a line without its end came out: %d lines", len(got))
	}
	l.append("mail.log", "c\n"+strings.Repeat("d", max)+"\n")
	got := drain(t, src, 3)
	if len(got) != 2 || got[0].Text != strings.Repeat("a", max) || !got[0].Cut || got[1].Cut || len(got[1].Text) != max {
		t.Fatalf("got %d lines", len(got))
	}
}

func TestFileSourceDefaultMaxLine(t *testing.T) {
	l := newFileLab(t)
	huge := strings.Repeat("y", 3*DefaultMaxLine+5)
	l.append("mail.log", huge+"\nnext\n")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})
	got := drain(t, src, 10)
	var sizes []string
	for _, ln := range got {
		sizes = append(sizes, fmt.Sprint(len(ln.Text), ln.Cut))
	}
	sameStrings(t, "line sizes", sizes, []string{fmt.Sprint(DefaultMaxLine, true), fmt.Sprint(4, false)})
}

// A blocked Read wakes on a wake-up and returns on cancel and on Close.
func TestFileSourceBlockingRead(t *testing.T) {
	type result struct {
		lines []Line
		err   error
	}
	start := func(src *FileSource, ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() {
			lines, err := src.Read(ctx, nil, 10)
			ch <- result{lines, err}
		}()
		return ch
	}

	l := newFileLab(t)
	l.append("mail.log", "")
	src := l.open(event.Cursor{}, FileOptions{Start: StartBegin})

	ch := start(src, context.Background())
	l.append("mail.log", "woken\n")
	l.wake <- struct{}{}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	sameStrings(t, "woken", texts(r.lines), []string{"woken"})

	ctx, cancel := context.WithCancel(context.Background())
	ch = start(src, ctx)
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) || len(r.lines) != 0 {
		t.Errorf("after cancel: %v %v", r.lines, r.err)
	}

	ch = start(src, context.Background())
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; !errors.Is(r.err, ErrClosed) {
		t.Errorf("after Close: %v", r.err)
	}
	if _, err := src.Read(context.Background(), nil, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}

// The default wake-ups come from inotify through nxadm/tail's watch
// package: with the poll timer off, appends and a rename rotation still
// reach a blocked Read.
func TestFileSourceNotify(t *testing.T) {
	if err := inotifyAvailable(); err != nil {
		t.Skipf("no inotify here (%v): the source would poll, which this test turns off", err)
	}
	l := newFileLab(t)
	l.append("mail.log", "")
	src, err := NewFileSource(l.path, event.Cursor{}, FileOptions{Start: StartBegin, Poll: -1, Logger: l.logger})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// Bounds a hang if notifications were broken; not a synchronisation.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		lines []Line
		err   error
	}
	// The reader runs while this goroutine writes: whichever comes first,
	// the lines must arrive without a timer.
	read := func(n int) <-chan result {
		ch := make(chan result, 1)
		go func() {
			var got []Line
			for len(got) < n {
				lines, err := src.Read(ctx, nil, 10)
				got = append(got, lines...)
				if err != nil {
					ch <- result{got, err}
					return
				}
			}
			ch <- result{got, nil}
		}()
		return ch
	}
	check := func(r result, want ...string) {
		t.Helper()
		if r.err != nil {
			t.Fatalf("Read: %v (got %q)", r.err, l.show(r.lines))
		}
		sameStrings(t, "lines", l.show(r.lines), want)
	}

	ch := read(1)
	l.append("mail.log", "n1\n")
	check(<-ch, "n1 @mail.log#1:3")

	ch = read(2)
	l.append("mail.log", "n2\n")
	l.rename("mail.log", "mail.log.1")
	l.append("mail.log", "n3\n")
	check(<-ch, "n2 @mail.log#1:6", "n3 @mail.log#2:3")
}

func TestFileSourceErrors(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		opts       FileOptions
		want       string
	}{
		{"directory", dir, FileOptions{}, "open log " + dir + ": is a directory"},
		{"fifo", fifo, FileOptions{}, "open log " + fifo + ": not a regular file"},
		{"no path", "", FileOptions{}, "follow log: no path"},
		{"bad start", filepath.Join(dir, "x"), FileOptions{Start: "middle"}, `check start: "middle" is neither "begin" nor "end"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Poll = -1
			tt.opts.Wake = make(chan struct{})
			src, err := NewFileSource(tt.path, event.Cursor{}, tt.opts)
			if err == nil {
				src.Close()
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestFileSourceUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode; TestReaderSourceErrors covers read failures")
	}
	l := newFileLab(t)
	l.append("mail.log", "a\n")
	if err := os.Chmod(l.path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := NewFileSource(l.path, event.Cursor{}, FileOptions{Wake: l.wake})
	if err == nil || !strings.Contains(err.Error(), l.path) {
		t.Errorf("error %v does not name %s", err, l.path)
	}
}

// A cursor written by another source (the config now names another file)
// is not applied to this one.
func TestFileSourceForeignCursor(t *testing.T) {
	l := newFileLab(t)
	l.append("mail.log", "a\nb\n")
	c := event.Cursor{Source: "file:/var/log/other.log", Dev: 1, Inode: 2, Offset: 2}
	src := l.open(c, FileOptions{Start: StartBegin})
	got := l.expect(src, 10, "a @mail.log#1:2", "b @mail.log#1:4")
	l.logged("ignoring a cursor of another source")

	src.Close()

	// The same path written differently is the same source.
	c = got[0].Cursor
	c.Source = "file:" + l.dir + "//./mail.log"
	src2 := l.open(c, FileOptions{Start: StartEnd})
	l.expect(src2, 10, "b @mail.log#1:4")
}

func TestFileSourceCursorMethod(t *testing.T) {
	l := newFileLab(t)
	src := l.open(event.Cursor{}, FileOptions{Start: StartEnd})
	if c := src.Cursor(); c != (event.Cursor{}) {
		t.Errorf("cursor of a missing file: %+v", c)
	}
	l.append("mail.log", "a\n")
	l.expect(src, 10, "a @mail.log#1:2")
	src.Close()

	// Committed before the first line, the start position makes a restart
	// read what was written while stopped, the unfinished line included.
	l2 := newFileLab(t)
	l2.append("mail.log", "old\nhal")
	src2 := l2.open(event.Cursor{}, FileOptions{Start: StartEnd})
	c := src2.Cursor()
	src2.Close()
	l2.append("mail.log", "f\nwritten while stopped\n")
	src3 := l2.open(c, FileOptions{Start: StartEnd})
	l2.expect(src3, 10, "half @mail.log#1:9", "written while stopped @mail.log#1:31")
	l2.notLogged("reused")
}

// BenchmarkFileSource reads a Postfix log of realistic lines in batches as
// the tailer does.
func BenchmarkFileSource(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "mail.log")
	line := "Nov 27 10:00:03 mx postfix/smtp[2107]: 4dLkQv1Xz5z9sWb: to=<bob@example.org>, relay=mx.example.org[198.51.100.7]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9F1E2)\n"
	const lines = 200000
	if err := os.WriteFile(path, []byte(strings.Repeat(line, lines)), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.SetBytes(int64(len(line) * lines))
	b.ReportAllocs()
	var buf []Line
	for b.Loop() {
		src, err := NewFileSource(path, event.Cursor{}, FileOptions{Start: StartBegin, Poll: -1, Wake: make(chan struct{})})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			var err error
			buf, err = src.Read(ctx, buf[:0], 5000)
			n += len(buf)
			if err != nil {
				break
			}
		}
		src.Close()
		if n != lines {
			b.Fatalf("read %d lines, want %d", n, lines)
		}
	}
}

// A missing file is reported once at the start, and again when it appears.
func TestFileSourceMissingFileLogged(t *testing.T) {
	l := newFileLab(t)
	src := l.open(event.Cursor{}, FileOptions{Start: StartEnd})
	l.logged("log file does not exist yet")
	if strings.Contains(l.log.String(), "log file appeared") {
		t.Errorf("appeared before it did:\n%s", l.log.String())
	}
	l.append("mail.log", "a\n")
	l.expect(src, 10, "a @mail.log#1:2")
	l.logged("log file appeared")
	if n := strings.Count(l.log.String(), "does not exist yet"); n != 1 {
		t.Errorf("missing file logged %d times, want once:\n%s", n, l.log.String())
	}
	src.Close()
}
