package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
)

// schemaDump lists every table and index with its SQL, which is what a
// migration changes.
func schemaDump(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`SELECT type, name, sql FROM sqlite_schema
		WHERE name NOT LIKE 'sqlite_%' ORDER BY type DESC, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name string
		var text sql.NullString
		if err := rows.Scan(&typ, &name, &text); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "-- %s %s\n%s;\n\n", typ, name, text.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func execFile(t *testing.T, db *sql.DB, name string) {
	t.Helper()
	text, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(text)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestSchemaGolden keeps the newest schema in testdata/schema.golden, so a
// review sees every schema change as a diff.
func TestSchemaGolden(t *testing.T) {
	s := openTest(t, Options{})
	golden(t, "schema.golden", []byte(schemaDump(t, s.w)))
}

// TestFrozenV1 checks that migration 0001 still creates the schema version 1
// was released with: released migrations must never change.
func TestFrozenV1(t *testing.T) {
	dir := t.TempDir()
	frozen := rawDB(t, filepath.Join(dir, "frozen.db"))
	execFile(t, frozen, "testdata/schema_v1.sql")
	fresh := rawDB(t, filepath.Join(dir, "fresh.db"))
	execFile(t, fresh, "migrations/0001_init.sql")
	if diff := cmp.Diff(schemaDump(t, frozen), schemaDump(t, fresh)); diff != "" {
		t.Errorf("migrations/0001_init.sql no longer creates the frozen version 1 (-frozen +now):\n%s", diff)
	}
}

// TestUpgradeFromV1 opens a database left by version 1, with rows in it, and
// checks that it reaches the newest schema with its rows intact.
func TestUpgradeFromV1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v1.db")
	old := rawDB(t, path)
	execFile(t, old, "testdata/schema_v1.sql")
	old.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := pragma(t, s.w, "user_version"); v != fmt.Sprint(SchemaVersion()) {
		t.Errorf("user_version after upgrade = %s, want %d", v, SchemaVersion())
	}
	fresh := openTest(t, Options{})
	if diff := cmp.Diff(schemaDump(t, fresh.w), schemaDump(t, s.w)); diff != "" {
		t.Errorf("upgraded schema differs from a new file's (-new +upgraded):\n%s", diff)
	}

	ctx := context.Background()
	evs, err := s.Events(ctx, event.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Time.Format("2006-01-02T15:04:05.999999999Z07:00") != "2025-06-01T09:30:00.123456789+02:00" {
		t.Errorf("events after upgrade: %+v", evs)
	}
	msgs, err := s.OpenMessages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].State) != "{}" {
		t.Errorf("open messages after upgrade: %+v", msgs)
	}
	c, ok, err := s.Cursor(ctx, "file:/var/log/mail.log")
	if err != nil || !ok || c.Offset != 8192 || c.Inode != 131 {
		t.Errorf("cursor after upgrade: %+v %v %v", c, ok, err)
	}
	// The upgraded file takes new batches.
	if err := s.Commit(ctx, event.Batch{Events: genEvents(0, 10)}); err != nil {
		t.Fatal(err)
	}
	var fkProblems int
	if err := s.w.QueryRow("SELECT count(*) FROM pragma_foreign_key_check").Scan(&fkProblems); err != nil {
		t.Fatal(err)
	}
	if fkProblems != 0 {
		t.Errorf("%d foreign key violations after upgrade", fkProblems)
	}
}

// TestMigrationsStepByStep applies the embedded migrations one at a time, as
// a file that skipped releases would get them, and checks the versions.
func TestMigrationsStepByStep(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	s := openTest(t, Options{})
	// A fresh store is already at the newest version; applying again is a
	// no-op that must not fail.
	for target := 1; target <= len(ms); target++ {
		if err := s.migrateTo(context.Background(), ms, target); err != nil {
			t.Fatalf("migrate to %d: %v", target, err)
		}
	}
	if v := pragma(t, s.w, "user_version"); v != fmt.Sprint(len(ms)) {
		t.Errorf("user_version = %s, want %d", v, len(ms))
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	fsys := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER);")},
		"migrations/0002_b.sql": {Data: []byte("CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);")},
	}
	ms, err := loadMigrations(fsys)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.db")
	// A store whose own schema is in place; the test migrations then run
	// on top of version 0 by resetting user_version.
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.w.Exec("PRAGMA user_version = 0"); err != nil {
		t.Fatal(err)
	}
	err = s.migrateTo(context.Background(), ms, len(ms))
	if err == nil || !strings.Contains(err.Error(), "migrate schema to version 2 (0002_b.sql)") {
		t.Fatalf("migrate: %v, want a failure naming 0002_b.sql", err)
	}
	if v := pragma(t, s.w, "user_version"); v != "1" {
		t.Errorf("user_version after the failed step = %s, want 1", v)
	}
	var n int
	if err := s.w.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("table b of the failed migration exists")
	}
}

func TestLoadMigrations(t *testing.T) {
	script := &fstest.MapFile{Data: []byte("SELECT 1;")}
	cases := []struct {
		name  string
		files []string
		want  string // error, "" for none
		n     int
	}{
		{"in order", []string{"0001_init.sql", "0002_more.sql", "README"}, "", 2},
		{"gap", []string{"0001_init.sql", "0003_more.sql"}, "0003_more.sql: expected version 2", 0},
		{"repeat", []string{"0001_init.sql", "0001_again.sql"}, "expected version 2", 0},
		{"not numbered", []string{"init.sql"}, "init.sql: name is not NNNN_name.sql", 0},
		{"zero", []string{"0000_init.sql"}, "0000_init.sql: name is not NNNN_name.sql", 0},
		{"none", nil, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsys := fstest.MapFS{"migrations": &fstest.MapFile{Mode: os.ModeDir}}
			for _, f := range c.files {
				fsys["migrations/"+f] = script
			}
			ms, err := loadMigrations(fsys)
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want %q", err, c.want)
			case c.want == "" && len(ms) != c.n:
				t.Errorf("%d migrations, want %d", len(ms), c.n)
			}
		})
	}
}
