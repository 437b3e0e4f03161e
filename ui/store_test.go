package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// storePosts is the post log over a real store, as cmd/posthorn's
// consolePosts adapts it (which cmd/posthorn's own tests check); the
// console's tests use it so that the screens meet real rows and queries.
type storePosts struct{ s *sqlite.Store }

func (p storePosts) query(q PostQuery) sqlite.WebhookLogQuery {
	return sqlite.WebhookLogQuery{Since: q.Since, Until: q.Until, States: q.Statuses, Limit: q.Limit, Newest: q.Newest}
}

func toTestPost(b *sqlite.WebhookBatch) Post {
	return Post{ID: b.ID, Family: b.Family, Status: b.State, Events: b.Events, Received: b.Received, LastEvent: b.LastEvent,
		Host: b.Host, Endpoint: b.Endpoint, Attempts: b.Attempts, LastCode: b.LastStatus, Reason: b.Reason, NextAttempt: b.NextAttempt}
}

func toTestAttempt(a *sqlite.WebhookAttempt) PostAttempt {
	return PostAttempt{Attempt: a.Attempt, At: a.At, Host: a.Host, Endpoint: a.Endpoint, Status: a.State, Code: a.Status,
		Reason: a.Reason, Response: strings.ToValidUTF8(string(a.Response), "\uFFFD")}
}

func (p storePosts) Posts(ctx context.Context, q PostQuery) ([]Post, error) {
	rows, err := p.s.WebhookLog(ctx, p.query(q))
	out := make([]Post, len(rows))
	for i := range rows {
		out[i] = toTestPost(&rows[i])
	}
	return out, err
}

func (p storePosts) EachPost(ctx context.Context, q PostQuery, fn func(*Post) error) error {
	sq := p.query(q)
	sq.Limit, sq.Newest = 7, false // small pages: the paging is exercised
	for {
		rows, err := p.s.WebhookLog(ctx, sq)
		if err != nil {
			return err
		}
		for i := range rows {
			r := toTestPost(&rows[i])
			if err := fn(&r); err != nil {
				return err
			}
		}
		if len(rows) < sq.Limit {
			return nil
		}
		sq.AfterReceived, sq.AfterID = rows[len(rows)-1].Received, rows[len(rows)-1].ID
	}
}

func (p storePosts) PostDetail(ctx context.Context, id string) (Post, []PostAttempt, []event.Event, bool, error) {
	b, attempts, ok, err := p.s.WebhookBatchByID(ctx, id)
	if err != nil || !ok {
		return Post{}, nil, nil, false, err
	}
	out := make([]PostAttempt, len(attempts))
	for i := range attempts {
		out[i] = toTestAttempt(&attempts[i])
	}
	evs, err := p.s.BatchEvents(ctx, id)
	return toTestPost(&b), out, evs, err == nil, err
}

func (p storePosts) EventPost(ctx context.Context, t time.Time, id string) (string, *PostAttempt, bool, error) {
	ep, ok, err := p.s.EventPostOf(ctx, t, id)
	if err != nil || !ok {
		return "", nil, false, err
	}
	var last *PostAttempt
	if ep.Last != nil {
		a := toTestAttempt(ep.Last)
		last = &a
	}
	return ep.BatchID, last, true, nil
}

func (p storePosts) EachEventPosted(ctx context.Context, q event.Query, fn func(*event.Event, string) error) error {
	return p.s.EachEventPosted(ctx, q, fn)
}

func (p storePosts) Replay(ctx context.Context, post Post, now time.Time) (int, int64, error) {
	return p.s.Requeue(ctx, sqlite.WebhookLogQuery{ID: post.ID, States: []string{sqlite.StateFailed}}, now)
}

// testEndpoint carries a token in its query, which the console must never
// show.
const testEndpoint = "https://hooks.example.com/posthorn?token=SECRET-TOKEN"

// seedPosts stores n posts of three delivery events each, a minute apart,
// the newest at testNow, cycling through the statuses queued, succeeded,
// deferred, failed; failed ones have two attempts. reason, when set,
// replaces the reason of post i.
func seedPosts(t testing.TB, s *sqlite.Store, n int, reasons map[int]string) {
	t.Helper()
	ctx := context.Background()
	last, err := s.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	var formed []sqlite.Formed
	for i := range n {
		at := testNow.Add(-time.Duration(n-1-i) * time.Minute).UTC()
		first := last + int64(3*i) + 1
		for k := range 3 {
			evs = append(evs, event.Event{ID: fmt.Sprintf("post%04d-%d", i, k), Type: event.Succeeded,
				Time: at.Add(time.Duration(k) * 500 * time.Millisecond), Host: "mx1.example.net",
				To: fmt.Sprintf("user%d@example.org", 3*i+k), QueueID: fmt.Sprintf("4bX%05dQ", i), DSN: "2.0.0", Reason: "250 2.0.0 OK"})
		}
		formed = append(formed, sqlite.Formed{ID: fmt.Sprintf("b%04d", i), Family: "deliveries", First: first, Last: first + 2,
			Events: 3, FirstTime: at, LastTime: at.Add(time.Second), Host: "mx1.example.net", Endpoint: testEndpoint})
	}
	if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := s.Form(ctx, formed, map[string]int64{"deliveries": last + int64(3*n)}, testNow); err != nil {
		t.Fatal(err)
	}
	for i, f := range formed {
		at := f.FirstTime
		record := func(a sqlite.Attempt) {
			t.Helper()
			a.BatchID, a.Host, a.Endpoint = f.ID, "mx1.example.net", testEndpoint
			if r, ok := reasons[i]; ok {
				a.Reason = r
			}
			if err := s.Record(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		switch postStatuses[i%4] {
		case PostSucceeded:
			record(sqlite.Attempt{Attempt: 1, At: at.Add(time.Minute), State: PostSucceeded, Status: 200, Response: []byte("ok")})
		case PostDeferred:
			record(sqlite.Attempt{Attempt: 1, At: at.Add(time.Minute), State: PostDeferred, Status: 503, Reason: "HTTP 503",
				Response: []byte("busy, try later"), Next: at.Add(10 * time.Minute)})
		case PostFailed:
			record(sqlite.Attempt{Attempt: 1, At: at.Add(time.Minute), State: PostDeferred, Status: 503, Reason: "HTTP 503",
				Response: []byte("busy, try later"), Next: at.Add(2 * time.Minute)})
			record(sqlite.Attempt{Attempt: 2, At: at.Add(2 * time.Minute), State: PostFailed, Status: 400, Reason: "HTTP 400: bad request",
				Response: []byte(`{"error":"<script>x</script>"}`)})
		}
	}
}

// withPosts turns on the post log over the env's store.
func withPosts(o *Options) { o.Posts = storePosts{o.Store.(*sqlite.Store)} }

// formBatch stores a batch of family over seqs [first, last] (as the
// dispatcher forms them) and records its attempts.
func formBatch(t testing.TB, s *sqlite.Store, id, family string, first, last int64, attempts ...sqlite.Attempt) {
	t.Helper()
	ctx := context.Background()
	err := s.Form(ctx, []sqlite.Formed{{ID: id, Family: family, First: first, Last: last, Events: int(last - first + 1),
		FirstTime: testNow, LastTime: testNow, Host: "mx1.example.net"}}, map[string]int64{family: last}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attempts {
		a.BatchID = id
		if err := s.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
}

func (p storePosts) CountPostsSince(ctx context.Context, since time.Time) (map[string]int64, error) {
	return p.s.CountWebhookPostsSince(ctx, since)
}
