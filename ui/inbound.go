package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// InboundLog reads the Inbound Webhook's log (WIRE.md §5).
type InboundLog interface {
	// RecentInbound returns what q selects newest first.
	RecentInbound(ctx context.Context, q event.InboundQuery) ([]event.InboundLogEntry, error)
	// InboundEntry returns one row by its id.
	InboundEntry(ctx context.Context, id int64) (event.InboundLogEntry, bool, error)
	// CountInboundSince counts the rows of each status from since on.
	CountInboundSince(ctx context.Context, since time.Time) (map[event.InboundStatus]int64, error)
	// EachInboundLog calls fn for every row q selects, oldest first, in
	// constant memory (the download).
	EachInboundLog(ctx context.Context, q event.InboundQuery, fn func(*event.InboundLogEntry) error) error
}

// InboundSettings reads and writes the Inbound Webhook's settings; ok is
// false when none were saved yet.
type InboundSettings interface {
	InboundSettings(ctx context.Context) (settings.Inbound, bool, error)
	SaveInboundSettings(ctx context.Context, in settings.Inbound) error
}

// PostfixLimit is one of Postfix's receive limits, as postconf reports it.
type PostfixLimit struct {
	Name, Value string
}

// SMTPMaxproc names the limit of concurrent SMTP sessions of all clients
// together: the maxproc of smtpd in master.cf (master(5)).
const SMTPMaxproc = "master.cf smtp/inet maxproc"

// inboundStatuses are the statuses an inbound search can select.
var inboundStatuses = []event.InboundStatus{event.InboundQueued, event.InboundSucceeded, event.InboundDeferred,
	event.InboundFailed, event.InboundDenied}

func inboundLabel(ctx context.Context, st event.InboundStatus) string {
	if _, ok := catalog["istatus."+string(st)]; ok {
		return tr(ctx, "istatus."+string(st))
	}
	return string(st)
}

// inboundSearch is the inbound log's search form.
type inboundSearch struct {
	period
	Status []event.InboundStatus
	Page   int
}

func parseInboundSearch(v url.Values, loc *time.Location) inboundSearch {
	s := inboundSearch{period: parsePeriod(v, loc), Page: parsePage(v)}
	for _, st := range v["status"] {
		for _, known := range inboundStatuses {
			if st == string(known) && !hasInbound(s.Status, known) {
				s.Status = append(s.Status, known)
			}
		}
	}
	return s
}

func hasInbound(list []event.InboundStatus, st event.InboundStatus) bool {
	for _, x := range list {
		if x == st {
			return true
		}
	}
	return false
}

func (s inboundSearch) values(page int) url.Values {
	v := s.period.values()
	for _, st := range s.Status {
		v.Add("status", string(st))
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

func (s inboundSearch) pageURL(page int) string { return withQuery("/inbound", s.values(page)) }

func (s inboundSearch) downloadURL() string { return withQuery("/inbound/download", s.values(0)) }

func inboundKey(e *event.InboundLogEntry) string {
	return "/inbound/" + strconv.FormatInt(e.ID, 10)
}

func (s inboundSearch) detailURL(e *event.InboundLogEntry) string {
	return withQuery(inboundKey(e), s.values(s.Page))
}

type inboundView struct {
	Available bool
	Search    inboundSearch
	Rows      []event.InboundLogEntry
	Found     int
	More      bool
	Pages     int
	Detail    *inboundDetailView
}

type inboundDetailView struct {
	Entry    event.InboundLogEntry
	Found    bool
	Back     string
	Fragment bool
}

func (s *Server) searchInbound(ctx context.Context, search inboundSearch) (inboundView, error) {
	v := inboundView{Available: s.inbound != nil, Search: search}
	if !search.valid() || s.inbound == nil {
		return v, nil
	}
	rows, err := s.inbound.RecentInbound(ctx, event.InboundQuery{
		Since: search.Since, Until: search.Until, Statuses: search.Status, Limit: searchLimit + 1,
	})
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

// inboundLog is the inbound log screen (GET /inbound).
func (s *Server) inboundLog(w http.ResponseWriter, r *http.Request) {
	search := parseInboundSearch(r.URL.Query(), s.loc)
	v, err := s.searchInbound(r.Context(), search)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	if !search.valid() {
		status = http.StatusBadRequest
	}
	if htmxTarget(r) == "results" {
		s.render(w, r, status, inboundResults(v))
		return
	}
	s.render(w, r, status, inboundPage(v))
}

// inboundDetail shows one row (GET /inbound/{id}).
func (s *Server) inboundDetail(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || s.inbound == nil {
		http.NotFound(w, r)
		return
	}
	search := parseInboundSearch(r.URL.Query(), s.loc)
	d := &inboundDetailView{Back: search.pageURL(search.Page), Fragment: htmxTarget(r) == "dialog"}
	d.Entry, d.Found, err = s.inbound.InboundEntry(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	if !d.Found {
		status = http.StatusNotFound
	}
	if d.Fragment {
		s.render(w, r, status, inboundDialog(d))
		return
	}
	v, err := s.searchInbound(ctx, search)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v.Detail = d
	s.render(w, r, status, inboundPage(v))
}

// inboundSettingsView is the Inbound Webhook settings page: allowed
// domains, the denied-log switch, the filter list and Postfix's limits.
type inboundSettingsView struct {
	Available  bool
	S          settings.Inbound
	Domains    string            // the textarea as typed
	Errs       map[string]string // "domains", "log_denied", "filters"
	DeleteName string            // the filter whose delete failed
	DeleteErr  string
	Saved      string // catalog key of the notice after a change
	Limits     []PostfixLimit
	LimitsErr  string
	// MaxMessageSize is Posthorn's [milter] max_message_size; SizeWarning
	// says it is lower than Postfix's message_size_limit.
	MaxMessageSize int64
	SizeWarning    bool
}

func (s *Server) currentInbound(ctx context.Context) (settings.Inbound, error) {
	in, _, err := s.inboundSettings.InboundSettings(ctx)
	return in, err
}

func (s *Server) newInboundSettingsView(ctx context.Context, in settings.Inbound) *inboundSettingsView {
	v := &inboundSettingsView{Available: true, S: in, Domains: strings.Join(in.Domains, "\n"), Errs: map[string]string{}}
	if s.postfixLimits != nil {
		limits, err := s.postfixLimits(ctx)
		if err != nil {
			v.LimitsErr = err.Error()
		}
		v.Limits = limits
		v.MaxMessageSize = s.maxMessageSize
		// A message Postfix accepts but the milter refuses (552 5.3.4)
		// is a confusing failure: warn when Posthorn's limit is the
		// lower one. message_size_limit 0 is no limit at all.
		for _, l := range limits {
			if l.Name != "message_size_limit" || s.maxMessageSize == 0 {
				continue
			}
			if n, err := strconv.ParseInt(l.Value, 10, 64); err == nil && (n == 0 || n > s.maxMessageSize) {
				v.SizeWarning = true
			}
		}
	}
	return v
}

// inboundSettingsPage (GET /settings/inbound).
func (s *Server) inboundSettingsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.inboundSettings == nil {
		s.render(w, r, http.StatusOK, inboundSettingsPage(&inboundSettingsView{}))
		return
	}
	in, err := s.currentInbound(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newInboundSettingsView(ctx, in)
	switch r.URL.Query().Get("done") {
	case "saved":
		v.Saved = "in.saved"
	case "deleted":
		v.Saved = "in.deleted"
	}
	s.render(w, r, http.StatusOK, inboundSettingsPage(v))
}

// saveInbound saves the allowed domains and the denied-log switch (POST
// /settings/inbound).
func (s *Server) saveInbound(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.inboundSettings == nil {
		http.Error(w, "404 not found: the Inbound Webhook settings are not available", http.StatusNotFound)
		return
	}
	in, err := s.currentInbound(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	raw := r.PostFormValue("domains")
	domains, lines := splitDomains(raw)
	in.Domains = domains
	in.LogDenied = r.PostFormValue("log_denied") != ""
	in = in.Normalized()
	errs, err := s.saveInboundSettings(ctx, in)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if errs != nil {
		v := s.newInboundSettingsView(ctx, in)
		v.Domains = raw
		// The domain rules' codes, to say each problem in the page's
		// language; the store's message is shown for anything else.
		domainErrs := in.DomainErrors()
		for _, f := range errs.Fields() {
			key, _, _ := strings.Cut(f, "[")
			if key == "domains" {
				// Name the line and the domain: the textarea has no
				// field per entry, and domains[2] means nothing to a
				// person.
				if i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(f, "domains["), "]")); err == nil && i < len(domains) {
					v.Errs["domains"] = joinErr(v.Errs["domains"], trf(ctx, "in.dom.at", lines[i], domains[i], domainError(ctx, domainErrs[i], errs[f], lines)))
					continue
				}
			}
			v.Errs[key] = joinErr(v.Errs[key], errs[f])
		}
		s.render(w, r, http.StatusUnprocessableEntity, inboundSettingsPage(v))
		return
	}
	s.log.Info("console: inbound settings saved", "user", infoFrom(ctx).user, "domains", len(in.Domains))
	http.Redirect(w, r, "/settings/inbound?done=saved", http.StatusSeeOther)
}

// splitDomains reads the domains textarea: one domain per line (commas
// also separate), blank entries skipped; lines[i] is the line number of
// domains[i], from 1.
func splitDomains(raw string) (domains []string, lines []int) {
	raw = strings.ReplaceAll(raw, "\r\n", "\n")
	for n, line := range strings.Split(strings.ReplaceAll(raw, "\r", "\n"), "\n") {
		for _, part := range strings.Split(line, ",") {
			if d := strings.TrimSpace(part); d != "" {
				domains, lines = append(domains, d), append(lines, n+1)
			}
		}
	}
	return domains, lines
}

// domainKeys are the catalog's words for the settings package's domain
// rules.
var domainKeys = map[settings.DomainCode]string{
	settings.DomainAddress: "in.dom.address",
	settings.DomainIDNA:    "in.dom.idna",
	settings.DomainLabel:   "in.dom.label",
	settings.DomainHyphen:  "in.dom.hyphen",
	settings.DomainChars:   "in.dom.chars",
	settings.DomainLong:    "in.dom.long",
	settings.DomainDot:     "in.dom.dot",
}

// domainError says what is wrong with one domain in the page language,
// an earlier entry it repeats named by its line; msg, the store's English
// message, when the rule has no words in the catalog.
func domainError(ctx context.Context, de settings.DomainError, msg string, lines []int) string {
	if de.Code == settings.DomainRepeat && de.Repeats >= 0 && de.Repeats < len(lines) {
		return trf(ctx, "in.dom.repeat", lines[de.Repeats])
	}
	if key, ok := domainKeys[de.Code]; ok {
		return tr(ctx, key)
	}
	return msg
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// saveInboundSettings saves in. Validation problems come back as
// InboundErrors, for the form; anything else as err.
func (s *Server) saveInboundSettings(ctx context.Context, in settings.Inbound) (settings.InboundErrors, error) {
	err := s.inboundSettings.SaveInboundSettings(ctx, in)
	if err == nil {
		return nil, nil
	}
	var ie settings.InboundErrors
	if errors.As(err, &ie) {
		return ie, nil
	}
	return nil, err
}
