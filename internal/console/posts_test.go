package console

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// TestConsolePosts: the console's post log over a real store reads rows in
// the store's order, pages through more rows than one read holds, shows
// attempts with their answers, and replays exactly the failed post asked
// for with posthorn replay's operation.
func TestConsolePosts(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	base := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	n := PostPage + 7
	batches := make([]sqlite.Formed, n)
	for i := range batches {
		at := base.Add(time.Duration(i) * time.Minute)
		batches[i] = sqlite.Formed{ID: fmt.Sprintf("batch-%05d", i), Family: "deliveries", First: int64(2*i + 1), Last: int64(2*i + 2),
			Events: 2, FirstTime: at, LastTime: at.Add(30 * time.Second), Host: "mx1.example.net", Endpoint: "https://hooks.example.com/in"}
	}
	if err := store.Form(ctx, batches, map[string]int64{"deliveries": int64(2 * n)}, base); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"batch-00003", "batch-00004"} {
		if err := store.Record(ctx, sqlite.Attempt{BatchID: id, Attempt: 1, At: base.Add(time.Hour), Host: "mx1.example.net",
			Endpoint: "https://hooks.example.com/in", State: sqlite.StateFailed, Status: 410, Reason: "HTTP 410: gone",
			Response: []byte("gone\xff")}); err != nil {
			t.Fatal(err)
		}
	}
	c := Posts{Store: store}

	rows, err := c.Posts(ctx, ui.PostQuery{Statuses: []string{ui.PostFailed}})
	if err != nil || len(rows) != 2 || rows[0].ID != "batch-00003" || rows[0].LastCode != 410 || rows[0].Reason != "HTTP 410: gone" {
		t.Fatalf("failed posts %+v, %v", rows, err)
	}
	seen := 0
	var last string
	err = c.EachPost(ctx, ui.PostQuery{Since: base.Add(2 * time.Minute)}, func(p *ui.Post) error {
		if p.ID <= last {
			t.Errorf("%s after %s", p.ID, last)
		}
		last = p.ID
		seen++
		return nil
	})
	if err != nil || seen != n-2 {
		t.Errorf("EachPost saw %d of %d: %v", seen, n-2, err)
	}

	p, attempts, _, ok, err := c.PostDetail(ctx, "batch-00003")
	if err != nil || !ok || len(attempts) != 1 || attempts[0].Code != 410 || attempts[0].Response != "gone\uFFFD" || p.Status != ui.PostFailed {
		t.Fatalf("detail %+v %+v %v %v", p, attempts, ok, err)
	}
	if _, _, _, ok, err := c.PostDetail(ctx, "nope"); ok || err != nil {
		t.Errorf("unknown post: %v %v", ok, err)
	}

	posts, events, err := c.Replay(ctx, p, base.Add(2*time.Hour))
	if err != nil || posts != 1 || events != 2 {
		t.Fatalf("replay: %d posts %d events, %v", posts, events, err)
	}
	b, _, _, _ := store.WebhookBatchByID(ctx, "batch-00003")
	other, _, _, _ := store.WebhookBatchByID(ctx, "batch-00004")
	if b.State != sqlite.StateQueued || other.State != sqlite.StateFailed {
		t.Errorf("after replay: %s %s, want queued failed", b.State, other.State)
	}

	// The screen's order: newest first.
	rows, err = c.Posts(ctx, ui.PostQuery{Newest: true, Limit: 2})
	if err != nil || len(rows) != 2 || rows[0].ID != fmt.Sprintf("batch-%05d", n-1) || rows[1].ID != fmt.Sprintf("batch-%05d", n-2) {
		t.Errorf("newest posts %+v, %v", rows, err)
	}

	// An event's post: the batch holding its seq, with the latest attempt.
	evs := make([]event.Event, 10) // seq 1..10: batch-00003 holds 7 and 8
	for i := range evs {
		evs[i] = event.Event{ID: fmt.Sprintf("e%d", i), Type: event.Succeeded, Time: base.Add(time.Duration(i) * time.Second)}
	}
	if err := store.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	id, att, ok, err := c.EventPost(ctx, evs[6].Time, evs[6].ID)
	if err != nil || !ok || id != "batch-00003" || att == nil || att.Code != 410 {
		t.Errorf("post of event 7: %q %+v %v %v", id, att, ok, err)
	}
	var endpoints []string
	err = c.EachEventPosted(ctx, event.Query{}, func(e *event.Event, endpoint string) error {
		endpoints = append(endpoints, endpoint)
		return nil
	})
	if err != nil || len(endpoints) != 10 || endpoints[6] != "https://hooks.example.com/in" || endpoints[0] != "" {
		t.Errorf("endpoints of the events %q, %v", endpoints, err)
	}
}
