package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The dashboard's reads beyond the logs' own (backlog.go has the
// webhooks' backlogs).

// CountWebhookPostsSince counts the Event Webhook's posts of each status
// (WIRE.md §5: queued, succeeded, deferred, failed) whose first event is at
// or after since; statuses without posts are left out. Each count reads
// one range of the (state, first_time, batch_id) index.
func (s *Store) CountWebhookPostsSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	for _, st := range []string{StateQueued, StateSucceeded, StateDeferred, StateFailed} {
		var n int64
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM webhook_batches WHERE state = ? AND first_time >= ?`,
			st, boundNanos(since)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count webhook posts: %w", err)
		}
		if n > 0 {
			out[st] = n
		}
	}
	return out, nil
}

// FilterBacklog is one inbound filter's waiting posts and the latest
// attempt among them.
type FilterBacklog struct {
	Filter  string
	Pending int64
	Oldest  time.Time
	// Last is the attempt of the newest waiting post that was tried: for
	// a filter whose endpoint is down, how it fails now. Zero At when
	// none of its waiting posts was tried.
	Last LastAttempt
}

// InboundBacklogByFilter returns the waiting posts of each filter that has
// any, by filter name. A dead endpoint shows here even while the other
// filters' posts succeed, which the Inbound Webhook's one latest attempt
// hides. It reads the partial index of waiting posts by filter
// (inbound_posts_filter), which holds only what waits.
func (s *Store) InboundBacklogByFilter(ctx context.Context) ([]FilterBacklog, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT filter, count(*), min(created_at) FROM inbound_posts
		WHERE state IN ('queued', 'deferred') GROUP BY filter ORDER BY filter`)
	if err != nil {
		return nil, fmt.Errorf("read inbound backlog by filter: %w", err)
	}
	var out []FilterBacklog
	for rows.Next() {
		var f FilterBacklog
		var oldest int64
		if err := rows.Scan(&f.Filter, &f.Pending, &oldest); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read inbound backlog by filter: %w", err)
		}
		f.Oldest = time.Unix(0, oldest).UTC()
		out = append(out, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inbound backlog by filter: %w", err)
	}
	for i := range out {
		f := &out[i]
		var upd int64
		err := s.r.QueryRowContext(ctx, `SELECT updated_at, state, last_status, last_reason FROM inbound_posts
			WHERE filter = ? AND state IN ('queued', 'deferred') AND attempts > 0 ORDER BY created_at DESC LIMIT 1`, f.Filter).
			Scan(&upd, &f.Last.State, &f.Last.Status, &f.Last.Reason)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read latest attempt of filter %s: %w", f.Filter, err)
		}
		f.Last.At, f.Last.Filter = time.Unix(0, upd).UTC(), f.Filter
	}
	return out, nil
}
