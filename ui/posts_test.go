package ui

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var postRow = regexp.MustCompile(`<tr data-testid="post-row"><td class="time">([^<]*)</td>`)

func TestPostLog(t *testing.T) {
	e := newEnv(t, withPosts)
	seedPosts(t, e.store, 130, map[int]string{2: `<script>alert("reason")</script>`})
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
	// Newest first, as the Event and Inbound logs.
	if got := times(body); len(got) != 10 || got[0] != "2025-06-02 12:00:00" || got[9] != "2025-06-02 11:51:00" ||
		!strings.Contains(body, `data-testid="more-notice"`) {
		t.Errorf("first page: %q", got)
	}
	if strings.Contains(body, "SECRET-TOKEN") {
		t.Error("the endpoint's token is shown")
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
	if p, _, _, _, _ := storePosts(e.store).PostDetail(context.Background(), "b0003"); p.Status != PostQueued {
		t.Errorf("after replay the post is %s", p.Status)
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
