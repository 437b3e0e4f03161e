package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// Check examines the database at path the way Open would find it, without
// changing it, for `posthorn check-config`: the directory exists and, for a
// new file, lets this process create it; an existing file may be read and
// written, is a SQLite database, passes PRAGMA quick_check and has no
// schema newer than this binary's. exists tells whether the file is there.
// It does not take the Exclusive lock: it may run beside posthorn serve.
// Every error names the file and says what to do; those that mean the
// database cannot be used as it is are ErrUnusable.
func Check(ctx context.Context, path string) (exists bool, err error) {
	if path == "" {
		return false, errors.New("check database: empty path")
	}
	if errNoCgo != nil {
		return false, unusable(fmt.Errorf("check database %s: %w", path, errNoCgo))
	}
	fail := func(err error) (bool, error) {
		return exists, fmt.Errorf("check database %s: %w", path, err)
	}
	if err := checkPath(path); err != nil {
		return fail(unusable(err))
	}
	dir := filepath.Dir(path)
	// SQLite creates the file, and the -wal and -shm files beside it, in
	// the directory.
	if err := access(dir, true); err != nil {
		return fail(unusable(fmt.Errorf("directory %s is not writable: %w", dir, err)))
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false, nil // serve creates it
	} else if err != nil {
		return fail(unusable(err))
	}
	exists = true
	if err := access(path, true); err != nil {
		return fail(unusable(fmt.Errorf("the file must be readable and writable: %w", err)))
	}
	if err := checkLockFile(path); err != nil {
		return fail(unusable(err))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fail(err)
	}
	params := url.Values{"mode": {"ro"}, "_query_only": {"1"}}
	if _, err := os.Stat(abs + "-wal"); errors.Is(err, fs.ErrNotExist) {
		// No WAL: no process has the file open (the last to close it
		// removes the WAL), and the file holds every commit. A read-only
		// connection would still create -wal and -shm files, owned by
		// whoever runs the check; immutable reads the file as it is and
		// creates nothing (https://www.sqlite.org/uri.html#uriimmutable).
		params.Set("immutable", "1")
	}
	db, err := sql.Open("sqlite3", dsn(abs, params))
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// The first read of the header is where a file that is no database
	// fails.
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fail(explain(err))
	}
	if err := checkVersion(v, SchemaVersion()); err != nil {
		return fail(err)
	}
	if err := quickCheck(ctx, db); err != nil {
		return fail(explain(err))
	}
	return true, nil
}

// checkLockFile reports a lock file serve could not open at all (Open's
// acquireLock): it opens the file for reading, as serve's fallback does,
// and creates nothing. One that is not there is serve's to create.
func checkLockFile(path string) error {
	lp := lockPath(path)
	f, err := openLockFile(lp, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		err = fmt.Errorf("lock file: %w", err)
		if errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w; %s", err, lockFileHint(lp))
		}
		return err
	}
	return f.Close()
}
