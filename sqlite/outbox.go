package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
)

// The Event Webhook's outbox (dispatcher.Outbox, migrations/0002_outbox.sql
// and 0009_webhook_period.sql).
// The stored events are the outbox; batches are rows that name a range of
// one family's events. The store does not import the dispatcher: these
// methods take and return plain values whose meaning the dispatcher's
// Outbox documents.

// Batch states (WIRE.md §5), as the dispatcher writes them.
const (
	StateQueued    = "queued"
	StateDeferred  = "deferred"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// pendingStates is the SQL condition of a batch still to be posted. It is
// written exactly as in the partial indexes of 0002_outbox.sql: SQLite
// uses a partial index only for a query whose WHERE implies the index's.
const pendingStates = `state IN ('queued', 'deferred')`

// allTypes lists the event types, to map families to types in SQL.
var allTypes = []event.Type{event.Queued, event.Succeeded, event.Deferred, event.Failed, event.Bounced, event.Registered, event.Deleted}

// familyTypes returns the SQL list of the types posted under a family.
func familyTypes(family string) (string, error) {
	var q []string
	for _, t := range allTypes {
		if t.Family() == family {
			q = append(q, "'"+string(t)+"'")
		}
	}
	if len(q) == 0 {
		return "", fmt.Errorf("unknown event family %q", family)
	}
	return "(" + strings.Join(q, ", ") + ")", nil
}

// nanos stores an instant as Unix nanoseconds; the zero time as NULL.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return boundNanos(t)
}

func fromNanos(ns sql.NullInt64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return time.Unix(0, ns.Int64).UTC()
}

// outboxHooks lets a test make an outbox method of one store fail:
// *Store → func(method string) error.
var outboxHooks sync.Map

func (s *Store) hook(op string) error {
	if h, ok := outboxHooks.Load(s); ok {
		return h.(func(string) error)(op)
	}
	return nil
}

// Progress returns, per family, the position up to which batches are
// formed.
func (s *Store) Progress(ctx context.Context) (map[string]int64, error) {
	if err := s.hook("Progress"); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT family, formed_seq FROM webhook_progress`)
	if err != nil {
		return nil, fmt.Errorf("read webhook progress: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var f string
		var n int64
		if err := rows.Scan(&f, &n); err != nil {
			return nil, fmt.Errorf("read webhook progress: %w", err)
		}
		out[f] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read webhook progress: %w", err)
	}
	return out, nil
}

// Pending is a stored event with its position, as the dispatcher forms
// batches from it (dispatcher.Pending has the same fields).
type Pending = struct {
	Seq  int64
	ID   string
	Type event.Type
	Time time.Time
}

// Unformed returns up to limit stored events positioned after `after`, in
// stored order, with only what forming a batch needs.
func (s *Store) Unformed(ctx context.Context, after int64, limit int) ([]Pending, error) {
	if err := s.hook("Unformed"); err != nil {
		return nil, err
	}
	if evs, ok := s.recent().get(after, limit); ok {
		if len(evs) > 0 {
			return evs, nil
		}
		// Nothing newer in the ring: unless another process stored
		// events, nothing newer at all (one cheap look at the rowid).
		if last, err := s.LastSeq(ctx); err == nil && last <= after {
			return nil, nil
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, id, type, time FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read unformed events: %w", err)
	}
	defer rows.Close()
	out := make([]Pending, 0, min(limit, 1024))
	// This read runs for every event the log reader stores: the type is
	// mapped to its constant from the driver's bytes, without a string
	// per row.
	var typ sql.RawBytes
	for rows.Next() {
		var p Pending
		var ns int64
		if err := rows.Scan(&p.Seq, &p.ID, &typ, &ns); err != nil {
			return nil, fmt.Errorf("read unformed events: %w", err)
		}
		p.Type, p.Time = typeOf(typ), time.Unix(0, ns).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unformed events: %w", err)
	}
	return out, nil
}

// typeOf returns the constant of a stored type name.
func typeOf(b []byte) event.Type {
	for _, t := range allTypes {
		if string(t) == string(b) {
			return t
		}
	}
	return event.Type(b) // unknown: the dispatcher skips it
}

// LastSeq returns the position of the newest stored event.
func (s *Store) LastSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read last event position: %w", err)
	}
	return n, nil
}

// Formed is a closed batch to store (dispatcher.Formed has the same
// fields).
type Formed = struct {
	ID        string
	Family    string
	First     int64
	Last      int64
	Events    int
	FirstTime time.Time
	LastTime  time.Time
	Host      string
	Endpoint  string
}

// Form stores closed batches as queued, due at `due`, their retry period
// starting then, and raises the families' progress, in one transaction. An existing batch_id is left as
// it is; progress never goes back.
func (s *Store) Form(ctx context.Context, batches []Formed, progress map[string]int64, due time.Time) error {
	if err := s.hook("Form"); err != nil {
		return err
	}
	now := s.now().UnixNano()
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		if len(batches) > 0 {
			ins, err := tx.PrepareContext(ctx, `INSERT INTO webhook_batches (batch_id, family, first_seq, last_seq,
					events, first_time, last_time, host, endpoint, state, next_attempt_at, retry_since, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)
				ON CONFLICT (batch_id) DO NOTHING`)
			if err != nil {
				return err
			}
			defer ins.Close()
			for _, b := range batches {
				if _, err := ins.ExecContext(ctx, b.ID, b.Family, b.First, b.Last, b.Events,
					boundNanos(b.FirstTime), boundNanos(b.LastTime), b.Host, b.Endpoint, boundNanos(due), boundNanos(due), now, now); err != nil {
					return fmt.Errorf("insert batch %s: %w", b.ID, err)
				}
			}
		}
		for fam, seq := range progress {
			if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_progress (family, formed_seq) VALUES (?, ?)
				ON CONFLICT (family) DO UPDATE SET formed_seq = max(formed_seq, excluded.formed_seq)`, fam, seq); err != nil {
				return fmt.Errorf("write progress of %s: %w", fam, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("form %d batches: %w", len(batches), err)
	}
	return nil
}

// ClaimDue leases up to limit due batches in event order, counting an
// attempt for each (dispatcher.Outbox.ClaimDue).
func (s *Store) ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]string, error) {
	var ids []string
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT batch_id `+claimOrder+` LIMIT ?2`, boundNanos(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_batches SET lease_until = ?, attempts = attempts + 1,
					first_attempt_at = coalesce(first_attempt_at, ?), updated_at = ?
				WHERE batch_id = ?`, boundNanos(leaseUntil), boundNanos(now), s.now().UnixNano(), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim due batches: %w", err)
	}
	return ids, nil
}

// claimOrder selects the batches ClaimDue takes, in the order it takes
// them. The walk is along webhook_batches_pending, in first_seq order, and
// stops at the first due batch: the pending batches that are not due are
// the few deferred ones. Any other index would have every due batch of a
// backlog sorted for each claim.
const claimOrder = `FROM webhook_batches INDEXED BY webhook_batches_pending
	WHERE ` + pendingStates + ` AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
	ORDER BY first_seq`

// NextClaim returns the batch ClaimDue would claim next at now, without
// claiming it.
func (s *Store) NextClaim(ctx context.Context, now time.Time) (string, bool, error) {
	if err := s.hook("NextClaim"); err != nil {
		return "", false, err
	}
	var id string
	err := s.r.QueryRowContext(ctx, `SELECT batch_id `+claimOrder+` LIMIT 1`, boundNanos(now)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read next due batch: %w", err)
	}
	return id, true, nil
}

// Frozen is what an attempt at a batch starts from (dispatcher.Frozen has
// the same fields).
type Frozen = struct {
	Family      string
	Events      int
	ContentType string
	Body        []byte
	Attempt     int
	Round       int
	PeriodStart time.Time
}

// Frozen returns a batch's family, body (nil until frozen), attempt
// numbers and the start of its retry period.
func (s *Store) Frozen(ctx context.Context, batchID string) (Frozen, error) {
	var f Frozen
	var retryFrom int
	var since int64
	err := s.r.QueryRowContext(ctx, `SELECT family, events, content_type, body, attempts, retry_from, retry_since
		FROM webhook_batches WHERE batch_id = ?`, batchID).
		Scan(&f.Family, &f.Events, &f.ContentType, &f.Body, &f.Attempt, &retryFrom, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return Frozen{}, fmt.Errorf("read batch %s: no such batch", batchID)
	}
	if err != nil {
		return Frozen{}, fmt.Errorf("read batch %s: %w", batchID, err)
	}
	f.Round = f.Attempt - retryFrom
	f.PeriodStart = time.Unix(0, since).UTC()
	return f, nil
}

// BatchEvents returns a batch's events in stored order.
func (s *Store) BatchEvents(ctx context.Context, batchID string) ([]event.Event, error) {
	var fam string
	var first, last int64
	err := s.r.QueryRowContext(ctx, `SELECT family, first_seq, last_seq FROM webhook_batches WHERE batch_id = ?`, batchID).
		Scan(&fam, &first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read events of batch %s: no such batch", batchID)
	}
	if err != nil {
		return nil, fmt.Errorf("read events of batch %s: %w", batchID, err)
	}
	types, err := familyTypes(fam)
	if err != nil {
		return nil, fmt.Errorf("read events of batch %s: %w", batchID, err)
	}
	// "+type" keeps SQLite from choosing the (type, time, id) index, which
	// would walk every event of those types ever stored; the seq range is
	// a walk of the table's own b-tree.
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE seq BETWEEN ? AND ? AND +type IN `+types+` ORDER BY seq`, first, last)
	if err != nil {
		return nil, fmt.Errorf("read events of batch %s: %w", batchID, err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read events of batch %s: %w", batchID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events of batch %s: %w", batchID, err)
	}
	return out, nil
}

// FreezeBody stores a batch's body unless one is stored, and returns the
// stored one.
func (s *Store) FreezeBody(ctx context.Context, batchID, contentType string, body []byte) (string, []byte, error) {
	var ct string
	var kept []byte
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		if body == nil {
			body = []byte{} // NULL means "not frozen"
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_batches SET content_type = ?, body = ?, updated_at = ?
			WHERE batch_id = ? AND body IS NULL`, contentType, body, s.now().UnixNano(), batchID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT content_type, body FROM webhook_batches WHERE batch_id = ?`, batchID).Scan(&ct, &kept)
		if errors.Is(err, sql.ErrNoRows) {
			return errors.New("no such batch")
		}
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("freeze body of batch %s: %w", batchID, err)
	}
	return ct, kept, nil
}

// Attempt is the end of one attempt (dispatcher.Attempt has the same
// fields).
type Attempt = struct {
	BatchID  string
	Attempt  int
	At       time.Time
	Host     string
	Endpoint string
	State    string
	Status   int
	Reason   string
	Response []byte
	Next     time.Time
}

// Record stores the end of one attempt: its row, and the batch's new state.
func (s *Store) Record(ctx context.Context, a Attempt) error {
	now := s.now().UnixNano()
	resp := a.Response
	if resp == nil {
		resp = []byte{}
	}
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		// An attempt number repeats only if a process recorded an
		// attempt whose lease another had taken over; the later record
		// wins, as it does on the batch.
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (batch_id, attempt, at, host, endpoint,
				state, status, reason, response, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (batch_id, attempt) DO UPDATE SET at = excluded.at, host = excluded.host,
				endpoint = excluded.endpoint, state = excluded.state, status = excluded.status,
				reason = excluded.reason, response = excluded.response, next_attempt_at = excluded.next_attempt_at`,
			a.BatchID, a.Attempt, boundNanos(a.At), a.Host, a.Endpoint, a.State, a.Status, a.Reason, resp, nanos(a.Next)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webhook_batches SET state = ?, next_attempt_at = ?, lease_until = NULL,
				last_status = ?, last_reason = ?, endpoint = ?, updated_at = ?
			WHERE batch_id = ?`, a.State, nanos(a.Next), a.Status, a.Reason, a.Endpoint, now, a.BatchID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errors.New("no such batch")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record attempt %d of batch %s: %w", a.Attempt, a.BatchID, err)
	}
	return nil
}

// NextDue returns when the earliest pending batch is due, a leased one at
// the end of its lease at the earliest.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	// Two index walks: the first unleased batch in claim order, and the
	// few leased ones.
	var free, leased sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT next_attempt_at FROM webhook_batches
			WHERE `+pendingStates+` AND (lease_until IS NULL OR lease_until <= next_attempt_at)
			ORDER BY next_attempt_at, batch_id LIMIT 1),
		(SELECT min(max(next_attempt_at, lease_until)) FROM webhook_batches
			WHERE lease_until IS NOT NULL AND `+pendingStates+`)`).Scan(&free, &leased)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due batch: %w", err)
	}
	switch {
	case free.Valid && leased.Valid:
		return fromNanos(sql.NullInt64{Int64: min(free.Int64, leased.Int64), Valid: true}), true, nil
	case free.Valid:
		return fromNanos(free), true, nil
	case leased.Valid:
		return fromNanos(leased), true, nil
	}
	return time.Time{}, false, nil
}

// ReleaseLeases clears every lease (at the daemon's start).
func (s *Store) ReleaseLeases(ctx context.Context) (int, error) {
	var n int64
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_batches SET lease_until = NULL WHERE lease_until IS NOT NULL`)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	return int(n), nil
}

// RetryNow makes the deferred batches due at now.
func (s *Store) RetryNow(ctx context.Context, now time.Time) (int, error) {
	if err := s.hook("RetryNow"); err != nil {
		return 0, err
	}
	var n int64
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_batches SET next_attempt_at = ?
			WHERE state = 'deferred' AND next_attempt_at > ?`, boundNanos(now), boundNanos(now))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry deferred batches now: %w", err)
	}
	return int(n), nil
}

// PendingEvents returns how many events queued and deferred batches hold.
func (s *Store) PendingEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(sum(events), 0) FROM webhook_batches WHERE `+pendingStates).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending events: %w", err)
	}
	return n, nil
}

// FailOldest fails the oldest pending batches not leased at now until at
// least n events are failed.
func (s *Store) FailOldest(ctx context.Context, n int64, now time.Time, reason string) (int, int64, error) {
	var batches int
	var events int64
	err := s.write(ctx, false, func(tx *sql.Tx) error {
		// Find the position up to which the oldest batches hold n events,
		// walking the (first_seq, events) index; then fail them in one
		// statement, which holds the write lock — and so the log reader —
		// for as short a time as a few thousand rows allow. The batch in
		// flight is skipped here as in the UPDATE: it is the oldest when
		// the probe of a dead endpoint hangs.
		rows, err := tx.QueryContext(ctx, `SELECT first_seq, events FROM webhook_batches INDEXED BY webhook_batches_pending
			WHERE `+pendingStates+` AND (lease_until IS NULL OR lease_until <= ?) ORDER BY first_seq`, boundNanos(now))
		if err != nil {
			return err
		}
		var cutoff, sum int64
		for sum < n && rows.Next() {
			var k int64
			if err := rows.Scan(&cutoff, &k); err != nil {
				rows.Close()
				return err
			}
			sum += k
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if sum == 0 {
			return nil
		}
		res, err := tx.QueryContext(ctx, `UPDATE webhook_batches SET state = 'failed', next_attempt_at = NULL,
				lease_until = NULL, last_status = 0, last_reason = ?, updated_at = ?
			WHERE `+pendingStates+` AND first_seq <= ? AND (lease_until IS NULL OR lease_until <= ?)
			RETURNING events`, reason, s.now().UnixNano(), cutoff, boundNanos(now))
		if err != nil {
			return err
		}
		batches, events, err = sumEvents(res)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("fail oldest pending batches: %w", err)
	}
	return batches, events, nil
}

// Expire fails the pending batches not leased at now whose retry period
// (counted from retry_since) is over; with final set it spares those due
// for their last attempt, at the period's end (dispatcher.Outbox.Expire).
// It returns when the next period of a pending batch ends.
func (s *Store) Expire(ctx context.Context, now time.Time, period time.Duration, final bool,
	reason func(round int) string) (batches int, events int64, next time.Time, err error) {
	if err := s.hook("Expire"); err != nil {
		return 0, 0, time.Time{}, err
	}
	n, p := boundNanos(now), int64(period)
	// The common case, nothing over, is one read of the period index,
	// without the write lock the log reader needs.
	var oldest sql.NullInt64
	if err := s.r.QueryRowContext(ctx, `SELECT min(retry_since) FROM webhook_batches INDEXED BY webhook_batches_period
		WHERE `+pendingStates).Scan(&oldest); err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("read retry periods: %w", err)
	}
	if !oldest.Valid {
		return 0, 0, time.Time{}, nil
	}
	if oldest.Int64+p > n {
		return 0, 0, time.Unix(0, oldest.Int64+p).UTC(), nil
	}
	spare := 0
	if final {
		spare = 1
	}
	// At most expireChunk batches a transaction: after a long outage
	// thousands may be over at once, and the log reader waits for the
	// write lock meanwhile.
	const expireChunk = 500
	for more := true; more && err == nil; {
		err = s.write(ctx, false, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT batch_id, attempts - retry_from, events
			FROM webhook_batches INDEXED BY webhook_batches_period WHERE `+pendingStates+` AND retry_since <= ?1 - ?2 AND (lease_until IS NULL OR lease_until <= ?1)
				AND NOT (?3 AND next_attempt_at >= retry_since + ?2)
			ORDER BY retry_since LIMIT ?4`, n, p, spare, expireChunk)
			if err != nil {
				return err
			}
			type over struct {
				id     string
				round  int
				events int64
			}
			var list []over
			for rows.Next() {
				var o over
				if err := rows.Scan(&o.id, &o.round, &o.events); err != nil {
					rows.Close()
					return err
				}
				list = append(list, o)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			upd, err := tx.PrepareContext(ctx, `UPDATE webhook_batches SET state = 'failed', next_attempt_at = NULL,
			lease_until = NULL, last_status = 0, last_reason = ?, updated_at = ? WHERE batch_id = ?`)
			if err != nil {
				return err
			}
			defer upd.Close()
			at := s.now().UnixNano()
			for _, o := range list {
				if _, err := upd.ExecContext(ctx, reason(o.round), at, o.id); err != nil {
					return err
				}
				batches++
				events += o.events
			}
			if more = len(list) == expireChunk; more {
				return nil
			}
			var ns sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT min(retry_since) FROM webhook_batches INDEXED BY webhook_batches_period
			WHERE `+pendingStates+` AND retry_since > ? - ?`, n, p).Scan(&ns); err != nil {
				return err
			}
			if ns.Valid {
				next = time.Unix(0, ns.Int64+p).UTC()
			}
			return nil
		})
	}
	if err != nil {
		return 0, 0, time.Time{}, fmt.Errorf("fail batches whose retry period is over: %w", err)
	}
	return batches, events, next, nil
}

// Replays returns how many times batches were re-queued (Requeue), by any
// process.
func (s *Store) Replays(ctx context.Context) (int64, error) {
	if err := s.hook("Replays"); err != nil {
		return 0, err
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT replays FROM webhook_replays WHERE id = 1`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read webhook replays: %w", err)
	}
	return n, nil
}

// sumEvents counts the batches an UPDATE ... RETURNING events changed and
// adds up their events; it closes rows.
func sumEvents(rows *sql.Rows) (batches int, events int64, err error) {
	defer rows.Close()
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			return 0, 0, err
		}
		batches++
		events += k
	}
	return batches, events, rows.Err()
}

// WebhookBatch is one row of the Event Webhook log.
type WebhookBatch struct {
	ID       string
	Family   string
	State    string
	Events   int
	FirstSeq int64
	LastSeq  int64
	// Received is the time of the batch's earliest event; LastEvent of
	// its latest.
	Received  time.Time
	LastEvent time.Time
	Host      string
	Endpoint  string
	Attempts  int
	// FirstAttempt is the first attempt since the batch was formed or
	// last replayed; RetrySince is the start of its retry period (when it
	// was formed or last replayed). NextAttempt is set while the batch is
	// queued or deferred.
	FirstAttempt time.Time
	RetrySince   time.Time
	NextAttempt  time.Time
	Leased       bool
	LastStatus   int
	Reason       string
	ContentType  string
	Body         []byte // only from WebhookBatchByID; nil until frozen
	Created      time.Time
	Updated      time.Time
}

// WebhookAttempt is one attempt of a batch, the detail of a log row.
type WebhookAttempt struct {
	Attempt     int
	At          time.Time
	Host        string
	Endpoint    string
	State       string
	Status      int
	Reason      string
	Response    []byte // the first 512 bytes of the answer
	NextAttempt time.Time
}

// WebhookLogQuery selects rows of the Event Webhook log with any event in
// [Since, Until), by status, or one row by id.
type WebhookLogQuery struct {
	Since  time.Time // zero: no lower bound
	Until  time.Time // zero: no upper bound
	States []string  // empty: all
	ID     string    // only this batch; "": any
	// Paging, in (Received, ID) order: rows after this one (before it
	// with Newest).
	AfterReceived time.Time
	AfterID       string
	Limit         int // 0: no limit
	// Newest orders the rows newest first, as the console's log screen
	// shows them; the CSV and replay go oldest first.
	Newest bool
}

func (q WebhookLogQuery) where() (string, []any, error) {
	var where []string
	var args []any
	// A batch is in the period when any of its events is: its events'
	// times span [first_time, last_time], which must overlap [Since,
	// Until). first_time < Until is what the time indexes seek to.
	if !q.Since.IsZero() {
		where = append(where, "last_time >= ?")
		args = append(args, boundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "first_time < ?")
		args = append(args, boundNanos(q.Until))
	}
	if q.ID != "" {
		where = append(where, "batch_id = ?")
		args = append(args, q.ID)
	}
	if len(q.States) > 0 {
		for _, st := range q.States {
			if !slices.Contains([]string{StateQueued, StateDeferred, StateSucceeded, StateFailed}, st) {
				return "", nil, fmt.Errorf("unknown status %q: want queued, deferred, succeeded or failed", st)
			}
			args = append(args, st)
		}
		where = append(where, "state IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(q.States)), ", ")+")")
	}
	if !q.AfterReceived.IsZero() {
		op := ">"
		if q.Newest {
			op = "<"
		}
		where = append(where, "(first_time, batch_id) "+op+" (?, ?)")
		args = append(args, boundNanos(q.AfterReceived), q.AfterID)
	}
	if q.Limit < 0 {
		return "", nil, fmt.Errorf("negative limit %d", q.Limit)
	}
	if len(where) == 0 {
		return "", args, nil
	}
	return " WHERE " + strings.Join(where, " AND "), args, nil
}

const batchColumns = `batch_id, family, state, events, first_seq, last_seq, first_time, last_time, host, endpoint,
	attempts, first_attempt_at, next_attempt_at, lease_until, last_status, last_reason, content_type, created_at, updated_at,
	retry_since`

func scanBatch(sc interface{ Scan(...any) error }, extra ...any) (WebhookBatch, error) {
	var b WebhookBatch
	var first, last, created, updated, since int64
	var firstAttempt, next, lease sql.NullInt64
	dst := append([]any{&b.ID, &b.Family, &b.State, &b.Events, &b.FirstSeq, &b.LastSeq, &first, &last, &b.Host,
		&b.Endpoint, &b.Attempts, &firstAttempt, &next, &lease, &b.LastStatus, &b.Reason, &b.ContentType,
		&created, &updated, &since}, extra...)
	if err := sc.Scan(dst...); err != nil {
		return WebhookBatch{}, err
	}
	b.Received, b.LastEvent = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	// Only a pending batch can be in flight: older binaries failed some
	// batches without clearing an expired lease.
	pendingState := b.State == StateQueued || b.State == StateDeferred
	b.FirstAttempt, b.NextAttempt, b.Leased = fromNanos(firstAttempt), fromNanos(next), lease.Valid && pendingState
	b.Created, b.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	b.RetrySince = time.Unix(0, since).UTC()
	return b, nil
}

// WebhookLog returns the rows of the Event Webhook log that q selects,
// ordered by Received and then batch id (descending with q.Newest).
//
// With a limit and several statuses each status is read from its own range
// of the (state, first_time, batch_id) index and the ranges are merged,
// so that no page sorts the rows of a whole period.
func (s *Store) WebhookLog(ctx context.Context, q WebhookLogQuery) ([]WebhookBatch, error) {
	if len(q.States) > 1 && q.Limit > 0 {
		var out []WebhookBatch
		for _, st := range slices.Compact(slices.Sorted(slices.Values(q.States))) {
			one := q
			one.States = []string{st}
			rows, err := s.WebhookLog(ctx, one)
			if err != nil {
				return nil, err
			}
			out = append(out, rows...)
		}
		slices.SortFunc(out, func(a, b WebhookBatch) int {
			c := cmp.Or(a.Received.Compare(b.Received), cmp.Compare(a.ID, b.ID))
			if q.Newest {
				return -c
			}
			return c
		})
		return out[:min(len(out), q.Limit)], nil
	}
	where, args, err := q.where()
	if err != nil {
		return nil, fmt.Errorf("read webhook log: %w", err)
	}
	order := ` ORDER BY first_time, batch_id`
	if q.Newest {
		order = ` ORDER BY first_time DESC, batch_id DESC`
	}
	query := `SELECT ` + batchColumns + ` FROM webhook_batches` + where + order
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read webhook log: %w", err)
	}
	defer rows.Close()
	var out []WebhookBatch
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, fmt.Errorf("read webhook log: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read webhook log: %w", err)
	}
	return out, nil
}

// WebhookBatchByID returns one batch with its frozen body and its
// attempts, oldest first; ok is false when there is no such batch.
func (s *Store) WebhookBatchByID(ctx context.Context, id string) (b WebhookBatch, attempts []WebhookAttempt, ok bool, err error) {
	var body []byte
	b, err = scanBatch(s.r.QueryRowContext(ctx, `SELECT `+batchColumns+`, body FROM webhook_batches WHERE batch_id = ?`, id), &body)
	if errors.Is(err, sql.ErrNoRows) {
		return WebhookBatch{}, nil, false, nil
	}
	if err != nil {
		return WebhookBatch{}, nil, false, fmt.Errorf("read batch %s: %w", id, err)
	}
	b.Body = body
	rows, err := s.r.QueryContext(ctx, `SELECT attempt, at, host, endpoint, state, status, reason, response, next_attempt_at
		FROM webhook_attempts WHERE batch_id = ? ORDER BY attempt`, id)
	if err != nil {
		return WebhookBatch{}, nil, false, fmt.Errorf("read attempts of batch %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var a WebhookAttempt
		var at int64
		var next sql.NullInt64
		if err := rows.Scan(&a.Attempt, &at, &a.Host, &a.Endpoint, &a.State, &a.Status, &a.Reason, &a.Response, &next); err != nil {
			return WebhookBatch{}, nil, false, fmt.Errorf("read attempts of batch %s: %w", id, err)
		}
		a.At, a.NextAttempt = time.Unix(0, at).UTC(), fromNanos(next)
		attempts = append(attempts, a)
	}
	if err := rows.Err(); err != nil {
		return WebhookBatch{}, nil, false, fmt.Errorf("read attempts of batch %s: %w", id, err)
	}
	return b, attempts, true, nil
}

// Requeue makes the batches that q selects (Limit and paging ignored) due
// again at now — "posthorn replay". They keep their id and their frozen
// body, so a receiver that deduplicates on webhook-id recognises them;
// their attempt numbers go on rising, while the retry schedule and period
// start again. A batch in flight is left alone. A serve running on the
// store sees the replay by the count Replays returns, and tries the
// endpoint again at once even while it holds it off. It returns how many
// batches and events were re-queued.
func (s *Store) Requeue(ctx context.Context, q WebhookLogQuery, now time.Time) (batches int, events int64, err error) {
	q.AfterReceived, q.Limit = time.Time{}, 0
	where, args, err := q.where()
	if err != nil {
		return 0, 0, fmt.Errorf("re-queue batches: %w", err)
	}
	if where == "" {
		where = " WHERE 1"
	}
	n := boundNanos(now)
	err = s.write(ctx, false, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_batches SET state = 'queued', next_attempt_at = ?1,
				first_attempt_at = NULL, retry_since = ?1, retry_from = attempts, last_reason = 'replayed', last_status = 0, updated_at = ?2`+
			where+` AND (lease_until IS NULL OR lease_until <= ?1) RETURNING events`, append([]any{n, s.now().UnixNano()}, args...)...)
		if err != nil {
			return err
		}
		if batches, events, err = sumEvents(rows); err != nil || batches == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhook_replays SET replays = replays + 1 WHERE id = 1`)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("re-queue batches: %w", err)
	}
	return batches, events, nil
}

// EventWebhookFailure returns, when the Event Webhook's latest attempt
// failed, the time of the first failed attempt after its last success and
// the latest attempt's endpoint and reason; ok is false when the latest
// attempt succeeded or none is recorded. serve reads it at start, so that
// a restart does not reset how long the webhook has been failing (the
// alerts' "failing since"). It scans the attempts log once.
func (s *Store) EventWebhookFailure(ctx context.Context) (since time.Time, endpoint, reason string, ok bool, err error) {
	var at int64
	var state string
	err = s.r.QueryRowContext(ctx, `SELECT at, endpoint, state, reason FROM webhook_attempts
		ORDER BY at DESC LIMIT 1`).Scan(&at, &endpoint, &state, &reason)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && state == "succeeded") {
		return time.Time{}, "", "", false, nil
	}
	if err != nil {
		return time.Time{}, "", "", false, fmt.Errorf("read latest webhook attempt: %w", err)
	}
	err = s.r.QueryRowContext(ctx, `SELECT min(at) FROM webhook_attempts
		WHERE at > coalesce((SELECT max(at) FROM webhook_attempts WHERE state = 'succeeded'), -1)`).Scan(&at)
	if err != nil {
		return time.Time{}, "", "", false, fmt.Errorf("read first failed webhook attempt: %w", err)
	}
	return time.Unix(0, at).UTC(), endpoint, reason, true, nil
}
