package sqlite

import (
	"cmp"
	"context"
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
	page := q
	for {
		where, args := periodWhere(page, "", ">")
		args = append(args, typeArgs...)
		args = append(args, eachPage)
		evs, err := s.queryEvents(ctx, "SELECT "+eventColumns+" FROM events WHERE "+where+typeWhere+
			" ORDER BY time, id LIMIT ?", args...)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		for i := range evs {
			if err := fn(&evs[i]); err != nil {
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
