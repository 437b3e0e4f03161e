package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
)

// The console's reads of the events table. Each query is shaped so that
// SQLite answers it from one index range, whatever the size of the table:
// the console's log screen must answer in 100 ms with a million rows
// (issue 5), so no query sorts or counts the rows of a whole period.

// periodWhere is the WHERE clause (without the word) and arguments of q's
// period, one type (t, "" for any) and the paging bound; after is ">" for
// oldest-first paging and "<" for newest-first.
func periodWhere(q event.Query, t event.Type, after string) (string, []any) {
	where := []string{"1"}
	var args []any
	if t != "" {
		where = append(where, "type = ?")
		args = append(args, string(t))
	}
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, boundNanos(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, boundNanos(q.Until))
	}
	if !q.AfterTime.IsZero() {
		// A row value lets SQLite seek the (time, id) part of the index.
		where = append(where, "(time, id) "+after+" (?, ?)")
		args = append(args, boundNanos(q.AfterTime), q.AfterID)
	}
	return strings.Join(where, " AND "), args
}

// distinctTypes returns q's types without repeats; nil means all.
func distinctTypes(q event.Query) []event.Type {
	var out []event.Type
	for _, t := range q.Types {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// RecentEvents returns the events q selects newest first, ordered by time
// and then id, both descending. Paging goes towards older events: with
// AfterTime set, only events before (AfterTime, AfterID) are returned.
//
// Each type is read from its own range of the (type, time, id) index and
// the ranges are merged, so that asking for a rare type in a busy period
// costs no more than Limit rows per type.
func (s *Store) RecentEvents(ctx context.Context, q event.Query) ([]event.Event, error) {
	if q.Limit < 0 {
		return nil, fmt.Errorf("read recent events: negative limit %d", q.Limit)
	}
	types := distinctTypes(q)
	if len(types) == 0 {
		types = []event.Type{""}
	}
	var out []event.Event
	for _, t := range types {
		where, args := periodWhere(q, t, "<")
		query := "SELECT " + eventColumns + " FROM events WHERE " + where + " ORDER BY time DESC, id DESC"
		if q.Limit > 0 {
			query += " LIMIT ?"
			args = append(args, q.Limit)
		}
		evs, err := s.queryEvents(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("read recent events: %w", err)
		}
		out = append(out, evs...)
	}
	if len(types) > 1 {
		slices.SortFunc(out, func(a, b event.Event) int {
			return -cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
		})
		if q.Limit > 0 && len(out) > q.Limit {
			out = out[:q.Limit]
		}
	}
	return out, nil
}

func (s *Store) queryEvents(ctx context.Context, query string, args ...any) ([]event.Event, error) {
	return queryEvents(ctx, s.r, query, args...)
}

// queryEvents reads the events a query of eventColumns selects, from the
// readers or inside a write transaction.
func queryEvents(ctx context.Context, q queryer, query string, args ...any) ([]event.Event, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventAt returns the event with this time and id, the store's unique key;
// ok is false when there is none.
func (s *Store) EventAt(ctx context.Context, t time.Time, id string) (event.Event, bool, error) {
	evs, err := s.queryEvents(ctx, "SELECT "+eventColumns+" FROM events WHERE time = ? AND id = ?",
		boundNanos(t), id)
	if err != nil {
		return event.Event{}, false, fmt.Errorf("read event %s: %w", id, err)
	}
	if len(evs) == 0 {
		return event.Event{}, false, nil
	}
	return evs[0], true, nil
}

// eachPage is how many rows EachEvent reads per query: large enough that
// the per-query cost vanishes, small enough that memory stays flat.
const eachPage = 1000

// EachEvent calls fn for every event q selects, oldest first (the order of
// Events), and stops at fn's first error, which it returns. q.Limit is
// ignored. It reads the rows a page at a time, so memory does not grow
// with the number of rows and no read transaction stays open while fn
// writes to a slow client; events committed meanwhile are included when
// they sort after the rows already passed.
func (s *Store) EachEvent(ctx context.Context, q event.Query, fn func(*event.Event) error) error {
	return s.eachEvent(ctx, q, false, func(e *event.Event, _ string) error { return fn(e) })
}

// endpointScanner reads the endpoint column after eventColumns.
type endpointScanner struct {
	r        rowScanner
	endpoint *string
}

func (s endpointScanner) Scan(dest ...any) error { return s.r.Scan(append(dest, s.endpoint)...) }

// familyOf is the SQL of an event row's family (event.Type.Family).
var familyOf = "CASE type WHEN '" + string(event.Bounced) + "' THEN 'bounces' WHEN '" + string(event.Registered) +
	"' THEN 'blocks' WHEN '" + string(event.Deleted) + "' THEN 'blocks' ELSE 'deliveries' END"

// postedEndpoint is the SQL of the endpoint of the latest attempt of the
// batch that holds an event row, ” when none does or it was never
// attempted: the first batch of the family ending at or after the row's
// seq (one seek of webhook_batches_family_seq), if it starts at or before
// it, and its newest attempt (one seek of the attempts' key).
var postedEndpoint = `coalesce((SELECT a.endpoint FROM webhook_batches b JOIN webhook_attempts a ON a.batch_id = b.batch_id
	WHERE b.batch_id = (SELECT batch_id FROM webhook_batches WHERE family = ` + familyOf + ` AND last_seq >= events.seq
		ORDER BY last_seq LIMIT 1) AND b.first_seq <= events.seq
	ORDER BY a.attempt DESC LIMIT 1), '')`

// eachEvent is EachEvent, with the endpoint of the post that carried each
// event when withEndpoint is set.
func (s *Store) eachEvent(ctx context.Context, q event.Query, withEndpoint bool, fn func(e *event.Event, endpoint string) error) error {
	types := distinctTypes(q)
	var typeWhere string
	var typeArgs []any
	if len(types) > 0 {
		// The unary + keeps SQLite from choosing the (type, time, id)
		// index for the IN list: from several of its ranges the rows
		// would have to be sorted on every page.
		typeWhere = " AND +type IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(types)), ", ") + ")"
		for _, t := range types {
			typeArgs = append(typeArgs, string(t))
		}
	}
	columns := eventColumns
	if withEndpoint {
		columns += ", " + postedEndpoint
	}
	page := q
	endpoints := make([]string, 0, eachPage)
	evs := make([]event.Event, 0, eachPage)
	for {
		where, args := periodWhere(page, "", ">")
		args = append(args, typeArgs...)
		args = append(args, eachPage)
		endpoints, evs = endpoints[:0], evs[:0]
		err := func() error {
			rows, err := s.r.QueryContext(ctx, "SELECT "+columns+" FROM events WHERE "+where+typeWhere+
				" ORDER BY time, id LIMIT ?", args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var endpoint string
				var sc rowScanner = rows
				if withEndpoint {
					sc = endpointScanner{rows, &endpoint}
				}
				e, err := scanEvent(sc)
				if err != nil {
					return err
				}
				endpoints, evs = append(endpoints, endpoint), append(evs, e)
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		for i := range evs {
			if err := fn(&evs[i], endpoints[i]); err != nil {
				return err
			}
		}
		if len(evs) < eachPage {
			return nil
		}
		last := evs[len(evs)-1]
		page.AfterTime, page.AfterID = last.Time, last.ID
	}
}

// EventPost is the Event Webhook post (batch) that carried an event, with
// its latest attempt.
type EventPost struct {
	BatchID string
	State   string
	Last    *WebhookAttempt // nil: not attempted yet
}

// batchOf returns the batch of family that holds the event with seq; ok
// is false when none does (the family was not posted then, or the event
// is not in a batch yet). A family's batches do not overlap (0002), so
// the first batch ending at or after seq is the only candidate: one seek
// of the (family, last_seq) index.
func (s *Store) batchOf(ctx context.Context, family string, seq int64) (id string, first, last int64, ok bool, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT batch_id, first_seq, last_seq FROM webhook_batches
		WHERE family = ? AND last_seq >= ? ORDER BY last_seq LIMIT 1`, family, seq).Scan(&id, &first, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, 0, false, nil
	}
	if err != nil {
		return "", 0, 0, false, err
	}
	return id, first, last, first <= seq, nil
}

// latestAttempt returns a batch's latest attempt, nil when it has none.
func (s *Store) latestAttempt(ctx context.Context, batchID string) (*WebhookAttempt, error) {
	var a WebhookAttempt
	var at int64
	var next sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT attempt, at, host, endpoint, state, status, reason, response, next_attempt_at
		FROM webhook_attempts WHERE batch_id = ? ORDER BY attempt DESC LIMIT 1`, batchID).
		Scan(&a.Attempt, &at, &a.Host, &a.Endpoint, &a.State, &a.Status, &a.Reason, &a.Response, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.At, a.NextAttempt = time.Unix(0, at).UTC(), fromNanos(next)
	return &a, nil
}

// EventPostOf returns the post that carried the event with this time and
// id (EventAt's key); ok is false when the event is in no batch.
func (s *Store) EventPostOf(ctx context.Context, t time.Time, id string) (EventPost, bool, error) {
	var seq int64
	var typ string
	err := s.r.QueryRowContext(ctx, `SELECT seq, type FROM events WHERE time = ? AND id = ?`, boundNanos(t), id).Scan(&seq, &typ)
	if errors.Is(err, sql.ErrNoRows) {
		return EventPost{}, false, nil
	}
	if err != nil {
		return EventPost{}, false, fmt.Errorf("read the post of event %s: %w", id, err)
	}
	fam := event.Type(typ).Family()
	if fam == "" {
		return EventPost{}, false, nil
	}
	bid, _, _, ok, err := s.batchOf(ctx, fam, seq)
	if err != nil || !ok {
		return EventPost{}, false, wrapErr("read the post of event "+id, err)
	}
	p := EventPost{BatchID: bid}
	if err := s.r.QueryRowContext(ctx, `SELECT state FROM webhook_batches WHERE batch_id = ?`, bid).Scan(&p.State); err != nil {
		return EventPost{}, false, fmt.Errorf("read the post of event %s: %w", id, err)
	}
	if p.Last, err = s.latestAttempt(ctx, bid); err != nil {
		return EventPost{}, false, fmt.Errorf("read the post of event %s: %w", id, err)
	}
	return p, true, nil
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// EachEventPosted is EachEvent with the endpoint of the latest attempt of
// the post that carried each event ("" when the event was never posted),
// found by the query itself (postedEndpoint): no round trip per row.
func (s *Store) EachEventPosted(ctx context.Context, q event.Query, fn func(e *event.Event, endpoint string) error) error {
	return s.eachEvent(ctx, q, true, fn)
}

// countedTypes are the types CountEventsSince reports.
var countedTypes = []event.Type{event.Queued, event.Succeeded, event.Deferred, event.Failed,
	event.Bounced, event.Registered, event.Deleted}

// CountEventsSince returns how many events of each type happened at or
// after since; types without events are left out. Each count reads one
// range of the (type, time, id) index and no table row.
func (s *Store) CountEventsSince(ctx context.Context, since time.Time) (map[event.Type]int64, error) {
	out := make(map[event.Type]int64)
	for _, t := range countedTypes {
		var n int64
		err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE type = ? AND time >= ?`,
			string(t), boundNanos(since)).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		if n > 0 {
			out[t] = n
		}
	}
	return out, nil
}
