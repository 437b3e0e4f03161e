package ui

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// searchEvents runs a search for the log screen: the first searchLimit+1
// rows (one more than shown tells whether more match), never a count of
// the whole period.
func (s *Server) searchEvents(ctx context.Context, search eventSearch) (eventsView, error) {
	v := eventsView{Search: search}
	if !search.valid() {
		return v, nil
	}
	q := search.Query
	q.Limit = searchLimit + 1
	rows, err := s.store.RecentEvents(ctx, q)
	if err != nil {
		return v, err
	}
	if len(rows) > searchLimit {
		v.More = true
		rows = rows[:searchLimit]
	}
	v.Found = len(rows)
	v.Pages = max(1, (len(rows)+pageSize-1)/pageSize)
	page := min(search.Page, v.Pages)
	v.Search.Page = page
	v.Rows = rows[(page-1)*pageSize : min(len(rows), page*pageSize)]
	return v, nil
}

// eventLog is the event log screen (GET /events): the search form and the
// results, or with htmx only the results.
func (s *Server) eventLog(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	search := parseSearch(r.URL.Query(), s.loc)
	v, err := s.searchEvents(ctx, search)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	if !search.valid() {
		status = http.StatusBadRequest
	}
	if htmxTarget(r) == "results" {
		s.render(w, r, status, eventResults(v))
		return
	}
	s.render(w, r, status, eventsPage(v))
}

// eventDetail shows one event (GET /events/{time}/{id}): with htmx the
// dialog alone, else the log page with the dialog open over it.
func (s *Server) eventDetail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, err := strconv.ParseInt(r.PathValue("time"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	search := parseSearch(r.URL.Query(), s.loc)
	d := &detailView{Back: search.pageURL(search.Page), Fragment: htmxTarget(r) == "dialog"}
	e, ok, err := s.store.EventAt(ctx, time.Unix(0, ns), r.PathValue("id"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d.Event, d.Found = e, ok
	if ok && s.posts != nil {
		// The endpoint, code and answer of the post that carried the
		// event, not today's settings, which may name another endpoint
		// or not post the event at all.
		// The event itself is what was asked for: a failed look-up of its
		// post is logged and the page shown without that part.
		if d.PostID, d.Last, _, err = s.posts.EventPost(ctx, e.Time, e.ID); err != nil {
			s.log.Warn("console: the post of an event could not be read", "event", e.ID, "err", err)
			d.PostID, d.Last = "", nil
		}
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusNotFound
	}
	if d.Fragment {
		s.render(w, r, status, eventDialog(d))
		return
	}
	v, err := s.searchEvents(ctx, search)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v.Detail = d
	s.render(w, r, status, eventsPage(v))
}

// webhookSettings returns the saved Event Webhook settings, nil when none
// are saved or the settings store is not wired.
func (s *Server) webhookSettings(ctx context.Context) (*settings.EventWebhook, error) {
	if s.settings == nil {
		return nil, nil
	}
	wh, ok, err := s.settings.EventWebhookSettings(ctx)
	if err != nil || !ok {
		return nil, err
	}
	return &wh, nil
}

// csvHeader is WIRE.md §5's column list for the Event Webhook log,
// followed by the event's own fields, which a log of delivery events needs
// to be useful: columns are only ever added at the end.
var csvHeader = []string{"received", "status", "hostName", "endpointUrl", "reason",
	"to", "origTo", "returnPath", "messageId", "queueId", "dsn", "relay", "class", "eventId"}

// eventCSV streams every event the search selects as CSV (GET
// /events.csv): UTF-8, LF line ends, oldest first, no limit. Rows are read
// a page at a time and written as they come, so memory stays flat however
// many rows match.
func (s *Server) eventCSV(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	search := parseSearch(r.URL.Query(), s.loc)
	if !search.valid() {
		s.plainError(w, r, http.StatusBadRequest, "err.badrequest", tr(ctx, cmpOr(search.FromErr, search.ToErr)))
		return
	}
	// A million rows take seconds to write to a slow client: lift the
	// server's write deadline for this response (a recorder in tests has
	// none to lift).
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	name := "posthorn-events-" + s.now().In(s.loc).Format("20060102-150405") + ".csv"
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")

	cw := csv.NewWriter(w) // LF line ends: UseCRLF is false
	_ = cw.Write(csvHeader)
	row := make([]string, len(csvHeader))
	rows := 0
	// endpoint is where the post that carried the event went (the
	// endpointUrl column), empty when it was never posted.
	write := func(e *event.Event, endpoint string) error {
		endpoint = shownEndpoint(ctx, endpoint)
		class := ""
		if e.Class != event.ClassNone {
			class = e.Class.String()
		}
		row = append(row[:0],
			e.Time.In(s.loc).Format(time.RFC3339), string(e.Type), e.Host, endpoint, e.Reason,
			e.To, e.OrigTo, e.ReturnPath, e.MessageID, e.QueueID, e.DSN, e.Relay, class, e.ID)
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		rows++
		if err := cw.Write(row); err != nil {
			return err
		}
		return ctx.Err()
	}
	var err error
	if s.posts != nil {
		err = s.posts.EachEventPosted(ctx, search.Query, write)
	} else {
		err = s.store.EachEvent(ctx, search.Query, func(e *event.Event) error { return write(e, "") })
	}
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		// The status line is sent: all that can be done is to stop and
		// log. The client sees a truncated file.
		s.log.Error("console: CSV download stopped", "rows", rows, "err", err)
	}
}

// csvSafe makes s a CSV cell: valid UTF-8 (event.ValidUTF8: reasons are
// what remote servers wrote, not always UTF-8), and never run by a
// spreadsheet as a formula: a reason text is written by the remote SMTP
// server, so a cell starting with = + - @ (or a tab or CR, which some
// programs skip) gets a leading apostrophe, as OWASP's "CSV Injection"
// page recommends.
func csvSafe(s string) string {
	s = event.ValidUTF8(s)
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// dashboard is the start page (GET /).
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	v, err := s.dashData(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, dashboardPage(v))
}

// dashboardLive is the part of the dashboard htmx polls.
func (s *Server) dashboardLive(w http.ResponseWriter, r *http.Request) {
	v, err := s.dashData(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, dashLive(v))
}

func (s *Server) dashData(ctx context.Context) (dashView, error) {
	var v dashView
	var err error
	if v.Counts, err = s.store.CountEventsSince(ctx, s.now().Add(-24*time.Hour)); err != nil {
		return v, err
	}
	for _, n := range v.Counts {
		v.Total += n
	}
	if v.Recent, err = s.store.RecentEvents(ctx, event.Query{Limit: 10}); err != nil {
		return v, err
	}
	if v.Webhook, err = s.webhookSettings(ctx); err != nil {
		return v, fmt.Errorf("read event webhook settings: %w", err)
	}
	v.Now = s.now()
	if s.spool != nil {
		if v.Spool, err = s.spool.SpoolStatus(ctx); err != nil {
			return v, err
		}
	}
	if s.posts != nil {
		if v.PostCounts, err = s.posts.CountPostsSince(ctx, s.now().Add(-24*time.Hour)); err != nil {
			return v, err
		}
		for _, n := range v.PostCounts {
			v.PostTotal += n
		}
	}
	if s.inbound != nil {
		if v.Inbound, err = s.inbound.CountInboundSince(ctx, s.now().Add(-24*time.Hour)); err != nil {
			return v, err
		}
		if v.RecentInbound, err = s.inbound.RecentInbound(ctx, event.InboundQuery{Limit: 10}); err != nil {
			return v, err
		}
		for _, n := range v.Inbound {
			v.InboundTotal += n
		}
	}
	return v, nil
}
