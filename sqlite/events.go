package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
)

// writeStmts are prepared once on the writer connection; a transaction
// borrows them with Tx.StmtContext, which reuses the statement already
// prepared on that connection instead of compiling the SQL again.
type writeStmts struct {
	insertEvent   *sql.Stmt
	upsertMessage *sql.Stmt
	deleteMessage *sql.Stmt
	upsertCursor  *sql.Stmt
	// bounces.go
	countBounce     *sql.Stmt
	countBounceRead *sql.Stmt
	trackMessage    *sql.Stmt
	// inbound.go: the capture, which the milter waits for
	insertInbound     *sql.Stmt
	insertInboundPost *sql.Stmt
	insertInboundLog  *sql.Stmt
	// inbound_outbox.go: the outcome of each inbound POST
	inboundPostMessage *sql.Stmt
	updateInboundPost  *sql.Stmt
	updateInboundLog   *sql.Stmt
	dropInbound        *sql.Stmt
}

// preparedStmt is one statement of writeStmts and its SQL.
type preparedStmt struct {
	dst **sql.Stmt
	sql string
}

// eventColumns is the column order of insertEvent and of every events read.
const eventColumns = `id, type, time, time_offset, host, queue_id, message_id, return_path,
	rcpt_to, orig_to, relay, dsn, reason, delay, class, source_ip, sender_ip, attempt,
	from_hdr, subject, api_data, size`

// eventArgs are insertEvent's arguments for e stored at time ns, off (its
// own time encoded, or a DSN's arrival) and created at now.
func eventArgs(e *event.Event, ns, off, now int64) []any {
	return []any{e.ID, string(e.Type), ns, off, e.Host, e.QueueID,
		e.MessageID, e.ReturnPath, e.To, e.OrigTo, e.Relay, e.DSN, e.Reason, e.Delay,
		int64(e.Class), e.SourceIP, e.SenderIP, int64(e.Attempt), e.From, e.Subject,
		e.APIData, e.Size, now}
}

// rowScanner is *sql.Rows or *sql.Row.
type rowScanner interface{ Scan(dest ...any) error }

// scanEvent reads one row of eventColumns.
func scanEvent(r rowScanner) (event.Event, error) {
	var e event.Event
	var typ string
	var ns, off, class, attempt int64
	if err := r.Scan(&e.ID, &typ, &ns, &off, &e.Host, &e.QueueID, &e.MessageID,
		&e.ReturnPath, &e.To, &e.OrigTo, &e.Relay, &e.DSN, &e.Reason, &e.Delay, &class,
		&e.SourceIP, &e.SenderIP, &attempt, &e.From, &e.Subject, &e.APIData, &e.Size); err != nil {
		return event.Event{}, err
	}
	e.Type = event.Type(typ)
	e.Time = decodeTime(ns, off)
	e.Class = event.Class(class)
	e.Attempt = int(attempt)
	return e, nil
}

func (w *writeStmts) list() []preparedStmt {
	// ON CONFLICT DO NOTHING rather than INSERT OR IGNORE: OR IGNORE would
	// also skip rows that break a CHECK or NOT NULL constraint, silently.
	// Only a repeated event (a batch committed again after a crash) is a
	// no-op; (time, id) is the unique key, see 0001_init.sql.
	return []preparedStmt{
		{&w.insertEvent, `INSERT INTO events (` + eventColumns + `, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (time, id) DO NOTHING`},
		{&w.upsertMessage, `INSERT INTO messages (host, queue_id, message_id, return_path,
				client_ip, first_seen, first_seen_offset, last_seen, last_seen_offset, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (host, queue_id) DO UPDATE SET
				message_id = excluded.message_id,
				return_path = excluded.return_path,
				client_ip = excluded.client_ip,
				first_seen = excluded.first_seen,
				first_seen_offset = excluded.first_seen_offset,
				last_seen = excluded.last_seen,
				last_seen_offset = excluded.last_seen_offset,
				state = excluded.state`},
		{&w.deleteMessage, `DELETE FROM messages WHERE host = ? AND queue_id = ?`},
		{&w.upsertCursor, `INSERT INTO cursors (source, dev, inode, file_offset, journal, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (source) DO UPDATE SET
				dev = excluded.dev,
				inode = excluded.inode,
				file_offset = excluded.file_offset,
				journal = excluded.journal,
				updated_at = excluded.updated_at`},
		{&w.countBounce, countBounceSQL},
		{&w.countBounceRead, countBounceSQL + ` RETURNING count`},
		{&w.trackMessage, `INSERT INTO bounce_lookup (message_id, rcpt, seq) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`},
		{&w.insertInbound, insertInboundSQL},
		{&w.insertInboundPost, insertInboundPostSQL},
		{&w.insertInboundLog, insertInboundLogSQL},
		{&w.inboundPostMessage, inboundPostMessageSQL},
		{&w.updateInboundPost, updateInboundPostSQL},
		{&w.updateInboundLog, updateInboundLogSQL},
		{&w.dropInbound, dropInboundSQL},
	}
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, st := range w.list() {
		p, err := db.PrepareContext(ctx, st.sql)
		if err != nil {
			w.close()
			return fmt.Errorf("prepare statement: %w", err)
		}
		*st.dst = p
	}
	return nil
}

func (w *writeStmts) close() {
	for _, st := range w.list() {
		if *st.dst != nil {
			(*st.dst).Close()
			*st.dst = nil
		}
	}
}

// Commit stores a batch in one transaction: every event (an id already
// stored is left as it is, so committing a batch again after a crash adds
// nothing), the closed messages removed, the changed open messages written,
// and the cursor of b.Cursor.Source (none when Source is ""). Closes apply
// before upserts: a queue ID that closed and was reused within the batch is
// open at its end, so its new row must survive. Either all of it is stored
// or, on error, none of it.
func (s *Store) Commit(ctx context.Context, b event.Batch) error {
	now := s.now().UnixNano()
	// go-sqlite3 runs every statement under a cancellable context in a
	// goroutine of its own, which cost a third of the throughput in
	// BenchmarkCommit. The statements run under a context that is never
	// cancelled, and ctx is checked every few hundred rows and between the
	// stages instead; BEGIN and COMMIT still honour ctx.
	run := context.WithoutCancel(ctx)
	checkEvery := func(i int) error {
		if i%256 == 0 {
			return ctx.Err()
		}
		return nil
	}
	var stored []Pending // for the dispatcher, once committed
	rules := s.rules()
	var registered []Block // by bounce counting
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		stored, registered = stored[:0], registered[:0]
		ins := tx.StmtContext(run, s.stmts.insertEvent)
		book := s.bookkeeper(tx, rules)
		for i := range b.Events {
			if err := checkEvery(i); err != nil {
				return err
			}
			e := &b.Events[i]
			if !e.Type.Valid() {
				return fmt.Errorf("event %q: unknown type %q", e.ID, e.Type)
			}
			ns, off, ok := encodeTime(e.Time)
			if !ok {
				return fmt.Errorf("event %q: time %v cannot be stored", e.ID, e.Time)
			}
			res, err := ins.ExecContext(run, eventArgs(e, ns, off, now)...)
			if err != nil {
				return fmt.Errorf("insert event %q: %w", e.ID, err)
			}
			n := len(stored)
			stored = noteStored(stored, res, e, ns)
			// Only an event stored now is looked at: one committed
			// again after a crash was the first time (bounces.go).
			if rules != nil && len(stored) > n {
				if err := book.stored(run, e, stored[n].Seq, false); err != nil {
					return err
				}
			}
		}
		added, pend, err := book.flush(run)
		if err != nil {
			return err
		}
		registered, stored = added, append(stored, pend...)
		s.stage("events")

		del := tx.StmtContext(run, s.stmts.deleteMessage)
		for i, k := range b.Close {
			if err := checkEvery(i); err != nil {
				return err
			}
			if _, err := del.ExecContext(run, k.Host, k.QueueID); err != nil {
				return fmt.Errorf("delete message %s/%s: %w", k.Host, k.QueueID, err)
			}
		}
		s.stage("close")

		ups := tx.StmtContext(run, s.stmts.upsertMessage)
		for i := range b.Upsert {
			if err := checkEvery(i); err != nil {
				return err
			}
			m := &b.Upsert[i]
			first, firstOff, err := encodeOptionalTime(m.FirstSeen)
			if err != nil {
				return fmt.Errorf("message %s/%s: first seen: %w", m.Host, m.QueueID, err)
			}
			last, lastOff, err := encodeOptionalTime(m.LastSeen)
			if err != nil {
				return fmt.Errorf("message %s/%s: last seen: %w", m.Host, m.QueueID, err)
			}
			_, err = ups.ExecContext(run, m.Host, m.QueueID, m.MessageID, m.ReturnPath,
				m.ClientIP, first, firstOff, last, lastOff, m.State)
			if err != nil {
				return fmt.Errorf("write message %s/%s: %w", m.Host, m.QueueID, err)
			}
		}
		s.stage("upsert")

		if err := ctx.Err(); err != nil {
			return err
		}
		if c := b.Cursor; c.Source != "" {
			// dev and inode keep their bits: SQLite integers are signed.
			_, err := tx.StmtContext(run, s.stmts.upsertCursor).ExecContext(run, c.Source,
				int64(c.Dev), int64(c.Inode), c.Offset, c.Journal, now)
			if err != nil {
				return fmt.Errorf("write cursor %s: %w", c.Source, err)
			}
		}
		s.stage("cursor")
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	s.recent().add(stored)
	if len(registered) > 0 {
		rules.Registered(registered)
	}
	return nil
}

func (s *Store) stage(name string) {
	if s.afterStage != nil {
		s.afterStage(name)
	}
}

// Cursor returns the stored position of a log source; false when there is
// none yet.
func (s *Store) Cursor(ctx context.Context, source string) (event.Cursor, bool, error) {
	c := event.Cursor{Source: source}
	var dev, inode int64
	err := s.r.QueryRowContext(ctx,
		`SELECT dev, inode, file_offset, journal FROM cursors WHERE source = ?`, source).
		Scan(&dev, &inode, &c.Offset, &c.Journal)
	if errors.Is(err, sql.ErrNoRows) {
		return event.Cursor{}, false, nil
	}
	if err != nil {
		return event.Cursor{}, false, fmt.Errorf("read cursor %s: %w", source, err)
	}
	c.Dev, c.Inode = uint64(dev), uint64(inode)
	return c, true, nil
}

// OpenMessages returns every open message, ordered by host and queue ID.
func (s *Store) OpenMessages(ctx context.Context) ([]event.Message, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT host, queue_id, message_id, return_path,
			client_ip, first_seen, first_seen_offset, last_seen, last_seen_offset, state
		FROM messages ORDER BY host, queue_id`)
	if err != nil {
		return nil, fmt.Errorf("read open messages: %w", err)
	}
	defer rows.Close()
	var out []event.Message
	for rows.Next() {
		var m event.Message
		var first, last sql.NullInt64
		var firstOff, lastOff int64
		if err := rows.Scan(&m.Host, &m.QueueID, &m.MessageID, &m.ReturnPath, &m.ClientIP,
			&first, &firstOff, &last, &lastOff, &m.State); err != nil {
			return nil, fmt.Errorf("read open messages: %w", err)
		}
		m.FirstSeen = decodeOptionalTime(first, firstOff)
		m.LastSeen = decodeOptionalTime(last, lastOff)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read open messages: %w", err)
	}
	return out, nil
}

// Events returns the stored events that q selects, ordered by time and then
// id.
func (s *Store) Events(ctx context.Context, q event.Query) ([]event.Event, error) {
	var where []string
	var args []any
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, boundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, boundNanos(q.Until))
	}
	if len(q.Types) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(q.Types)), ", ")
		where = append(where, "type IN ("+marks+")")
		for _, t := range q.Types {
			args = append(args, string(t))
		}
	}
	if !q.AfterTime.IsZero() {
		// A row-value comparison lets SQLite seek the (time, id) index.
		where = append(where, "(time, id) > (?, ?)")
		args = append(args, boundNanos(q.AfterTime), q.AfterID)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("read events: negative limit %d", q.Limit)
	}

	query := "SELECT " + eventColumns + " FROM events"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY time, id"
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}

	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// CountEvents returns how many events of each type are stored.
func (s *Store) CountEvents(ctx context.Context) (map[event.Type]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT type, COUNT(*) FROM events GROUP BY type`)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	out := make(map[event.Type]int64)
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		out[event.Type(t)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	return out, nil
}

// Unix nanoseconds in an int64 cover the years 1678 to 2262; time.UnixNano
// is undefined outside them, so times there are refused rather than wrapped.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// encodeTime splits t into Unix nanoseconds and its zone offset in seconds
// east of UTC. ok is false for the zero time and times out of range.
func encodeTime(t time.Time) (ns, offset int64, ok bool) {
	if t.IsZero() || t.Before(minTime) || t.After(maxTime) {
		return 0, 0, false
	}
	_, off := t.Zone()
	return t.UnixNano(), int64(off), true
}

// encodeOptionalTime stores the zero time as NULL.
func encodeOptionalTime(t time.Time) (ns any, offset int64, err error) {
	if t.IsZero() {
		return nil, 0, nil
	}
	n, off, ok := encodeTime(t)
	if !ok {
		return nil, 0, fmt.Errorf("time %v cannot be stored", t)
	}
	return n, off, nil
}

// boundNanos clamps a query bound to the storable range.
func boundNanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// decodeTime rebuilds a time in a fixed zone of the stored offset; offset 0
// comes back as UTC, which is what a parser resolving "Z" produces.
func decodeTime(ns, offset int64) time.Time {
	t := time.Unix(0, ns)
	if offset == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(offset)))
}

func decodeOptionalTime(ns sql.NullInt64, offset int64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return decodeTime(ns.Int64, offset)
}
