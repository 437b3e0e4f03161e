package ui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; run go test -update if intended):\n%s", path, diff)
	}
}

// cheap argon2id parameters: the tests log in dozens of times, under -race.
var cheap = PasswordParams{Time: 1, MemoryKiB: 64, Threads: 1}

const (
	testUser     = "alice"
	testPassword = "correct horse battery"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testZone is the console's zone in the tests: not UTC, so that a search
// period read in the wrong zone shows.
var testZone = time.FixedZone("JST", 9*3600)

// testNow is the tests' "now": 2025-06-02 12:00 JST.
var testNow = time.Date(2025, 6, 2, 12, 0, 0, 0, testZone)

type env struct {
	t        *testing.T
	store    *sqlite.Store
	settings WebhookSettings
	clock    *clock
	srv      *Server
	opts     Options
}

// newEnv opens a real store in a temp dir with user alice and builds a
// console over it. mod may change the options.
func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hash, err := HashPassword(testPassword, cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.AddUser(context.Background(), testUser, hash); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, settings: store, clock: &clock{t: testNow}}
	e.opts = Options{
		Store:           store,
		Settings:        e.settings,
		Inbound:         store,
		InboundSettings: inboundStore{store},
		Location:        testZone,
		Hostname:        "mx1.example.net",
		PasswordParams:  &cheap,
		Now:             e.clock.Now,
	}
	if mod != nil {
		mod(&e.opts)
	}
	e.srv, err = New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// do sends a request straight to the handler with the given remote
// address and cookies, and returns the recorded response.
func (e *env) do(r *http.Request) *http.Response {
	if r.RemoteAddr == "" || r.RemoteAddr == "192.0.2.1:1234" {
		r.RemoteAddr = "127.0.0.1:40000"
	}
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, r)
	return w.Result()
}

// loginAttempt logs in as a fresh browser: the login page, then the form
// with its token. The requests come from addr, carrying forwardedFor in
// X-Forwarded-For when set. It returns the form's status.
func (e *env) loginAttempt(t *testing.T, addr, forwardedFor, user, password string) int {
	t.Helper()
	get := httptest.NewRequest(http.MethodGet, "/login", nil)
	get.RemoteAddr = addr
	if forwardedFor != "" {
		get.Header.Set("X-Forwarded-For", forwardedFor)
	}
	var tok *http.Cookie
	for _, k := range e.do(get).Cookies() {
		if k.Name == csrfCookie {
			tok = k
		}
	}
	if tok == nil {
		t.Fatal("login page set no form token cookie")
	}
	form := url.Values{"csrf": {tok.Value}, "user": {user}, "password": {password}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	req.RemoteAddr = addr
	req.AddCookie(tok)
	return e.do(req).StatusCode
}

// client is a browser-like user of the console: a cookie jar over a test
// server, not following redirects so that tests see them.
type client struct {
	t    *testing.T
	http *http.Client
	base string
	csrf string // the form token of the last page read
}

func (e *env) client() *client {
	ts := httptest.NewServer(e.srv)
	e.t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	return &client{
		t:    e.t,
		base: ts.URL,
		http: &http.Client{
			Jar: jar,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get fetches a path and returns the response and its body, remembering
// the page's form token.
func (c *client) get(path string, header ...string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

// post sends a form; the form token of the last page is added unless the
// form has a "csrf" key already.
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req)
}

// login logs in as alice and fails the test otherwise.
func (c *client) login() {
	c.t.Helper()
	c.get("/login")
	resp, body := c.post("/login", url.Values{"user": {testUser}, "password": {testPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login: %s\n%s", resp.Status, body)
	}
	c.get("/")
}

func (c *client) cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.base)
	for _, k := range c.http.Jar.Cookies(u) {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func wantStatus(t *testing.T, resp *http.Response, want int, body string) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %s, want %d\n%s", resp.Request.Method, resp.Request.URL.Path, resp.Status, want, body)
	}
}

// testEvents makes n events a minute apart, newest at testNow, cycling
// through the statuses.
func testEvents(n int) []event.Event {
	types := []event.Type{event.Queued, event.Succeeded, event.Deferred, event.Failed, event.Bounced}
	out := make([]event.Event, n)
	for i := range out {
		sum := sha256.Sum256([]byte(fmt.Sprint("ui event ", i)))
		e := event.Event{
			ID:         hex.EncodeToString(sum[:16]),
			Type:       types[i%len(types)],
			Time:       testNow.Add(-time.Duration(n-1-i) * time.Minute).UTC(),
			Host:       "mx1.example.net",
			QueueID:    fmt.Sprintf("4bX%07d", i),
			MessageID:  fmt.Sprintf("<m%d@app.example.com>", i),
			ReturnPath: "bounces@app.example.com",
			To:         fmt.Sprintf("user%d@example.org", i),
			Relay:      "mx.example.org[192.0.2.25]:25",
			DSN:        "2.0.0",
			Reason:     "250 2.0.0 OK",
			Delay:      "0.5",
		}
		if e.Type == event.Bounced {
			e.Class = event.ClassUnknownUser
			e.DSN = "5.1.1"
			e.Reason = "550 5.1.1 user unknown"
		}
		out[i] = e
	}
	return out
}

func (e *env) commit(evs []event.Event) {
	e.t.Helper()
	if err := e.store.Commit(context.Background(), event.Batch{Events: evs}); err != nil {
		e.t.Fatal(err)
	}
}

// inboundStore saves inbound settings as the daemon does without
// allow_insecure_http.
type inboundStore struct{ s *sqlite.Store }

func (i inboundStore) InboundSettings(ctx context.Context) (settings.Inbound, bool, error) {
	return i.s.InboundSettings(ctx)
}

func (i inboundStore) SaveInboundSettings(ctx context.Context, in settings.Inbound) error {
	return i.s.SaveInboundSettings(ctx, in, false)
}
