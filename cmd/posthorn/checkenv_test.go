package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
)

// newDB creates a Posthorn database at path, migrated and closed (no WAL).
func newDB(t *testing.T, path string) {
	t.Helper()
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(context.Background(), "admin", "hash"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// rawExec runs statements on the file as the sqlite3 shell would.
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// damageTables overwrites the root page of every table and index with
// 0xff, which is no valid page type. Page 1, the header and the start of
// the schema, stays intact, so the file opens and the damage shows only
// when a statement reads a table.
func damageTables(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	var pageSize int
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT rootpage FROM sqlite_master WHERE rootpage > 1")
	if err != nil {
		t.Fatal(err)
	}
	var pages []int64
	for rows.Next() {
		var p int64
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	rows.Close()
	db.Close() // the last connection checkpoints and removes the WAL
	if len(pages) == 0 {
		t.Fatal("no tables")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range pages {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xff}, pageSize), (p-1)*int64(pageSize)); err != nil {
			t.Fatal(err)
		}
	}
}

// badDatabases prepare the store files an administrator may meet.
var badDatabases = []struct {
	name  string
	setup func(t *testing.T, path string)
	want  string
}{
	{"random bytes", func(t *testing.T, path string) {
		b := make([]byte, 64<<10)
		for i := range b {
			b[i] = byte(i*7 + i/251)
		}
		writeAt(t, path, b)
	}, "not a SQLite database (move it aside or restore a backup)"},
	{"text", func(t *testing.T, path string) {
		writeAt(t, path, bytes.Repeat([]byte("Jun  1 09:30:00 mx1 postfix/qmgr[42]: 4bX: removed\n"), 200))
	}, "not a SQLite database (move it aside or restore a backup)"},
	{"truncated", func(t *testing.T, path string) {
		newDB(t, path)
		rawExec(t, path, "CREATE TABLE filler (x)", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) INSERT INTO filler SELECT randomblob(500) FROM n")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
	}, "database is damaged (move it aside or restore a backup)"},
	{"damaged page", func(t *testing.T, path string) {
		newDB(t, path)
		damageTables(t, path)
	}, "database is damaged (move it aside or restore a backup)"},
	{"schema 999", func(t *testing.T, path string) {
		newDB(t, path)
		rawExec(t, path, "PRAGMA user_version = 999")
	}, "schema version 999 is newer"},
}

func writeAt(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// storeConfig writes a config whose store is dir/posthorn.db and whose
// maillog is maillog (journald when empty); extra is appended.
func storeConfig(t *testing.T, dir, maillog string) (cfg, db string) {
	t.Helper()
	db = filepath.Join(dir, "posthorn.db")
	text := fmt.Sprintf("hostname = \"mx1\"\n[store]\npath = %q\n[maillog]\n", db)
	if maillog == "" {
		text += "journald = true\n"
	} else {
		text += fmt.Sprintf("path = %q\n", maillog)
	}
	cfg = filepath.Join(t.TempDir(), "posthorn.toml")
	writeAt(t, cfg, []byte(text))
	return cfg, db
}

// fakeJournalctl puts a journalctl that runs script first in PATH.
func fakeJournalctl(t *testing.T, script string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "journalctl"), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// check-config catches what makes serve fail outside the file: each
// problem one line naming the key and the file, exit status 2; a mail log
// not written yet is a warning only.
func TestCheckConfigEnvironment(t *testing.T) {
	logDir := t.TempDir()
	goodLog := filepath.Join(logDir, "mail.log")
	writeAt(t, goodLog, []byte("Nov  7 10:00:01 mx postfix/qmgr[2]: 4A1B2C3D4E: removed\n"))
	fifo := filepath.Join(logDir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		code   int
		stderr []string
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) (cfg string, want result)
	}{
		{"all good, no database yet", func(t *testing.T) (string, result) {
			cfg, _ := storeConfig(t, t.TempDir(), goodLog)
			return cfg, result{exitOK, nil}
		}},
		{"all good, existing database", func(t *testing.T) (string, result) {
			cfg, db := storeConfig(t, t.TempDir(), goodLog)
			newDB(t, db)
			return cfg, result{exitOK, nil}
		}},
		{"missing store directory", func(t *testing.T) (string, result) {
			dir := filepath.Join(t.TempDir(), "no-such-dir")
			cfg, _ := storeConfig(t, dir, goodLog)
			return cfg, result{exitConfig, []string{"store.path: check database " + dir, "does not exist: create it"}}
		}},
		{"maillog is a directory", func(t *testing.T) (string, result) {
			cfg, _ := storeConfig(t, t.TempDir(), "/etc")
			return cfg, result{exitConfig, []string{"maillog.path: /etc is a directory"}}
		}},
		{"maillog is a FIFO", func(t *testing.T) (string, result) {
			cfg, _ := storeConfig(t, t.TempDir(), fifo)
			return cfg, result{exitConfig, []string{"maillog.path: " + fifo + " is not a regular file"}}
		}},
		{"maillog below a file", func(t *testing.T) (string, result) {
			cfg, _ := storeConfig(t, t.TempDir(), goodLog+"/x")
			return cfg, result{exitConfig, []string{"maillog.path: stat " + goodLog + "/x: not a directory"}}
		}},
		{"maillog missing: a warning", func(t *testing.T) (string, result) {
			cfg, _ := storeConfig(t, t.TempDir(), filepath.Join(logDir, "not-yet.log"))
			return cfg, result{exitOK, []string{"warning: maillog.path: " + filepath.Join(logDir, "not-yet.log") + " does not exist yet"}}
		}},
		{"journald works", func(t *testing.T) (string, result) {
			fakeJournalctl(t, "exit 0\n")
			cfg, _ := storeConfig(t, t.TempDir(), "")
			return cfg, result{exitOK, nil}
		}},
		{"journald refuses", func(t *testing.T) (string, result) {
			fakeJournalctl(t, "echo 'Failed to open journal: Permission denied' >&2; exit 1\n")
			cfg, _ := storeConfig(t, t.TempDir(), "")
			return cfg, result{exitConfig, []string{"maillog.journald:", "Permission denied", "group adm"}}
		}},
		{"journalctl missing", func(t *testing.T) (string, result) {
			t.Setenv("PATH", t.TempDir())
			cfg, _ := storeConfig(t, t.TempDir(), "")
			return cfg, result{exitConfig, []string{"maillog.journald:", "install journalctl"}}
		}},
		{"two problems, two lines", func(t *testing.T) (string, result) {
			dir := filepath.Join(t.TempDir(), "no-such-dir")
			cfg, _ := storeConfig(t, dir, "/etc")
			return cfg, result{exitConfig, []string{"store.path:", "\nmaillog.path:", "(2 problem(s) above)"}}
		}},
	}
	for _, b := range badDatabases {
		cases = append(cases, struct {
			name  string
			setup func(t *testing.T) (string, result)
		}{"database: " + b.name, func(t *testing.T) (string, result) {
			cfg, db := storeConfig(t, t.TempDir(), goodLog)
			b.setup(t, db)
			return cfg, result{exitConfig, []string{"store.path: check database " + db + ": " + b.want}}
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, want := c.setup(t)
			code, out, errs := runCmd(t, "check-config", "--config", cfg)
			if code != want.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, want.code, out, errs)
			}
			if (code == exitOK) != strings.HasSuffix(out, ": ok\n") {
				t.Errorf("stdout %q with exit %d", out, code)
			}
			for _, s := range want.stderr {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errs)
				}
			}
			if want.stderr == nil && errs != "" {
				t.Errorf("unexpected stderr:\n%s", errs)
			}
			// --config-only looks at the file alone.
			if code, out, errs := runCmd(t, "check-config", "--config-only", "--config", cfg); code != exitOK || errs != "" {
				t.Errorf("--config-only: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
			}
		})
	}
}

// The check reads the database as it is: it creates no file, so that run
// as root by the package scripts it leaves nothing the service user could
// not open.
func TestCheckConfigCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "mail.log")
	cfg, db := storeConfig(t, dir, logPath)
	for i := range 2 {
		if code, _, errs := runCmd(t, "check-config", "--config", cfg); code != exitOK {
			t.Fatalf("exit %d: %s", code, errs)
		}
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		if got, want := strings.Join(names, " "), map[bool]string{false: "", true: "posthorn.db"}[len(names) > 0]; got != want {
			t.Errorf("directory after check-config: %q, want %q", got, want)
		}
		if i == 0 {
			newDB(t, db) // the second round checks an existing file
		}
	}
}

// Every command that opens the store exits with status 2 on a database it
// cannot use, naming the file and what to do.
func TestExitStatusCorruptDatabase(t *testing.T) {
	for _, b := range badDatabases {
		t.Run(b.name, func(t *testing.T) {
			cfg, db := storeConfig(t, t.TempDir(), filepath.Join(t.TempDir(), "mail.log"))
			b.setup(t, db)
			for _, args := range [][]string{
				{"user", "list"},
				{"log", "events"},
				{"blocks", "list"},
				{"settings", "export", "-"},
				{"replay", "--since", "2026-01-01"},
				{"token", "list"},
				{"serve"},
			} {
				args = append(args, "--config", cfg)
				code, _, errs := runCmd(t, args...)
				if code != exitConfig {
					t.Errorf("%s: exit %d, want %d\n%s", strings.Join(args, " "), code, exitConfig, errs)
				}
				if !strings.Contains(errs, db) || !strings.Contains(errs, b.want) {
					t.Errorf("%s: stderr lacks %s or %q:\n%s", strings.Join(args, " "), db, b.want, errs)
				}
			}
		})
	}
}

// While one serve holds the store, a second exits with status 1 naming the
// lock file and the holder, and the other commands keep working.
func TestSecondServeRefused(t *testing.T) {
	cfg, db := storeConfig(t, t.TempDir(), filepath.Join(t.TempDir(), "mail.log"))
	first, err := sqlite.Open(db, sqlite.Options{Exclusive: true}) // what serve opens
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	code, _, errs := runCmd(t, "serve", "--config", cfg)
	if code != exitFail {
		t.Errorf("second serve: exit %d, want %d", code, exitFail)
	}
	for _, want := range []string{db + ".lock", fmt.Sprintf("pid %d", os.Getpid()), "is posthorn serve running already"} {
		if !strings.Contains(errs, want) {
			t.Errorf("second serve: stderr lacks %q:\n%s", want, errs)
		}
	}
	for _, args := range [][]string{{"user", "list"}, {"log", "events"}, {"blocks", "list"}, {"check-config"}} {
		if code, _, errs := runCmd(t, append(args, "--config", cfg)...); code != exitOK {
			t.Errorf("%s beside serve: exit %d\n%s", strings.Join(args, " "), code, errs)
		}
	}
}

// With journald, the first start stores the journal's end at once, as it
// does a file's, and follows from it: a crash before the first mail line
// then resumes there instead of at a later end.
func TestJournaldFirstStartStoresPosition(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args")
	fakeJournalctl(t, fmt.Sprintf(`echo "$*" >> %q
case "$*" in
*--lines=1*) echo '{"__CURSOR":"s=abc;i=42","MESSAGE":"boot"}'; exit 0 ;;
esac
exec sleep 600
`, argsFile))
	cfgPath, _ := storeConfig(t, t.TempDir(), "")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(cfg.Store.Path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	tailer, err := newTailer(ctx, cfg, store, log)
	if err != nil {
		t.Fatal(err)
	}
	// Stored before a single line was read.
	cur, ok, err := store.Cursor(ctx, "journald")
	if err != nil || !ok || cur.Journal != "s=abc;i=42" {
		t.Errorf("stored cursor = %+v, %v, %v; want the journal's end", cur, ok, err)
	}
	tailer.Source.Close()

	// The next start resumes from the stored cursor and asks no end.
	tailer, err = newTailer(ctx, cfg, store, log)
	if err != nil {
		t.Fatal(err)
	}
	tailer.Source.Close()
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	runs := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(runs) == 0 || !strings.Contains(runs[0], "--lines=1") {
		t.Fatalf("journalctl runs: %q", runs)
	}
	for _, r := range runs[1:] {
		if strings.Contains(r, "--lines=1") {
			t.Errorf("the end was asked for again: %q", runs)
		}
	}
}
