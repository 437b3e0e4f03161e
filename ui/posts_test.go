package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// fakePosts is an in-memory post log; cmd/posthorn tests the adapter over
// the real store.
type fakePosts struct {
	mu       sync.Mutex
	rows     []Post // oldest first
	attempts map[string][]PostAttempt
	replayed []string
}

func (f *fakePosts) match(q PostQuery, p *Post) bool {
	return (q.Since.IsZero() || !p.LastEvent.Before(q.Since)) && (q.Until.IsZero() || p.Received.Before(q.Until)) &&
		(len(q.Statuses) == 0 || slices.Contains(q.Statuses, p.Status))
}

func (f *fakePosts) Posts(ctx context.Context, q PostQuery) ([]Post, error) {
	var out []Post
	err := f.EachPost(ctx, q, func(p *Post) error {
		if q.Limit > 0 && len(out) == q.Limit {
			return errStop
		}
		out = append(out, *p)
		return nil
	})
	if err == errStop {
		err = nil
	}
	return out, err
}

var errStop = fmt.Errorf("stop")

func (f *fakePosts) EachPost(_ context.Context, q PostQuery, fn func(*Post) error) error {
	f.mu.Lock()
	rows := slices.Clone(f.rows)
	f.mu.Unlock()
	for i := range rows {
		if f.match(q, &rows[i]) {
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakePosts) PostDetail(_ context.Context, id string) (Post, []PostAttempt, []event.Event, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.rows {
		if p.ID == id {
			return p, f.attempts[id], nil, true, nil
		}
	}
	return Post{}, nil, nil, false, nil
}

func (f *fakePosts) Replay(_ context.Context, p Post, now time.Time) (int, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rows {
		if f.rows[i].ID == p.ID {
			f.rows[i].Status, f.rows[i].Reason, f.rows[i].NextAttempt = PostQueued, "replayed", now
			f.replayed = append(f.replayed, p.ID)
			return 1, int64(p.Events), nil
		}
	}
	return 0, 0, nil
}

// testPosts makes n posts a minute apart, the newest at testNow, cycling
// through the statuses; failed ones have two attempts.
func testPosts(n int) *fakePosts {
	f := &fakePosts{attempts: map[string][]PostAttempt{}}
	for i := range n {
		at := testNow.Add(-time.Duration(n-1-i) * time.Minute).UTC()
		p := Post{ID: fmt.Sprintf("b%04d", i), Family: "deliveries", Status: postStatuses[i%4], Events: 3, Received: at,
			LastEvent: at.Add(time.Second), Host: "mx1.example.net", Endpoint: "https://hooks.example.com/posthorn", Attempts: 1}
		if p.Status == PostFailed {
			p.Attempts, p.LastCode, p.Reason = 2, 400, "HTTP 400: bad request"
			f.attempts[p.ID] = []PostAttempt{
				{Attempt: 1, At: at.Add(time.Minute), Status: PostDeferred, Code: 503, Reason: "HTTP 503", Response: "busy, try later"},
				{Attempt: 2, At: at.Add(2 * time.Minute), Status: PostFailed, Code: 400, Reason: "HTTP 400: bad request", Response: `{"error":"<script>x</script>"}`},
			}
		}
		f.rows = append(f.rows, p)
	}
	return f
}

var postRow = regexp.MustCompile(`<tr data-testid="post-row"><td class="time">([^<]*)</td>`)

func TestPostLog(t *testing.T) {
	posts := testPosts(130)
	posts.rows[2].Reason = `<script>alert("reason")</script>`
	e := newEnv(t, func(o *Options) { o.Posts = posts })
	c := e.client()
	c.login()
	times := func(body string) []string {
		var out []string
		for _, m := range postRow.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}

	resp, body := c.get("/posts")
	wantStatus(t, resp, http.StatusOK, body)
	if got := times(body); len(got) != 10 || !strings.Contains(body, `data-testid="more-notice"`) {
		t.Errorf("first page: %q", got)
	}
	if strings.Contains(body, `<script>alert`) {
		t.Error("a reason is not escaped")
	}
	golden(t, "posts_page1.html", []byte(mainOf(body)))

	// Status and period: failed ones from 11:30 JST on.
	_, body = c.get("/posts?status=failed&from=2025-06-02T11:30")
	if got := times(body); len(got) != 8 || strings.Count(body, `data-testid="replay"`) != 8 {
		t.Errorf("failed since 11:30: %d rows, %d replay buttons", len(got), strings.Count(body, `data-testid="replay"`))
	}
	_, body = c.get("/posts?page=10")
	if got := times(body); len(got) != 10 {
		t.Errorf("page 10: %q", got)
	}
	if resp, _ := c.get("/posts?from=nonsense"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad period: %s", resp.Status)
	}

	// Detail: every attempt with its code and the start of the answer.
	resp, body = c.get("/posts/b0003", "HX-Request", "true", "HX-Target", "dialog")
	wantStatus(t, resp, http.StatusOK, body)
	golden(t, "posts_detail.html", []byte(csrfField.ReplaceAllString(body, `name="csrf" value="TOKEN"`)))
	if resp, _ := c.get("/posts/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown post: %s", resp.Status)
	}

	// Replay: failed only, back to the same search with a notice.
	resp, body = c.post("/posts/b0001/replay", nil)
	wantStatus(t, resp, http.StatusConflict, body)
	resp, body = c.post("/posts/b0003/replay", url.Values{"search": {"status=failed&page=2"}})
	wantStatus(t, resp, http.StatusSeeOther, body)
	if loc := resp.Header.Get("Location"); loc != "/posts?page=2&replayed=1&status=failed" {
		t.Errorf("after replay to %q", loc)
	}
	if !slices.Equal(posts.replayed, []string{"b0003"}) {
		t.Errorf("replayed %v", posts.replayed)
	}
	_, body = c.get("/posts?replayed=1")
	if !strings.Contains(body, `data-testid="replayed">1 posts queued again`) {
		t.Error("no notice after the replay")
	}

	// CSV: all matching rows (32 failed, one of them replayed), WIRE.md §5.s columns.
	resp, body = c.get("/posts.csv?status=failed")
	wantStatus(t, resp, http.StatusOK, body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	if lines[0] != "received,status,hostName,endpointUrl,reason" || len(lines) != 1+31 || strings.Contains(body, "\r") {
		t.Errorf("CSV: %d rows, header %q", len(lines)-1, lines[0])
	}
	golden(t, "posts_failed.csv", []byte(body))
}

func TestPostLogUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	_, body := c.get("/posts")
	if !strings.Contains(body, `data-testid="unavailable"`) {
		t.Error("no notice without a post log")
	}
	for _, p := range []string{"/posts/x", "/posts.csv"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s", p, resp.Status)
		}
	}
}
