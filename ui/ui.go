// Package ui is Posthorn's web console: the Event log with its CSV download,
// the Event Webhook's post log with replay, the Event Webhook settings, the
// inbound log with its AES-256 ZIP download, the Inbound Webhook settings,
// and a dashboard with each webhook's backlog and endpoint health, for
// users stored in the database (ARCHITECTURE.md, "Layout"; WIRE.md §4–5).
// Pages are templ components rendered on the server; every page works without JavaScript,
// and the vendored htmx only makes searching, paging and the detail dialog
// avoid full page loads.
//
// The package declares the store methods it needs (Accounts, EventLog,
// WebhookSettings, PostLog, Spool, InboundLog, InboundSettings); cmd/posthorn
// passes a *sqlite.Store or an adapter over it.
package ui

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// Accounts stores console users, sessions and failed logins. Session ids
// passed in are already hashed (64 hex digits).
type Accounts interface {
	UserPasswordHash(ctx context.Context, name string) (hash string, ok bool, err error)
	CreateSession(ctx context.Context, id, user string, now time.Time) error
	Session(ctx context.Context, id string) (user string, created, seen time.Time, ok bool, err error)
	TouchSession(ctx context.Context, id string, seen time.Time) error
	DeleteSession(ctx context.Context, id string) error
	PruneSessions(ctx context.Context, idleBefore, createdBefore time.Time) (int64, error)
	AddLoginFailure(ctx context.Context, keys []string, at time.Time) error
	LoginFailures(ctx context.Context, key string, since time.Time) (int, error)
}

// EventLog reads the stored delivery events.
type EventLog interface {
	// RecentEvents returns what q selects newest first; paging with
	// AfterTime/AfterID goes towards older events.
	RecentEvents(ctx context.Context, q event.Query) ([]event.Event, error)
	// EventAt returns the event with this time and id.
	EventAt(ctx context.Context, t time.Time, id string) (event.Event, bool, error)
	// EachEvent calls fn for every event q selects, oldest first, in
	// constant memory.
	EachEvent(ctx context.Context, q event.Query, fn func(*event.Event) error) error
	// CountEventsSince counts the events of each type from since on.
	CountEventsSince(ctx context.Context, since time.Time) (map[event.Type]int64, error)
}

// Store is what the console cannot work without.
type Store interface {
	Accounts
	EventLog
}

// WebhookSettings reads and writes the Event Webhook's settings; ok is
// false when none were saved yet.
type WebhookSettings interface {
	EventWebhookSettings(ctx context.Context) (settings.EventWebhook, bool, error)
	SaveEventWebhookSettings(ctx context.Context, s settings.EventWebhook) error
}

// TestResult is what an endpoint answered to a test post.
type TestResult struct {
	Status int    // HTTP status, 0 when no answer came
	Head   string // the start of the response body
}

// Options configures a Server.
type Options struct {
	Store Store // required
	// Settings, when set, enables the Event Webhook settings screen.
	Settings WebhookSettings
	// SendTestEvent, when set, adds a "send test event" button: it posts
	// a sample batch with the given settings and returns the answer.
	SendTestEvent func(ctx context.Context, s settings.EventWebhook) (TestResult, error)
	// Posts, when set, enables the Event Webhook's post log screen.
	Posts PostLog
	// Spool, when set, adds the webhooks' backlogs and endpoint health to
	// the dashboard.
	Spool Spool
	// Inbound, when set, enables the inbound log screen.
	Inbound InboundLog
	// InboundSettings, when set, enables the Inbound Webhook settings
	// screen (allowed domains, filters).
	InboundSettings InboundSettings
	// PostfixLimits, when set, reads Postfix's receive limits for the
	// inbound settings screen (they are changed in Postfix, not here).
	PostfixLimits func(ctx context.Context) ([]PostfixLimit, error)
	// MaxMessageSize is Posthorn's own [milter] max_message_size, shown
	// next to Postfix's message_size_limit (0: not shown).
	MaxMessageSize int64
	// Blocks, when set, enables the suppression list: the Blocks screen
	// and, with Tokens, the /api/v1/blocks API.
	Blocks BlockList
	// Tokens, when set with Blocks, enables /api/v1/blocks for holders
	// of an API token (api.go).
	Tokens Tokens
	// Metrics, when set, is served at GET /metrics without a session
	// (the config's metrics.public): Prometheus scrapes without logging
	// in. Unset, /metrics does not exist on the console.
	Metrics http.Handler
	// AllowInsecureHTTP lets the endpoint be http:// (the daemon config's
	// development switch).
	AllowInsecureHTTP bool
	// Location is the zone times are shown and searched in (default
	// time.Local).
	Location *time.Location
	// TLS says the console is served over HTTPS: cookies are then Secure
	// and __Host- prefixed, and browsers are told to stay on HTTPS. A
	// request that a trusted proxy (TrustedProxies) says came over HTTPS
	// (X-Forwarded-Proto) is treated alike.
	TLS bool
	// IdleTimeout ends a session not used for this long (default 1h);
	// MaxSessionAge ends any session this long after login (default 12h).
	IdleTimeout   time.Duration
	MaxSessionAge time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed (proxy.go); empty, the header is ignored.
	TrustedProxies []netip.Prefix
	// Hostname is shown in the page header.
	Hostname string
	// PasswordParams are the argon2id costs of the hash compared against
	// when a login names an unknown user, so that it takes as long as a
	// wrong password (default DefaultPasswordParams).
	PasswordParams *PasswordParams
	Logger         *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the console's HTTP handler.
type Server struct {
	store     Store
	settings  WebhookSettings
	sendTest  func(ctx context.Context, s settings.EventWebhook) (TestResult, error)
	allowHTTP bool
	loc       *time.Location
	tls       bool
	idle      time.Duration
	maxAge    time.Duration
	hostname  string
	log       *slog.Logger
	now       func() time.Time

	posts           PostLog
	spool           Spool
	inbound         InboundLog
	inboundSettings InboundSettings
	postfixLimits   func(ctx context.Context) ([]PostfixLimit, error)
	maxMessageSize  int64
	blocks          BlockList
	tokens          Tokens
	metrics         http.Handler
	// addResults keeps the Blocks add form's per-address results for
	// the page it redirects to.
	addResults addResults

	// sealer seals secrets typed into a form that is shown again
	// (secret.go).
	sealer cipher.AEAD

	// loginMu serialises the check-verify-record sequence of logins, so
	// that parallel guesses cannot all pass the rate limit before any of
	// them is recorded, and bounds argon2's memory to one hash at a time.
	loginMu   sync.Mutex
	dummyHash string

	mux     *http.ServeMux
	handler http.Handler
}

// Session lifetimes when Options leave them zero.
const (
	DefaultIdleTimeout   = time.Hour
	DefaultMaxSessionAge = 12 * time.Hour
)

// New builds the console.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("new console: no store")
	}
	s := &Server{
		store:    o.Store,
		settings: o.Settings,
		sendTest: o.SendTestEvent,

		posts:           o.Posts,
		spool:           o.Spool,
		inbound:         o.Inbound,
		inboundSettings: o.InboundSettings,
		postfixLimits:   o.PostfixLimits,
		maxMessageSize:  o.MaxMessageSize,
		blocks:          o.Blocks,
		tokens:          o.Tokens,
		metrics:         o.Metrics,
		allowHTTP:       o.AllowInsecureHTTP,
		loc:             o.Location,
		tls:             o.TLS,
		idle:            o.IdleTimeout,
		maxAge:          o.MaxSessionAge,
		hostname:        o.Hostname,
		log:             o.Logger,
		now:             o.Now,
		sealer:          newSealer(),
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	if s.maxAge <= 0 {
		s.maxAge = DefaultMaxSessionAge
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	params := DefaultPasswordParams
	if o.PasswordParams != nil {
		params = *o.PasswordParams
	}
	var err error
	if s.dummyHash, err = HashPassword("posthorn: no such user", params); err != nil {
		return nil, fmt.Errorf("new console: %w", err)
	}

	mux := http.NewServeMux()
	s.mux = mux
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.guard(rt))
	}
	// Cross-origin state-changing requests are refused before any handler
	// runs (Sec-Fetch-Site / Origin checks); the form token below covers
	// browsers that send neither header.
	cop := http.NewCrossOriginProtection()
	if s.blocks != nil && s.tokens != nil {
		// The API accepts a bearer token only, never the session
		// cookie: a request another site makes a browser send carries
		// no credential, so its origin does not matter (api.go).
		cop.AddInsecureBypassPattern("/api/")
	}
	s.handler = s.recover(s.headers(cop.Handler(mux)))
	if len(o.TrustedProxies) > 0 {
		s.handler = forwardedFor(o.TrustedProxies, s.handler)
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// access says who may use a route.
type access int

const (
	public  access = iota // anyone: the login page, health check, assets
	session               // a logged-in user
	bearer                // a program with an API token, never a session (api.go)
)

type route struct {
	pattern string
	access  access
	handler http.HandlerFunc
}

// routes is every route of the console. The mux is built from this table
// only, and TestRoutesNeedSession walks it, so that a route added here
// without the right access level fails a test.
func (s *Server) routes() []route {
	rts := []route{
		{"GET /healthz", public, s.healthz},
		{"GET /static/", public, s.static},
		{"GET /login", public, s.loginPage},
		{"POST /login", public, s.login},
		{"POST /lang", public, s.setLang},

		{"POST /logout", session, s.logout},
		{"GET /{$}", session, s.dashboard},
		{"GET " + livePath, session, s.dashboardLive},
		{"GET /events", session, s.eventLog},
		{"GET /events/{time}/{id}", session, s.eventDetail},
		{"GET /events.csv", session, s.eventCSV},
		{"GET /posts", session, s.postLog},
		{"GET /posts/{id}", session, s.postDetail},
		{"POST /posts/{id}/replay", session, s.replayPost},
		{"GET /posts.csv", session, s.postCSV},
		{"GET /settings/event-webhook", session, s.webhookPage},
		{"POST /settings/event-webhook", session, s.saveWebhook},
		{"POST /settings/event-webhook/test", session, s.testWebhook},
		{"GET /inbound", session, s.inboundLog},
		{"GET /inbound/{id}", session, s.inboundDetail},
		{"GET /inbound/download", session, s.inboundDownloadPage},
		{"POST /inbound.zip", session, s.inboundZip},
		{"GET /settings/inbound", session, s.inboundSettingsPage},
		{"POST /settings/inbound", session, s.saveInbound},
		{"GET /settings/inbound/filter", session, s.filterPage},
		{"POST /settings/inbound/filter", session, s.saveFilter},
		{"POST /settings/inbound/filter/delete", session, s.deleteFilter},
	}
	if s.blocks != nil {
		rts = append(rts,
			route{"GET /blocks", session, s.blocksPage},
			route{"POST /blocks", session, s.addBlocks},
			route{"POST /blocks/delete", session, s.deleteBlock},
			route{"POST /blocks/cancel", session, s.cancelBlock},
			route{"GET /blocks.csv", session, s.blocksCSV},
		)
	}
	if s.blocks != nil && s.tokens != nil {
		rts = append(rts, s.apiRoutes()...)
	}
	if s.metrics != nil {
		// The one public route that is a choice of the configuration:
		// TestMetricsRoute checks it exists only then.
		rts = append(rts, route{"GET /metrics", public, s.metrics.ServeHTTP})
	}
	return rts
}

// maxForm bounds a posted form; the largest, the settings form, is a few
// kilobytes.
const maxForm = 64 << 10

// guard wraps a route's handler with its access check and, for requests
// that change state, the body limit and the form token check.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.access == bearer {
			// No session and so no form token: the API's own checks.
			s.apiAuth(w, r, rt.handler)
			return
		}
		ri := s.requestInfo(r)
		if rt.access == session {
			if !s.authenticate(w, r, ri) {
				s.unauthorized(w, r)
				return
			}
		}
		ctx := context.WithValue(r.Context(), infoKey{}, ri)
		if s.blocks != nil {
			ctx = context.WithValue(ctx, blocksOnKey{}, true)
		}
		r = r.WithContext(ctx)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		// The query and the form are parsed here, once, for every route:
		// a handler reading r.URL.Query() or PostFormValue would see a
		// malformed one as empty, and act on it (a search without its
		// filters, a list of domains replaced by none). Go drops a query
		// of more than 10,000 parameters entirely (net/url).
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.plainError(w, r, http.StatusRequestEntityTooLarge, "err.toolarge", maxForm>>10)
				return
			}
			s.log.Info("console: malformed request refused", "path", r.URL.Path, "err", err)
			s.plainError(w, r, http.StatusBadRequest, "err.badrequest", err.Error())
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !s.checkCSRF(r, ri) {
				s.log.Warn("console: request without a valid form token refused", "path", r.URL.Path, "addr", r.RemoteAddr)
				s.plainError(w, r, http.StatusForbidden, "err.forbidden")
				return
			}
		}
		rt.handler(w, r)
	})
}

// unauthorized answers a request without a (live) session. A browser
// goes to the login page and, once logged in, back: to the page asked
// for, or after a form post (whose input is lost with the session) to the
// form's page. htmx gets 401 with HX-Redirect, which it follows, to come
// back to the page it was on. Other clients get 401.
//
// HX-Current-URL's host is not compared with the request's: a reverse
// proxy may rewrite Host, and only the URL's path and query are kept,
// through localPath, so another origin's URL can only name a page of this
// console.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("HX-Request") != "" {
		to := "/login"
		if u, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && u.Path != "" && u.Path != "/" {
			to += "?next=" + url.QueryEscape(localPath(u.RequestURI()))
		}
		w.Header().Set("HX-Redirect", to)
		s.plainError(w, r, http.StatusUnauthorized, "err.unauthorized")
		return
	}
	var next string
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		next = r.URL.RequestURI()
	case browserNavigation(r):
		// The page of the form: the path itself when it has a GET
		// route (the settings forms), else the start page.
		get := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: r.URL.Path}, Host: r.Host}
		if _, pattern := s.mux.Handler(get); pattern != "" {
			next = r.URL.Path
		} else {
			next = "/"
		}
	default:
		s.plainError(w, r, http.StatusUnauthorized, "err.unauthorized")
		return
	}
	to := "/login"
	if next = localPath(next); next != "/" {
		to += "?next=" + url.QueryEscape(next)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// browserNavigation tells a browser's form submission (which shows the
// answer as a page) from a program's request (Fetch Metadata, with Accept
// for browsers that do not send it).
func browserNavigation(r *http.Request) bool {
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// csp allows scripts, styles and requests from the console itself only:
// no inline script or style, no framing (also X-Frame-Options for older
// browsers), forms posting back to the console only.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// headers sets the security headers of every response.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if s.secure(r) {
			// RFC 6797: only over HTTPS, where the browser honours it.
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// recover turns a handler's panic into a 500 and a log line instead of a
// dropped connection.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("console: handler panicked", "path", r.URL.Path, "panic", v)
				http.Error(w, "500 internal server error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// plainError answers a request that a page cannot be shown for (a
// malformed or forged form) with a short text in the page language.
func (s *Server) plainError(w http.ResponseWriter, r *http.Request, status int, key string, args ...any) {
	http.Error(w, trf(r.Context(), key, args...), status)
}

// serverError logs err and answers 500 without details, which may hold
// paths or SQL.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("console: request failed", "path", r.URL.Path, "err", err)
	http.Error(w, "500 internal server error: see the posthorn log", http.StatusInternalServerError)
}
