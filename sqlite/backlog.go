package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Backlog is one webhook's waiting work and its latest attempt, for the
// console's dashboard and the metrics. Each figure is one read of an index
// or a count over the pending rows, which are few unless an endpoint is
// down.
type Backlog struct {
	Pending int64     // events (Event Webhook) or POSTs (inbound) waiting
	Oldest  time.Time // when the oldest waiting item happened; zero when none waits
	Last    LastAttempt
}

// LastAttempt is the latest attempt of a webhook; At is zero when none
// was made.
type LastAttempt struct {
	At       time.Time
	Endpoint string // the Event Webhook's URL as posted to; "" for inbound
	Filter   string // the inbound filter; "" for the Event Webhook
	State    string // succeeded, deferred or failed
	Status   int    // HTTP status; 0 without an answer (always 0 for inbound: the log keeps none)
	Reason   string
}

// EventWebhookBacklog returns the Event Webhook's backlog.
func (s *Store) EventWebhookBacklog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var err error
	if b.Pending, err = s.PendingEvents(ctx); err != nil {
		return Backlog{}, err
	}
	// The oldest pending batch is the first of the partial index of
	// pending batches in event order (webhook_batches_pending).
	var oldest sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT first_time FROM webhook_batches
		WHERE `+pendingStates+` ORDER BY first_seq LIMIT 1`).Scan(&oldest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Backlog{}, fmt.Errorf("read oldest pending batch: %w", err)
	}
	b.Oldest = fromNanos(oldest)
	// Attempts are appended in the order they end: the last rowid is the
	// latest.
	var at sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT at, endpoint, state, status, reason FROM webhook_attempts
		ORDER BY rowid DESC LIMIT 1`).Scan(&at, &b.Last.Endpoint, &b.Last.State, &b.Last.Status, &b.Last.Reason)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Backlog{}, fmt.Errorf("read latest webhook attempt: %w", err)
	}
	b.Last.At = fromNanos(at)
	return b, nil
}

// InboundBacklog returns the Inbound Webhook's backlog, all filters
// together.
func (s *Store) InboundBacklog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var err error
	if b.Pending, err = s.PendingInbound(ctx); err != nil {
		return Backlog{}, err
	}
	var oldest sql.NullInt64
	err = s.r.QueryRowContext(ctx, `SELECT min(created_at) FROM inbound_posts WHERE state IN ('queued', 'deferred')`).Scan(&oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("read oldest pending inbound post: %w", err)
	}
	b.Oldest = fromNanos(oldest)
	// A finished inbound post is deleted with its message; what remains
	// is its log rows, whose status and reason the attempts update. The
	// newest row of each attempted status is one step of the status index
	// (inbound_log_status); the latest change among them is the latest
	// attempt.
	for _, st := range []string{"succeeded", "deferred", "failed"} {
		var upd int64
		var filter, reason string
		err := s.r.QueryRowContext(ctx, `SELECT updated_at, filter, reason FROM inbound_log
			WHERE status = ? ORDER BY received DESC, id DESC LIMIT 1`, st).Scan(&upd, &filter, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return Backlog{}, fmt.Errorf("read latest inbound attempt: %w", err)
		}
		if t := time.Unix(0, upd).UTC(); t.After(b.Last.At) {
			b.Last = LastAttempt{At: t, Filter: filter, State: st, Reason: reason}
		}
	}
	return b, nil
}
