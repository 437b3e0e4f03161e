package ui

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Blocks screen (issue 7): the suppression list, searched and paged,
// with a form that adds addresses, delete and cancel per row, and a CSV
// export that `posthorn blocks import` reads back. Times on this screen
// are in the list's own zone (BlockList.BlockLocation), the zone its daily
// execution time is in, not the console's.

// blocksOnKey marks the requests of a console with a suppression list, so
// that the layout can offer the Blocks link.
type blocksOnKey struct{}

func blocksOn(ctx context.Context) bool {
	on, _ := ctx.Value(blocksOnKey{}).(bool)
	return on
}

// blockReasons are the reasons the add form offers, in the block service's
// words (blocks.ParseReason, which ui cannot import): the bounce classes
// that may register an address, not 10 and 11, the list's own refusals.
var blockReasons = []string{"manual", "unsubscribe", "1", "2", "3", "4", "5", "6", "7", "8", "9", "99"}

// blockStatuses are the states of an entry, in the order of its life.
var blockStatuses = []string{"scheduled", "registered", "deleted", "cancelled"}

// Limits of the add form. maxAddBlocks keeps one request's work (a write
// transaction per address) to seconds; larger lists go through `posthorn
// blocks import`. maxWatchDays is [blocks] watch_days' own bound.
const (
	maxAddBlocks   = 1000
	maxWatchDays   = 3650
	maxBlockFilter = 320 // longer than any address (RFC 5321 §4.5.3.1)
)

// blocksPerPage are the page sizes offered; the first is the default, the
// logs' 10 rows.
var blocksPerPage = []int{10, 50, 100}

// maxBlockPage bounds the page number read from a URL; a later page is
// shown as the last one anyway.
const maxBlockPage = 1_000_000

// blockReasonLabel is a reason in the page language: a bounce class with
// its number and its words ("2 unknown user"), as the webhook posts the
// number.
func blockReasonLabel(ctx context.Context, reason string) string {
	key := "breason." + reason
	if _, err := strconv.Atoi(reason); err == nil {
		key = "bclass." + reason
		if _, ok := catalog[key]; ok {
			return reason + " " + tr(ctx, key)
		}
		return reason
	}
	if _, ok := catalog[key]; ok {
		return tr(ctx, key)
	}
	return reason
}

func blockStatusLabel(ctx context.Context, status string) string {
	if _, ok := catalog["bstatus."+status]; ok {
		return tr(ctx, "bstatus."+status)
	}
	return status
}

// blockStatusClass colours an entry's state with the badges of the logs:
// in effect is what refuses mail (red), scheduled is pending (amber),
// removed entries are history (grey).
func blockStatusClass(status string) string {
	switch status {
	case "registered":
		return "status status-failed"
	case "scheduled":
		return "status status-deferred"
	}
	return "status"
}

// blockTime shows an instant in the screen's zone, "" for "not (yet)".
func blockTime(ctx context.Context, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return localTime(ctx, t)
}

// blockSearch is the search form of the list: the raw inputs and what is
// wrong with them.
type blockSearch struct {
	period         // created from/to, read in the list's zone
	Address string // substring
	Removed bool   // include deleted and cancelled entries
	Page    int
	Per     int
}

func parseBlockSearch(v url.Values, loc *time.Location) blockSearch {
	s := blockSearch{
		period:  parsePeriod(v, loc),
		Address: strings.TrimSpace(v.Get("address")),
		Removed: v.Get("removed") != "",
		Page:    1,
		Per:     blocksPerPage[0],
	}
	if len(s.Address) > maxBlockFilter {
		s.Address = s.Address[:maxBlockFilter]
	}
	if p, err := strconv.Atoi(v.Get("page")); err == nil && p >= 1 {
		s.Page = min(p, maxBlockPage)
	}
	if n, err := strconv.Atoi(v.Get("per")); err == nil {
		for _, ok := range blocksPerPage {
			if n == ok {
				s.Per = n
			}
		}
	}
	return s
}

// query is the search without paging.
func (s blockSearch) query() BlockQuery {
	return BlockQuery{Address: s.Address, Since: s.Since, Until: s.Until, Removed: s.Removed}
}

// filtered says whether the search narrows the list: an empty result is
// then "nothing matches", else "the list is empty".
func (s blockSearch) filtered() bool {
	return s.Address != "" || s.From != "" || s.To != "" || s.Removed
}

// values is the search as URL parameters; page 0 or 1 and the default page
// size are left out.
func (s blockSearch) values(page int) url.Values {
	v := s.period.values()
	if s.Address != "" {
		v.Set("address", s.Address)
	}
	if s.Removed {
		v.Set("removed", "1")
	}
	if s.Per != blocksPerPage[0] {
		v.Set("per", strconv.Itoa(s.Per))
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

func (s blockSearch) pageURL(page int) string { return withQuery("/blocks", s.values(page)) }
func (s blockSearch) csvURL() string          { return withQuery("/blocks.csv", s.values(0)) }

// back is the search as the row forms carry it, to come back to the same
// page after a delete or cancel.
func (s blockSearch) back() string { return s.values(s.Page).Encode() }

// blockForm is the add form as typed, with the errors next to its fields
// (catalog texts in the page language).
type blockForm struct {
	Addresses string
	Reason    string
	When      string // "next", "now" or "at"
	At        string // datetime-local as typed
	Watch     string // days as typed; "" is the configured period
	Errs      map[string]string
}

func newBlockForm() blockForm {
	return blockForm{Reason: blockReasons[0], When: "next", Errs: map[string]string{}}
}

// addResult is what became of one address of the add form.
type addResult struct {
	Address string
	Outcome string    // registered, scheduled, exists, invalid, error, skipped
	At      time.Time // scheduled: when it takes effect
	Msg     string    // invalid: why
}

// addOutcome is the result of one submission of the add form, kept for
// the page the browser is sent to after the post.
type addOutcome struct {
	owner   string // the session's form token: only that session sees it
	at      time.Time
	Results []addResult
	// Form holds the addresses that still need attention (refused or not
	// processed) with the choices made, to correct and send again.
	Form blockForm
}

func (o *addOutcome) count(outcome string) int {
	n := 0
	for _, r := range o.Results {
		if r.Outcome == outcome {
			n++
		}
	}
	return n
}

// addResults keeps the outcomes of recent submissions so that the add
// form can post, redirect and show every address's result on the page it
// redirects to (reloading that page adds nothing again). Bounded in count
// and age: a result is for reading right away. The zero value is ready.
type addResults struct {
	mu sync.Mutex
	m  map[string]*addOutcome
}

const (
	addResultsMax = 32
	addResultsTTL = 15 * time.Minute
)

func (c *addResults) put(o *addOutcome) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*addOutcome{}
	}
	for id, old := range c.m {
		if o.at.Sub(old.at) > addResultsTTL {
			delete(c.m, id)
		}
	}
	for len(c.m) >= addResultsMax {
		oldest := ""
		for id, old := range c.m {
			if oldest == "" || old.at.Before(c.m[oldest].at) {
				oldest = id
			}
		}
		delete(c.m, oldest)
	}
	id := token()
	c.m[id] = o
	return id
}

// get returns the outcome id names, nil when it expired, was dropped or
// belongs to another session.
func (c *addResults) get(owner, id string, now time.Time) *addOutcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.m[id]
	if o == nil || owner == "" || o.owner != owner || now.Sub(o.at) > addResultsTTL {
		return nil
	}
	return o
}

// blocksView is what the Blocks page shows.
type blocksView struct {
	Search    blockSearch
	Rows      []BlockEntry
	Total     int // entries the search selects
	Pages     int
	Form      blockForm
	AddOpen   bool        // the add form is shown open
	Added     *addOutcome // the result of the submission just made
	AddedGone bool        // ... which is no longer kept
	Done      string      // the notice after a delete or cancel
	ActionErr string      // why a delete or cancel did not happen
}

// blockZone reads the list's zone and makes it the zone this request's
// page shows and reads times in (the footer names it).
func (s *Server) blockZone(ctx context.Context) (*time.Location, error) {
	loc, err := s.blocks.BlockLocation(ctx)
	if err != nil {
		return nil, err
	}
	if loc == nil {
		loc = s.loc
	}
	infoFrom(ctx).loc = loc
	return loc, nil
}

// listBlocks fills the page of entries the search selects: a count for
// the pager, then one page, newest first.
func (s *Server) listBlocks(ctx context.Context, v *blocksView) error {
	if !v.Search.valid() {
		return nil
	}
	q := v.Search.query()
	total, err := s.blocks.CountBlocks(ctx, q)
	if err != nil {
		return err
	}
	v.Total = total
	v.Pages = max(1, (total+v.Search.Per-1)/v.Search.Per)
	v.Search.Page = min(v.Search.Page, v.Pages)
	if total == 0 {
		return nil
	}
	q.Offset, q.Limit = (v.Search.Page-1)*v.Search.Per, v.Search.Per
	v.Rows, err = s.blocks.ListBlocks(ctx, q)
	return err
}

// blocksPage is the Blocks screen (GET /blocks): the add form, the search
// and a page of entries, or with htmx only the entries.
func (s *Server) blocksPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc, err := s.blockZone(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	q := r.URL.Query()
	v := blocksView{Search: parseBlockSearch(q, loc), Form: newBlockForm()}
	if addr := q.Get("address_done"); addr != "" {
		switch q.Get("done") {
		case "deleted":
			v.Done = trf(ctx, "blocks.done.deleted", addr)
		case "cancelled":
			v.Done = trf(ctx, "blocks.done.cancelled", addr)
		}
	}
	if id := q.Get("added"); id != "" {
		if v.Added = s.addResults.get(infoFrom(ctx).csrf, id, s.now()); v.Added != nil {
			v.Form = v.Added.Form
			v.AddOpen = v.Form.Addresses != ""
		} else {
			v.AddedGone = true
		}
	}
	if err := s.listBlocks(ctx, &v); err != nil {
		s.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	if !v.Search.valid() {
		status = http.StatusBadRequest
	}
	if htmxTarget(r) == "results" {
		s.render(w, r, status, blockResults(v))
		return
	}
	s.render(w, r, status, blocksPage(v))
}

// parseBlockForm reads the add form. The addresses are split here and
// checked by the block service one by one; the other fields must all be
// right before anything is added.
func (s *Server) parseBlockForm(ctx context.Context, form url.Values, loc *time.Location) (f blockForm, addrs []string, when BlockWhen, watch int) {
	f = blockForm{
		Addresses: form.Get("addresses"),
		Reason:    form.Get("reason"),
		When:      form.Get("when"),
		At:        strings.TrimSpace(form.Get("at")),
		Watch:     strings.TrimSpace(form.Get("watch")),
		Errs:      map[string]string{},
	}
	// One per line; commas are taken as separators too, since an address
	// cannot hold one outside quotes and the service refuses it anyway.
	for _, a := range strings.FieldsFunc(f.Addresses, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' }) {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	switch {
	case len(addrs) == 0:
		f.Errs["addresses"] = tr(ctx, "blocks.err.none")
	case len(addrs) > maxAddBlocks:
		f.Errs["addresses"] = trf(ctx, "blocks.err.many", maxAddBlocks, len(addrs))
	}
	if !has(blockReasons, f.Reason) {
		f.Errs["reason"] = tr(ctx, "blocks.err.reason")
	}
	switch f.When {
	case "now":
		when.Now = true
	case "at":
		t, ok := parseLocal(f.At, loc)
		switch {
		case !ok:
			f.Errs["at"] = tr(ctx, "blocks.err.at")
		case !t.After(s.now()):
			// The service refuses it too; said here once, not per
			// address.
			f.Errs["at"] = tr(ctx, "blocks.err.past")
		default:
			when.At = t
		}
	case "next", "":
		f.When = "next"
	default:
		f.When = "next"
		f.Errs["when"] = tr(ctx, "blocks.err.when")
	}
	watch = -1
	if f.Watch != "" {
		n, err := strconv.Atoi(f.Watch)
		if err != nil || n < 0 || n > maxWatchDays {
			f.Errs["watch"] = trf(ctx, "blocks.err.watch", maxWatchDays)
		} else {
			watch = n
		}
	}
	return f, addrs, when, watch
}

// addBlocks handles the add form (POST /blocks): every address is added
// on its own, and the browser is sent to the list with each one's result.
func (s *Server) addBlocks(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc, err := s.blockZone(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	form, addrs, when, watch := s.parseBlockForm(ctx, r.PostForm, loc)
	if len(form.Errs) > 0 {
		v := blocksView{Search: parseBlockSearch(nil, loc), Form: form, AddOpen: true}
		if err := s.listBlocks(ctx, &v); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.render(w, r, http.StatusUnprocessableEntity, blocksPage(v))
		return
	}
	out := &addOutcome{owner: infoFrom(ctx).csrf, Results: make([]addResult, 0, len(addrs))}
	var retry []string
	failed := false
	for _, a := range addrs {
		res := addResult{Address: a}
		if failed {
			res.Outcome = "skipped"
			out.Results = append(out.Results, res)
			retry = append(retry, a)
			continue
		}
		e, err := s.blocks.AddBlock(ctx, a, form.Reason, when, watch)
		switch {
		case err == nil:
			res.Address = e.Address
			res.Outcome = "registered"
			if e.Status == "scheduled" {
				res.Outcome, res.At = "scheduled", e.Scheduled
			}
		case errors.Is(err, ErrBlockExists):
			res.Outcome = "exists"
		case errors.Is(err, ErrBlockInvalid):
			res.Outcome = "invalid"
			res.Msg = strings.TrimPrefix(err.Error(), ErrBlockInvalid.Error()+": ")
			retry = append(retry, a)
		default:
			// The store's fault, not the address's: the rest would most
			// likely fail alike, so they are left for another try.
			s.log.Error("console: add to the suppression list failed", "address", a, "err", err)
			res.Outcome = "error"
			failed = true
			retry = append(retry, a)
		}
		out.Results = append(out.Results, res)
	}
	out.at = s.now()
	out.Form = form
	out.Form.Addresses = strings.Join(retry, "\n")
	s.log.Info("console: addresses added to the suppression list", "user", infoFrom(ctx).user,
		"registered", out.count("registered"), "scheduled", out.count("scheduled"),
		"already", out.count("exists"), "refused", out.count("invalid"), "failed", out.count("error"))
	id := s.addResults.put(out)
	http.Redirect(w, r, "/blocks?added="+url.QueryEscape(id), http.StatusSeeOther)
}

// deleteBlock lifts a registered entry (POST /blocks/delete); cancelBlock
// drops a scheduled one (POST /blocks/cancel). Both go back to the page
// they were pressed on; when the entry changed meanwhile (deleted by
// someone else, taken effect, expired), that page says so with the list as
// it now is.
func (s *Server) deleteBlock(w http.ResponseWriter, r *http.Request) { s.removeBlock(w, r, false) }
func (s *Server) cancelBlock(w http.ResponseWriter, r *http.Request) { s.removeBlock(w, r, true) }

func (s *Server) removeBlock(w http.ResponseWriter, r *http.Request, cancel bool) {
	ctx := r.Context()
	loc, err := s.blockZone(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	addr := strings.TrimSpace(r.PostFormValue("address"))
	back, _ := url.ParseQuery(r.PostFormValue("search"))
	search := parseBlockSearch(back, loc)
	if addr == "" {
		http.Error(w, "400 bad request: no address", http.StatusBadRequest)
		return
	}
	var e BlockEntry
	done := "deleted"
	if cancel {
		done = "cancelled"
		e, err = s.blocks.CancelBlock(ctx, addr)
	} else {
		e, err = s.blocks.DeleteBlock(ctx, addr)
	}
	if err == nil {
		s.log.Info("console: suppression list entry "+done, "user", infoFrom(ctx).user, "address", e.Address)
		v := search.values(search.Page)
		v.Set("done", done)
		v.Set("address_done", cmpOr(e.Address, addr))
		http.Redirect(w, r, withQuery("/blocks", v), http.StatusSeeOther)
		return
	}
	v := blocksView{Search: search, Form: newBlockForm()}
	status := http.StatusConflict
	switch {
	case errors.Is(err, ErrNoBlock):
		v.ActionErr = trf(ctx, "blocks.err.gone", addr)
	case errors.Is(err, ErrBlockState) && cancel:
		v.ActionErr = trf(ctx, "blocks.err.incancel", addr)
	case errors.Is(err, ErrBlockState):
		v.ActionErr = trf(ctx, "blocks.err.indelete", addr)
	case errors.Is(err, ErrBlockInvalid):
		v.ActionErr, status = trf(ctx, "blocks.err.invalid", addr), http.StatusBadRequest
	default:
		s.serverError(w, r, err)
		return
	}
	if err := s.listBlocks(ctx, &v); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.render(w, r, status, blocksPage(v))
}

// blockCSVHeader is the header of `posthorn blocks export`, whose import
// reads this file back: the same columns, in the same order.
var blockCSVHeader = []string{"address", "reason", "status", "occurrences", "created", "effective", "expires", "removed"}

// blockCSVChunk is how many entries are read per query of the export.
const blockCSVChunk = 2000

// blocksCSV streams every entry the search selects (GET /blocks.csv),
// newest first like the screen, times in the list's zone as the command
// writes them. It reads a chunk at a time, so memory stays flat however
// long the list is, and pages by creation time rather than by offset: each
// chunk starts where the previous one ended, so a row added or removed
// meanwhile neither repeats nor drops a row, and a later chunk costs no
// more than the first.
func (s *Server) blocksCSV(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	loc, err := s.blockZone(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	search := parseBlockSearch(r.URL.Query(), loc)
	if !search.valid() {
		s.plainError(w, r, http.StatusBadRequest, "err.badrequest", tr(ctx, cmpOr(search.FromErr, search.ToErr)))
		return
	}
	q := search.query()
	q.Limit = blockCSVChunk
	// The first chunk is read before the status line goes out, so that a
	// store error is a 500 rather than an empty file.
	rows, err := s.blocks.ListBlocks(ctx, q)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	name := "posthorn-blocks-" + s.now().In(loc).Format("20060102-150405") + ".csv"
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	cw := csv.NewWriter(w)
	_ = cw.Write(blockCSVHeader)
	show := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("2006-01-02 15:04:05")
	}
	row := make([]string, len(blockCSVHeader))
	written := 0
	// last is the creation time of the last row written and ties how
	// many rows written share it: the next chunk is what was created up
	// to last, less those.
	var last time.Time
	ties := 0
	for {
		for i := range rows {
			e := &rows[i]
			row = append(row[:0], e.Address, e.Reason, e.Status, strconv.Itoa(e.Occurrences),
				show(e.Created), show(e.Scheduled), show(e.Expires), show(e.Removed))
			for j := range row {
				row[j] = csvSafe(row[j])
			}
			if err = cw.Write(row); err != nil {
				break
			}
			written++
			if e.Created.Equal(last) {
				ties++
			} else {
				last, ties = e.Created, 1
			}
		}
		if err != nil || len(rows) < blockCSVChunk {
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		// Until is exclusive: one nanosecond on takes in the rest of the
		// rows created at last, of which the first ties were written.
		q.Until, q.Offset = last.Add(time.Nanosecond), ties
		if rows, err = s.blocks.ListBlocks(ctx, q); err != nil {
			break
		}
	}
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		// The status line is sent: the client sees a truncated file.
		s.log.Error("console: suppression list CSV stopped", "rows", written, "err", err)
	}
}

// blockPages lists the pages the pager links: the first and the last,
// and two on each side of the current one; 0 stands for a gap. The list
// can run to a million entries, too many pages to link each.
func blockPages(page, pages int) []int {
	var out []int
	for p := 1; p <= pages; p++ {
		if p == 1 || p == pages || (p >= page-2 && p <= page+2) {
			out = append(out, p)
			continue
		}
		if out[len(out)-1] != 0 {
			out = append(out, 0)
		}
		if p < page-2 {
			p = page - 3 // jump to the window; the loop adds one
		} else {
			p = pages - 1
		}
	}
	return out
}
