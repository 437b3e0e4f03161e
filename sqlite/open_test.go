package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; got:\n%s\nrun go test -update if the change is intended", path, got)
	}
}

// rawDB opens a file with the driver directly, as the sqlite3 shell would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func pragma(t *testing.T, db interface {
	QueryRow(string, ...any) *sql.Row
}, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenNewFile(t *testing.T) {
	s := openTest(t, Options{})
	for name, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
		"user_version": fmt.Sprint(SchemaVersion()),
	} {
		if got := pragma(t, s.w, name); got != want {
			t.Errorf("writer PRAGMA %s = %s, want %s", name, got, want)
		}
	}
	if got := pragma(t, s.r, "query_only"); got != "1" {
		t.Errorf("reader PRAGMA query_only = %s, want 1", got)
	}
	if SchemaVersion() < 1 {
		t.Fatalf("SchemaVersion() = %d", SchemaVersion())
	}
}

func TestOpenFullSync(t *testing.T) {
	s := openTest(t, Options{FullSync: true})
	if got := pragma(t, s.w, "synchronous"); got != "2" {
		t.Errorf("PRAGMA synchronous = %s, want 2 (FULL)", got)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	ctx := context.Background()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, event.Batch{Events: genEvents(0, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the last connection checkpoints the WAL away.
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Errorf("WAL file still there after Close: %v", err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Events(ctx, event.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Errorf("after reopening: %d events, want 10", len(got))
	}
}

func TestOpenPathWithURIBytes(t *testing.T) {
	// The path goes to SQLite as a file: URI; these bytes must survive it.
	dir := filepath.Join(t.TempDir(), "a dir?#%20x")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p?x#y.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not created at the path given: %v", err)
	}
}

// badFile is a database file that Open refuses: setup prepares it at
// path (in a directory of its own, named no-such-dir/posthorn.db for the
// case "missing directory").
type badFile struct {
	name  string
	opts  Options
	setup func(t *testing.T, path string)
}

// badFiles are the files an administrator may meet: random bytes, text, a
// cut-off copy, damaged pages, a newer schema.
func badFiles() []badFile {
	validDB := func(t *testing.T, path string) {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for i := 0; i < 20; i++ {
			if err := s.Commit(ctx, event.Batch{Events: genEvents(i*500, 500)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	return []badFile{
		{"missing directory", Options{}, func(t *testing.T, path string) {}},
		{"path is a directory", Options{}, func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"random bytes", Options{}, func(t *testing.T, path string) {
			write(t, path, randomBytes(64<<10))
		}},
		{"short garbage", Options{}, func(t *testing.T, path string) {
			write(t, path, []byte("not a db!\n"))
		}},
		{"text file", Options{}, func(t *testing.T, path string) {
			write(t, path, bytes.Repeat([]byte("Jun  1 09:30:00 mx1 postfix/qmgr[42]: 4bX: removed\n"), 200))
		}},
		{"newer schema", Options{}, func(t *testing.T, path string) {
			validDB(t, path)
			db := rawDB(t, path)
			if _, err := db.Exec("PRAGMA user_version = 999"); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}},
		{"negative schema version", Options{}, func(t *testing.T, path string) {
			validDB(t, path)
			db := rawDB(t, path)
			if _, err := db.Exec("PRAGMA user_version = -3"); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}},
		{"truncated", Options{}, func(t *testing.T, path string) {
			validDB(t, path)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated, quick check", Options{QuickCheck: true}, func(t *testing.T, path string) {
			validDB(t, path)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"pages overwritten, quick check", Options{QuickCheck: true}, func(t *testing.T, path string) {
			validDB(t, path)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// Leave page 1 (header and schema) alone, scramble pages 3-6.
			if _, err := f.WriteAt(randomBytes(4*4096), 2*4096); err != nil {
				t.Fatal(err)
			}
		}},
	}
}

// TestOpenErrors checks that every way a file can be unusable gives an error
// that names the file, and that the messages read well (golden file).
func TestOpenErrors(t *testing.T) {
	cases := badFiles()
	var out bytes.Buffer
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "posthorn.db")
			if c.name == "missing directory" {
				path = filepath.Join(dir, "no-such-dir", "posthorn.db")
			}
			c.setup(t, path)
			s, err := Open(path, c.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !Unusable(err) {
				t.Errorf("error is not marked unusable: %v", err)
			}
			if !strings.Contains(msg, path) {
				t.Errorf("error does not name the file %s: %v", path, err)
			}
			fmt.Fprintf(&out, "%s:\n\t%s\n", c.name, strings.ReplaceAll(msg, dir, "DIR"))
		})
	}
	golden(t, "open_errors.golden", out.Bytes())
}

func TestRefuseNewerSchemaNamesVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	if _, err := db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, Options{})
	if err == nil {
		t.Fatal("Open accepted a database of schema version 999")
	}
	for _, want := range []string{path, "999", fmt.Sprintf("version %d,", SchemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// The refused file is left as it was.
	if v := pragma(t, rawDB(t, path), "user_version"); v != "999" {
		t.Errorf("user_version after the refusal = %s, want 999", v)
	}
}

func TestQuickCheckAcceptsHealthyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background(), event.Batch{Events: genEvents(0, 2000)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{QuickCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestReadPoolCannotWrite(t *testing.T) {
	s := openTest(t, Options{})
	_, err := s.r.Exec(`INSERT INTO cursors (source, updated_at) VALUES ('x', 0)`)
	if err == nil {
		t.Fatal("a write through the read pool succeeded")
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
