package ui

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestForwardedFor(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy", "192.0.2.7:5000", nil, "192.0.2.7:5000"},
		{"untrusted peer's header ignored", "192.0.2.7:5000", []string{"203.0.113.9"}, "192.0.2.7:5000"},
		{"through a trusted proxy", "127.0.0.1:40000", []string{"203.0.113.9"}, "203.0.113.9:0"},
		{"client's own entries not believed", "127.0.0.1:40000", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9:0"},
		{"two trusted proxies", "127.0.0.1:40000", []string{"203.0.113.9, 10.1.2.3"}, "203.0.113.9:0"},
		{"several header lines", "127.0.0.1:40000", []string{"198.51.100.1", "203.0.113.9"}, "203.0.113.9:0"},
		{"IPv6 proxy and client", "[::1]:40000", []string{"2001:db8::7"}, "[2001:db8::7]:0"},
		{"trusted peer without a header", "127.0.0.1:40000", nil, "127.0.0.1:40000"},
		{"garbage before the client", "127.0.0.1:40000", []string{"nonsense, 203.0.113.9"}, "203.0.113.9:0"},
		{"garbage last: nothing believed", "127.0.0.1:40000", []string{"203.0.113.9, nonsense"}, "127.0.0.1:40000"},
		{"only trusted hops", "127.0.0.1:40000", []string{"10.9.9.9"}, "10.9.9.9:0"},
	} {
		var got string
		h := forwardedFor(trusted, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != tc.want {
			t.Errorf("%s: client %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestLoginLimitBehindProxy: behind a trusted proxy the login limit
// counts each client, so one guessing client does not lock out the
// others who share the proxy's address.
func TestLoginLimitBehindProxy(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	login := func(client, password string) int {
		get := httptest.NewRequest(http.MethodGet, "/login", nil)
		get.RemoteAddr = "127.0.0.1:40000"
		get.Header.Set("X-Forwarded-For", client)
		page := e.do(get)
		var tok *http.Cookie
		for _, k := range page.Cookies() {
			if k.Name == csrfCookie {
				tok = k
			}
		}
		if tok == nil {
			t.Fatal("login page set no form token cookie")
		}
		form := url.Values{"csrf": {tok.Value}, "user": {"guess"}, "password": {password}}
		if password == testPassword {
			form.Set("user", testUser)
		}
		req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", client)
		req.RemoteAddr = "127.0.0.1:40001"
		req.AddCookie(tok)
		return e.do(req).StatusCode
	}
	for i := range 10 {
		if got := login("198.51.100.7", "wrong password"); got != http.StatusUnauthorized {
			t.Fatalf("wrong login %d: %d, want 401", i+1, got)
		}
	}
	if got := login("198.51.100.7", testPassword); got != http.StatusTooManyRequests {
		t.Errorf("11th login from the guessing client: %d, want 429", got)
	}
	if got := login("203.0.113.9", testPassword); got != http.StatusSeeOther {
		t.Errorf("login from another client behind the same proxy: %d, want 303", got)
	}
}
