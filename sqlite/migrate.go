package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the schema as numbered scripts: migrations/NNNN_name.sql
// takes the schema from version NNNN-1 to NNNN. PRAGMA user_version records
// the version a file is at.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded scripts and checks that they are
// numbered 1, 2, 3 ... without a gap or a repeat.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("read migrations: %s: name is not NNNN_name.sql", name)
		}
		body, err := fs.ReadFile(fsys, path.Join("migrations", name))
		if err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("read migrations: %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the newest schema version this binary knows, or 0 when
// its embedded migrations are malformed (Open then reports why).
func SchemaVersion() int {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return 0
	}
	return len(ms)
}

func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	return s.migrateTo(ctx, ms, len(ms))
}

// migrateTo applies ms[v:target] to a database at version v, each in its own
// transaction together with the new user_version, so that a crash leaves the
// file at one version or the next, never between.
func (s *Store) migrateTo(ctx context.Context, ms []migration, target int) error {
	v, err := userVersion(ctx, s.w)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if err := checkVersion(v, len(ms)); err != nil {
		return err
	}
	if v >= target {
		return nil
	}
	for _, m := range ms[v:target] {
		err := s.write(ctx, false, func(tx *sql.Tx) error {
			// Read again under the write lock: another process may
			// have migrated since the read above.
			cur, err := userVersion(ctx, tx)
			if err != nil {
				return err
			}
			if cur >= m.version {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			// PRAGMA takes no bound parameters; m.version is an int.
			_, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkVersion refuses a schema version v that a binary whose newest
// version is newest cannot use.
func checkVersion(v, newest int) error {
	if v > newest {
		return unusable(fmt.Errorf("schema version %d is newer than version %d, the newest this binary knows: run a newer posthorn or restore a backup", v, newest))
	}
	if v < 0 {
		return unusable(fmt.Errorf("schema version %d is not a Posthorn schema version", v))
	}
	return nil
}

func userVersion(ctx context.Context, q rowQueryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}
