package ui

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// render writes a component as a complete response. It renders into a
// buffer first so that a failure half-way becomes a 500, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	var buf bytes.Buffer
	if err := c.Render(r.Context(), &buf); err != nil {
		s.serverError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages hold mail addresses and settings: keep them out of caches,
	// and answers to htmx differ from full pages for the same URL.
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "HX-Request, HX-Target, Cookie, Accept-Language")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// htmxTarget returns the element id an htmx request will swap into, or ""
// for a normal page load (and for htmx restoring history, which needs the
// whole page).
func htmxTarget(r *http.Request) string {
	if r.Header.Get("HX-Request") != "true" || r.Header.Get("HX-History-Restore-Request") == "true" {
		return ""
	}
	return r.Header.Get("HX-Target")
}

// statuses are the event types a search can select, in the order of a
// message's life.
var statuses = []event.Type{event.Queued, event.Succeeded, event.Deferred, event.Failed, event.Bounced}

// statusLabel is a type's name in the page language.
func statusLabel(ctx context.Context, t event.Type) string {
	if _, ok := catalog["status."+string(t)]; ok {
		return tr(ctx, "status."+string(t))
	}
	return string(t)
}

// localTime is how the console shows an instant: in the configured zone,
// to the second.
func localTime(ctx context.Context, t time.Time) string {
	return t.In(infoFrom(ctx).loc).Format("2006-01-02 15:04:05")
}

// fullTime shows an instant to the microsecond with its offset, for the
// detail dialog.
func fullTime(ctx context.Context, t time.Time) string {
	return t.In(infoFrom(ctx).loc).Format("2006-01-02 15:04:05.000000 -07:00")
}

func zoneName(ctx context.Context) string {
	loc := infoFrom(ctx).loc
	if loc == time.Local {
		name, _ := time.Now().Zone()
		return "Local (" + name + ")"
	}
	return loc.String()
}

// shorten cuts s to n runes with an ellipsis, for table cells; the detail
// dialog shows the whole text.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// period is the From/To part of a log search, as typed and as instants in
// the console's zone.
type period struct {
	From, To       string // datetime-local values as typed
	FromErr, ToErr string // catalog keys
	Since, Until   time.Time
}

func parsePeriod(v url.Values, loc *time.Location) period {
	p := period{From: v.Get("from"), To: v.Get("to")}
	if p.From != "" {
		if t, ok := parseLocal(p.From, loc); ok {
			p.Since = t
		} else {
			p.FromErr = "events.badtime"
		}
	}
	if p.To != "" {
		if t, ok := parseLocal(p.To, loc); ok {
			p.Until = t
		} else {
			p.ToErr = "events.badtime"
		}
	}
	if !p.Since.IsZero() && !p.Until.IsZero() && !p.Until.After(p.Since) {
		p.ToErr = "events.order"
	}
	return p
}

func (p period) valid() bool { return p.FromErr == "" && p.ToErr == "" }

func (p period) values() url.Values {
	v := url.Values{}
	if p.From != "" {
		v.Set("from", p.From)
	}
	if p.To != "" {
		v.Set("to", p.To)
	}
	return v
}

func parsePage(v url.Values) int {
	if p, err := strconv.Atoi(v.Get("page")); err == nil && p >= 1 && p <= searchLimit/pageSize {
		return p
	}
	return 1
}

// eventSearch is the event log's search form: the raw inputs, the query
// they make, and what is wrong with them.
type eventSearch struct {
	period
	Status []event.Type
	Page   int
	Query  event.Query
}

// pageSize and searchLimit: the log shows the first 100 results, 10 per
// page (WIRE.md §5).
const (
	pageSize    = 10
	searchLimit = 100
)

// datetime-local inputs send these forms (HTML "local date and time
// string"; seconds are optional).
var localLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}

func parseLocal(s string, loc *time.Location) (time.Time, bool) {
	for _, l := range localLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseSearch reads the search parameters of the event log and its CSV.
func parseSearch(v url.Values, loc *time.Location) eventSearch {
	s := eventSearch{period: parsePeriod(v, loc), Page: parsePage(v)}
	for _, st := range v["status"] {
		for _, known := range statuses {
			if st == string(known) && !hasType(s.Status, known) {
				s.Status = append(s.Status, known)
			}
		}
	}
	s.Query = event.Query{Since: s.Since, Until: s.Until, Types: s.Status}
	return s
}

func hasType(ts []event.Type, t event.Type) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// values is the search as URL parameters; page 0 or 1 leaves the page
// out.
func (s eventSearch) values(page int) url.Values {
	v := s.period.values()
	for _, t := range s.Status {
		v.Add("status", string(t))
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

func (s eventSearch) pageURL(page int) string { return withQuery("/events", s.values(page)) }
func (s eventSearch) csvURL() string          { return withQuery("/events.csv", s.values(0)) }

// eventKey is an event's path: the store's unique key, time and id.
func eventKey(e *event.Event) string {
	return "/events/" + strconv.FormatInt(e.Time.UnixNano(), 10) + "/" + url.PathEscape(e.ID)
}

func (s eventSearch) detailURL(e *event.Event) string {
	return withQuery(eventKey(e), s.values(s.Page))
}

// eventsView is what the event log page shows.
type eventsView struct {
	Search  eventSearch
	Rows    []event.Event // this page
	Found   int           // results fetched, at most searchLimit
	More    bool          // more than searchLimit match
	Pages   int
	Detail  *detailView // the dialog of a no-JavaScript detail link
	Webhook *settings.EventWebhook
}

// detailView is the content of the detail dialog.
type detailView struct {
	Event event.Event
	Found bool
	Back  string // the list the dialog was opened from
	// PostID is the post (batch) that carried the event, "" when none
	// did; Last is its latest attempt, nil when not attempted yet.
	PostID   string
	Last     *PostAttempt
	Fragment bool // opened by htmx into the page's dialog
}

// dashView is the dashboard's live part.
type dashView struct {
	Counts  map[event.Type]int64
	Total   int64
	Recent  []event.Event
	Webhook *settings.EventWebhook
	// PostCounts counts the Event Webhook's posts by status (WIRE.md §5)
	// over the same 24 hours; nil without a post log.
	PostCounts map[string]int64
	PostTotal  int64
	// RecentInbound is the newest rows of the inbound log.
	RecentInbound []event.InboundLogEntry
	// Inbound counts the inbound log's statuses; nil without an inbound
	// log.
	Inbound      map[event.InboundStatus]int64
	InboundTotal int64
	// Spool is each webhook's backlog and endpoint health; nil without a
	// Spool.
	Spool []WebhookStatus
	Now   time.Time
}

func inboundCountOf(m map[event.InboundStatus]int64, st event.InboundStatus) string {
	return strconv.FormatInt(m[st], 10)
}

func countOf(m map[event.Type]int64, t event.Type) string {
	return strconv.FormatInt(m[t], 10)
}

// postedFamilies names what the settings post, for the dashboard.
func postedFamilies(s *settings.EventWebhook) string {
	var out string
	for _, f := range []string{settings.Deliveries, settings.Bounces, settings.Blocks} {
		if s.Posts(f) {
			if out != "" {
				out += ", "
			}
			out += f
		}
	}
	return out
}

// pagerPages lists page numbers 1..n.
func pagerPages(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// commonZones are offered as suggestions in the time-zone field; any IANA
// name is accepted.
var commonZones = []string{"Local", "UTC", "Asia/Tokyo", "Asia/Seoul", "Asia/Shanghai", "Asia/Singapore",
	"Asia/Kolkata", "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
	"America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Australia/Sydney"}

// invalid marks a form field whose value was refused and points at the
// message below it (WAI-ARIA aria-invalid, aria-describedby).
func invalid(field string, bad bool) templ.Attributes {
	if !bad {
		return templ.Attributes{}
	}
	return templ.Attributes{"aria-invalid": "true", "aria-describedby": field + "-error"}
}

// shownEndpoint is an endpoint URL as the console shows it everywhere, as
// the logs, alerts, metrics and log commands do (settings.LogEndpoint):
// never with the token a receiver may have put in its query.
func shownEndpoint(_ context.Context, raw string) string {
	if raw == "" {
		return ""
	}
	return settings.LogEndpoint(raw)
}

// spoolRowID names a row of the backlog table for tests and styles.
func spoolRowID(w WebhookStatus) string {
	if w.Filter != "" {
		return "spool-filter-" + w.Filter
	}
	return "spool-" + w.Webhook
}
