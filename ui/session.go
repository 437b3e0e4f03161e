package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// info is what handlers and components know about the request.
type info struct {
	lang     string // "en" or "ja"
	loc      *time.Location
	user     string // "" before login
	csrf     string // the form token to embed
	path     string // the request's path and query, for "back" links
	hostname string
}

type infoKey struct{}

// infoFrom returns the request's info; components call it through ctx.
func infoFrom(ctx context.Context) *info {
	if ri, ok := ctx.Value(infoKey{}).(*info); ok {
		return ri
	}
	return &info{lang: "en", loc: time.UTC}
}

// Cookie names. Over TLS the __Host- prefix makes browsers refuse the
// cookie unless it is Secure, for path / and without a Domain, so a
// neighbouring host cannot plant one (RFC 6265bis §4.1.3.2).
func (s *Server) cookieName(r *http.Request, base string) string {
	if s.secure(r) {
		return "__Host-" + base
	}
	return base
}

const (
	sessionCookie = "posthorn_session"
	csrfCookie    = "posthorn_csrf" // the form token before login
	langCookie    = "posthorn_lang"
)

// requestInfo collects the language, the zone and the path; the user and
// the form token are filled by authenticate or preSessionToken.
func (s *Server) requestInfo(r *http.Request) *info {
	return &info{
		lang:     language(r),
		loc:      s.loc,
		path:     r.URL.RequestURI(),
		hostname: s.hostname,
	}
}

// token returns 32 random bytes in base64url.
func token() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documentation, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionID is what the store keeps of a cookie value: its SHA-256, so that
// reading the database does not give anyone a live session.
func sessionID(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

// sessionCSRF is the form token of a session: an HMAC keyed with the
// session cookie, which a page of another site can neither read nor
// compute, and which needs no storage.
func sessionCSRF(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("posthorn form token"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// livePath is the dashboard part htmx polls.
const livePath = "/dashboard/live"

// touchEvery limits how often a session's last-use time is written: the
// idle timeout is an hour by default, and a write per request would
// compete with the log reader for the one writer connection.
const touchEvery = time.Minute

// authenticate checks the session cookie, ending sessions past their idle
// or absolute timeout, and fills ri.user and ri.csrf.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, ri *info) bool {
	c, err := r.Cookie(s.cookieName(r, sessionCookie))
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return false
	}
	id := sessionID(c.Value)
	ctx := r.Context()
	user, created, seen, ok, err := s.store.Session(ctx, id)
	if err != nil {
		s.log.Error("console: read session", "err", err)
		return false
	}
	if !ok {
		return false
	}
	now := s.now()
	if now.Sub(seen) > s.idle || now.Sub(created) > s.maxAge {
		if err := s.store.DeleteSession(ctx, id); err != nil {
			s.log.Error("console: end expired session", "err", err)
		}
		s.clearCookie(w, r, sessionCookie)
		return false
	}
	// The dashboard's polling is no sign of a person: it must not keep
	// an open but unattended tab logged in past the idle timeout.
	if now.Sub(seen) >= touchEvery && r.URL.Path != livePath {
		if err := s.store.TouchSession(ctx, id, now); err != nil {
			s.log.Error("console: touch session", "err", err)
		}
	}
	ri.user = user
	ri.csrf = sessionCSRF(c.Value)
	return true
}

// preSessionToken gives pages shown before login (the login form, the
// language switch on it) a form token: a random cookie that the form must
// repeat. Only a page of this origin can read it into the form.
func (s *Server) preSessionToken(w http.ResponseWriter, r *http.Request, ri *info) {
	if ri.csrf != "" {
		return
	}
	if c, err := r.Cookie(s.cookieName(r, csrfCookie)); err == nil && len(c.Value) == 43 {
		ri.csrf = c.Value
		return
	}
	ri.csrf = token()
	s.setCookie(w, r, csrfCookie, ri.csrf, 0)
}

// checkCSRF compares the form token of a state-changing request with the
// session's, or before login with the pre-session cookie.
func (s *Server) checkCSRF(r *http.Request, ri *info) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	want := ri.csrf
	if want == "" {
		// No session: the login page's token, and only if the session
		// cookie is absent or dead (authenticate was not called).
		if ok := s.authenticate(discard{}, r, ri); ok {
			want = ri.csrf
		} else if c, err := r.Cookie(s.cookieName(r, csrfCookie)); err == nil {
			want = c.Value
		}
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// discard is a ResponseWriter whose headers go nowhere, for authenticate
// called only to learn the session's token.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// setCookie sets an HttpOnly, SameSite=Strict cookie for the whole
// console; maxAge 0 makes it a browser-session cookie.
func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     s.cookieName(r, name),
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   s.secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(r, name), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// Login rate limits: the 11th failure within a minute, per client address
// and per user name, is refused without checking the password.
const (
	loginWindow      = time.Minute
	loginMaxFailures = 10
)

// clientKey is the rate-limit key of a client address. IPv6 clients are
// counted per /64, the smallest prefix a site usually gets, so that one
// client cannot step through its own addresses.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + a.String()
}

type loginResult int

const (
	loginOK loginResult = iota
	loginWrong
	loginLimited
)

// checkLogin applies the rate limits, verifies the password, and records a
// failure. An unknown user costs the same hashing time as a wrong password.
func (s *Server) checkLogin(ctx context.Context, addr, user, password string) (loginResult, error) {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	now := s.now()
	keys := []string{clientKey(addr), "user:" + user}
	for _, k := range keys {
		n, err := s.store.LoginFailures(ctx, k, now.Add(-loginWindow))
		if err != nil {
			return loginWrong, err
		}
		if n >= loginMaxFailures {
			return loginLimited, nil
		}
	}
	hash, ok, err := s.store.UserPasswordHash(ctx, user)
	if err != nil {
		return loginWrong, err
	}
	if !ok {
		hash = s.dummyHash
	}
	match, err := VerifyPassword(hash, password)
	if err != nil {
		s.log.Error("console: stored password hash unreadable", "user", user, "err", err)
	}
	if ok && match {
		return loginOK, nil
	}
	if err := s.store.AddLoginFailure(ctx, keys, now); err != nil {
		return loginWrong, err
	}
	return loginWrong, nil
}

// startSession stores a new session for user and sets its cookie. A new
// id at every login means an id planted before login is worthless.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, user string) error {
	now := s.now()
	// Sessions that can no longer be used are removed at each login,
	// which keeps the table at about the number of active users.
	if _, err := s.store.PruneSessions(r.Context(), now.Add(-s.idle), now.Add(-s.maxAge)); err != nil {
		s.log.Warn("console: prune sessions", "err", err)
	}
	value := token()
	if err := s.store.CreateSession(r.Context(), sessionID(value), user, now); err != nil {
		return err
	}
	s.setCookie(w, r, sessionCookie, value, s.maxAge)
	s.clearCookie(w, r, csrfCookie)
	return nil
}

// localPath returns p when it is a path of this console, else "/": the
// "back" parameters must not send anyone to another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") ||
		strings.ContainsAny(p, "\r\n\t") {
		return "/"
	}
	return p
}
