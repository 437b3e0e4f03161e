package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/event"
)

// TestCheck: Check refuses every file Open refuses, with or without
// Options.QuickCheck there, because it always runs the quick check.
func TestCheck(t *testing.T) {
	var out bytes.Buffer
	for _, c := range badFiles() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "posthorn.db")
			if c.name == "missing directory" {
				path = filepath.Join(dir, "no-such-dir", "posthorn.db")
			}
			c.setup(t, path)
			_, err := Check(context.Background(), path)
			if err == nil {
				t.Fatal("Check accepted the file")
			}
			if !Unusable(err) {
				t.Errorf("error is not marked unusable: %v", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file %s: %v", path, err)
			}
			fmt.Fprintf(&out, "%s:\n\t%s\n", c.name, strings.ReplaceAll(err.Error(), dir, "DIR"))
		})
	}
	golden(t, "check_errors.golden", out.Bytes())
}

// A database that is not there yet passes: serve creates it.
func TestCheckMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posthorn.db")
	exists, err := Check(context.Background(), path)
	if err != nil || exists {
		t.Fatalf("Check = %v, %v; want false, nil", exists, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Check created the file: %v", err)
	}
}

// A healthy file passes, whether closed (no WAL) or open in a running
// store (with a WAL), and the check leaves no file behind: run as root by
// the package scripts, it must not create -wal or -shm files the service
// user could not open.
func TestCheckHealthyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posthorn.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), event.Batch{Events: genEvents(0, 500)}); err != nil {
		t.Fatal(err)
	}
	if exists, err := Check(context.Background(), path); err != nil || !exists {
		t.Fatalf("Check beside an open store = %v, %v", exists, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := dirNames(t, dir)
	if exists, err := Check(context.Background(), path); err != nil || !exists {
		t.Fatalf("Check of a closed store = %v, %v", exists, err)
	}
	if after := dirNames(t, dir); after != before {
		t.Errorf("Check changed the directory: before %s, after %s", before, after)
	}
}

func dirNames(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

// A data page damaged after Open gives an SQLite error only when a
// statement reads it; Explain names the file and says what to do.
func TestExplainDamagedPage(t *testing.T) {
	var damaged badFile
	for _, c := range badFiles() {
		if c.name == "pages overwritten, quick check" {
			damaged = c
		}
	}
	path := filepath.Join(t.TempDir(), "posthorn.db")
	damaged.setup(t, path)
	s, err := Open(path, Options{}) // no quick check: page 1 is intact
	if err != nil {
		t.Fatalf("Open without the quick check: %v", err)
	}
	defer s.Close()
	_, err = s.Events(context.Background(), event.Query{})
	if err == nil {
		t.Fatal("reading the damaged events succeeded")
	}
	if !Unusable(err) {
		t.Fatalf("error is not recognised as damage: %v", err)
	}
	got := s.Explain(err).Error()
	for _, want := range []string{path, "move it aside or restore a backup", "malformed"} {
		if !strings.Contains(got, want) {
			t.Errorf("Explain(%v) = %q, want it to contain %q", err, got, want)
		}
	}
	if other := errors.New("endpoint unreachable"); s.Explain(other) != other {
		t.Errorf("Explain changed an unrelated error: %v", s.Explain(other))
	}
}
