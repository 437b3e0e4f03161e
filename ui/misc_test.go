package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/event"
)

func TestLanguage(t *testing.T) {
	for _, tc := range []struct {
		accept, cookie, want string
	}{
		{"", "", "en"},
		{"ja", "", "ja"},
		{"ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "", "ja"},
		{"en-US,en;q=0.9,ja;q=0.8", "", "en"},
		{"de-DE,ja;q=0.5", "", "ja"},
		{"fr", "", "en"},
		{"ja;q=0.1,en;q=0.2", "", "en"},
		{"ja;q=bogus,en;q=0.2", "", "en"},
		{"ja", "en", "en"},
		{"en", "ja", "ja"},
		{"en", "xx", "en"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Accept-Language", tc.accept)
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
		}
		if got := language(r); got != tc.want {
			t.Errorf("Accept-Language %q, cookie %q: %s, want %s", tc.accept, tc.cookie, got, tc.want)
		}
	}
}

func TestLanguageSwitch(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	_, body := c.get("/login", "Accept-Language", "ja")
	if !strings.Contains(body, `<html lang="ja">`) || !strings.Contains(body, "ログイン") {
		t.Fatalf("login page in Japanese:\n%s", body)
	}
	golden(t, "login_ja.html", []byte(mainOf(body)))
	// The switch works before login, and goes back where it was pressed.
	resp, _ := c.post("/lang", url.Values{"lang": {"en"}, "back": {"/login?next=%2Fevents"}})
	wantStatus(t, resp, http.StatusSeeOther, "")
	if loc := resp.Header.Get("Location"); loc != "/login?next=%2Fevents" {
		t.Errorf("after switching: Location %q", loc)
	}
	_, body = c.get("/login", "Accept-Language", "ja")
	if !strings.Contains(body, `<html lang="en">`) {
		t.Error("the switch does not override Accept-Language")
	}
	// Off-site "back" values go home.
	resp, _ = c.post("/lang", url.Values{"lang": {"ja"}, "back": {"//evil.example/"}})
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("off-site back: Location %q", loc)
	}
	resp, _ = c.post("/lang", url.Values{"lang": {"klingon"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown language: %s", resp.Status)
	}
	// After login the requested page comes back.
	c.get("/login")
	resp, _ = c.post("/login", url.Values{"user": {testUser}, "password": {testPassword}, "next": {"/events?page=2"}})
	if loc := resp.Header.Get("Location"); loc != "/events?page=2" {
		t.Errorf("after login: Location %q", loc)
	}
	resp, _ = c.get("/events?page=3")
	wantStatus(t, resp, http.StatusOK, "")
}

func TestLoginPage(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	resp, body := c.get("/events?status=failed")
	if loc := resp.Header.Get("Location"); loc != "/login?next=%2Fevents%3Fstatus%3Dfailed" {
		t.Errorf("redirect to login: %q", loc)
	}
	resp, body = c.get("/login")
	wantStatus(t, resp, http.StatusOK, body)
	golden(t, "login.html", []byte(mainOf(body)))
	for _, tc := range []struct{ user, password string }{
		{testUser, "wrong password"},
		{"nobody", testPassword},
		{strings.Repeat("x", 100), testPassword},
	} {
		resp, body = c.post("/login", url.Values{"user": {tc.user}, "password": {tc.password}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password.") {
			t.Errorf("login %q/%q: %s", tc.user, tc.password, resp.Status)
		}
	}
	c.login()
	// A logged-in user going to /login lands on the dashboard.
	resp, _ = c.get("/login")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Errorf("login page when logged in: %s %s", resp.Status, resp.Header.Get("Location"))
	}
}

// TestCatalog: every text exists in English and Japanese (field error
// rules only in Japanese: English uses the settings package's messages),
// and every key the code uses exists.
func TestCatalog(t *testing.T) {
	for key, m := range catalog {
		if m["ja"] == "" {
			t.Errorf("%s has no Japanese text", key)
		}
		// Field error rules are Japanese only: English pages show the
		// settings package's own messages.
		if m["en"] == "" && !strings.HasPrefix(key, "err.") && !strings.HasPrefix(key, "filter.") && !strings.HasPrefix(key, "cond.") {
			t.Errorf("%s has no English text", key)
		}
		if strings.Count(m["en"], "%") != strings.Count(m["ja"], "%") && m["en"] != "" {
			t.Errorf("%s: the languages take different arguments", key)
		}
	}
	for _, st := range inboundStatuses {
		if _, ok := catalog["istatus."+string(st)]; !ok {
			t.Errorf("inbound status %s has no label", st)
		}
	}
	for _, st := range append(statuses, event.Registered, event.Deleted) {
		if _, ok := catalog["status."+string(st)]; !ok {
			t.Errorf("status %s has no label", st)
		}
	}
	files, _ := filepath.Glob("*.templ")
	more, _ := filepath.Glob("*.go")
	used := regexp.MustCompile(`(?:tr|trf|help)\((?:ctx, )?"([a-z][a-z._]*)"`)
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "_templ.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range used.FindAllSubmatch(b, -1) {
			if strings.HasSuffix(string(m[1]), ".") {
				continue // a prefix completed at run time: checked below
			}
			if _, ok := catalog[string(m[1])]; !ok {
				t.Errorf("%s uses %q, which is not in the catalog", f, m[1])
			}
		}
	}
}

func TestStatic(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"htmx.min.js", "app.js", "app.css"} {
		resp := e.do(httptest.NewRequest(http.MethodGet, staticURL(name), nil))
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("%s: %s", name, resp.Status)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q", name, cc)
		}
		ct := resp.Header.Get("Content-Type")
		if (strings.HasSuffix(name, ".js") && !strings.Contains(ct, "javascript")) || (strings.HasSuffix(name, ".css") && !strings.HasPrefix(ct, "text/css")) {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
	resp := e.do(httptest.NewRequest(http.MethodGet, "/static/app.css?v=old", nil))
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("old version: Cache-Control %q", cc)
	}
	for _, p := range []string{"/static/", "/static/README.md", "/static/htmx.LICENSE", "/static/x/../../ui.go"} {
		if resp := e.do(httptest.NewRequest(http.MethodGet, p, nil)); resp.StatusCode == http.StatusOK {
			t.Errorf("%s is served", p)
		}
	}
	resp = e.do(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "ok\n" {
		t.Errorf("healthz: %s %q", resp.Status, b)
	}
}

// TestGenerated fails when a *_templ.go file is not what the pinned templ
// generator makes of its .templ file (templ's CI/CD advice: commit the
// generated code and check it for drift).
func TestGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the templ generator")
	}
	out, err := exec.Command("go", "tool", "templ", "generate", "-check", "-path", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("generated code is out of date: run 'go tool templ generate -path ui'\n%s", out)
	}
}

func TestNewNeedsStore(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a store")
	}
	if _, err := New(Options{Store: newEnv(t, nil).store, PasswordParams: &PasswordParams{}}); err == nil {
		t.Error("New with zero password parameters")
	}
}
