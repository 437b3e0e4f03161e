package main

import (
	"context"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

var _ ui.PostLog = consolePosts{}

// consolePosts is the console's view of the Event Webhook log: the
// store's batches as ui.Post rows.
type consolePosts struct{ store *sqlite.Store }

// postPage is how many rows EachPost reads at a time: memory stays flat
// however many rows the CSV holds.
const postPage = 1000

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

func (c consolePosts) Posts(ctx context.Context, q ui.PostQuery) ([]ui.Post, error) {
	rows, err := c.store.WebhookLog(ctx, postQuery(q))
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
func (c consolePosts) EachPost(ctx context.Context, q ui.PostQuery, fn func(*ui.Post) error) error {
	sq := postQuery(q)
	sq.Limit, sq.Newest = postPage, false
	for {
		rows, err := c.store.WebhookLog(ctx, sq)
		if err != nil {
			return err
		}
		for i := range rows {
			p := toPost(&rows[i])
			if err := fn(&p); err != nil {
				return err
			}
		}
		if len(rows) < postPage {
			return nil
		}
		last := rows[len(rows)-1]
		sq.AfterReceived, sq.AfterID = last.Received, last.ID
	}
}

func (c consolePosts) PostDetail(ctx context.Context, id string) (ui.Post, []ui.PostAttempt, []event.Event, bool, error) {
	b, attempts, ok, err := c.store.WebhookBatchByID(ctx, id)
	if err != nil || !ok {
		return ui.Post{}, nil, nil, false, err
	}
	out := make([]ui.PostAttempt, len(attempts))
	for i := range attempts {
		out[i] = toAttempt(&attempts[i])
	}
	evs, err := c.store.BatchEvents(ctx, id)
	if err != nil {
		return ui.Post{}, nil, nil, false, err
	}
	return toPost(&b), out, evs, true, nil
}

func toAttempt(a *sqlite.WebhookAttempt) ui.PostAttempt {
	return ui.PostAttempt{Attempt: a.Attempt, At: a.At, Host: a.Host, Endpoint: a.Endpoint, Status: a.State,
		Code: a.Status, Reason: a.Reason, Response: event.ValidUTF8(string(a.Response))}
}

func (c consolePosts) EventPost(ctx context.Context, t time.Time, id string) (string, *ui.PostAttempt, bool, error) {
	p, ok, err := c.store.EventPostOf(ctx, t, id)
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

func (c consolePosts) EachEventPosted(ctx context.Context, q event.Query, fn func(*event.Event, string) error) error {
	return c.store.EachEventPosted(ctx, q, fn)
}

func (c consolePosts) CountPostsSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	return c.store.CountWebhookPostsSince(ctx, since)
}

// Replay is posthorn replay's store operation (sqlite.Store.Requeue),
// narrowed to this one failed post.
func (c consolePosts) Replay(ctx context.Context, p ui.Post, now time.Time) (int, int64, error) {
	q := sqlite.WebhookLogQuery{ID: p.ID, States: []string{sqlite.StateFailed}}
	return c.store.Requeue(ctx, q, now)
}
