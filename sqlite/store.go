// Package sqlite is Posthorn's store: one SQLite file in WAL mode that holds
// the delivery events, the log reader's position and open messages, and the
// outbox the dispatcher drains (ARCHITECTURE.md, "Storage principles").
//
// Connections. All writes go through one connection (MaxOpenConns 1) whose
// transactions start with BEGIN IMMEDIATE, so a transaction takes the write
// lock before it reads and can never fail half-way with SQLITE_BUSY on an
// upgrade from reader to writer; Go's pool queues the writers of this process.
// Reads go through a separate pool of read-only connections (mode=ro and
// query_only), which WAL lets run beside the writer on their own snapshot.
//
// Durability. SQLite documents that in WAL mode a commit with
// synchronous=NORMAL survives a crash of the application but may roll back
// after a power loss or an OS crash, while FULL also fsyncs the WAL at every
// commit (https://www.sqlite.org/pragma.html#pragma_synchronous). Delivery
// events can be read again from the maillog because the log position commits
// with them, so they use NORMAL. Mail accepted from Postfix cannot be read
// again, so the writer can make a single transaction FULL: write(ctx, true,
// ...) switches the writer connection to FULL before BEGIN, and the next
// write that needs no fsync switches it back. Options.FullSync makes every
// transaction FULL.
//
// Time. Instants are stored as Unix nanoseconds (UTC) plus, where the zone
// matters, its offset in seconds east of UTC, so an event read back has the
// instant and the offset it was written with (a named location such as
// Europe/Berlin comes back as a fixed zone of the same offset).
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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	// The driver registers itself as "sqlite3".
	_ "github.com/mattn/go-sqlite3"
)

// Options tunes a Store. The zero value is the production default.
type Options struct {
	// FullSync commits every write transaction with synchronous=FULL. By
	// default writes use NORMAL and only those that ask for it are FULL.
	FullSync bool
	// Readers is the number of read-only connections (default 4).
	Readers int
	// BusyTimeout is how long a statement waits for a lock held by another
	// process, such as the sqlite3 shell or a backup (default 5s). Within
	// this process the pools already serialise writers.
	BusyTimeout time.Duration
	// QuickCheck runs PRAGMA quick_check when the store opens and refuses a
	// database that fails it. It reads every page: about a second for a
	// 470 MB file (a million events) on the development machine, more from
	// a cold disk. Without it Open still refuses a file that is not a
	// database or whose schema pages are damaged or cut off.
	QuickCheck bool
	// Exclusive holds a lock on the file PATH.lock for as long as the store
	// is open, and refuses to open (ErrLocked) while another process holds
	// it: posthorn serve sets it, so that two daemons never follow the same
	// log into one database. Stores opened without it (the commands that
	// list, export or change something) do not take or heed the lock; SQLite's
	// own locking keeps their transactions apart from serve's.
	Exclusive bool
	// Now is the clock for the created_at and updated_at columns (default
	// time.Now).
	Now func() time.Time
	// BounceRules counts bounces and registers addresses automatically
	// (bounces.go); nil counts nothing. SetBounceRules sets it later.
	BounceRules BounceRules
}

// Store is the SQLite store. Its methods are safe for concurrent use.
type Store struct {
	path string
	w    *sql.DB // the one writer connection
	r    *sql.DB // read-only pool
	now  func() time.Time
	full bool

	stmts writeStmts
	// fullConn is the writer connection while it is at synchronous=FULL
	// (setSync).
	fullConn atomic.Pointer[rawConn]

	bounceRules atomic.Pointer[rulesBox]

	lock *fileLock // Options.Exclusive

	// afterStage, when set by a test, runs inside Commit after each stage of
	// the transaction so the test can fail the transaction there.
	afterStage func(stage string)
}

const defaultReaders = 4

// Open opens the database at path, creating the file when it does not exist
// (its directory must exist), and migrates its schema to the newest version
// this binary knows. It refuses a database written by a newer binary and a
// file that is not a SQLite database.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if errNoCgo != nil {
		return nil, unusable(fmt.Errorf("open database %s: %w", path, errNoCgo))
	}
	if err := checkPath(path); err != nil {
		return nil, unusable(fmt.Errorf("open database %s: %w", path, err))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = defaultReaders
	}
	sync := "NORMAL"
	if opts.FullSync {
		sync = "FULL"
	}
	s := &Store{path: path, now: opts.Now, full: opts.FullSync}
	if opts.Exclusive {
		// Before the first connection: a second serve must not even
		// migrate the schema under the first.
		if s.lock, err = acquireLock(abs); err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
	}
	ok := false
	defer func() {
		if !ok {
			s.lock.release()
		}
	}()
	if s.now == nil {
		s.now = time.Now
	}
	s.SetBounceRules(opts.BounceRules)

	busyMS := strconv.FormatInt(busy.Milliseconds(), 10)
	// Each connection keeps the statements it ran most recently prepared
	// (the driver's cache), so the queries the dispatchers and the log
	// reader repeat are not parsed again each time.
	const stmtCache = "32"
	s.w, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"_txlock":          {"immediate"},
		"_journal_mode":    {"WAL"},
		"_synchronous":     {sync},
		"_foreign_keys":    {"1"},
		"_busy_timeout":    {busyMS},
		"_stmt_cache_size": {stmtCache},
	}))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := s.initWriter(ctx, opts.QuickCheck); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, explain(err))
	}

	// The readers open after the writer has switched the file to WAL and
	// created its -shm file: a read-only connection cannot do either.
	s.r, err = sql.Open("sqlite3", dsn(abs, url.Values{
		"mode":             {"ro"},
		"_query_only":      {"1"},
		"_busy_timeout":    {busyMS},
		"_stmt_cache_size": {stmtCache},
	}))
	if err == nil {
		s.r.SetMaxOpenConns(readers)
		s.r.SetMaxIdleConns(readers)
		err = s.r.PingContext(ctx)
	}
	if err != nil {
		s.stmts.close()
		s.w.Close()
		if s.r != nil {
			s.r.Close()
		}
		return nil, fmt.Errorf("open database %s: read pool: %w", path, explain(err))
	}
	ok = true
	return s, nil
}

// checkPath gives a clear error for the mistakes SQLite reports only as
// "unable to open database file".
func checkPath(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: create it, owned by the user posthorn runs as", dir)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

// dsn builds a file: URI so that any byte of the path (?, #, %) reaches
// SQLite intact; the go-sqlite3 driver cuts a plain file name at its first
// '?'. SQLite ignores the driver's _-prefixed parameters, and the driver
// reads them from the same URI.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}
	return u.String()
}

// SQLite result codes (https://www.sqlite.org/rescode.html).
const (
	codeCorrupt              = 11   // SQLITE_CORRUPT
	codeCantOpen             = 14   // SQLITE_CANTOPEN
	codeNotADB               = 26   // SQLITE_NOTADB
	codeConstraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
)

// ErrUnusable marks an error that means the database cannot be used as it
// is (damaged, not a database, a newer schema, a missing directory, a
// binary without SQLite): trying again will not help, an administrator
// must act. errors.Is(err, ErrUnusable) tells; see also Unusable.
var ErrUnusable = errors.New("database unusable")

type unusableError struct{ err error }

func (e unusableError) Error() string        { return e.err.Error() }
func (e unusableError) Unwrap() error        { return e.err }
func (e unusableError) Is(target error) bool { return target == ErrUnusable }

// unusable marks err as ErrUnusable.
func unusable(err error) error { return unusableError{err} }

// Unusable reports whether err means the database file cannot be used as
// it is: an error of Open or Check marked ErrUnusable, or an SQLite error
// saying the file is damaged or no database, which a read of a damaged page
// returns long after Open.
func Unusable(err error) bool {
	if errors.Is(err, ErrUnusable) {
		return true
	}
	code, _, ok := resultCode(err)
	return ok && (code == codeCorrupt || code == codeNotADB)
}

// explain adds what a person should do to the errors that mean the file is
// not a usable database, or cannot be opened at all, and marks them
// ErrUnusable.
func explain(err error) error {
	if code, _, ok := resultCode(err); ok {
		switch code {
		case codeNotADB:
			return unusable(fmt.Errorf("not a SQLite database (move it aside or restore a backup): %w", err))
		case codeCorrupt:
			return unusable(fmt.Errorf("database is damaged (move it aside or restore a backup): %w", err))
		case codeCantOpen:
			return unusable(fmt.Errorf("cannot open the file (may the user running posthorn read and write it and its directory?): %w", err))
		}
	}
	return err
}

// Explain names the store's file and says what to do when err means the
// database is damaged. SQLite finds a damaged page only when a statement
// reads it, so an error of any method may be one; other errors are returned
// unchanged.
func (s *Store) Explain(err error) error {
	if err == nil || errors.Is(err, ErrUnusable) || !Unusable(err) {
		return err
	}
	return fmt.Errorf("database %s: %w", s.path, explain(err))
}

// initWriter connects the writer, which is the first moment SQLite reads the
// file, checks it, migrates it and prepares the statements Commit reuses.
func (s *Store) initWriter(ctx context.Context, check bool) error {
	var mode string
	// journal_mode both tells whether the DSN's WAL took and is the first
	// read of the file header, where a file that is no database fails.
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("set WAL journal: the journal mode is %q", mode)
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if check {
		if err := quickCheck(ctx, s.w); err != nil {
			return err
		}
	}
	return s.stmts.prepare(ctx, s.w)
}

// quickCheck runs PRAGMA quick_check, which verifies the b-tree structure of
// every page but not that indexes match their tables. On this project's
// development machine it read a 470 MB file (a million events) in about one
// second with the file in the page cache.
func quickCheck(ctx context.Context, db *sql.DB) error {
	const show = 5
	// One more problem than is shown tells whether there are more.
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA quick_check(%d)", show+1))
	if err != nil {
		return fmt.Errorf("check database: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			return fmt.Errorf("check database: %w", err)
		}
		// A row may hold several lines, with a "*** in database main ***"
		// heading before the first problem.
		for _, line := range strings.Split(text, "\n") {
			if line != "ok" && line != "" && !strings.HasPrefix(line, "*** ") {
				problems = append(problems, line)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check database: %w", err)
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > show {
			more = "; ..."
			problems = problems[:show]
		}
		return unusable(fmt.Errorf("database is damaged (move it aside or restore a backup): %s%s",
			strings.Join(problems, "; "), more))
	}
	return nil
}

// write runs fn in one IMMEDIATE transaction on the writer connection and
// commits it. With durable set (or Options.FullSync) the commit fsyncs the
// WAL (synchronous=FULL).
func (s *Store) write(ctx context.Context, durable bool, fn func(*sql.Tx) error) (err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	if !s.full {
		if err := s.setSync(ctx, conn, durable); err != nil {
			return err
		}
	}

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		// database/sql rolls a transaction back as soon as its context
		// ends, and Commit then only says the transaction is done: name
		// the cause instead.
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, sql.ErrTxDone) {
			return cerr
		}
		return err
	}
	return nil
}

// setSync sets the writer connection's synchronous level for the next
// transaction: FULL when durable, NORMAL otherwise. The level belongs to the
// connection, not to a transaction, and SQLite refuses to change it inside
// one; so a durable write switches to FULL before its BEGIN and leaves it
// there, and the next write that is not durable switches back. The switch
// back is then off the milter's path, which waits for the durable commit
// and for nothing after it.
func (s *Store) setSync(ctx context.Context, conn *sql.Conn, durable bool) error {
	var dc *rawConn
	if err := conn.Raw(func(c any) error {
		dc, _ = c.(*rawConn)
		return nil
	}); err != nil {
		return err
	}
	// A connection the pool opened since is at the DSN's NORMAL.
	full := dc != nil && s.fullConn.Load() == dc
	switch {
	case durable && !full:
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
			return fmt.Errorf("set synchronous: %w", err)
		}
		s.fullConn.Store(dc)
	case !durable && full:
		// Failing to switch back only leaves this write durable too.
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err == nil {
			s.fullConn.Store(nil)
		}
	}
	return nil
}

// Close closes both pools. Closing the last connection checkpoints the WAL
// into the database file and removes it.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	s.stmts.close()
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	// Last: the lock covers the checkpoint that closing the writer does.
	errs = append(errs, s.lock.release())
	s.lock = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close database %s: %w", s.path, err)
	}
	return nil
}

// Path is the file name the store was opened with.
func (s *Store) Path() string { return s.path }
