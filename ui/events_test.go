package ui

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

var mainPart = regexp.MustCompile(`(?s)<main>.*</main>`)

// mainOf returns the page's <main> element, which goldens keep: the shell
// around it holds asset hashes that change with every style edit.
// The form token is random: goldens show a placeholder.
func mainOf(body string) string {
	return csrfField.ReplaceAllString(mainPart.FindString(body), `name="csrf" value="TOKEN"`) + "\n"
}

var rowTo = regexp.MustCompile(`<td class="addr">([^<]*)</td>`)

func rowsOf(body string) []string {
	var out []string
	for _, m := range rowTo.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestEventLog(t *testing.T) {
	e := newEnv(t, nil)
	// 250 events, one a minute, the newest at testNow; user0 is the
	// oldest, user249 the newest.
	e.commit(testEvents(250))
	c := e.client()
	c.login()

	tests := []struct {
		name   string
		query  string
		status int
		rows   []string // recipients shown, newest first
		more   bool
		golden string
	}{
		{name: "everything", query: "", status: 200, more: true, golden: "events_all.html",
			rows: []string{"user249@example.org", "user248@example.org", "user247@example.org", "user246@example.org",
				"user245@example.org", "user244@example.org", "user243@example.org", "user242@example.org",
				"user241@example.org", "user240@example.org"}},
		{name: "page 10", query: "page=10", status: 200, more: true,
			rows: []string{"user159@example.org", "user158@example.org", "user157@example.org", "user156@example.org",
				"user155@example.org", "user154@example.org", "user153@example.org", "user152@example.org",
				"user151@example.org", "user150@example.org"}},
		{name: "page past the end is the last", query: "page=99", status: 200, more: true,
			rows: []string{"user249@example.org", "user248@example.org", "user247@example.org", "user246@example.org",
				"user245@example.org", "user244@example.org", "user243@example.org", "user242@example.org",
				"user241@example.org", "user240@example.org"}},
		// Times are read in the console's zone (JST): testNow is 12:00, so
		// 11:55 to 12:00 holds users 244..248 (the end is exclusive).
		{name: "period in the console's zone", query: "from=2025-06-02T11:55&to=2025-06-02T12:00", status: 200, golden: "events_period.html",
			rows: []string{"user248@example.org", "user247@example.org", "user246@example.org", "user245@example.org", "user244@example.org"}},
		{name: "status", query: "status=failed&from=2025-06-02T11:30:00", status: 200,
			rows: []string{"user248@example.org", "user243@example.org", "user238@example.org", "user233@example.org",
				"user228@example.org", "user223@example.org"}},
		{name: "two statuses, page 2", query: "status=failed&status=bounced&from=2025-06-02T11:00&page=2", status: 200,
			rows: []string{"user224@example.org", "user223@example.org", "user219@example.org", "user218@example.org",
				"user214@example.org", "user213@example.org", "user209@example.org", "user208@example.org",
				"user204@example.org", "user203@example.org"}},
		{name: "nothing matches", query: "from=2030-01-01T00:00", status: 200, golden: "events_none.html"},
		{name: "bad time", query: "from=yesterday&to=2025-06-02T11:00", status: 400, golden: "events_badtime.html"},
		{name: "to before from", query: "from=2025-06-02T11:00&to=2025-06-02T10:00", status: 400},
		{name: "unknown status ignored", query: "status=nonesuch&from=2025-06-02T11:58", status: 200,
			rows: []string{"user249@example.org", "user248@example.org", "user247@example.org"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.get("/events?" + tc.query)
			wantStatus(t, resp, tc.status, body)
			got := rowsOf(body)
			if strings.Join(got, " ") != strings.Join(tc.rows, " ") {
				t.Errorf("rows:\n got %q\nwant %q", got, tc.rows)
			}
			if more := strings.Contains(body, `data-testid="more-notice"`); more != tc.more {
				t.Errorf("more notice shown: %v, want %v", more, tc.more)
			}
			if tc.golden != "" {
				golden(t, tc.golden, []byte(mainOf(body)))
			}
		})
	}

	// htmx paging gets the results section only.
	resp, body := c.get("/events?page=3", "HX-Request", "true", "HX-Target", "results")
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.HasPrefix(body, `<section id="results"`) || strings.Contains(body, "<html") {
		t.Errorf("htmx results fragment:\n%s", body)
	}
	if got := rowsOf(body); len(got) != 10 || got[0] != "user229@example.org" {
		t.Errorf("htmx page 3 rows %q", got)
	}
	// History restore needs the whole page.
	_, body = c.get("/events?page=3", "HX-Request", "true", "HX-Target", "results", "HX-History-Restore-Request", "true")
	if !strings.Contains(body, "<html") {
		t.Error("history restore got a fragment")
	}
}

func TestEventDetail(t *testing.T) {
	e := newEnv(t, withPosts)
	ctx := context.Background()
	evs := testEvents(30) // seq 1..30
	e.commit(evs)
	// Today's settings name another endpoint than the post used.
	if err := e.settings.SaveEventWebhookSettings(ctx, settings.EventWebhook{
		Endpoint: "https://today.example.com/posthorn", Deliveries: true, Version: 2, Timezone: "UTC",
		Interval: 1, MaxEvents: 100, Timeout: 30, RetryPeriod: settings.Duration(24 * time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	// evs[20..26] went out in one post, twice; evs[27] is in a post not
	// sent yet; evs[28] (failed, deliveries) in none.
	formBatch(t, e.store, "b-old", "deliveries", 21, 27,
		sqlite.Attempt{Attempt: 1, At: testNow, Endpoint: "https://old.example/hook?token=SECRET-TOKEN", State: PostDeferred,
			Status: 502, Reason: "HTTP 502", Response: []byte("<html>bad gateway</html>"), Next: testNow.Add(time.Minute)},
		sqlite.Attempt{Attempt: 2, At: testNow.Add(time.Minute), Endpoint: "https://old.example/hook?token=SECRET-TOKEN",
			State: PostSucceeded, Status: 200, Response: []byte(`{"accepted":7}`)})
	formBatch(t, e.store, "b-new", "deliveries", 28, 28)
	c := e.client()
	c.login()

	resp, body := c.get(eventKey(&evs[26]), "HX-Request", "true", "HX-Target", "dialog")
	wantStatus(t, resp, http.StatusOK, body)
	for _, want := range []string{`data-testid="detail-endpoint">https://old.example/hook<`, `data-testid="detail-code">200<`,
		`data-testid="detail-response">{&#34;accepted&#34;:7}<`, `href="/posts/b-old"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the detail lacks %s", want)
		}
	}
	if strings.Contains(body, "SECRET") || strings.Contains(body, "today.example.com") {
		t.Error("the detail shows a token or today's endpoint")
	}
	golden(t, "detail_fragment.html", []byte(body))

	_, body = c.get(eventKey(&evs[27]), "HX-Request", "true", "HX-Target", "dialog")
	if !strings.Contains(body, "in a post not sent yet") || !strings.Contains(body, `href="/posts/b-new"`) || strings.Contains(body, "detail-code") {
		t.Errorf("an event waiting in a post:\n%s", body)
	}
	_, body = c.get(eventKey(&evs[28]), "HX-Request", "true", "HX-Target", "dialog")
	if !strings.Contains(body, "(not posted)") || strings.Contains(body, "detail-post") {
		t.Errorf("an event in no post:\n%s", body)
	}

	resp, body = c.get(eventKey(&evs[24]) + "?status=bounced&page=1")
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.Contains(body, `<dialog open class="detail"`) || !strings.Contains(body, `href="/events?status=bounced"`) ||
		!strings.Contains(body, "(not posted)") {
		t.Errorf("no-JavaScript detail page:\n%s", mainOf(body))
	}
	golden(t, "detail_page.html", []byte(mainOf(body)))

	for _, path := range []string{"/events/1/nonesuch", eventKey(&evs[3]) + "x"} {
		resp, _ = c.get(path)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", path, resp.Status)
		}
	}
	if resp, _ := c.get("/events/notanumber/x"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bad time in the path: %s", resp.Status)
	}
}

// brokenEventPost is the production post log whose EventPost fails, as a
// store that cannot be read does.
type brokenEventPost struct{ PostLog }

func (brokenEventPost) EventPost(context.Context, time.Time, string) (string, *PostAttempt, bool, error) {
	return "", nil, false, errors.New("disk I/O error")
}

// TestEventDetailPostUnreadable: when the post of an event cannot be read,
// the event is still shown (without the post part) and the failure is
// logged as a warning, not a 500 for the whole page.
func TestEventDetailPostUnreadable(t *testing.T) {
	var logs bytes.Buffer
	e := newEnv(t, func(o *Options) {
		withPosts(o)
		o.Posts = brokenEventPost{o.Posts}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	evs := testEvents(3)
	e.commit(evs)
	formBatch(t, e.store, "b1", "deliveries", 1, 3, sqlite.Attempt{Attempt: 1, At: testNow,
		Endpoint: "https://hooks.example.com/in", State: PostSucceeded, Status: 200})
	c := e.client()
	c.login()
	for _, header := range [][]string{{"HX-Request", "true", "HX-Target", "dialog"}, nil} {
		resp, body := c.get(eventKey(&evs[1]), header...)
		wantStatus(t, resp, http.StatusOK, body)
		if !strings.Contains(body, evs[1].To) || strings.Contains(body, "detail-post") || strings.Contains(body, "detail-code") {
			t.Errorf("the event without its post (%v):\n%s", header, body)
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "disk I/O error") {
		t.Errorf("the failure is not logged as a warning:\n%s", logs.String())
	}
}

// TestEventCSVEndpoint: endpointUrl is where the post that carried the
// event went, without its token, and empty for an event never posted; a
// reason that is not UTF-8 is made valid.
func TestEventCSVEndpoint(t *testing.T) {
	e := newEnv(t, withPosts)
	evs := testEvents(30)
	evs[22].Reason = "bad \xff\xfe byte"
	e.commit(evs)
	formBatch(t, e.store, "b-old", "deliveries", 21, 27,
		sqlite.Attempt{Attempt: 1, At: testNow, Endpoint: "https://old.example/hook?token=SECRET-TOKEN", State: PostSucceeded, Status: 200})
	c := e.client()
	c.login()
	resp, body := c.get("/events.csv")
	wantStatus(t, resp, http.StatusOK, body)
	if strings.Contains(body, "SECRET") || !utf8.ValidString(body) {
		t.Error("a token or invalid UTF-8 in the CSV")
	}
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range records[1:] {
		want := ""
		if i >= 20 && i <= 26 && evs[i].Type != event.Bounced {
			want = "https://old.example/hook"
		}
		if r[3] != want {
			t.Errorf("row %d (%s): endpointUrl %q, want %q", i, r[1], r[3], want)
		}
	}
	if r := records[23]; r[4] != "bad \uFFFD\uFFFD byte" { // one per byte, as in JSON
		t.Errorf("reason %q", r[4])
	}
}

// TestCSVSafe: a cell is valid UTF-8 (one U+FFFD per invalid byte) and
// never starts a formula.
func TestCSVSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"=1+1", "'=1+1"},
		{"\xff=x", "\uFFFD=x"},
		{"-\xff\xfe", "'-\uFFFD\uFFFD"},
		{"\t@x", "'\t@x"},
	} {
		if got := csvSafe(tc.in); got != tc.want {
			t.Errorf("csvSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEventCSV(t *testing.T) {
	e := newEnv(t, nil)
	// More rows than one page of the store's EachEvent.
	evs := testEvents(2345)
	evs[2340].Reason = "=HYPERLINK(\"http://evil.example\")"
	evs[2341].Reason = "multi\nline, \"quoted\""
	e.commit(evs)
	c := e.client()
	c.login()

	resp, body := c.get("/events.csv")
	wantStatus(t, resp, http.StatusOK, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="posthorn-events-20250602-120000.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if strings.Contains(body, "\r\n") {
		t.Error("CSV has CRLF line ends, want LF")
	}
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(records[0], ","); got != "received,status,hostName,endpointUrl,reason,to,origTo,returnPath,messageId,queueId,dsn,relay,class,eventId" {
		t.Errorf("header %s", got)
	}
	if len(records) != 1+len(evs) {
		t.Fatalf("%d rows, want all %d", len(records)-1, len(evs))
	}
	// Oldest first, times in the console's zone.
	if records[1][0] != "2025-05-31T20:56:00+09:00" || records[1][5] != "user0@example.org" {
		t.Errorf("first row %q", records[1])
	}
	if r := records[2341]; r[4] != `'=HYPERLINK("http://evil.example")` {
		t.Errorf("formula cell not neutralised: %q", r[4])
	}
	if r := records[2342]; r[4] != "multi\nline, \"quoted\"" {
		t.Errorf("quoted cell %q", r[4])
	}
	if r := records[25]; r[1] != "bounced" || r[12] != "2" {
		t.Errorf("bounced row %q", r)
	}

	// The search selects the rows, with no limit of 100.
	_, body = c.get("/events.csv?status=failed&from=2025-06-02T00:00")
	records, err = csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	since := time.Date(2025, 6, 2, 0, 0, 0, 0, testZone)
	for _, ev := range evs {
		if ev.Type == event.Failed && !ev.Time.Before(since) {
			want++
		}
	}
	if len(records)-1 != want || want <= 100 {
		t.Errorf("failed since midnight: %d rows, want %d (more than 100)", len(records)-1, want)
	}
	golden(t, "events_head.csv", []byte(strings.Join(strings.SplitAfterN(body, "\n", 4)[:3], "")))

	resp, _ = c.get("/events.csv?from=nonsense")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("CSV with a bad period: %s", resp.Status)
	}
}

func TestDashboard(t *testing.T) {
	e := newEnv(t, nil)
	// 2000 events a minute apart, the newest at now: the last 24 h,
	// both ends included, hold events 559..1999.
	evs := testEvents(2000)
	e.commit(evs)
	// 30 inbound rows a minute apart and one two days old.
	in := testInbound(30)
	old := testInbound(1)
	old[0].Time = testNow.Add(-48 * time.Hour)
	if err := e.store.LogInbound(context.Background(), append(old, in...)); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login()
	resp, body := c.get("/")
	if !strings.Contains(body, `data-testid="inbound-count-total">30<`) || !strings.Contains(body, `data-testid="inbound-count-denied">6<`) {
		t.Error("inbound counts of the last 24 h are wrong")
	}
	wantStatus(t, resp, http.StatusOK, body)
	want := map[event.Type]int{}
	for _, ev := range evs {
		if !ev.Time.Before(testNow.Add(-24 * time.Hour)) {
			want[ev.Type]++
		}
	}
	for _, st := range statuses {
		cell := `data-testid="count-` + string(st) + `">` + itoa(want[st]) + `<`
		if !strings.Contains(body, cell) {
			t.Errorf("count of %s: want %d", st, want[st])
		}
	}
	if !strings.Contains(body, `data-testid="count-total">1441<`) {
		t.Error("total of the last 24 h is not 1441")
	}
	if got := rowsOf(body); len(got) != 0 {
		t.Errorf("unexpected plain address cells %q", got)
	}
	if !strings.Contains(body, "user1999@example.org") || !strings.Contains(body, `hx-trigger="every 10s"`) {
		t.Error("dashboard lacks the newest row or its polling")
	}
	resp, live := c.get("/dashboard/live", "HX-Request", "true", "HX-Target", "live")
	wantStatus(t, resp, http.StatusOK, live)
	if !strings.HasPrefix(live, `<div id="live"`) {
		t.Errorf("live fragment:\n%s", live)
	}
	if !strings.Contains(body, "Not set up") {
		t.Error("dashboard does not say the webhook is not set up")
	}
	// The newest inbound rows, live too.
	if !strings.Contains(live, `data-testid="recent-inbound"`) || !strings.Contains(live, `href="/inbound/31">support29@example.org<`) {
		t.Errorf("the newest inbound rows are missing:\n%s", live)
	}
	_ = url.Values{}
}

// TestDashboardPosts: the Event Webhook's posts by status over the last
// 24 hours (WIRE.md §5's statuses), and the endpoint it posts to without
// its token.
func TestDashboardPosts(t *testing.T) {
	e := newEnv(t, withPosts)
	// 1500 posts a minute apart: the last 24 hours hold the newest 1441.
	seedPosts(t, e.store, 1500, nil)
	if err := e.settings.SaveEventWebhookSettings(context.Background(), settings.EventWebhook{
		Endpoint: testEndpoint, Deliveries: true, Version: 2, Timezone: "UTC",
		Interval: 1, MaxEvents: 100, Timeout: 30, RetryPeriod: settings.Duration(24 * time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login()
	_, body := c.get("/")
	want := map[string]int{}
	for i := 1500 - 1441; i < 1500; i++ {
		want[postStatuses[i%4]]++
	}
	for _, st := range postStatuses {
		if cell := `data-testid="post-count-` + st + `">` + itoa(want[st]) + `<`; !strings.Contains(body, cell) {
			t.Errorf("posts %s: want %d", st, want[st])
		}
	}
	if !strings.Contains(body, `data-testid="post-count-total">1441<`) {
		t.Error("post total of the last 24 h is not 1441")
	}
	if strings.Contains(body, "SECRET-TOKEN") || !strings.Contains(body, "to https://hooks.example.com/posthorn<") {
		t.Errorf("the dashboard shows the endpoint's token or no endpoint:\n%s", mainOf(body))
	}
}
