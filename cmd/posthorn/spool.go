package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

var _ ui.Spool = (*consoleSpool)(nil)

// consoleSpool gives the dashboard each webhook's backlog and its
// endpoint's latest attempt. The counts come from the store's own methods;
// the oldest pending item and the latest attempt have none yet, so they
// are read here over a read-only connection of the same database, with
// queries that each read one row of an index (ARCHITECTURE.md: the
// console only reads). When sqlite.Store gains methods for them, these
// queries go; TestConsoleSpool runs them against the real schema, so a
// schema change that breaks them fails there.
type consoleSpool struct {
	store *sqlite.Store
	db    *sql.DB
}

func newConsoleSpool(store *sqlite.Store) (*consoleSpool, error) {
	abs, err := filepath.Abs(store.Path())
	if err != nil {
		return nil, fmt.Errorf("open spool reader: %w", err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs),
		RawQuery: url.Values{"mode": {"ro"}, "_busy_timeout": {"5000"}}.Encode()}
	db, err := sql.Open("sqlite3", u.String())
	if err != nil {
		return nil, fmt.Errorf("open spool reader: %w", err)
	}
	db.SetMaxOpenConns(1)
	return &consoleSpool{store: store, db: db}, nil
}

func (c *consoleSpool) Close() error { return c.db.Close() }

// nanosTime reads the store's Unix-nanosecond columns.
func nanosTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64)
}

func (c *consoleSpool) SpoolStatus(ctx context.Context) ([]ui.WebhookStatus, error) {
	ev := ui.WebhookStatus{Webhook: "event"}
	var err error
	if ev.Pending, err = c.store.PendingEvents(ctx); err != nil {
		return nil, err
	}
	// The oldest pending batch is the first of the partial index of
	// pending batches in event order (webhook_batches_pending).
	var oldest sql.NullInt64
	err = c.db.QueryRowContext(ctx, `SELECT first_time FROM webhook_batches
		WHERE state IN ('queued', 'deferred') ORDER BY first_seq LIMIT 1`).Scan(&oldest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read oldest pending batch: %w", err)
	}
	ev.Oldest = nanosTime(oldest)
	// Attempts are appended in the order they end: the last rowid is the
	// latest.
	var at sql.NullInt64
	err = c.db.QueryRowContext(ctx, `SELECT at, endpoint, state, status, reason FROM webhook_attempts
		ORDER BY rowid DESC LIMIT 1`).Scan(&at, &ev.Last.Endpoint, &ev.Last.Result, &ev.Last.Code, &ev.Last.Reason)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read latest attempt: %w", err)
	}
	ev.Last.At = nanosTime(at)

	in := ui.WebhookStatus{Webhook: "inbound"}
	if in.Pending, err = c.store.PendingInbound(ctx); err != nil {
		return nil, err
	}
	oldest = sql.NullInt64{}
	err = c.db.QueryRowContext(ctx, `SELECT min(created_at) FROM inbound_posts WHERE state IN ('queued', 'deferred')`).Scan(&oldest)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read oldest pending inbound post: %w", err)
	}
	in.Oldest = nanosTime(oldest)
	// A finished inbound post is deleted with its message; what remains
	// is its log rows, whose status and reason the attempts update. The
	// newest row of each attempted status is one step of the status index
	// (inbound_log_status); the latest change among them is the latest
	// attempt.
	for _, st := range []string{"succeeded", "deferred", "failed"} {
		var upd int64
		var filter, reason string
		err := c.db.QueryRowContext(ctx, `SELECT updated_at, filter, reason FROM inbound_log
			WHERE status = ? ORDER BY received DESC, id DESC LIMIT 1`, st).Scan(&upd, &filter, &reason)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read latest inbound attempt: %w", err)
		}
		if t := time.Unix(0, upd); t.After(in.Last.At) {
			in.Last = ui.LastAttempt{At: t, Endpoint: "filter " + filter, Result: st, Reason: reason}
		}
	}
	return []ui.WebhookStatus{ev, in}, nil
}
