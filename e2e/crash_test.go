package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/e2e/loggen"
	"github.com/posthorn/posthorn/event"
)

// parseOracle runs `posthorn parse` over the whole log in one pass: the
// events an uninterrupted reader derives. Arguments are flags and files.
func parseOracle(t *testing.T, args ...string) []event.Event {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(posthorn, append([]string{"parse"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("posthorn parse: %v\n%s", err, errb.String())
	}
	var evs []event.Event
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("parse output: %v: %s", err, sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

func byID(evs []event.Event) map[string]event.Event {
	m := make(map[string]event.Event, len(evs))
	for _, e := range evs {
		m[e.ID] = e
	}
	return m
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func appendFile(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// shiftRotated renames mail.log.N to mail.log.N+1, oldest first, as
// logrotate does before it rotates the live file.
func shiftRotated(t *testing.T, maillog string) {
	t.Helper()
	for n := 8; n >= 1; n-- {
		from := fmt.Sprintf("%s.%d", maillog, n)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, fmt.Sprintf("%s.%d", maillog, n+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// copyTruncate rotates the way logrotate's copytruncate does.
func copyTruncate(t *testing.T, maillog string) {
	t.Helper()
	shiftRotated(t, maillog)
	src, err := os.Open(maillog)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Create(maillog + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	src.Close()
	dst.Close()
	if err := os.Truncate(maillog, 0); err != nil {
		t.Fatal(err)
	}
}

// TestServeCrashAndRotation follows a growing maillog, SIGKILLs serve
// mid-stream again and again, and rotates the log by rename (while serve
// is down and while it runs) and by copytruncate in between. The stored
// events must equal one clean pass over the same lines: nothing lost,
// nothing duplicated, same ids.
func TestServeCrashAndRotation(t *testing.T) {
	sample, err := os.ReadFile("../cmd/posthorn/sample.log")
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := loggen.New(string(sample))
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	if err := tpl.Write(&all, 30000); err != nil {
		t.Fatal(err)
	}
	dir := testDir(t)
	whole := filepath.Join(dir, "whole.log")
	if err := os.WriteFile(whole, all.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := parseOracle(t, "--year", "2026", "--tz", "UTC", whole)
	if len(want) < 1000 {
		t.Fatalf("oracle has only %d events; the template is too small", len(want))
	}

	maillog := filepath.Join(dir, "mail.log")
	cfg := writeConfig(t, dir, maillog, "year = 2026\ntimezone = \"UTC\"\nbatch_lines = 500")
	db := filepath.Join(dir, "posthorn.db")
	source := "file:" + maillog

	// The log grows in chunks of whole lines; after each chunk serve is
	// killed at a random point of its progress, and the log is rotated in
	// one of three ways before the next chunk.
	lines := strings.SplitAfter(all.String(), "\n")
	const chunks = 12
	rng := rand.New(rand.NewPCG(1, 2))
	var d *daemon
	truncated := false
	// at reports whether the committed cursor is in the live file, at an
	// offset within [lo, hi].
	at := func(lo, hi int64) bool {
		c, ok := storeCursor(t, db, source)
		return ok && c.Inode == inode(t, maillog) && c.Offset >= lo && c.Offset <= hi
	}
	for i := range chunks {
		chunk := lines[i*len(lines)/chunks : (i+1)*len(lines)/chunks]
		part := strings.Join(chunk, "")
		if d == nil {
			d = startServe(t, cfg)
		}
		if truncated {
			// After copytruncate the follower can only tell that the file was
			// truncated while it is shorter than what was read (the race is
			// inherent to copytruncate; README "Log rotation"). A writer
			// that appends one line and then more, as Postfix does, gives it
			// that moment.
			appendFile(t, maillog, []byte(chunk[0]))
			first := int64(len(chunk[0]))
			waitFor(t, d, 60*time.Second, "the truncation noticed", func() bool { return at(first, first) })
			part = strings.Join(chunk[1:], "")
			truncated = false
		}
		appendFile(t, maillog, []byte(part))
		size := fileSize(t, maillog)
		// Kill somewhere in the second half of this chunk's progress.
		target := size - int64(len(part))/2 + rng.Int64N(int64(len(part))/2)
		waitFor(t, d, 60*time.Second, fmt.Sprintf("cursor past %d", target), func() bool { return at(target, size) })
		d.kill(t)
		d = nil
		if i == chunks-1 {
			break
		}
		switch i % 3 {
		case 1: // rename rotation while serve is down
			shiftRotated(t, maillog)
			if err := os.Rename(maillog, maillog+".1"); err != nil {
				t.Fatal(err)
			}
		case 2: // copytruncate while serve runs and has read everything
			d = startServe(t, cfg)
			waitFor(t, d, 60*time.Second, "the whole file consumed", func() bool { return at(size, size) })
			copyTruncate(t, maillog)
			truncated = true
		}
	}
	if d == nil {
		d = startServe(t, cfg)
	}
	final := fileSize(t, maillog)
	waitFor(t, d, 60*time.Second, "the whole log consumed", func() bool { return at(final, final) })
	took, err := d.stop(t)
	if err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	if took > 5*time.Second {
		t.Errorf("serve took %v to stop after SIGTERM; the limit is 5 s", took)
	}

	got := storedEvents(t, db)
	if len(got) != len(want) {
		t.Errorf("stored %d events, a clean pass gives %d", len(got), len(want))
	}
	gm, wm := byID(got), byID(want)
	missing, extra := 0, 0
	for id, w := range wm {
		g, ok := gm[id]
		if !ok {
			if missing++; missing <= 5 {
				t.Errorf("lost event %s %s %s %s", id, w.Type, w.QueueID, w.To)
			}
			continue
		}
		if diff := cmp.Diff(w, g, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
			t.Errorf("event %s differs (-clean +stored):\n%s", id, diff)
		}
	}
	for id, g := range gm {
		if _, ok := wm[id]; !ok {
			if extra++; extra <= 5 {
				t.Errorf("extra event %s %s %s %s", id, g.Type, g.QueueID, g.To)
			}
		}
	}
	if missing+extra > 0 {
		t.Fatalf("%d events lost, %d extra", missing, extra)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
