package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
)

// Errors of the suppression-list operations, for callers to tell apart.
var (
	ErrBlockExists     = errors.New("address is already on the suppression list")
	ErrNoBlock         = errors.New("address is not on the suppression list")
	ErrBlockScheduled  = errors.New("registration has not taken effect yet")
	ErrBlockRegistered = errors.New("registration has already taken effect")
)

// Block is one suppression-list entry (0005_blocks.sql). Zero times are
// "not (yet)".
type Block struct {
	ID          int64
	Address     string // normalised
	Reason      string // "manual", "unsubscribe" or a bounce class number
	Occurrences int
	Created     time.Time // when it was requested
	Scheduled   time.Time // when it takes (or took) effect
	Registered  time.Time // when it took effect
	Expires     time.Time // when the watch period lifts it
	Removed     time.Time // when it was lifted or cancelled
	Cancelled   bool
}

// Status is "scheduled", "registered", "deleted" or "cancelled".
func (b Block) Status() string {
	switch {
	case b.Cancelled:
		return "cancelled"
	case !b.Removed.IsZero():
		return "deleted"
	case !b.Registered.IsZero():
		return "registered"
	}
	return "scheduled"
}

// NewBlock is what AddBlock stores.
type NewBlock struct {
	Address     string
	Reason      string
	Occurrences int
	// At is when the entry takes effect; at or before Now it takes
	// effect at once, with its `registered` event in the same
	// transaction.
	At time.Time
	// Expires is the end of the watch period; zero for none.
	Expires time.Time
	Now     time.Time
}

const blockColumns = `id, address, reason, occurrences, created_at, scheduled_at, registered_at,
	expires_at, removed_at, cancelled`

func scanBlock(r rowScanner) (Block, error) {
	var b Block
	var created, scheduled int64
	var registered, expires, removed sql.NullInt64
	var cancelled int64
	if err := r.Scan(&b.ID, &b.Address, &b.Reason, &b.Occurrences, &created, &scheduled,
		&registered, &expires, &removed, &cancelled); err != nil {
		return Block{}, err
	}
	b.Created, b.Scheduled = time.Unix(0, created).UTC(), time.Unix(0, scheduled).UTC()
	b.Registered = decodeOptionalTime(registered, 0)
	b.Expires = decodeOptionalTime(expires, 0)
	b.Removed = decodeOptionalTime(removed, 0)
	b.Cancelled = cancelled != 0
	return b, nil
}

// blockEvent is the blocks record of a change (WIRE.md §2): the entry's
// address and reason at the moment the change took effect. Its id is
// derived from the row and the type, so the scheduler firing the same
// change again (after a crash between commit and notify) stores nothing
// new.
func blockEvent(b Block, typ event.Type, at time.Time) event.Event {
	e := event.Event{
		ID:   "block-" + strconv.FormatInt(b.ID, 10) + "-" + string(typ),
		Type: typ,
		Time: at.UTC(),
		To:   b.Address,
	}
	if c, err := strconv.Atoi(b.Reason); err == nil {
		e.Class = event.Class(c)
	} else {
		e.Reason = b.Reason
	}
	return e
}

// insertBlockEvents stores blocks events in tx and returns their positions
// for the dispatcher's ring, which the caller adds once committed.
func (s *Store) insertBlockEvents(ctx context.Context, tx *sql.Tx, evs []event.Event) ([]Pending, error) {
	var stored []Pending
	ins := tx.StmtContext(ctx, s.stmts.insertEvent)
	now := s.now().UnixNano()
	for i := range evs {
		e := &evs[i]
		ns, off, ok := encodeTime(e.Time)
		if !ok {
			return nil, fmt.Errorf("event %q: time %v cannot be stored", e.ID, e.Time)
		}
		res, err := ins.ExecContext(ctx, eventArgs(e, ns, off, now)...)
		if err != nil {
			return nil, fmt.Errorf("insert event %q: %w", e.ID, err)
		}
		stored = noteStored(stored, res, e, ns)
	}
	return stored, nil
}

// liveBlock reads the entry of address that is scheduled or registered.
func liveBlock(ctx context.Context, tx *sql.Tx, address string) (Block, error) {
	b, err := scanBlock(tx.QueryRowContext(ctx,
		`SELECT `+blockColumns+` FROM blocks WHERE address = ? AND removed_at IS NULL`, address))
	if errors.Is(err, sql.ErrNoRows) {
		return Block{}, ErrNoBlock
	}
	return b, err
}

// AddBlock puts an address on the list, at once or at n.At. An address
// with a live entry is ErrBlockExists. It returns the entry and the events
// it stored (a `registered` one when it took effect at once).
func (s *Store) AddBlock(ctx context.Context, n NewBlock) (Block, []event.Event, error) {
	if n.Address == "" || n.Reason == "" || n.Occurrences < 0 || n.Now.IsZero() {
		return Block{}, nil, fmt.Errorf("add block %q: address, reason and time are required", n.Address)
	}
	at := n.At
	if at.IsZero() || at.Before(n.Now) {
		at = n.Now
	}
	if !n.Expires.IsZero() && !n.Expires.After(at) {
		return Block{}, nil, fmt.Errorf("add block %s: watch period ends at %v, before it takes effect", n.Address, n.Expires)
	}
	immediate := !at.After(n.Now)
	var b Block
	var evs []event.Event
	var stored []Pending
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		if _, err := liveBlock(ctx, tx, n.Address); err == nil {
			return ErrBlockExists
		} else if !errors.Is(err, ErrNoBlock) {
			return err
		}
		var registered any
		if immediate {
			registered = at.UnixNano()
		}
		var expires any
		if !n.Expires.IsZero() {
			expires = n.Expires.UnixNano()
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO blocks (address, reason, occurrences,
			created_at, scheduled_at, registered_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			n.Address, n.Reason, n.Occurrences, n.Now.UnixNano(), at.UnixNano(), registered, expires)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		b, err = scanBlock(tx.QueryRowContext(ctx, `SELECT `+blockColumns+` FROM blocks WHERE id = ?`, id))
		if err != nil {
			return err
		}
		evs = evs[:0]
		if immediate {
			evs = append(evs, blockEvent(b, event.Registered, at))
		}
		stored, err = s.insertBlockEvents(ctx, tx, evs)
		return err
	})
	if err != nil {
		return Block{}, nil, fmt.Errorf("add block %s: %w", n.Address, err)
	}
	s.recent().add(stored)
	return b, evs, nil
}

// DeleteBlock lifts the registered entry of address (a `deleted` event).
// A scheduled entry is ErrBlockScheduled: cancel it instead.
func (s *Store) DeleteBlock(ctx context.Context, address string, now time.Time) (Block, []event.Event, error) {
	return s.removeBlock(ctx, address, now, false)
}

// CancelBlock drops the scheduled entry of address before it takes
// effect; no event, since nothing was registered. A registered entry is
// ErrBlockRegistered: delete it instead.
func (s *Store) CancelBlock(ctx context.Context, address string, now time.Time) (Block, error) {
	b, _, err := s.removeBlock(ctx, address, now, true)
	return b, err
}

func (s *Store) removeBlock(ctx context.Context, address string, now time.Time, cancel bool) (Block, []event.Event, error) {
	var b Block
	var evs []event.Event
	var stored []Pending
	op := "delete"
	if cancel {
		op = "cancel"
	}
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		var err error
		b, err = liveBlock(ctx, tx, address)
		if err != nil {
			return err
		}
		registered := !b.Registered.IsZero()
		switch {
		case cancel && registered:
			return ErrBlockRegistered
		case !cancel && !registered:
			return ErrBlockScheduled
		}
		// A removal stamped before the registration (a clock set back)
		// would break the entry's order of events.
		at := now
		if registered && at.Before(b.Registered) {
			at = b.Registered
		}
		c := 0
		if cancel {
			c = 1
		}
		if _, err := tx.ExecContext(ctx, `UPDATE blocks SET removed_at = ?, cancelled = ? WHERE id = ?`,
			at.UnixNano(), c, b.ID); err != nil {
			return err
		}
		b.Removed, b.Cancelled = at.UTC(), cancel
		evs = evs[:0]
		if !cancel {
			evs = append(evs, blockEvent(b, event.Deleted, at))
		}
		stored, err = s.insertBlockEvents(ctx, tx, evs)
		return err
	})
	if err != nil {
		return Block{}, nil, fmt.Errorf("%s block %s: %w", op, address, err)
	}
	s.recent().add(stored)
	return b, evs, nil
}

// FireBlocks makes the changes that are due at now: scheduled entries
// take effect (`registered`, stamped with their scheduled time, which is
// when they took effect even if the scheduler runs late) and watch periods
// that ended lift their entries (`deleted`, stamped with the expiry). One
// transaction: a crash fires all of them again or none.
func (s *Store) FireBlocks(ctx context.Context, now time.Time) ([]event.Event, error) {
	var evs []event.Event
	var stored []Pending
	ns := now.UnixNano()
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		evs = evs[:0]
		due, err := queryBlocks(ctx, tx, `SELECT `+blockColumns+` FROM blocks
			WHERE registered_at IS NULL AND removed_at IS NULL AND scheduled_at <= ? ORDER BY scheduled_at, id`, ns)
		if err != nil {
			return err
		}
		for _, b := range due {
			if _, err := tx.ExecContext(ctx, `UPDATE blocks SET registered_at = scheduled_at WHERE id = ?`, b.ID); err != nil {
				return err
			}
			b.Registered = b.Scheduled
			evs = append(evs, blockEvent(b, event.Registered, b.Scheduled))
			if !b.Expires.IsZero() && !b.Expires.After(now) {
				// Registered and lifted in one late run: both records.
				if _, err := tx.ExecContext(ctx, `UPDATE blocks SET removed_at = expires_at WHERE id = ?`, b.ID); err != nil {
					return err
				}
				evs = append(evs, blockEvent(b, event.Deleted, b.Expires))
			}
		}
		expired, err := queryBlocks(ctx, tx, `SELECT `+blockColumns+` FROM blocks
			WHERE expires_at IS NOT NULL AND registered_at IS NOT NULL AND removed_at IS NULL
			AND expires_at <= ? ORDER BY expires_at, id`, ns)
		if err != nil {
			return err
		}
		for _, b := range expired {
			if _, err := tx.ExecContext(ctx, `UPDATE blocks SET removed_at = expires_at WHERE id = ?`, b.ID); err != nil {
				return err
			}
			evs = append(evs, blockEvent(b, event.Deleted, b.Expires))
		}
		stored, err = s.insertBlockEvents(ctx, tx, evs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fire blocks: %w", err)
	}
	s.recent().add(stored)
	return evs, nil
}

// NextBlockDue is the earliest pending change: a scheduled registration or
// the end of a watch period. false when there is none.
func (s *Store) NextBlockDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT min(t) FROM (
		SELECT min(scheduled_at) AS t FROM blocks WHERE registered_at IS NULL AND removed_at IS NULL
		UNION ALL
		SELECT min(expires_at) FROM blocks WHERE expires_at IS NOT NULL AND registered_at IS NOT NULL AND removed_at IS NULL)`).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next block change: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64).UTC(), true, nil
}

// IsBlocked reports whether address (normalised) has a registered entry
// in force.
func (s *Store) IsBlocked(ctx context.Context, address string) (bool, error) {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM blocks
		WHERE address = ? AND removed_at IS NULL AND registered_at IS NOT NULL`, address).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up block %s: %w", address, err)
	}
	return true, nil
}

// RecordSuppressed stores the records of a recipient the milter refused
// or dropped because it is on the suppression list, in one durable
// transaction (the milter answers the client right after). An event whose
// (time, id) is already stored is skipped, so the same refusal recorded
// twice is stored once.
func (s *Store) RecordSuppressed(ctx context.Context, evs []event.Event) error {
	var stored []Pending
	err := s.write(ctx, true, func(tx *sql.Tx) error {
		var err error
		stored, err = s.insertBlockEvents(ctx, tx, evs)
		return err
	})
	if err != nil {
		return fmt.Errorf("record suppressed recipient: %w", err)
	}
	s.recent().add(stored)
	return nil
}

// BlockQuery selects entries for `blocks list`, the export, the console
// and the API.
type BlockQuery struct {
	Address string    // substring of the address, case-insensitive for ASCII; "" all
	Since   time.Time // created at or after; zero: no bound
	Until   time.Time // created before; zero: no bound
	Removed bool      // include deleted and cancelled entries
	AfterID int64     // paging: entries created before the one with this id (newest first)
	Offset  int       // paging by number: skip this many (with Limit)
	Limit   int       // at most this many; 0: all
}

// where is q's filter (paging aside) as SQL conditions and their
// arguments.
func (q BlockQuery) where() ([]string, []any) {
	var where []string
	var args []any
	if q.Address != "" {
		// LIKE is ASCII-case-insensitive in SQLite; the pattern's own
		// wildcards are escaped so that "a_b" means a_b.
		esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.Address)
		where = append(where, `address LIKE ? ESCAPE '\'`)
		args = append(args, "%"+esc+"%")
	}
	if !q.Since.IsZero() {
		where = append(where, `created_at >= ?`)
		args = append(args, boundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, `created_at < ?`)
		args = append(args, boundNanos(q.Until))
	}
	if !q.Removed {
		where = append(where, `removed_at IS NULL`)
	}
	return where, args
}

// Blocks returns entries newest first (by creation, then id).
func (s *Store) Blocks(ctx context.Context, q BlockQuery) ([]Block, error) {
	where, args := q.where()
	if q.AfterID > 0 {
		where = append(where, `(created_at, id) < (SELECT created_at, id FROM blocks WHERE id = ?)`)
		args = append(args, q.AfterID)
	}
	query := `SELECT ` + blockColumns + ` FROM blocks`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_at DESC, id DESC`
	if q.Limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(q.Limit)
	}
	if q.Offset > 0 {
		if q.Limit <= 0 {
			query += ` LIMIT -1`
		}
		query += ` OFFSET ` + strconv.Itoa(q.Offset)
	}
	out, err := queryBlocks(ctx, s.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	return out, nil
}

// CountBlocks counts the entries q's filter selects, ignoring its paging.
func (s *Store) CountBlocks(ctx context.Context, q BlockQuery) (int, error) {
	where, args := q.where()
	query := `SELECT count(*) FROM blocks`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	var n int
	if err := s.r.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count blocks: %w", err)
	}
	return n, nil
}

// queryer is the readers or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryBlocks(ctx context.Context, q queryer, query string, args ...any) ([]Block, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Block
	for rows.Next() {
		b, err := scanBlock(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
