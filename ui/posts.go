package ui

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/posthorn/posthorn/event"
)

// PostLog reads the Event Webhook's post log (WIRE.md §5: one row per
// post, i.e. per batch, with every attempt kept in its detail) and
// replays failed posts. cmd/posthorn adapts the store to it.
type PostLog interface {
	// Posts returns the rows q selects in the order of their first
	// event, oldest first, or newest first with q.Newest.
	Posts(ctx context.Context, q PostQuery) ([]Post, error)
	// EachPost calls fn for every row q selects (q.Limit ignored), in the
	// same order, in constant memory.
	EachPost(ctx context.Context, q PostQuery, fn func(*Post) error) error
	// PostDetail returns one post with its attempts, oldest first, and the
	// events it carries; ok is false when there is no such post.
	PostDetail(ctx context.Context, id string) (p Post, attempts []PostAttempt, events []event.Event, ok bool, err error)
	// EventPost returns the id of the post that carried the event with
	// this time and id (EventLog.EventAt's key) and its latest attempt
	// (nil when not attempted yet); ok is false when no post holds it.
	EventPost(ctx context.Context, t time.Time, id string) (postID string, last *PostAttempt, ok bool, err error)
	// EachEventPosted is EventLog.EachEvent with the endpoint of the
	// latest attempt of the post that carried each event, "" when it was
	// never posted.
	EachEventPosted(ctx context.Context, q event.Query, fn func(e *event.Event, endpoint string) error) error
	// CountPostsSince counts the posts of each status whose first event
	// is at or after since (the dashboard's 24 hours).
	CountPostsSince(ctx context.Context, since time.Time) (map[string]int64, error)
	// Replay queues the failed post again, as "posthorn replay" does, and
	// returns how many posts and events were queued.
	Replay(ctx context.Context, p Post, now time.Time) (posts int, events int64, err error)
}

// Post statuses (WIRE.md §5).
const (
	PostQueued    = "queued"
	PostDeferred  = "deferred"
	PostSucceeded = "succeeded"
	PostFailed    = "failed"
)

var postStatuses = []string{PostQueued, PostSucceeded, PostDeferred, PostFailed}

// PostQuery selects posts by the time of their events: a post matches
// when any of its events falls in [Since, Until).
type PostQuery struct {
	Since, Until time.Time // zero: no bound
	Statuses     []string  // empty: all
	Limit        int       // 0: no limit
	// Newest asks for newest first, as the screen shows them (the Event
	// and Inbound logs do too); the CSV is oldest first, in the order
	// the posts were made.
	Newest bool
}

// Post is one row of the post log.
type Post struct {
	ID        string
	Family    string // deliveries, bounces, blocks
	Status    string
	Events    int
	Received  time.Time // the time of its first event
	LastEvent time.Time
	Host      string
	Endpoint  string
	Attempts  int
	// LastCode is the HTTP status of the last attempt, 0 when none came.
	LastCode    int
	Reason      string
	NextAttempt time.Time // while queued or deferred
}

// PostAttempt is one POST of a post.
type PostAttempt struct {
	Attempt  int
	At       time.Time
	Host     string
	Endpoint string
	Status   string // what the attempt made of the post
	Code     int    // HTTP status, 0 when no answer came
	Reason   string
	Response string // the start of the answer
}

func postLabel(ctx context.Context, st string) string {
	if _, ok := catalog["istatus."+st]; ok {
		return tr(ctx, "istatus."+st)
	}
	return st
}

// postSearch is the post log's search form.
type postSearch struct {
	period
	Status []string
	Page   int
}

func parsePostSearch(v url.Values, loc *time.Location) postSearch {
	s := postSearch{period: parsePeriod(v, loc), Page: parsePage(v)}
	for _, st := range v["status"] {
		if has(postStatuses, st) && !has(s.Status, st) {
			s.Status = append(s.Status, st)
		}
	}
	return s
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s postSearch) query() PostQuery {
	return PostQuery{Since: s.Since, Until: s.Until, Statuses: s.Status}
}

func (s postSearch) values(page int) url.Values {
	v := s.period.values()
	for _, st := range s.Status {
		v.Add("status", st)
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

func (s postSearch) pageURL(page int) string { return withQuery("/posts", s.values(page)) }
func (s postSearch) csvURL() string          { return withQuery("/posts.csv", s.values(0)) }
func postKey(p *Post) string                 { return "/posts/" + url.PathEscape(p.ID) }
func (s postSearch) detailURL(p *Post) string {
	return withQuery(postKey(p), s.values(s.Page))
}

type postsView struct {
	Available bool
	Search    postSearch
	Rows      []Post
	Found     int
	More      bool
	Pages     int
	Detail    *postDetailView
	Replayed  string // the notice after a replay
}

type postDetailView struct {
	Post     Post
	Attempts []PostAttempt
	Events   []event.Event
	Found    bool
	Back     string
	Search   string // the search as URL parameters, for the replay form
	Fragment bool
}

func (s *Server) searchPosts(ctx context.Context, search postSearch) (postsView, error) {
	v := postsView{Available: s.posts != nil, Search: search}
	if !search.valid() || s.posts == nil {
		return v, nil
	}
	q := search.query()
	q.Limit, q.Newest = searchLimit+1, true
	rows, err := s.posts.Posts(ctx, q)
	if err != nil {
		return v, err
	}
	if len(rows) > searchLimit {
		v.More = true
		rows = rows[:searchLimit]
	}
	v.Found = len(rows)
	v.Pages = max(1, (len(rows)+pageSize-1)/pageSize)
	v.Search.Page = min(search.Page, v.Pages)
	v.Rows = rows[(v.Search.Page-1)*pageSize : min(len(rows), v.Search.Page*pageSize)]
	return v, nil
}

// postLog is the post log screen (GET /posts).
func (s *Server) postLog(w http.ResponseWriter, r *http.Request) {
	search := parsePostSearch(r.URL.Query(), s.loc)
	v, err := s.searchPosts(r.Context(), search)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if n := r.URL.Query().Get("replayed"); n != "" {
		if k, err := strconv.Atoi(n); err == nil && k >= 0 {
			v.Replayed = trf(r.Context(), "posts.replayed", k)
		}
	}
	status := http.StatusOK
	if !search.valid() {
		status = http.StatusBadRequest
	}
	if htmxTarget(r) == "results" {
		s.render(w, r, status, postResults(v))
		return
	}
	s.render(w, r, status, postsPage(v))
}

// postDetail shows one post with its attempts (GET /posts/{id}).
func (s *Server) postDetail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.posts == nil {
		http.NotFound(w, r)
		return
	}
	search := parsePostSearch(r.URL.Query(), s.loc)
	d := &postDetailView{Back: search.pageURL(search.Page), Search: search.values(search.Page).Encode(),
		Fragment: htmxTarget(r) == "dialog"}
	var err error
	d.Post, d.Attempts, d.Events, d.Found, err = s.posts.PostDetail(ctx, r.PathValue("id"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	if !d.Found {
		status = http.StatusNotFound
	}
	if d.Fragment {
		s.render(w, r, status, postDialog(d))
		return
	}
	v, err := s.searchPosts(ctx, search)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v.Detail = d
	s.render(w, r, status, postsPage(v))
}

// replayPost queues a failed post again (POST /posts/{id}/replay) and
// goes back to the list it was pressed on.
func (s *Server) replayPost(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.posts == nil {
		http.NotFound(w, r)
		return
	}
	p, _, _, ok, err := s.posts.PostDetail(ctx, r.PathValue("id"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		s.plainError(w, r, http.StatusNotFound, "err.nopost")
		return
	}
	if p.Status != PostFailed {
		s.plainError(w, r, http.StatusConflict, "err.notfailed", postLabel(ctx, p.Status))
		return
	}
	n, events, err := s.posts.Replay(ctx, p, s.now())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("console: post replayed", "user", infoFrom(ctx).user, "batch", p.ID, "posts", n, "events", events)
	back, _ := url.ParseQuery(r.PostFormValue("search"))
	search := parsePostSearch(back, s.loc)
	v := search.values(search.Page)
	v.Set("replayed", strconv.Itoa(n))
	http.Redirect(w, r, withQuery("/posts", v), http.StatusSeeOther)
}

// postCSVHeader is WIRE.md §5's column list for the Event Webhook log.
var postCSVHeader = []string{"received", "status", "hostName", "endpointUrl", "reason"}

// postCSV streams every post the search selects (GET /posts.csv): UTF-8,
// LF, oldest first, no limit, in constant memory.
func (s *Server) postCSV(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.posts == nil {
		http.NotFound(w, r)
		return
	}
	search := parsePostSearch(r.URL.Query(), s.loc)
	if !search.valid() {
		s.plainError(w, r, http.StatusBadRequest, "err.badrequest", tr(ctx, cmpOr(search.FromErr, search.ToErr)))
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	name := "posthorn-posts-" + s.now().In(s.loc).Format("20060102-150405") + ".csv"
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write(postCSVHeader)
	row := make([]string, len(postCSVHeader))
	rows := 0
	err := s.posts.EachPost(ctx, search.query(), func(p *Post) error {
		row = append(row[:0], p.Received.In(s.loc).Format(time.RFC3339), p.Status, p.Host, shownEndpoint(ctx, p.Endpoint), p.Reason)
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		rows++
		if err := cw.Write(row); err != nil {
			return err
		}
		return ctx.Err()
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("console: post log CSV stopped", "rows", rows, "err", err)
	}
}
