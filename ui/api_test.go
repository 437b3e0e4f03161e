package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/posthorn/posthorn/sqlite"
)

// apiBlocks is an in-memory suppression list that keeps the block
// service's rules as far as the API can see them (cmd/posthorn's
// blockService is the real one, and e2e/blocks_api_test.go drives it
// through the API): normalised addresses, the error kinds, scheduling at
// the next midnight unless told otherwise.
type apiBlocks struct {
	mu      sync.Mutex
	now     func() time.Time
	entries []BlockEntry // oldest first
	fail    error        // when set, every call returns it
	record  bool         // keep calls
	calls   []string     // the address arguments, as the API passed them
}

var _ BlockList = (*apiBlocks)(nil)

func (b *apiBlocks) BlockLocation(context.Context) (*time.Location, error) {
	if b.fail != nil {
		return nil, b.fail
	}
	return testZone, nil
}

func (b *apiBlocks) selects(q BlockQuery, e BlockEntry) bool {
	removed := e.Status == "deleted" || e.Status == "cancelled"
	return (q.Removed || !removed) &&
		(q.Address == "" || strings.Contains(strings.ToLower(e.Address), strings.ToLower(q.Address))) &&
		(q.Since.IsZero() || !e.Created.Before(q.Since)) &&
		(q.Until.IsZero() || e.Created.Before(q.Until))
}

func (b *apiBlocks) ListBlocks(_ context.Context, q BlockQuery) ([]BlockEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return nil, b.fail
	}
	var out []BlockEntry
	for i := len(b.entries) - 1; i >= 0; i-- {
		if b.selects(q, b.entries[i]) {
			out = append(out, b.entries[i])
		}
	}
	out = out[min(q.Offset, len(out)):]
	if q.Limit > 0 {
		out = out[:min(q.Limit, len(out))]
	}
	return out, nil
}

func (b *apiBlocks) CountBlocks(_ context.Context, q BlockQuery) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return 0, b.fail
	}
	n := 0
	for _, e := range b.entries {
		if b.selects(q, e) {
			n++
		}
	}
	return n, nil
}

func (b *apiBlocks) normalize(addr string) (string, error) {
	local, domain, ok := strings.Cut(addr, "@")
	bad := strings.ContainsFunc(addr, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' })
	if !utf8.ValidString(addr) || !ok || local == "" || domain == "" || bad {
		return "", fmt.Errorf("%w: normalize address %q: not an address", ErrBlockInvalid, addr)
	}
	return local + "@" + strings.ToLower(domain), nil
}

// live returns the index of addr's scheduled or registered entry, or -1.
func (b *apiBlocks) live(addr string) int {
	for i, e := range b.entries {
		if e.Address == addr && (e.Status == "scheduled" || e.Status == "registered") {
			return i
		}
	}
	return -1
}

func (b *apiBlocks) AddBlock(_ context.Context, address, reason string, when BlockWhen, watchDays int) (BlockEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.record {
		b.calls = append(b.calls, address)
	}
	if b.fail != nil {
		return BlockEntry{}, b.fail
	}
	if reason != "manual" && reason != "unsubscribe" && reason != "2" {
		return BlockEntry{}, fmt.Errorf("%w: parse reason %q: want manual, unsubscribe or a bounce class", ErrBlockInvalid, reason)
	}
	addr, err := b.normalize(address)
	if err != nil {
		return BlockEntry{}, err
	}
	now := b.now()
	if when.At.Before(now) && !when.At.IsZero() {
		return BlockEntry{}, fmt.Errorf("%w: %s is in the past; register now instead", ErrBlockInvalid, when.At.In(testZone).Format("2006-01-02 15:04"))
	}
	if b.live(addr) >= 0 {
		return BlockEntry{}, fmt.Errorf("%w: add block %s: %w", ErrBlockExists, addr, ErrBlockExists)
	}
	e := BlockEntry{Address: addr, Reason: reason, Status: "scheduled", Created: now}
	switch {
	case when.Now:
		e.Scheduled, e.Registered, e.Status = now, now, "registered"
	case !when.At.IsZero():
		e.Scheduled = when.At
	default:
		y, m, d := now.In(testZone).Date()
		e.Scheduled = time.Date(y, m, d+1, 0, 0, 0, 0, testZone)
	}
	if watchDays < 0 {
		watchDays = 30
	}
	if watchDays > 0 {
		e.Expires = e.Scheduled.AddDate(0, 0, watchDays)
	}
	b.entries = append(b.entries, e)
	return e, nil
}

func (b *apiBlocks) remove(address string, cancel bool) (BlockEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.record {
		b.calls = append(b.calls, address)
	}
	if b.fail != nil {
		return BlockEntry{}, b.fail
	}
	addr, err := b.normalize(address)
	if err != nil {
		return BlockEntry{}, err
	}
	i := b.live(addr)
	if i < 0 {
		return BlockEntry{}, fmt.Errorf("%w: delete block %s: %w", ErrNoBlock, addr, ErrNoBlock)
	}
	e := &b.entries[i]
	switch {
	case cancel && e.Status == "registered":
		return BlockEntry{}, fmt.Errorf("%w: registration has already taken effect: %s is registered; delete it instead", ErrBlockState, addr)
	case !cancel && e.Status == "scheduled":
		return BlockEntry{}, fmt.Errorf("%w: registration has not taken effect yet: %s is only scheduled; cancel it instead", ErrBlockState, addr)
	}
	e.Removed, e.Status = b.now(), "deleted"
	if cancel {
		e.Status = "cancelled"
	}
	return *e, nil
}

func (b *apiBlocks) DeleteBlock(_ context.Context, address string) (BlockEntry, error) {
	return b.remove(address, false)
}

func (b *apiBlocks) CancelBlock(_ context.Context, address string) (BlockEntry, error) {
	return b.remove(address, true)
}

// apiEnv is a console with the API on: a real store holding the tokens,
// the in-memory list above.
type apiEnv struct {
	*env
	blocks  *apiBlocks
	token   string // live, named "crm"
	revoked string // named "old"
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	b := &apiBlocks{record: true}
	e := newEnv(t, func(o *Options) {
		o.Blocks = b
		o.Tokens = o.Store.(*sqlite.Store)
	})
	b.now = e.clock.Now
	a := &apiEnv{env: e, blocks: b}
	ctx := t.Context()
	var hash string
	a.token, hash = NewAPIToken()
	if err := e.store.AddAPIToken(ctx, "crm", hash, testNow); err != nil {
		t.Fatal(err)
	}
	a.revoked, hash = NewAPIToken()
	if err := e.store.AddAPIToken(ctx, "old", hash, testNow); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeAPIToken(ctx, "old", testNow); err != nil {
		t.Fatal(err)
	}
	return a
}

// call sends a request straight to the handler. A body is sent as JSON
// unless a Content-Type is among the headers.
func (a *apiEnv) call(method, target, token, body string, header ...string) (*http.Response, string) {
	a.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp := a.do(req)
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// apiErrorBody is the shape of every error answer.
type apiErrorBody struct {
	Error struct {
		Code, Message, Field string
	} `json:"error"`
}

func decodeAPIError(t *testing.T, body string) apiErrorBody {
	t.Helper()
	var e apiErrorBody
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not an API error (%v): %q", err, body)
	}
	return e
}

// TestAPITranscript runs a session of requests and keeps every answer in
// testdata/api.golden: the statuses, the headers a client acts on, and the
// JSON, error messages included.
func TestAPITranscript(t *testing.T) {
	a := newAPIEnv(t)
	steps := []struct {
		name, method, target, token, body string
		header                            []string
	}{
		{name: "no token", method: "GET", target: "/api/v1/blocks", token: "none"},
		{name: "unknown token", method: "GET", target: "/api/v1/blocks", token: "ph_" + strings.Repeat("0", 64)},
		{name: "malformed token", method: "GET", target: "/api/v1/blocks", token: "hunter2"},
		{name: "basic auth", method: "GET", target: "/api/v1/blocks", token: "none", header: []string{"Authorization", "Basic YWxpY2U6eA=="}},
		{name: "revoked token", method: "GET", target: "/api/v1/blocks", token: "revoked"},
		{name: "empty list", method: "GET", target: "/api/v1/blocks"},

		{name: "add now", method: "POST", target: "/api/v1/blocks", body: `{"address":"Now@Example.ORG","now":true,"reason":"unsubscribe"}`},
		{name: "add at a time in the zone", method: "POST", target: "/api/v1/blocks", body: `{"address":"later@example.org","at":"2025-06-03 09:30","watchDays":0}`},
		{name: "add at RFC 3339", method: "POST", target: "/api/v1/blocks", body: `{"address":"utc@example.org","at":"2025-06-03T00:00:00Z","reason":"2"}`},
		{name: "add at the execution time", method: "POST", target: "/api/v1/blocks", body: `{"address":"next@example.org"}`},
		{name: "add again", method: "POST", target: "/api/v1/blocks", body: `{"address":"now@example.org","now":true}`},
		{name: "add in the past", method: "POST", target: "/api/v1/blocks", body: `{"address":"past@example.org","at":"2025-06-01 09:00"}`},
		{name: "add a non-address", method: "POST", target: "/api/v1/blocks", body: `{"address":"not an address"}`},
		{name: "add with an unknown reason", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","reason":"spite"}`},
		{name: "add without address", method: "POST", target: "/api/v1/blocks", body: `{"now":true}`},
		{name: "add with at and now", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","now":true,"at":"2025-07-01"}`},
		{name: "add with a bad time", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","at":"tomorrow"}`},
		{name: "add with watchDays out of range", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","watchDays":4000}`},
		{name: "add with watchDays not a number", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","watchDays":"7"}`},
		{name: "add with watchDays a fraction", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","watchDays":1.5}`},
		{name: "add with an unknown field", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org","when":"now"}`},
		{name: "add with two objects", method: "POST", target: "/api/v1/blocks", body: `{"address":"x@example.org"} {"address":"y@example.org"}`},
		{name: "add with an array", method: "POST", target: "/api/v1/blocks", body: `["x@example.org"]`},
		{name: "add with broken JSON", method: "POST", target: "/api/v1/blocks", body: `{"address":`},
		{name: "add with a syntax error", method: "POST", target: "/api/v1/blocks", body: `{"address" "x"}`},
		{name: "add without a body", method: "POST", target: "/api/v1/blocks", header: []string{"Content-Type", "application/json"}},
		{name: "add as a form", method: "POST", target: "/api/v1/blocks", body: "address=x@example.org", header: []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{name: "add with a charset", method: "POST", target: "/api/v1/blocks", body: `{"address":"charset@example.org","now":true}`, header: []string{"Content-Type", "application/json; charset=utf-8"}},

		{name: "list", method: "GET", target: "/api/v1/blocks"},
		{name: "list a page", method: "GET", target: "/api/v1/blocks?rows=2&page=2"},
		{name: "list past the end", method: "GET", target: "/api/v1/blocks?rows=2&page=9"},
		{name: "list by address", method: "GET", target: "/api/v1/blocks?address=EXAMPLE.org&rows=1"},
		{name: "list by period", method: "GET", target: "/api/v1/blocks?since=2025-06-02&until=2025-06-02T12:00:01%2B09:00"},
		{name: "rows too large", method: "GET", target: "/api/v1/blocks?rows=500"},
		{name: "rows zero", method: "GET", target: "/api/v1/blocks?rows=0"},
		{name: "page zero", method: "GET", target: "/api/v1/blocks?page=0"},
		{name: "page not a number", method: "GET", target: "/api/v1/blocks?page=two"},
		{name: "removed not a boolean", method: "GET", target: "/api/v1/blocks?removed=yes"},
		{name: "unknown parameter", method: "GET", target: "/api/v1/blocks?limit=10"},
		{name: "repeated parameter", method: "GET", target: "/api/v1/blocks?rows=1&rows=2"},
		{name: "bad since", method: "GET", target: "/api/v1/blocks?since=yesterday"},
		{name: "plus not encoded", method: "GET", target: "/api/v1/blocks?since=2025-06-02T00:00:00+09:00"},
		{name: "until before since", method: "GET", target: "/api/v1/blocks?since=2025-06-02&until=2025-06-01"},
		{name: "malformed query", method: "GET", target: "/api/v1/blocks?address=%zz"},

		{name: "delete", method: "DELETE", target: "/api/v1/blocks/now@example.org"},
		{name: "delete again", method: "DELETE", target: "/api/v1/blocks/now@example.org"},
		{name: "delete a scheduled entry", method: "DELETE", target: "/api/v1/blocks/later@example.org"},
		{name: "delete, percent-encoded", method: "DELETE", target: "/api/v1/blocks/charset%40EXAMPLE.org"},
		{name: "delete a non-address", method: "DELETE", target: "/api/v1/blocks/..%2F..%2Fetc%2Fpasswd"},
		{name: "delete bad UTF-8", method: "DELETE", target: "/api/v1/blocks/%ff@example.org"},
		{name: "cancel", method: "POST", target: "/api/v1/blocks/later@example.org/cancel"},
		{name: "add it again", method: "POST", target: "/api/v1/blocks", body: `{"address":"now@example.org","now":true}`},
		{name: "cancel a registered entry", method: "POST", target: "/api/v1/blocks/now@example.org/cancel"},
		{name: "list with removed", method: "GET", target: "/api/v1/blocks?removed=true"},

		{name: "wrong method", method: "PUT", target: "/api/v1/blocks"},
		{name: "GET of an entry", method: "GET", target: "/api/v1/blocks/x@example.org"},
		{name: "GET of cancel", method: "GET", target: "/api/v1/blocks/x@example.org/cancel"},
		{name: "unknown endpoint", method: "GET", target: "/api/v2/blocks"},
		{name: "unknown endpoint without a token", method: "GET", target: "/api/v1/secrets", token: "none"},
	}
	var out bytes.Buffer
	for _, st := range steps {
		tok := a.token
		switch st.token {
		case "none":
			tok = ""
		case "revoked":
			tok = a.revoked
		case "":
		default:
			tok = st.token
		}
		resp, body := a.call(st.method, st.target, tok, st.body, st.header...)
		fmt.Fprintf(&out, "### %s\n%s %s\n", st.name, st.method, st.target)
		if st.body != "" {
			fmt.Fprintf(&out, "%s\n", st.body)
		}
		fmt.Fprintf(&out, "-> %d\n", resp.StatusCode)
		for _, h := range []string{"WWW-Authenticate", "Allow", "Retry-After"} {
			if v := resp.Header.Get(h); v != "" {
				fmt.Fprintf(&out, "%s: %s\n", h, v)
			}
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", st.name, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", st.name, cc)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, []byte(body), "", "  "); err != nil {
			t.Errorf("%s: answer is not JSON: %q", st.name, body)
		}
		if resp.StatusCode >= 400 {
			decodeAPIError(t, body)
		}
		out.Write(pretty.Bytes())
		out.WriteString("\n")
	}
	golden(t, "api.golden", out.Bytes())
}

// TestAPIRoutes: every API route refuses requests without a token, with a
// session cookie instead of one, and with a revoked one, and the API
// exists only when the console has both a list and tokens.
func TestAPIRoutes(t *testing.T) {
	a := newAPIEnv(t)
	c := a.client()
	c.login()
	var api []route
	for _, rt := range a.srv.routes() {
		if rt.access == bearer {
			api = append(api, rt)
		}
		if strings.Contains(rt.pattern, "/api/") != (rt.access == bearer) {
			t.Errorf("%s: access %d; the API's routes and only they take tokens", rt.pattern, rt.access)
		}
	}
	if len(api) != 5 {
		t.Fatalf("API routes %v", api)
	}
	for _, rt := range api {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			method, path = http.MethodGet, "/api/v1/other"
		}
		path = wildcard.ReplaceAllString(path, "x@example.org")
		for _, tc := range []struct {
			name   string
			token  string
			cookie bool
			want   int
		}{
			{"no token", "", false, http.StatusUnauthorized},
			{"session cookie", "", true, http.StatusUnauthorized},
			{"revoked", a.revoked, false, http.StatusForbidden},
		} {
			req, _ := http.NewRequest(method, c.base+path, nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.cookie {
				// The logged-in browser's cookie and form token.
				req.Header.Set("X-CSRF-Token", c.csrf)
			}
			var resp *http.Response
			var body string
			if tc.cookie {
				resp, body = c.send(req)
			} else {
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				resp, body = r, string(b)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s, %s: %s, want %d\n%s", method, path, tc.name, resp.Status, tc.want, body)
				continue
			}
			decodeAPIError(t, body)
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("%s %s, %s: WWW-Authenticate %q", method, path, tc.name, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if n := len(a.blocks.calls); n != 0 {
		t.Errorf("refused requests reached the list %d times: %q", n, a.blocks.calls)
	}

	// Off unless both are set: without tokens, without the list.
	for name, mod := range map[string]func(*Options){
		"no tokens": func(o *Options) { o.Blocks = &apiBlocks{now: time.Now} },
		"no blocks": func(o *Options) { o.Tokens = o.Store.(*sqlite.Store) },
	} {
		e := newEnv(t, mod)
		for _, rt := range e.srv.routes() {
			if rt.access == bearer {
				t.Errorf("%s: API route %s", name, rt.pattern)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/blocks", nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		if resp := e.do(req); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: GET /api/v1/blocks: %s, want 404", name, resp.Status)
		}
	}
}

// TestAPIWithoutFormToken: a token request needs no form token and is not
// refused by the session's CSRF check, whatever cookies come with it; the
// session cookie does not add any rights to it.
func TestAPIWithoutFormToken(t *testing.T) {
	a := newAPIEnv(t)
	c := a.client()
	c.login()
	for i, withCookie := range []bool{false, true} {
		body := fmt.Sprintf(`{"address":"form%d@example.org","now":true}`, i)
		req, _ := http.NewRequest(http.MethodPost, c.base+"/api/v1/blocks", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+a.token)
		var resp *http.Response
		var got string
		if withCookie {
			resp, got = c.send(req)
		} else {
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			resp, got = r, string(b)
		}
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("POST with a token, cookie %v: %s\n%s", withCookie, resp.Status, got)
		}
	}
}

// TestAPIRateLimit: the 11th unknown token within a minute from one
// address is refused without a lookup, even a good one; other addresses
// and the console's login are not affected; a minute later it works.
func TestAPIRateLimit(t *testing.T) {
	a := newAPIEnv(t)
	get := func(addr, token string) *http.Response {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/blocks", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer "+token)
		return a.do(req)
	}
	// The address the console's test server sees, so that the login
	// below comes from the same client.
	const attacker = "127.0.0.1:5000"
	bad := "ph_" + strings.Repeat("a", 64)
	for i := range loginMaxFailures {
		if resp := get(attacker, bad); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %s", i+1, resp.Status)
		}
	}
	resp := get(attacker, a.token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("good token after %d failures: %s, Retry-After %q; want 429", loginMaxFailures, resp.Status, resp.Header.Get("Retry-After"))
	}
	body, _ := io.ReadAll(resp.Body)
	if e := decodeAPIError(t, string(body)); e.Error.Code != "rate_limited" {
		t.Errorf("429 code %q", e.Error.Code)
	}
	// A revoked token is a real one: not a guess, not counted.
	for range 2 * loginMaxFailures {
		if resp := get("203.0.113.9:1", a.revoked); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("revoked: %s", resp.Status)
		}
	}
	if resp := get("203.0.113.9:1", a.token); resp.StatusCode != http.StatusOK {
		t.Errorf("another address: %s", resp.Status)
	}
	// The same /64 is the same client.
	for range loginMaxFailures {
		get("[2001:db8::1]:1", bad)
	}
	if resp := get("[2001:db8::2]:1", a.token); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("same /64: %s, want 429", resp.Status)
	}
	// The console's login from the limited address still works.
	a.client().login()
	a.clock.Advance(loginWindow + time.Second)
	if resp := get(attacker, a.token); resp.StatusCode != http.StatusOK {
		t.Errorf("a minute later: %s", resp.Status)
	}
}

// TestAPITokenLastUsed: a request records the token's use, at most once
// a minute.
func TestAPITokenLastUsed(t *testing.T) {
	a := newAPIEnv(t)
	used := func() time.Time {
		t.Helper()
		_, _, u, ok, err := a.store.APIToken(t.Context(), APITokenHash(a.token))
		if err != nil || !ok {
			t.Fatalf("token: %v %v", ok, err)
		}
		return u
	}
	if !used().IsZero() {
		t.Fatal("used before any request")
	}
	a.call("GET", "/api/v1/blocks", a.token, "")
	if u := used(); !u.Equal(testNow) {
		t.Errorf("after the first request: %v, want %v", u, testNow)
	}
	a.clock.Advance(30 * time.Second)
	a.call("GET", "/api/v1/blocks", a.token, "")
	if u := used(); !u.Equal(testNow) {
		t.Errorf("30 s later: %v, want it unchanged", u)
	}
	a.clock.Advance(30 * time.Second)
	a.call("GET", "/api/v1/blocks", a.token, "")
	if u := used(); !u.Equal(testNow.Add(time.Minute)) {
		t.Errorf("a minute later: %v", u)
	}
}

// TestAPIPaging: rows and page select the entries newest first; total
// counts them all.
func TestAPIPaging(t *testing.T) {
	a := newAPIEnv(t)
	for i := range 250 {
		a.clock.Advance(time.Second)
		if resp, body := a.call("POST", "/api/v1/blocks", a.token, fmt.Sprintf(`{"address":"u%03d@example.org","now":true}`, i)); resp.StatusCode != http.StatusCreated {
			t.Fatalf("add %d: %s %s", i, resp.Status, body)
		}
	}
	for _, tc := range []struct {
		query       string
		rows, first int // first: the number of the newest entry shown
		n           int
	}{
		{"", 100, 249, 100},
		{"?page=2", 100, 149, 100},
		{"?page=3", 100, 49, 50},
		{"?page=4", 100, 0, 0},
		{"?rows=1&page=250", 1, 0, 1},
		{"?rows=100&page=1000000", 100, 0, 0},
	} {
		resp, body := a.call("GET", "/api/v1/blocks"+tc.query, a.token, "")
		wantStatus(t, resp, http.StatusOK, body)
		var got apiListAnswer
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if got.Total != 250 || got.Rows != tc.rows || len(got.Blocks) != tc.n {
			t.Errorf("%q: total %d rows %d, %d entries; want 250, %d, %d", tc.query, got.Total, got.Rows, len(got.Blocks), tc.rows, tc.n)
			continue
		}
		if tc.n > 0 && got.Blocks[0].Address != fmt.Sprintf("u%03d@example.org", tc.first) {
			t.Errorf("%q: first %s, want u%03d", tc.query, got.Blocks[0].Address, tc.first)
		}
	}
	for _, q := range []string{"?rows=101", "?rows=-1", "?page=1000001", "?rows=1e2", "?page=%20"} {
		resp, body := a.call("GET", "/api/v1/blocks"+q, a.token, "")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: %s, want 400", q, resp.Status)
			continue
		}
		if e := decodeAPIError(t, body); e.Error.Field == "" || !strings.Contains(e.Error.Message, "must be from 1 to") {
			t.Errorf("%q: %+v", q, e.Error)
		}
	}
}

// TestAPIServerError: a failing list is a 500 whose message gives nothing
// away; the detail goes to the log.
func TestAPIServerError(t *testing.T) {
	a := newAPIEnv(t)
	a.blocks.fail = errors.New("read blocks: disk I/O error at /var/lib/posthorn/posthorn.db")
	for _, st := range []struct{ method, target, body string }{
		{"GET", "/api/v1/blocks", ""},
		{"POST", "/api/v1/blocks", `{"address":"x@example.org"}`},
		{"DELETE", "/api/v1/blocks/x@example.org", ""},
		{"POST", "/api/v1/blocks/x@example.org/cancel", ""},
	} {
		resp, body := a.call(st.method, st.target, a.token, st.body)
		if resp.StatusCode != http.StatusInternalServerError || strings.Contains(body, "disk") || strings.Contains(body, "/var/") {
			t.Errorf("%s %s: %s %s", st.method, st.target, resp.Status, body)
			continue
		}
		if e := decodeAPIError(t, body); e.Error.Code != "internal" {
			t.Errorf("%s %s: code %q", st.method, st.target, e.Error.Code)
		}
	}
}

// TestAPIHostile sends requests meant to break the parser or escape the
// path: each is answered (4xx), none panics, none reaches the list with
// anything but a single, decoded path segment.
func TestAPIHostile(t *testing.T) {
	a := newAPIEnv(t)
	huge := `{"address":"` + strings.Repeat("a", maxAPIBody) + `@example.org"}`
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	for _, tc := range []struct {
		name, method, target, body string
		header                     []string
		want                       int
	}{
		{"huge body", "POST", "/api/v1/blocks", huge, nil, http.StatusRequestEntityTooLarge},
		{"huge body, no length", "POST", "/api/v1/blocks", strings.Repeat(" ", 10*maxAPIBody), nil, http.StatusRequestEntityTooLarge},
		{"deep nesting", "POST", "/api/v1/blocks", deep, nil, http.StatusRequestEntityTooLarge},
		{"deep nesting, small", "POST", "/api/v1/blocks", strings.Repeat("[", 10000), nil, http.StatusBadRequest},
		{"bad UTF-8 in the body", "POST", "/api/v1/blocks", "{\"address\":\"\xff@example.org\"}", nil, http.StatusBadRequest},
		{"escaped lone surrogate", "POST", "/api/v1/blocks", `{"address":"\udc00@example.org"}`, nil, http.StatusCreated},
		{"NUL in the address", "POST", "/api/v1/blocks", `{"address":"a\u0000b@example.org"}`, nil, http.StatusBadRequest},
		{"long address", "POST", "/api/v1/blocks", `{"address":"` + strings.Repeat("a", apiMaxAddress) + `@x"}`, nil, http.StatusBadRequest},
		{"null body", "POST", "/api/v1/blocks", `null`, nil, http.StatusBadRequest},
		{"string body", "POST", "/api/v1/blocks", `"x@example.org"`, nil, http.StatusBadRequest},
		{"number overflow", "POST", "/api/v1/blocks", `{"address":"x@example.org","watchDays":1e400}`, nil, http.StatusBadRequest},
		{"big integer", "POST", "/api/v1/blocks", `{"address":"x@example.org","watchDays":99999999999999999999}`, nil, http.StatusBadRequest},
		{"content type with junk", "POST", "/api/v1/blocks", `{}`, []string{"Content-Type", "application/json;;;"}, http.StatusUnsupportedMediaType},
		{"json-like type", "POST", "/api/v1/blocks", `{}`, []string{"Content-Type", "application/jsonx"}, http.StatusUnsupportedMediaType},
		{"traversal, encoded", "DELETE", "/api/v1/blocks/..%2F..%2Fsettings", "", nil, http.StatusBadRequest},
		{"traversal, dots", "DELETE", "/api/v1/blocks/%2E%2E", "", nil, http.StatusBadRequest},
		{"double-encoded", "DELETE", "/api/v1/blocks/x%2540example.org", "", nil, http.StatusBadRequest},
		{"bad UTF-8 in the path", "POST", "/api/v1/blocks/%C0%AF@example.org/cancel", "", nil, http.StatusBadRequest},
		{"long path", "DELETE", "/api/v1/blocks/" + strings.Repeat("%41", 2000), "", nil, http.StatusBadRequest},
		{"NUL in the path", "DELETE", "/api/v1/blocks/a%00b@example.org", "", nil, http.StatusBadRequest},
		{"bad UTF-8 in the filter", "GET", "/api/v1/blocks?address=%ff", "", nil, http.StatusBadRequest},
		{"semicolon query", "GET", "/api/v1/blocks?rows=1;page=2", "", nil, http.StatusBadRequest},
		{"huge page", "GET", "/api/v1/blocks?page=99999999999999999999999", "", nil, http.StatusBadRequest},
		{"token with a newline", "GET", "/api/v1/blocks", "", []string{"Authorization", "Bearer ph_\n" + strings.Repeat("a", 64)}, http.StatusUnauthorized},
		{"two tokens", "GET", "/api/v1/blocks", "", []string{"Authorization", "Bearer x y"}, http.StatusUnauthorized},
		{"huge token", "GET", "/api/v1/blocks", "", []string{"Authorization", "Bearer " + strings.Repeat("a", 100000)}, http.StatusUnauthorized},
	} {
		token := a.token
		if len(tc.header) > 0 && tc.header[0] == "Authorization" {
			token = ""
		}
		a.blocks.calls = nil
		resp, body := a.call(tc.method, tc.target, token, tc.body, tc.header...)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d\n%.300s", tc.name, resp.Status, tc.want, body)
			continue
		}
		if resp.StatusCode >= 400 {
			decodeAPIError(t, body)
		}
		for _, c := range a.blocks.calls {
			if strings.Contains(c, "/") && tc.name != "traversal, encoded" {
				t.Errorf("%s: the list got %q", tc.name, c)
			}
		}
	}
	// The one that reached the list was a single segment, decoded once.
	a.blocks.calls = nil
	a.call("DELETE", "/api/v1/blocks/..%2F..%2Fsettings", a.token, "")
	if !slices.Equal(a.blocks.calls, []string{"../../settings"}) {
		t.Errorf("encoded traversal reached the list as %q", a.blocks.calls)
	}
	// Unencoded dots are cleaned by the mux into a redirect, to a path
	// that needs a session or a token again: nothing is deleted.
	a.blocks.calls = nil
	req := httptest.NewRequest("DELETE", "/api/v1/blocks/x@example.org/../../../settings/event-webhook", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if resp := a.do(req); resp.StatusCode != http.StatusTemporaryRedirect || len(a.blocks.calls) != 0 {
		t.Errorf("unclean path: %s, calls %q", resp.Status, a.blocks.calls)
	}
}

// FuzzAPI sends arbitrary requests with a valid token: the answer is
// never a 500 (a panic is one, through the recover handler), and every
// answer under /api/ but the mux's redirects of unclean paths is JSON.
func FuzzAPI(f *testing.F) {
	f.Add("GET", "/api/v1/blocks?rows=5&page=2&address=a", "", "")
	f.Add("POST", "/api/v1/blocks", "application/json", `{"address":"a@example.org","now":true}`)
	f.Add("POST", "/api/v1/blocks", "application/json", `{"address":"a@example.org","at":"2030-01-01 00:00","watchDays":3}`)
	f.Add("DELETE", "/api/v1/blocks/a%40example.org", "", "")
	f.Add("POST", "/api/v1/blocks/a@example.org/cancel", "", "")
	f.Add("GET", "/api/v1/blocks?since=2025-01-01&until=2026-01-01T00:00:00Z&removed=true", "", "")
	f.Add("POST", "/api/v1/blocks", "application/json; charset=utf-8", "{\"address\":\"\\u00e9@example.org\"}")
	f.Add("PATCH", "/api/v1/blocks/%2e%2e", "text/plain", "\xff")
	f.Add("POST", "/api/v1/blocks", "application/json", `{"address":"a@b","reason":7}`)
	srv, token := fuzzServer(f)
	f.Fuzz(func(t *testing.T, method, target, contentType, body string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) {
			return
		}
		req := &http.Request{Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Host: "console.example", RemoteAddr: "127.0.0.1:1"}
		req = req.WithContext(t.Context())
		req.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, target, w.Code, w.Body)
		}
		redirect := w.Code == http.StatusMovedPermanently || w.Code == http.StatusTemporaryRedirect || w.Code == http.StatusPermanentRedirect
		if strings.HasPrefix(u.Path, "/api/") && !redirect {
			if ct := w.Header().Get("Content-Type"); ct != "application/json" || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: %d, %s, not JSON: %q", method, target, w.Code, ct, w.Body)
			}
		}
	})
}

// fuzzServer is one console for all fuzz inputs, built without newEnv,
// which needs a *testing.T: a store per input would make the fuzzer
// measure SQLite's file creation.
func fuzzServer(f *testing.F) (*Server, string) {
	store, err := sqlite.Open(filepath.Join(f.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	token, hash := NewAPIToken()
	if err := store.AddAPIToken(f.Context(), "fuzz", hash, testNow); err != nil {
		f.Fatal(err)
	}
	now := func() time.Time { return testNow }
	srv, err := New(Options{Store: store, Blocks: &apiBlocks{now: now}, Tokens: store,
		Location: testZone, PasswordParams: &cheap, Now: now})
	if err != nil {
		f.Fatal(err)
	}
	return srv, token
}

// validMethod: net/http refuses other methods before a handler runs.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, r := range m {
		if r < '!' || r > '~' || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return true
}

// TestAPICrossOrigin: a program that sends an Origin header (a browser
// extension, some HTTP libraries) is not refused by the console's
// cross-origin check, which protects the session cookie; and a cross-site
// request with only the cookie is still refused.
func TestAPICrossOrigin(t *testing.T) {
	a := newAPIEnv(t)
	cross := []string{"Origin", "https://crm.example", "Sec-Fetch-Site", "cross-site"}
	resp, body := a.call("POST", "/api/v1/blocks", a.token, `{"address":"x@example.org","now":true}`, cross...)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("cross-site POST with a token: %s\n%s", resp.Status, body)
	}
	resp, body = a.call("DELETE", "/api/v1/blocks/x@example.org", "", "", cross...)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cross-site DELETE without a token: %s\n%s", resp.Status, body)
	}
	if n := len(a.blocks.entries); n != 1 || a.blocks.entries[0].Status != "registered" {
		t.Errorf("entries %+v", a.blocks.entries)
	}
}
