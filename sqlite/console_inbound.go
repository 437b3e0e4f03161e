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

const inboundColumns = `id, received, received_offset, status, header_from, rcpt, host, message_id,
	queue_id, filter, reason`

func scanInbound(r rowScanner) (event.InboundLogEntry, error) {
	var e event.InboundLogEntry
	var ns, off int64
	var status string
	if err := r.Scan(&e.ID, &ns, &off, &status, &e.From, &e.To, &e.Host, &e.MessageID, &e.QueueID,
		&e.Filter, &e.Reason); err != nil {
		return event.InboundLogEntry{}, err
	}
	e.Time, e.Status = decodeTime(ns, off), event.InboundStatus(status)
	return e, nil
}

// RecentInbound returns the inbound log rows q selects newest first, by
// time and then id, both descending; q.AfterID is ignored. Each status is
// read from its own range of the (status, received, id) index and the
// ranges merged, as RecentEvents does for types.
func (s *Store) RecentInbound(ctx context.Context, q event.InboundQuery) ([]event.InboundLogEntry, error) {
	if q.Limit < 0 {
		return nil, fmt.Errorf("read recent inbound log: negative limit %d", q.Limit)
	}
	var statuses []event.InboundStatus
	for _, st := range q.Statuses {
		if !st.Valid() {
			return nil, fmt.Errorf("read recent inbound log: unknown status %q", st)
		}
		if !slices.Contains(statuses, st) {
			statuses = append(statuses, st)
		}
	}
	if len(statuses) == 0 {
		statuses = []event.InboundStatus{""}
	}
	var out []event.InboundLogEntry
	for _, st := range statuses {
		where := []string{"1"}
		var args []any
		if st != "" {
			where, args = append(where, "status = ?"), append(args, string(st))
		}
		if !q.Since.IsZero() {
			where, args = append(where, "received >= ?"), append(args, boundNanos(q.Since))
		}
		if !q.Until.IsZero() {
			where, args = append(where, "received < ?"), append(args, boundNanos(q.Until))
		}
		query := "SELECT " + inboundColumns + " FROM inbound_log WHERE " + strings.Join(where, " AND ") +
			" ORDER BY received DESC, id DESC"
		if q.Limit > 0 {
			query += " LIMIT ?"
			args = append(args, q.Limit)
		}
		rows, err := s.r.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("read recent inbound log: %w", err)
		}
		for rows.Next() {
			e, err := scanInbound(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("read recent inbound log: %w", err)
			}
			out = append(out, e)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read recent inbound log: %w", err)
		}
	}
	if len(statuses) > 1 {
		slices.SortFunc(out, func(a, b event.InboundLogEntry) int {
			return -cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
		})
		if q.Limit > 0 && len(out) > q.Limit {
			out = out[:q.Limit]
		}
	}
	return out, nil
}

// InboundEntry returns one inbound log row by its id; ok is false when
// there is none.
func (s *Store) InboundEntry(ctx context.Context, id int64) (event.InboundLogEntry, bool, error) {
	e, err := scanInbound(s.r.QueryRowContext(ctx, "SELECT "+inboundColumns+" FROM inbound_log WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return event.InboundLogEntry{}, false, nil
	}
	if err != nil {
		return event.InboundLogEntry{}, false, fmt.Errorf("read inbound log row %d: %w", id, err)
	}
	return e, true, nil
}

// CountInboundSince returns how many inbound log rows of each status were
// received at or after since; statuses without rows are left out. Each
// count reads one range of the (status, received, id) index.
func (s *Store) CountInboundSince(ctx context.Context, since time.Time) (map[event.InboundStatus]int64, error) {
	out := make(map[event.InboundStatus]int64)
	for _, st := range []event.InboundStatus{event.InboundQueued, event.InboundSucceeded, event.InboundDeferred,
		event.InboundFailed, event.InboundDenied} {
		var n int64
		err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM inbound_log WHERE status = ? AND received >= ?`,
			string(st), boundNanos(since)).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("count inbound log: %w", err)
		}
		if n > 0 {
			out[st] = n
		}
	}
	return out, nil
}
