package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// publicRoutes are the only routes reachable without a session. Adding one
// here is a decision to make in review.
var publicRoutes = []string{"GET /healthz", "GET /static/", "GET /login", "POST /login", "POST /lang"}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// routeRequest makes a request that the route's pattern matches.
func routeRequest(pattern string) *http.Request {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok { // a pattern for every method
		method, path = http.MethodGet, pattern
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = wildcard.ReplaceAllString(path, "1")
	return httptest.NewRequest(method, path, strings.NewReader("csrf=x"))
}

// TestRoutesNeedSession walks the route table the mux is built from:
// every route but the listed public ones sends a request without a
// session to the login page (GET) or answers 401 (anything else).
func TestRoutesNeedSession(t *testing.T) {
	e := newEnv(t, everyScreen)
	var open []string
	for _, rt := range e.srv.routes() {
		if rt.access == public {
			open = append(open, rt.pattern)
			continue
		}
		req := routeRequest(rt.pattern)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp := e.do(req)
		switch {
		case rt.access == bearer:
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s without a token: %s, want 401 asking for one", rt.pattern, resp.Status)
			}
		case req.Method == http.MethodGet:
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("%s without a session: %s, Location %q; want a redirect to /login", rt.pattern, resp.Status, resp.Header.Get("Location"))
			}
		default:
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without a session: %s, want 401", rt.pattern, resp.Status)
			}
		}
		// A stale or forged cookie is no session either.
		req = routeRequest(rt.pattern)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: "forged"})
		if resp := e.do(req); resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a forged session: %s", rt.pattern, resp.Status)
		}
	}
	if !slices.Equal(open, publicRoutes) {
		t.Errorf("public routes are %q, want %q", open, publicRoutes)
	}
	// htmx gets 401 and where to go.
	req := httptest.NewRequest(http.MethodGet, "/dashboard/live", nil)
	req.Header.Set("HX-Request", "true")
	resp := e.do(req)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/login" {
		t.Errorf("htmx without a session: %s, HX-Redirect %q", resp.Status, resp.Header.Get("HX-Redirect"))
	}
}

// TestCSRF: with a valid session, state-changing requests need the form
// token, and cross-site requests are refused whatever they carry.
func TestCSRF(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		header map[string]string
	}{
		{"settings, no token", "/settings/event-webhook", url.Values{"csrf": {""}, "endpoint": {"https://x.example/"}}, nil},
		{"settings, wrong token", "/settings/event-webhook", url.Values{"csrf": {"AAAA"}}, nil},
		{"logout, no token", "/logout", url.Values{"csrf": {""}}, nil},
		{"language, no token", "/lang", url.Values{"csrf": {""}, "lang": {"ja"}}, nil},
		{"test post, no token", "/settings/event-webhook/test", url.Values{"csrf": {""}}, nil},
		{"cross-site with the token", "/logout", nil, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"other origin with the token", "/logout", nil, map[string]string{"Origin": "https://evil.example"}},
	} {
		form := tc.form
		if form == nil {
			form = url.Values{"csrf": {c.csrf}}
		}
		req, _ := http.NewRequest(http.MethodPost, c.base+tc.path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		resp, body := c.send(req)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403\n%s", tc.name, resp.Status, body)
		}
	}
	// A form past the size limit is refused as too large, not as forged.
	big := url.Values{"csrf": {c.csrf}, "endpoint": {strings.Repeat("x", maxForm)}}
	req, _ := http.NewRequest(http.MethodPost, c.base+"/settings/event-webhook", strings.NewReader(big.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := c.send(req); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 64 KiB") {
		t.Errorf("oversized form: %s, want 413 naming the limit\n%s", resp.Status, body)
	}
	// Still logged in: none of them took effect.
	if resp, _ := c.get("/events"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the refused requests: %s", resp.Status)
	}

	// The login form needs its pre-session token too.
	anon := e.client()
	resp, _ := anon.post("/login", url.Values{"user": {testUser}, "password": {testPassword}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the login page's token: %s, want 403", resp.Status)
	}
	// A session's token does not work for another session.
	other := e.client()
	other.login()
	req, _ = http.NewRequest(http.MethodPost, other.base+"/logout", strings.NewReader(url.Values{"csrf": {c.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := other.send(req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("logout with another session's token: %s, want 403", resp.Status)
	}
	// With its own token, logout works and ends the session.
	resp, _ = c.post("/logout", nil)
	wantStatus(t, resp, http.StatusSeeOther, "")
	if resp, _ := c.get("/events"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after logout: %s, want a redirect to login", resp.Status)
	}
}

// TestLoginRateLimit: the 11th wrong login within a minute is refused,
// per address and per user, even with the right password; a minute later
// logins work again.
func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	login := func(addr, user, password string) int { return e.loginAttempt(t, addr, "", user, password) }

	// Per address: ten wrong passwords for various names.
	for i := range 10 {
		if got := login("198.51.100.7:5000", "guess"+string(rune('a'+i)), "wrong password"); got != http.StatusUnauthorized {
			t.Fatalf("wrong login %d: %d, want 401", i+1, got)
		}
	}
	if got := login("198.51.100.7:5001", testUser, testPassword); got != http.StatusTooManyRequests {
		t.Errorf("11th login from the address: %d, want 429", got)
	}
	if got := login("203.0.113.9:5000", testUser, testPassword); got != http.StatusSeeOther {
		t.Errorf("login from another address: %d, want 303", got)
	}

	// Per user: ten wrong passwords for alice from ten addresses (IPv6
	// ones in different /64s).
	for i := range 10 {
		addr := "[2001:db8:" + string(rune('a'+i)) + "::1]:443"
		if got := login(addr, testUser, "wrong password"); got != http.StatusUnauthorized {
			t.Fatalf("wrong login %d for alice: %d, want 401", i+1, got)
		}
	}
	if got := login("192.0.2.200:1", testUser, testPassword); got != http.StatusTooManyRequests {
		t.Errorf("11th login for alice: %d, want 429", got)
	}

	// A minute later both limits have passed.
	e.clock.Advance(loginWindow + time.Second)
	if got := login("198.51.100.7:5002", testUser, testPassword); got != http.StatusSeeOther {
		t.Errorf("login a minute later: %d, want 303", got)
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:80":              "addr:192.0.2.1",
		"[::ffff:192.0.2.1]:80":     "addr:192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80": "addr:2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:81":      "addr:2001:db8:1:2::/64",
		"@":                         "addr:@",
	} {
		if got := clientKey(addr); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestSessionCookie checks the cookie's attributes and both timeouts.
func TestSessionCookie(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.IdleTimeout = 30 * time.Minute
		o.MaxSessionAge = 2 * time.Hour
	})
	c := e.client()
	c.get("/login")
	resp, _ := c.post("/login", url.Values{"user": {testUser}, "password": {testPassword}})
	var sc *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie {
			sc = k
		}
	}
	if sc == nil {
		t.Fatal("no session cookie")
	}
	if !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Secure || len(sc.Value) < 43 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/, not Secure without TLS, 32 random bytes", sc)
	}

	// Used every 20 minutes the session lives until its absolute end.
	for range 5 {
		e.clock.Advance(20 * time.Minute)
		if resp, _ := c.get("/events"); resp.StatusCode != http.StatusOK {
			t.Fatalf("active session ended early: %s", resp.Status)
		}
	}
	e.clock.Advance(21 * time.Minute) // 2h1m after login
	if resp, _ := c.get("/events"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session past its absolute timeout: %s", resp.Status)
	}

	// Idle: 31 minutes without a request.
	c.login()
	e.clock.Advance(31 * time.Minute)
	if resp, _ := c.get("/events"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("session idle past its timeout: %s", resp.Status)
	}

	// The dashboard's polling does not count as use.
	c.login()
	for range 3 {
		e.clock.Advance(10 * time.Minute)
		if resp, _ := c.get(livePath, "HX-Request", "true", "HX-Target", "live"); resp.StatusCode != http.StatusOK {
			t.Fatalf("polling within the idle timeout: %s", resp.Status)
		}
	}
	e.clock.Advance(time.Minute)
	if resp, _ := c.get("/events"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("polling kept an unattended session alive: %s", resp.Status)
	}
}

func TestSessionCookieTLS(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TLS = true })
	get := httptest.NewRequest(http.MethodGet, "/login", nil)
	page := e.do(get)
	var tok *http.Cookie
	for _, k := range page.Cookies() {
		tok = k
	}
	if tok == nil || tok.Name != "__Host-"+csrfCookie || !tok.Secure {
		t.Fatalf("login page cookie over TLS: %+v", tok)
	}
	form := url.Values{"csrf": {tok.Value}, "user": {testUser}, "password": {testPassword}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(tok)
	resp := e.do(req)
	var sc *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == "__Host-"+sessionCookie {
			sc = k
		}
	}
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie over TLS: %+v", sc)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got == "" {
		t.Error("no HSTS header over TLS")
	}
}

// TestCSRFEveryPostRoute walks the route table: every state-changing route
// refuses a logged-in user's request without the form token, so that a
// route added later cannot be forgotten.
func TestCSRFEveryPostRoute(t *testing.T) {
	e := newEnv(t, everyScreen)
	c := e.client()
	c.login()
	for _, rt := range e.srv.routes() {
		req := routeRequest(rt.pattern)
		if req.Method == http.MethodGet || req.Method == http.MethodHead || rt.access == bearer {
			continue // the API takes no session, so no form token (TestAPIRoutes)
		}
		r, _ := http.NewRequest(req.Method, c.base+req.URL.Path, strings.NewReader(url.Values{"csrf": {""}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, body := c.send(r); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without the form token: %s, want 403\n%s", rt.pattern, resp.Status, body)
		}
	}
}

// everyScreen turns on every optional screen and the API, so that the
// tests that walk every route see all of them.
func everyScreen(o *Options) {
	withPosts(o)
	o.Blocks = newFakeBlocks(o.Now)
	o.Tokens = o.Store.(Tokens)
}

// TestSecurityHeaders checks every route's answer, with and without a
// session.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	for _, rt := range e.srv.routes() {
		req := routeRequest(rt.pattern)
		u, _ := url.Parse(c.base + req.URL.Path)
		req2, _ := http.NewRequest(req.Method, u.String(), strings.NewReader(url.Values{"csrf": {c.csrf}}.Encode()))
		req2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, _ := c.send(req2)
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", rt.pattern, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", rt.pattern, k, got, want)
			}
		}
		if rt.pattern == "POST /logout" {
			c.login()
		}
	}
}

// TestEscaping: text from mail and remote servers is shown, never run.
func TestEscaping(t *testing.T) {
	e := newEnv(t, nil)
	evs := testEvents(3)
	evs[2].Reason = `550 <script>alert("reason")</script>`
	evs[2].To = `"<script>alert(1)</script>"@example.org`
	evs[2].Subject = `<script>alert("subject")</script>`
	evs[2].From = `<img src=x onerror=alert(1)>`
	e.commit(evs)
	c := e.client()
	c.login()
	for _, path := range []string{"/", "/events", eventKey(&evs[2]), "/dashboard/live"} {
		resp, body := c.get(path)
		wantStatus(t, resp, http.StatusOK, body)
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s renders mail text as markup:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(") {
			t.Errorf("%s does not show the escaped text", path)
		}
	}
	// The detail fragment as htmx gets it.
	resp, body := c.get(eventKey(&evs[2]), "HX-Request", "true", "HX-Target", "dialog")
	wantStatus(t, resp, http.StatusOK, body)
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(&#34;subject&#34;)") {
		t.Errorf("detail fragment:\n%s", body)
	}
	_ = event.Queued
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/events?page=2": "/events?page=2",
		"//evil.example": "/",
		"/\\evil":        "/",
		"https://x/":     "/",
		"":               "/",
		"/a\r\nb":        "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMetricsRoute: /metrics is a public route when, and only when, the
// console is given a metrics handler (the config's metrics.public).
func TestMetricsRoute(t *testing.T) {
	off := newEnv(t, nil)
	if resp := off.do(httptest.NewRequest(http.MethodGet, "/metrics", nil)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics without a handler: %s, want 404", resp.Status)
	}
	on := newEnv(t, func(o *Options) {
		o.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "posthorn_up 1\n")
		})
	})
	var open []string
	for _, rt := range on.srv.routes() {
		if rt.access == public {
			open = append(open, rt.pattern)
		}
	}
	if want := append(slices.Clone(publicRoutes), "GET /metrics"); !slices.Equal(open, want) {
		t.Errorf("public routes are %q, want %q", open, want)
	}
	resp := on.do(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "posthorn_up 1\n" {
		t.Errorf("GET /metrics without a session: %s %q, want 200 and the handler's answer", resp.Status, body)
	}
}

// TestExpiredSessionPost: a form posted after the session ended sends a
// browser to the login page and back to the form's page, htmx to the
// login page and back to where it was, and other clients a 401.
func TestExpiredSessionPost(t *testing.T) {
	e := newEnv(t, withPosts)
	c := e.client()
	c.login()
	c.get("/settings/event-webhook")
	e.clock.Advance(DefaultIdleTimeout + time.Minute)

	post := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(url.Values{"csrf": {c.csrf}, "interval": {"7"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, _ := c.send(req)
		return resp
	}
	for _, tc := range []struct {
		name, path string
		header     []string
		status     int
		location   string
		hx         string
	}{
		{"browser form", "/settings/event-webhook", []string{"Sec-Fetch-Mode", "navigate", "Accept", "text/html"}, http.StatusSeeOther,
			"/login?next=%2Fsettings%2Fevent-webhook", ""},
		{"browser without fetch metadata", "/settings/inbound/filter", []string{"Accept", "text/html,*/*"}, http.StatusSeeOther,
			"/login?next=%2Fsettings%2Finbound%2Ffilter", ""},
		{"browser, POST-only route", "/posts/b0001/replay", []string{"Sec-Fetch-Mode", "navigate"}, http.StatusSeeOther, "/login", ""},
		{"htmx", "/posts/b0001/replay", []string{"HX-Request", "true", "HX-Current-URL", c.base + "/events?status=failed"},
			http.StatusUnauthorized, "", "/login?next=%2Fevents%3Fstatus%3Dfailed"},
		// Behind a proxy that rewrites Host the page's URL names another
		// host: its path is still where to come back to.
		{"htmx behind a proxy", "/posts/b0001/replay", []string{"HX-Request", "true", "HX-Current-URL", "https://console.example.com/posts?status=failed"},
			http.StatusUnauthorized, "", "/login?next=%2Fposts%3Fstatus%3Dfailed"},
		// Only the path is kept, so another origin's URL cannot send the
		// login anywhere but to a page of the console.
		{"htmx, another origin", "/posts/b0001/replay", []string{"HX-Request", "true", "HX-Current-URL", "https://evil.example/x"},
			http.StatusUnauthorized, "", "/login?next=%2Fx"},
		{"htmx, scheme-relative path", "/posts/b0001/replay", []string{"HX-Request", "true", "HX-Current-URL", "https://evil.example//evil.example/x"},
			http.StatusUnauthorized, "", "/login?next=%2F"},
		{"htmx, start page", "/posts/b0001/replay", []string{"HX-Request", "true", "HX-Current-URL", "https://console.example.com/"},
			http.StatusUnauthorized, "", "/login"},
		{"program", "/settings/event-webhook", []string{"Accept", "application/json"}, http.StatusUnauthorized, "", ""},
	} {
		resp := post(tc.path, tc.header...)
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location || resp.Header.Get("HX-Redirect") != tc.hx {
			t.Errorf("%s: %s, Location %q, HX-Redirect %q; want %d %q %q", tc.name, resp.Status,
				resp.Header.Get("Location"), resp.Header.Get("HX-Redirect"), tc.status, tc.location, tc.hx)
		}
	}
	if _, saved, _ := e.settings.EventWebhookSettings(context.Background()); saved {
		t.Error("saved without a session")
	}

	// Logging in again goes back to the form.
	_, body := c.get("/login?next=%2Fsettings%2Fevent-webhook")
	if !strings.Contains(body, `value="/settings/event-webhook"`) {
		t.Fatalf("the login form does not carry next:\n%s", mainOf(body))
	}
	resp, body := c.post("/login", url.Values{"user": {testUser}, "password": {testPassword}, "next": {"/settings/event-webhook"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/settings/event-webhook" {
		t.Errorf("after login: %s to %q\n%s", resp.Status, resp.Header.Get("Location"), body)
	}
}
