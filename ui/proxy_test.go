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
		user := "guess"
		if password == testPassword {
			user = testUser
		}
		return e.loginAttempt(t, "127.0.0.1:40000", client, user, password)
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

// TestForwardedProto: behind a trusted HTTPS proxy (the README's setup:
// the console on 127.0.0.1) the cookies are Secure and __Host- prefixed
// and HSTS is sent; the header from any other peer changes nothing.
func TestForwardedProto(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	for _, tc := range []struct {
		name, remote, proto string
		secure              bool
	}{
		{"trusted proxy, https", "127.0.0.1:40000", "https", true},
		{"trusted proxy, list ending in https", "127.0.0.1:40000", "http, https", true},
		{"trusted proxy, http", "127.0.0.1:40000", "http", false},
		{"trusted proxy, no header", "127.0.0.1:40000", "", false},
		{"untrusted peer claiming https", "192.0.2.7:5000", "https", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.RemoteAddr = tc.remote
		if tc.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		resp := e.do(r)
		cookies := resp.Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%s: cookies %v", tc.name, cookies)
		}
		c := cookies[0]
		hsts := resp.Header.Get("Strict-Transport-Security") != ""
		if c.Secure != tc.secure || strings.HasPrefix(c.Name, "__Host-") != tc.secure || hsts != tc.secure {
			t.Errorf("%s: cookie %s Secure %v, HSTS %v; want secure %v", tc.name, c.Name, c.Secure, hsts, tc.secure)
		}
	}

	// A whole login through the proxy: the session cookie is the
	// __Host- one, and it is the one read back.
	c := e.client()
	c.http.Transport = headerTransport{"X-Forwarded-Proto": "https"}
	c.get("/login")
	resp, body := c.post("/login", url.Values{"user": {testUser}, "password": {testPassword}})
	wantStatus(t, resp, http.StatusSeeOther, body)
	var session *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == "__Host-"+sessionCookie {
			session = k
		}
	}
	if session == nil || !session.Secure {
		t.Fatalf("session cookie through the proxy: %v", resp.Cookies())
	}
	req := httptest.NewRequest(http.MethodGet, "/events", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-Proto", "https")
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	if resp := e.do(req); resp.StatusCode != http.StatusOK {
		t.Errorf("a page through the proxy with the session: %s", resp.Status)
	}
}

// headerTransport adds headers to every request, as a proxy in front
// would.
type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}
