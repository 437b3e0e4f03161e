package ui

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockTestZone is the suppression list's zone in these tests: neither UTC nor
// the console's JST, so that a time shown or read in the wrong zone shows.
var blockTestZone = time.FixedZone("EST", -5*3600)

// fakeBlocks is an in-memory suppression list with the block service's
// rules as the console meets them: normalised addresses, one live entry
// per address, delete for registered and cancel for scheduled entries,
// the next execution time at 00:00 in its zone.
type fakeBlocks struct {
	mu      sync.Mutex
	now     func() time.Time
	entries []BlockEntry // in insertion order: the index breaks ties
	lists   []BlockQuery // every ListBlocks query, in order
	counts  []BlockQuery
	// afterList, when set, runs after each ListBlocks (outside the lock),
	// to change the list while a reader pages through it.
	afterList func(n int)
	// failAdd makes AddBlock of that address fail with the error.
	failAdd map[string]error
	// failList makes every ListBlocks fail.
	failList error
}

func newFakeBlocks(now func() time.Time) *fakeBlocks {
	return &fakeBlocks{now: now, failAdd: map[string]error{}}
}

func (f *fakeBlocks) BlockLocation(context.Context) (*time.Location, error) {
	return blockTestZone, nil
}

func (f *fakeBlocks) match(e BlockEntry, q BlockQuery) bool {
	return strings.Contains(strings.ToLower(e.Address), strings.ToLower(q.Address)) &&
		(q.Since.IsZero() || !e.Created.Before(q.Since)) &&
		(q.Until.IsZero() || e.Created.Before(q.Until)) &&
		(q.Removed || e.Removed.IsZero())
}

func (f *fakeBlocks) ListBlocks(ctx context.Context, q BlockQuery) ([]BlockEntry, error) {
	f.mu.Lock()
	f.lists = append(f.lists, q)
	n := len(f.lists)
	if f.failList != nil {
		f.mu.Unlock()
		return nil, f.failList
	}
	var idx []int
	for i, e := range f.entries {
		if f.match(e, q) {
			idx = append(idx, i)
		}
	}
	// Newest first by creation, then by insertion, as the store orders.
	slices.SortFunc(idx, func(a, b int) int {
		if c := f.entries[b].Created.Compare(f.entries[a].Created); c != 0 {
			return c
		}
		return cmp.Compare(b, a)
	})
	idx = idx[min(q.Offset, len(idx)):]
	if q.Limit > 0 && len(idx) > q.Limit {
		idx = idx[:q.Limit]
	}
	out := make([]BlockEntry, len(idx))
	for i, j := range idx {
		out[i] = f.entries[j]
	}
	after := f.afterList
	f.mu.Unlock()
	if after != nil {
		after(n)
	}
	return out, nil
}

func (f *fakeBlocks) CountBlocks(ctx context.Context, q BlockQuery) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = append(f.counts, q)
	n := 0
	for _, e := range f.entries {
		if f.match(e, q) {
			n++
		}
	}
	return n, nil
}

func fakeNormalize(a string) (string, error) {
	a = strings.TrimSpace(a)
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t<>") {
		return "", fmt.Errorf("%w: normalize address %q: not an address", ErrBlockInvalid, a)
	}
	return a[:at] + "@" + strings.ToLower(a[at+1:]), nil
}

func (f *fakeBlocks) live(addr string) int {
	for i, e := range f.entries {
		if e.Address == addr && e.Removed.IsZero() {
			return i
		}
	}
	return -1
}

// add stores an entry directly, for seeding.
func (f *fakeBlocks) add(e BlockEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e)
}

func (f *fakeBlocks) AddBlock(ctx context.Context, address, reason string, when BlockWhen, watchDays int) (BlockEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failAdd[address]; err != nil {
		return BlockEntry{}, err
	}
	norm, err := fakeNormalize(address)
	if err != nil {
		return BlockEntry{}, err
	}
	if !has(blockReasons, reason) {
		return BlockEntry{}, fmt.Errorf("%w: reason %q", ErrBlockInvalid, reason)
	}
	if f.live(norm) >= 0 {
		return BlockEntry{}, fmt.Errorf("%w: %s", ErrBlockExists, norm)
	}
	now := f.now()
	e := BlockEntry{Address: norm, Reason: reason, Status: "scheduled", Created: now}
	switch {
	case when.Now:
		e.Status, e.Scheduled, e.Registered = "registered", now, now
	case !when.At.IsZero():
		if when.At.Before(now) {
			return BlockEntry{}, fmt.Errorf("%w: in the past", ErrBlockInvalid)
		}
		e.Scheduled = when.At
	default:
		y, m, d := now.In(blockTestZone).Date()
		e.Scheduled = time.Date(y, m, d+1, 0, 0, 0, 0, blockTestZone)
	}
	if watchDays < 0 {
		watchDays = 30
	}
	if watchDays > 0 {
		e.Expires = e.Scheduled.AddDate(0, 0, watchDays)
	}
	f.entries = append(f.entries, e)
	return e, nil
}

func (f *fakeBlocks) remove(address string, cancel bool) (BlockEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	norm, err := fakeNormalize(address)
	if err != nil {
		return BlockEntry{}, err
	}
	i := f.live(norm)
	if i < 0 {
		return BlockEntry{}, fmt.Errorf("%w: %s", ErrNoBlock, norm)
	}
	e := &f.entries[i]
	if (e.Status == "registered") == cancel {
		return BlockEntry{}, fmt.Errorf("%w: %s is %s", ErrBlockState, norm, e.Status)
	}
	e.Removed = f.now()
	e.Status = "deleted"
	if cancel {
		e.Status = "cancelled"
	}
	return *e, nil
}

func (f *fakeBlocks) DeleteBlock(ctx context.Context, address string) (BlockEntry, error) {
	return f.remove(address, false)
}

func (f *fakeBlocks) CancelBlock(ctx context.Context, address string) (BlockEntry, error) {
	return f.remove(address, true)
}

func (f *fakeBlocks) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

func (f *fakeBlocks) statusOf(addr string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := ""
	for _, e := range f.entries {
		if e.Address == addr {
			st = e.Status // the newest entry of the address
		}
	}
	return st
}

// seedBlocks stores one entry of each kind, created an hour apart, the
// newest an hour before testNow.
func seedBlocks(f *fakeBlocks) {
	h := func(n int) time.Time { return testNow.Add(-time.Duration(n) * time.Hour) }
	f.add(BlockEntry{Address: "gone@example.org", Reason: "manual", Status: "deleted", Created: h(6), Scheduled: h(6), Registered: h(6), Removed: h(5)})
	f.add(BlockEntry{Address: "dropped@example.org", Reason: "unsubscribe", Status: "cancelled", Created: h(5), Scheduled: h(-12), Removed: h(4)})
	f.add(BlockEntry{Address: "bounced@example.com", Reason: "2", Status: "registered", Occurrences: 1, Created: h(4), Scheduled: h(4), Registered: h(4), Expires: h(4).AddDate(0, 0, 30)})
	f.add(BlockEntry{Address: "full@example.com", Reason: "5", Status: "registered", Occurrences: 3, Created: h(3), Scheduled: h(3), Registered: h(3)})
	f.add(BlockEntry{Address: "<script>x</script>@example.net", Reason: "manual", Status: "registered", Created: h(2), Scheduled: h(2), Registered: h(2)})
	f.add(BlockEntry{Address: "Later@example.org", Reason: "unsubscribe", Status: "scheduled", Created: h(1), Scheduled: h(-12)})
}

func newBlocksEnv(t *testing.T) (*env, *fakeBlocks) {
	t.Helper()
	var f *fakeBlocks
	e := newEnv(t, func(o *Options) {
		f = newFakeBlocks(o.Now)
		o.Blocks = f
	})
	return e, f
}

var blockRowAddr = regexp.MustCompile(`<tr data-testid="block-row" data-status="([a-z]+)"><td class="addr">([^<]*)</td>`)

// blockRowsOf returns the rows of the list as "address status".
func blockRowsOf(body string) []string {
	var out []string
	for _, m := range blockRowAddr.FindAllStringSubmatch(body, -1) {
		out = append(out, m[2]+" "+m[1])
	}
	return out
}

func TestBlocksPage(t *testing.T) {
	e, f := newBlocksEnv(t)
	seedBlocks(f)
	c := e.client()
	c.login()

	// The layout links the screen.
	_, body := c.get("/")
	if !strings.Contains(body, `<a href="/blocks">Blocks</a>`) {
		t.Error("the navigation has no Blocks link")
	}

	est := func(s string) time.Time {
		t, err := time.ParseInLocation("2006-01-02 15:04", s, blockTestZone)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		name   string
		query  string
		status int
		rows   []string
		want   BlockQuery // what the list was asked, paging included
		golden string
	}{
		{name: "live entries, newest first", status: 200, golden: "blocks_list.html",
			rows: []string{"Later@example.org scheduled", "&lt;script&gt;x&lt;/script&gt;@example.net registered",
				"full@example.com registered", "bounced@example.com registered"},
			want: BlockQuery{Limit: 10}},
		{name: "with the removed ones", query: "removed=1", status: 200,
			rows: []string{"Later@example.org scheduled", "&lt;script&gt;x&lt;/script&gt;@example.net registered",
				"full@example.com registered", "bounced@example.com registered", "dropped@example.org cancelled", "gone@example.org deleted"},
			want: BlockQuery{Removed: true, Limit: 10}},
		{name: "address substring, any case", query: "address=+EXAMPLE.COM+", status: 200,
			rows: []string{"full@example.com registered", "bounced@example.com registered"},
			want: BlockQuery{Address: "EXAMPLE.COM", Limit: 10}},
		// testNow is 2025-06-02 12:00 JST, 2025-06-01 22:00 EST: the
		// period is read in the list's zone, EST.
		{name: "created period in the list's zone", query: "from=2025-06-01T18:00&to=2025-06-01T20:00&removed=on", status: 200,
			rows: []string{"full@example.com registered", "bounced@example.com registered"},
			want: BlockQuery{Since: est("2025-06-01 18:00"), Until: est("2025-06-01 20:00"), Removed: true, Limit: 10}},
		{name: "nothing matches", query: "address=nobody", status: 200, golden: "blocks_none.html",
			want: BlockQuery{Address: "nobody"}},
		{name: "bad time", query: "from=yesterday", status: 400, golden: "blocks_badtime.html"},
		{name: "to before from", query: "from=2025-06-01T18:00&to=2025-06-01T17:00", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.mu.Lock()
			f.lists, f.counts = nil, nil
			f.mu.Unlock()
			resp, body := c.get("/blocks?" + tc.query)
			wantStatus(t, resp, tc.status, body)
			if got := blockRowsOf(body); strings.Join(got, ", ") != strings.Join(tc.rows, ", ") {
				t.Errorf("rows:\n got %q\nwant %q", got, tc.rows)
			}
			f.mu.Lock()
			lists, counts := f.lists, f.counts
			f.mu.Unlock()
			if tc.status == 200 {
				count := tc.want
				count.Offset, count.Limit = 0, 0
				if len(counts) != 1 || !sameQuery(counts[0], count) {
					t.Errorf("counted %+v, want %+v", counts, count)
				}
				if len(tc.rows) == 0 && len(lists) != 0 {
					t.Errorf("an empty count is listed all the same: %+v", lists)
				}
				if len(tc.rows) > 0 && (len(lists) != 1 || !sameQuery(lists[0], tc.want)) {
					t.Errorf("listed %+v, want %+v", lists, tc.want)
				}
			} else if len(lists)+len(counts) != 0 {
				t.Errorf("an invalid search read the list: %+v %+v", lists, counts)
			}
			if tc.golden != "" {
				golden(t, tc.golden, []byte(mainOf(body)))
			}
		})
	}
	// An empty list says so, rather than "nothing matches".
	empty, _ := newBlocksEnv(t)
	ec := empty.client()
	ec.login()
	resp, body := ec.get("/blocks")
	wantStatus(t, resp, http.StatusOK, body)
	golden(t, "blocks_empty.html", []byte(mainOf(body)))

	// Japanese: reasons with their class words.
	c.post("/lang", url.Values{"lang": {"ja"}, "back": {"/blocks"}})
	_, body = c.get("/blocks")
	for _, want := range []string{"2 宛先ユーザー不明", "5 容量超過", "配信停止", "登録中", "登録予定"} {
		if !strings.Contains(body, want) {
			t.Errorf("Japanese page lacks %q", want)
		}
	}
}

func sameQuery(a, b BlockQuery) bool {
	return a.Address == b.Address && a.Since.Equal(b.Since) && a.Until.Equal(b.Until) &&
		a.Removed == b.Removed && a.Offset == b.Offset && a.Limit == b.Limit
}

func TestBlocksPaging(t *testing.T) {
	e, f := newBlocksEnv(t)
	// 95 entries a minute apart; b094 is the newest.
	for i := range 95 {
		at := testNow.Add(-time.Duration(95-i) * time.Minute)
		f.add(BlockEntry{Address: fmt.Sprintf("b%03d@example.org", i), Reason: "manual", Status: "registered",
			Created: at, Scheduled: at, Registered: at})
	}
	c := e.client()
	c.login()
	first := func(body string) string {
		rows := blockRowsOf(body)
		if len(rows) == 0 {
			return ""
		}
		return strings.Fields(rows[0])[0]
	}
	for _, tc := range []struct {
		query   string
		rows    int
		first   string
		current string
		links   []string // the pager's numbered links
	}{
		{"", 10, "b094@example.org", "1", []string{"2", "3", "10"}},
		{"page=2", 10, "b084@example.org", "2", []string{"1", "3", "4", "10"}},
		{"page=6", 10, "b044@example.org", "6", []string{"1", "4", "5", "7", "8", "10"}},
		{"page=10", 5, "b004@example.org", "10", []string{"1", "8", "9"}},
		{"page=999", 5, "b004@example.org", "10", []string{"1", "8", "9"}},
		{"page=-3", 10, "b094@example.org", "1", []string{"2", "3", "10"}},
		{"per=50&page=2", 45, "b044@example.org", "2", []string{"1"}},
		{"per=100", 95, "b094@example.org", "", nil},
		{"per=7", 10, "b094@example.org", "1", []string{"2", "3", "10"}}, // not offered: the default
	} {
		resp, body := c.get("/blocks?" + tc.query)
		wantStatus(t, resp, http.StatusOK, body)
		if n := len(blockRowsOf(body)); n != tc.rows {
			t.Errorf("%s: %d rows, want %d", tc.query, n, tc.rows)
		}
		if got := first(body); got != tc.first {
			t.Errorf("%s: first row %s, want %s", tc.query, got, tc.first)
		}
		cur := regexp.MustCompile(`data-testid="page-current" data-page="(\d+)"`).FindStringSubmatch(body)
		if (cur == nil) != (tc.current == "") || (cur != nil && cur[1] != tc.current) {
			t.Errorf("%s: current page %q, want %q", tc.query, cur, tc.current)
		}
		var links []string
		for _, m := range regexp.MustCompile(`data-testid="page-(\d+)"`).FindAllStringSubmatch(body, -1) {
			links = append(links, m[1])
		}
		if !slices.Equal(links, tc.links) {
			t.Errorf("%s: pager links %q, want %q", tc.query, links, tc.links)
		}
	}
	// The pager keeps the search, and htmx gets the results alone.
	_, body := c.get("/blocks?address=b0&per=50")
	if !strings.Contains(body, `href="/blocks?address=b0&amp;page=2&amp;per=50"`) {
		t.Errorf("the pager does not keep the search:\n%s", body)
	}
	resp, body := c.get("/blocks?page=3", "HX-Request", "true", "HX-Target", "results")
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.HasPrefix(body, `<section id="results"`) || strings.Contains(body, "<html") || first(body) != "b074@example.org" {
		t.Errorf("htmx page 3:\n%s", body)
	}
}

func TestBlockPages(t *testing.T) {
	for _, tc := range []struct {
		page, pages int
		want        []int
	}{
		{1, 1, []int{1}},
		{1, 4, []int{1, 2, 3, 4}},
		{3, 5, []int{1, 2, 3, 4, 5}},
		{1, 100000, []int{1, 2, 3, 0, 100000}},
		{50, 100, []int{1, 0, 48, 49, 50, 51, 52, 0, 100}},
		{4, 100, []int{1, 2, 3, 4, 5, 6, 0, 100}},
		{5, 100, []int{1, 0, 3, 4, 5, 6, 7, 0, 100}},
		{97, 100, []int{1, 0, 95, 96, 97, 98, 99, 100}},
		{100, 100, []int{1, 0, 98, 99, 100}},
	} {
		if got := blockPages(tc.page, tc.pages); !slices.Equal(got, tc.want) {
			t.Errorf("blockPages(%d, %d) = %v, want %v", tc.page, tc.pages, got, tc.want)
		}
	}
}

// addedLocation checks that a post went back to the list with its
// results and returns that URL.
func addedLocation(t *testing.T, resp *http.Response, body string) string {
	t.Helper()
	wantStatus(t, resp, http.StatusSeeOther, body)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/blocks?added=") {
		t.Fatalf("after adding: Location %q", loc)
	}
	return loc
}

func TestBlocksAdd(t *testing.T) {
	e, f := newBlocksEnv(t)
	f.add(BlockEntry{Address: "old@example.org", Reason: "manual", Status: "registered",
		Created: testNow.Add(-time.Hour), Scheduled: testNow.Add(-time.Hour), Registered: testNow.Add(-time.Hour)})
	c := e.client()
	c.login()
	c.get("/blocks")

	// Now: registered, already listed, refused, a repeat within the form.
	resp, body := c.post("/blocks", url.Values{
		"addresses": {"New@Example.COM\r\n\r\n  old@example.org \r\nnot-an-address, second@example.net\nnew@example.com\n"},
		"reason":    {"2"}, "when": {"now"}, "watch": {""},
	})
	loc := addedLocation(t, resp, body)
	resp, body = c.get(loc)
	wantStatus(t, resp, http.StatusOK, body)
	golden(t, "blocks_added.html", []byte(mainOf(body)))
	if st := f.statusOf("New@example.com"); st != "registered" {
		t.Errorf("New@example.com is %q", st)
	}
	if st := f.statusOf("second@example.net"); st != "registered" {
		t.Errorf("second@example.net is %q", st)
	}
	outcomes := regexp.MustCompile(`data-testid="added-row" data-outcome="([a-z]+)"><td class="addr">([^<]*)<`).FindAllStringSubmatch(body, -1)
	var got []string
	for _, m := range outcomes {
		got = append(got, m[2]+" "+m[1])
	}
	want := []string{"New@example.com registered", "old@example.org exists", "not-an-address invalid",
		"second@example.net registered", "new@example.com registered"}
	if !slices.Equal(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
	// The refused address is back in the form to correct.
	if !strings.Contains(body, `>not-an-address</textarea>`) || !strings.Contains(body, `<details open data-testid="add">`) {
		t.Error("the refused address is not back in an open form")
	}
	// Reloading shows the same result and adds nothing.
	n := f.len()
	if _, again := c.get(loc); mainOf(again) != mainOf(body) || f.len() != n {
		t.Error("reloading the result page differs or adds")
	}
	// Another session does not see it.
	other := e.client()
	other.login()
	if _, ob := other.get(loc); strings.Contains(ob, "New@example.com") && strings.Contains(ob, `data-testid="added"`) ||
		!strings.Contains(ob, `data-testid="added-gone"`) {
		t.Error("another session sees the result")
	}

	// At the next execution time (the default), with a watch period: the
	// next 00:00 EST after 2025-06-01 22:00 EST.
	resp, body = c.post("/blocks", url.Values{"addresses": {"sched@example.org"}, "reason": {"unsubscribe"}, "when": {"next"}, "watch": {"7"}})
	_, body = c.get(addedLocation(t, resp, body))
	if !strings.Contains(body, "scheduled for 2025-06-02 00:00:00") {
		t.Errorf("scheduled result:\n%s", mainOf(body))
	}
	f.mu.Lock()
	last := f.entries[len(f.entries)-1]
	f.mu.Unlock()
	if last.Reason != "unsubscribe" || !last.Expires.Equal(time.Date(2025, 6, 9, 0, 0, 0, 0, blockTestZone)) {
		t.Errorf("stored %+v", last)
	}
	// At a time, read in the list's zone.
	resp, body = c.post("/blocks", url.Values{"addresses": {"at@example.org"}, "reason": {"manual"}, "when": {"at"}, "at": {"2025-06-05T08:30"}})
	_, body = c.get(addedLocation(t, resp, body))
	if !strings.Contains(body, "scheduled for 2025-06-05 08:30:00") {
		t.Errorf("at result:\n%s", mainOf(body))
	}

	// A store failure stops the rest, which are left to send again.
	f.mu.Lock()
	f.failAdd["b@example.org"] = errors.New("database is locked")
	f.mu.Unlock()
	resp, body = c.post("/blocks", url.Values{"addresses": {"a@example.org\nb@example.org\nc@example.org"}, "reason": {"manual"}, "when": {"now"}})
	_, body = c.get(addedLocation(t, resp, body))
	for _, want := range []string{`data-outcome="registered"><td class="addr">a@example.org`, `data-outcome="error"><td class="addr">b@example.org`,
		`data-outcome="skipped"><td class="addr">c@example.org`, ">b@example.org\nc@example.org</textarea>"} {
		if !strings.Contains(body, want) {
			t.Errorf("after a store failure the page lacks %q", want)
		}
	}
	if strings.Contains(body, "database is locked") {
		t.Error("the store's error is shown")
	}
	if f.statusOf("c@example.org") != "" {
		t.Error("an address after the failure was added")
	}

	// A result id that is unknown says so.
	_, body = c.get("/blocks?added=nonesuch")
	if !strings.Contains(body, `data-testid="added-gone"`) {
		t.Error("unknown result id")
	}
}

func TestBlocksAddInvalid(t *testing.T) {
	e, f := newBlocksEnv(t)
	c := e.client()
	c.login()
	c.get("/blocks")
	many := strings.Repeat("x@example.org\n", maxAddBlocks+1)
	for _, tc := range []struct {
		name   string
		form   url.Values
		errs   []string
		golden string
	}{
		{"every field wrong", url.Values{"addresses": {" \n "}, "reason": {"10"}, "when": {"at"}, "at": {"tomorrow"}, "watch": {"-1"}},
			[]string{"addresses", "reason", "at", "watch"}, "blocks_form_errors.html"},
		{"too many", url.Values{"addresses": {many}, "reason": {"manual"}, "when": {"now"}}, []string{"addresses"}, ""},
		{"a time past", url.Values{"addresses": {"a@example.org"}, "reason": {"manual"}, "when": {"at"}, "at": {"2025-06-01T21:59"}}, []string{"at"}, ""},
		{"no time", url.Values{"addresses": {"a@example.org"}, "reason": {"manual"}, "when": {"at"}}, []string{"at"}, ""},
		{"unknown when", url.Values{"addresses": {"a@example.org"}, "reason": {"manual"}, "when": {"later"}}, []string{"when"}, ""},
		{"watch too long", url.Values{"addresses": {"a@example.org"}, "reason": {"manual"}, "watch": {"3651"}}, []string{"watch"}, ""},
		{"watch not a number", url.Values{"addresses": {"a@example.org"}, "reason": {"manual"}, "when": {"next"}, "watch": {"1e3"}}, []string{"watch"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.post("/blocks", tc.form)
			wantStatus(t, resp, http.StatusUnprocessableEntity, body)
			var got []string
			for _, m := range regexp.MustCompile(`data-testid="([a-z]+)-error"`).FindAllStringSubmatch(body, -1) {
				got = append(got, m[1])
			}
			slices.Sort(got)
			slices.Sort(tc.errs)
			if !slices.Equal(got, tc.errs) {
				t.Errorf("errors at %q, want %q", got, tc.errs)
			}
			if n := f.len(); n != 0 {
				t.Errorf("a refused form added %d entries", n)
			}
			if tc.golden != "" {
				golden(t, tc.golden, []byte(mainOf(body)))
			}
		})
	}
	// A body over the console's form limit is refused whole (by the
	// guard, before the handler): nothing of it is added.
	long := strings.Repeat(strings.Repeat("x", 60)+"@example.org\n", maxAddBlocks)
	resp, body := c.post("/blocks", url.Values{"addresses": {long}, "reason": {"manual"}, "when": {"now"}})
	if resp.StatusCode < 400 || f.len() != 0 {
		t.Errorf("an oversized form: %s, %d entries added\n%s", resp.Status, f.len(), body)
	}
}

func TestBlocksDeleteCancel(t *testing.T) {
	e, f := newBlocksEnv(t)
	seedBlocks(f)
	c := e.client()
	c.login()
	_, body := c.get("/blocks?address=example&per=50")
	// Registered rows offer delete, scheduled ones cancel, each with the
	// search to come back to.
	if n := strings.Count(body, `data-testid="delete-confirm"`); n != 3 {
		t.Errorf("%d delete buttons, want 3", n)
	}
	if n := strings.Count(body, `data-testid="cancel-confirm"`); n != 1 {
		t.Errorf("%d cancel buttons, want 1", n)
	}
	if !strings.Contains(body, `<input type="hidden" name="search" value="address=example&amp;per=50">`) {
		t.Error("the row forms do not carry the search")
	}
	search := "address=example&per=50"

	for _, tc := range []struct {
		name, path, address string
		status              int
		location            string // on success
		notice              string // on the page shown
		after               string // the entry's status afterwards
	}{
		{"delete a registered entry", "/blocks/delete", "bounced@EXAMPLE.com", 303,
			"/blocks?address=example&address_done=bounced%40example.com&done=deleted&per=50",
			"bounced@example.com was deleted from the suppression list.", "deleted"},
		{"delete it again", "/blocks/delete", "bounced@example.com", 409, "",
			"bounced@example.com is no longer on the suppression list: it was removed meanwhile. The list below is current.", "deleted"},
		{"delete a scheduled entry", "/blocks/delete", "Later@example.org", 409, "",
			"Later@example.org was not deleted: it has not taken effect yet, so it can only be cancelled. The list below is current.", "scheduled"},
		{"cancel a registered entry", "/blocks/cancel", "full@example.com", 409, "",
			"full@example.com was not cancelled: it has taken effect meanwhile, so it can only be deleted. The list below is current.", "registered"},
		{"cancel a scheduled entry", "/blocks/cancel", "Later@example.org", 303,
			"/blocks?address=example&address_done=Later%40example.org&done=cancelled&per=50",
			"The scheduled registration of Later@example.org was cancelled.", "cancelled"},
		{"not an address", "/blocks/delete", "nonsense", 400, "", "nonsense is not an address.", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.post(tc.path, url.Values{"address": {tc.address}, "search": {search}})
			wantStatus(t, resp, tc.status, body)
			if tc.location != "" {
				if loc := resp.Header.Get("Location"); loc != tc.location {
					t.Fatalf("Location %q, want %q", loc, tc.location)
				}
				_, body = c.get(tc.location)
			}
			if !strings.Contains(body, tc.notice) {
				t.Errorf("the page does not say %q:\n%s", tc.notice, mainOf(body))
			}
			// The page shown is the search the button was pressed on.
			if !strings.Contains(body, `id="address" name="address" type="search" value="example"`) {
				t.Error("the search is lost")
			}
			if norm, err := fakeNormalize(tc.address); err == nil {
				if st := f.statusOf(norm); st != tc.after {
					t.Errorf("%s is %q, want %q", norm, st, tc.after)
				}
			}
		})
	}
	resp, body := c.post("/blocks/delete", url.Values{"address": {""}})
	wantStatus(t, resp, http.StatusBadRequest, body)
}

// TestBlocksSecurity: the screen's routes need a session, and its posts
// the form token; without a suppression list there is no screen.
func TestBlocksSecurity(t *testing.T) {
	e, f := newBlocksEnv(t)
	seedBlocks(f)
	var mine []route
	for _, rt := range e.srv.routes() {
		if strings.HasPrefix(strings.Fields(rt.pattern)[1], "/blocks") {
			mine = append(mine, rt)
		}
	}
	if len(mine) != 5 {
		t.Fatalf("%d block routes", len(mine))
	}
	for _, rt := range mine {
		if rt.access != session {
			t.Errorf("%s: access %d, want session", rt.pattern, rt.access)
		}
		req := routeRequest(rt.pattern)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := e.do(req)
		if req.Method == http.MethodGet {
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=%2Fblocks") {
				t.Errorf("%s without a session: %s %q", rt.pattern, resp.Status, resp.Header.Get("Location"))
			}
		} else if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %s, want 401", rt.pattern, resp.Status)
		}
	}

	c := e.client()
	c.login()
	c.get("/blocks")
	n := f.len()
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/blocks", url.Values{"csrf": {""}, "addresses": {"evil@example.org"}, "when": {"now"}, "reason": {"manual"}}},
		{"/blocks", url.Values{"csrf": {"forged"}, "addresses": {"evil@example.org"}, "when": {"now"}, "reason": {"manual"}}},
		{"/blocks/delete", url.Values{"csrf": {""}, "address": {"full@example.com"}}},
		{"/blocks/cancel", url.Values{"csrf": {""}, "address": {"Later@example.org"}}},
	} {
		resp, body := c.post(tc.path, tc.form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without the form token: %s\n%s", tc.path, resp.Status, body)
		}
	}
	if f.len() != n || f.statusOf("full@example.com") != "registered" || f.statusOf("Later@example.org") != "scheduled" {
		t.Error("a refused post changed the list")
	}

	// No suppression list: no routes, no link.
	off := newEnv(t, nil)
	oc := off.client()
	oc.login()
	for _, p := range []string{"/blocks", "/blocks.csv"} {
		if resp, _ := oc.get(p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s without a list: %s", p, resp.Status)
		}
	}
	if _, body := oc.get("/"); strings.Contains(body, `href="/blocks"`) {
		t.Error("the navigation links Blocks without a list")
	}
}

func TestBlocksCSV(t *testing.T) {
	e, f := newBlocksEnv(t)
	seedBlocks(f)
	f.add(BlockEntry{Address: "=HYPERLINK(\"x\")@example.org", Reason: "manual", Status: "registered",
		Created: testNow, Scheduled: testNow, Registered: testNow})
	c := e.client()
	c.login()
	resp, body := c.get("/blocks.csv?removed=1")
	wantStatus(t, resp, http.StatusOK, body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	// Named in the list's zone: testNow is 2025-06-01 22:00 EST.
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="posthorn-blocks-20250601-220000.csv"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	golden(t, "blocks_export.csv", []byte(body))
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(records[0], ",") != "address,reason,status,occurrences,created,effective,expires,removed" || len(records) != 8 {
		t.Errorf("CSV: %q", records)
	}
	if records[1][0] != `'=HYPERLINK("x")@example.org` {
		t.Errorf("a formula address is written as %q", records[1][0])
	}
	// The filters of the screen apply.
	_, body = c.get("/blocks.csv?address=example.com")
	records, _ = csv.NewReader(strings.NewReader(body)).ReadAll()
	if len(records) != 3 || records[1][0] != "full@example.com" || records[2][0] != "bounced@example.com" {
		t.Errorf("filtered CSV: %q", records)
	}
	resp, _ = c.get("/blocks.csv?to=soon")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("CSV with a bad period: %s", resp.Status)
	}
	f.mu.Lock()
	f.failList = errors.New("disk I/O error")
	f.mu.Unlock()
	resp, body = c.get("/blocks.csv")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "disk") {
		t.Errorf("CSV of a failing store: %s %q", resp.Status, body)
	}
	resp, body = c.get("/blocks")
	if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "disk") {
		t.Errorf("page of a failing store: %s %q", resp.Status, body)
	}
}

// TestBlocksCSVChunks: a list longer than a chunk is written whole, in
// order, each entry once, even with creation times shared across a chunk's
// end and entries added and removed while it is written.
func TestBlocksCSVChunks(t *testing.T) {
	e, f := newBlocksEnv(t)
	const n = 2*blockCSVChunk + 500
	for i := range n {
		// Seven entries per instant: ties straddle the chunk ends.
		at := testNow.Add(-time.Duration(n/7-i/7) * time.Second)
		f.add(BlockEntry{Address: fmt.Sprintf("c%05d@example.org", i), Reason: "manual", Status: "registered",
			Created: at, Scheduled: at, Registered: at})
	}
	f.afterList = func(call int) {
		if call != 1 {
			return
		}
		// After the first chunk: a new entry (newer than any written) and
		// a removal among those not yet written.
		f.add(BlockEntry{Address: "late@example.org", Reason: "manual", Status: "registered",
			Created: testNow.Add(time.Second), Scheduled: testNow, Registered: testNow})
		f.mu.Lock()
		f.entries[10].Removed, f.entries[10].Status = testNow, "deleted"
		f.mu.Unlock()
	}
	c := e.client()
	c.login()
	resp, body := c.get("/blocks.csv")
	wantStatus(t, resp, http.StatusOK, "")
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := n - 1; i >= 0; i-- {
		if i != 10 {
			want = append(want, fmt.Sprintf("c%05d@example.org", i))
		}
	}
	var got []string
	for _, r := range records[1:] {
		got = append(got, r[0])
	}
	if !slices.Equal(got, wantByStore(f, want)) {
		t.Errorf("CSV has %d rows (want %d); first differences: %v", len(got), len(want), firstDiff(got, wantByStore(f, want)))
	}
	f.mu.Lock()
	calls := len(f.lists)
	f.mu.Unlock()
	if calls != 3 {
		t.Errorf("%d reads for %d rows, want 3", calls, n)
	}
}

// wantByStore orders addresses as the fake lists them.
func wantByStore(f *fakeBlocks, addrs []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos := map[string]int{}
	for i, e := range f.entries {
		pos[e.Address] = i
	}
	out := slices.Clone(addrs)
	slices.SortFunc(out, func(a, b string) int {
		ea, eb := f.entries[pos[a]], f.entries[pos[b]]
		if c := eb.Created.Compare(ea.Created); c != 0 {
			return c
		}
		return cmp.Compare(pos[b], pos[a])
	})
	return out
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("row %d: %s, want %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

func TestBlockLabels(t *testing.T) {
	for _, r := range blockReasons {
		key := "breason." + r
		if r[0] >= '0' && r[0] <= '9' {
			key = "bclass." + r
		}
		if _, ok := catalog[key]; !ok {
			t.Errorf("reason %s has no label (%s)", r, key)
		}
	}
	for _, st := range blockStatuses {
		if _, ok := catalog["bstatus."+st]; !ok {
			t.Errorf("status %s has no label", st)
		}
	}
	for _, o := range []string{"registered", "scheduled", "exists", "invalid", "error", "skipped"} {
		if _, ok := catalog["bout."+o]; !ok {
			t.Errorf("outcome %s has no label", o)
		}
	}
	for _, a := range []string{"delete", "cancel"} {
		for _, suffix := range []string{"", ".help", ".confirm"} {
			if _, ok := catalog["blocks."+a+suffix]; !ok {
				t.Errorf("blocks.%s%s is not in the catalog", a, suffix)
			}
		}
	}
	ctx := context.Background()
	for in, want := range map[string]string{"2": "2 unknown user", "99": "99 other permanent error", "manual": "manual", "42": "42", "odd": "odd"} {
		if got := blockReasonLabel(ctx, in); got != want {
			t.Errorf("blockReasonLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddResults(t *testing.T) {
	var c addResults
	at := testNow
	ids := make([]string, 0, addResultsMax+1)
	for i := range addResultsMax + 1 {
		ids = append(ids, c.put(&addOutcome{owner: "me", at: at.Add(time.Duration(i) * time.Second)}))
	}
	if c.get("me", ids[0], at) != nil {
		t.Error("the oldest result was kept past the bound")
	}
	if c.get("me", ids[1], at) == nil || c.get("you", ids[1], at) != nil || c.get("", ids[1], at) != nil {
		t.Error("results are not kept per session")
	}
	if c.get("me", ids[1], at.Add(addResultsTTL+2*time.Second)) != nil {
		t.Error("an expired result is shown")
	}
	c.put(&addOutcome{owner: "me", at: at.Add(time.Hour)})
	if len(c.m) != 1 {
		t.Errorf("%d results kept after they all expired", len(c.m))
	}
}
