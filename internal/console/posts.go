// Package console adapts the SQLite store to the interfaces the web
// console (package ui) declares: the one adapter cmd/posthorn wires, the
// console's tests and the e2e benchmark all use, so that they exercise
// what runs in production.
package console

import (
	"context"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

var _ ui.PostLog = Posts{}

// Posts is the console's view of the Event Webhook log: the store's
// batches as ui.Post rows.
type Posts struct {
	Store *sqlite.Store
	// Page is how many rows EachPost reads at a time, PostPage when zero
	// (tests set a small one to exercise the paging).
	Page int
}

// PostPage is how many rows EachPost reads at a time by default: memory
// stays flat however many rows the CSV holds.
const PostPage = 1000

func postQuery(q ui.PostQuery) sqlite.WebhookLogQuery {
	return sqlite.WebhookLogQuery{Since: q.Since, Until: q.Until, States: q.Statuses, Limit: q.Limit, Newest: q.Newest}
}

func toPost(b *sqlite.WebhookBatch) ui.Post {
	return ui.Post{
		ID: b.ID, Family: b.Family, Status: b.State, Events: b.Events, Received: b.Received, LastEvent: b.LastEvent,
		Host: b.Host, Endpoint: b.Endpoint, Attempts: b.Attempts, LastCode: b.LastStatus, Reason: b.Reason,
		NextAttempt: b.NextAttempt,
	}
}

func (c Posts) Posts(ctx context.Context, q ui.PostQuery) ([]ui.Post, error) {
	rows, err := c.Store.WebhookLog(ctx, postQuery(q))
	if err != nil {
		return nil, err
	}
	out := make([]ui.Post, len(rows))
	for i := range rows {
		out[i] = toPost(&rows[i])
	}
	return out, nil
}

// EachPost pages through the log by (Received, ID), the order WebhookLog
// sorts and resumes in.
func (c Posts) EachPost(ctx context.Context, q ui.PostQuery, fn func(*ui.Post) error) error {
	sq := postQuery(q)
	page := c.Page
	if page <= 0 {
		page = PostPage
	}
	sq.Limit, sq.Newest = page, false
	for {
		rows, err := c.Store.WebhookLog(ctx, sq)
		if err != nil {
			return err
		}
		for i := range rows {
			p := toPost(&rows[i])
			if err := fn(&p); err != nil {
				return err
			}
		}
		if len(rows) < page {
			return nil
		}
		last := rows[len(rows)-1]
		sq.AfterReceived, sq.AfterID = last.Received, last.ID
	}
}

func (c Posts) PostDetail(ctx context.Context, id string) (ui.Post, []ui.PostAttempt, []event.Event, bool, error) {
	b, attempts, ok, err := c.Store.WebhookBatchByID(ctx, id)
	if err != nil || !ok {
		return ui.Post{}, nil, nil, false, err
	}
	out := make([]ui.PostAttempt, len(attempts))
	for i := range attempts {
		out[i] = toAttempt(&attempts[i])
	}
	evs, err := c.Store.BatchEvents(ctx, id)
	if err != nil {
		return ui.Post{}, nil, nil, false, err
	}
	return toPost(&b), out, evs, true, nil
}

func toAttempt(a *sqlite.WebhookAttempt) ui.PostAttempt {
	return ui.PostAttempt{Attempt: a.Attempt, At: a.At, Host: a.Host, Endpoint: a.Endpoint, Status: a.State,
		Code: a.Status, Reason: a.Reason, Response: event.ValidUTF8(string(a.Response))}
}

func (c Posts) EventPost(ctx context.Context, t time.Time, id string) (string, *ui.PostAttempt, bool, error) {
	p, ok, err := c.Store.EventPostOf(ctx, t, id)
	if err != nil || !ok {
		return "", nil, false, err
	}
	var last *ui.PostAttempt
	if p.Last != nil {
		a := toAttempt(p.Last)
		last = &a
	}
	return p.BatchID, last, true, nil
}

func (c Posts) EachEventPosted(ctx context.Context, q event.Query, fn func(*event.Event, string) error) error {
	return c.Store.EachEventPosted(ctx, q, fn)
}

func (c Posts) CountPostsSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	return c.Store.CountWebhookPostsSince(ctx, since)
}

// Replay is posthorn replay's store operation (sqlite.Store.Requeue),
// narrowed to this one failed post.
func (c Posts) Replay(ctx context.Context, p ui.Post, now time.Time) (int, int64, error) {
	q := sqlite.WebhookLogQuery{ID: p.ID, States: []string{sqlite.StateFailed}}
	return c.Store.Requeue(ctx, q, now)
}
