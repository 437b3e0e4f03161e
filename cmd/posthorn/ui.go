package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/console"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// The store must satisfy what the console declares it needs.
var (
	_ ui.Store           = (*sqlite.Store)(nil)
	_ ui.WebhookSettings = consoleSettings{}
	_ ui.InboundLog      = (*sqlite.Store)(nil)
	_ ui.InboundSettings = consoleSettings{}
	_ ui.Tokens          = (*sqlite.Store)(nil)
)

// consoleSettings saves the console's Event Webhook settings with the
// daemon's allow_insecure_http, as the rest of the daemon judges them.
type consoleSettings struct {
	store     *sqlite.Store
	allowHTTP bool
}

func (c consoleSettings) EventWebhookSettings(ctx context.Context) (settings.EventWebhook, bool, error) {
	return c.store.EventWebhookSettings(ctx)
}

func (c consoleSettings) SaveEventWebhookSettings(ctx context.Context, s settings.EventWebhook) error {
	return c.store.SaveEventWebhookSettingsHTTP(ctx, s, c.allowHTTP)
}

func (c consoleSettings) InboundSettings(ctx context.Context) (settings.Inbound, bool, error) {
	return c.store.InboundSettings(ctx)
}

func (c consoleSettings) SaveInboundSettings(ctx context.Context, in settings.Inbound) error {
	return c.store.SaveInboundSettings(ctx, in, c.allowHTTP)
}

// receiveLimits are the Postfix parameters that bound what the Inbound
// Webhook receives (WIRE.md §4: shown, documented, not reimplemented):
// postconf(5) message_size_limit, smtpd_client_connection_count_limit,
// smtpd_client_message_rate_limit and in_flow_delay.
var receiveLimits = []string{"message_size_limit", "smtpd_client_connection_count_limit",
	"smtpd_client_message_rate_limit", "in_flow_delay", "default_process_limit"}

// maxprocName is the row of the total of concurrent SMTP sessions: the
// maxproc column of smtpd's master.cf entry (master(5)), "-" meaning
// default_process_limit.
const maxprocName = ui.SMTPMaxproc

// postfixLimits asks postconf for the receive limits.
func postfixLimits(ctx context.Context) ([]ui.PostfixLimit, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "postconf", receiveLimits...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			// postconf names itself: "postconf: fatal: ...".
			msg := strings.TrimSpace(string(ee.Stderr))
			if !strings.HasPrefix(msg, "postconf:") {
				msg = "postconf: " + msg
			}
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("postconf: %w", err)
	}
	limits := parsePostconf(string(out))
	// The smtpd service's process limit bounds the SMTP sessions of all
	// clients together; smtpd_client_connection_count_limit only one
	// client's.
	if m, err := exec.CommandContext(ctx, "postconf", "-M", "smtp/inet").Output(); err == nil {
		if v, ok := masterMaxproc(string(m), limits); ok {
			limits = append(limits, ui.PostfixLimit{Name: maxprocName, Value: v})
		}
	}
	return limits, nil
}

// masterMaxproc reads the maxproc column of a master.cf line as postconf
// -M prints it ("smtp inet n - y - - smtpd"); "-" is
// default_process_limit, taken from limits.
func masterMaxproc(line string, limits []ui.PostfixLimit) (string, bool) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return "", false
	}
	if f[6] != "-" {
		return f[6], true
	}
	for _, l := range limits {
		if l.Name == "default_process_limit" {
			return l.Value + " (default_process_limit)", true
		}
	}
	return "", false
}

// parsePostconf reads postconf's "name = value" lines.
func parsePostconf(out string) []ui.PostfixLimit {
	var limits []ui.PostfixLimit
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(line, " = ")
		if !ok {
			name, ok = strings.CutSuffix(line, " =")
		}
		if ok {
			limits = append(limits, ui.PostfixLimit{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
		}
	}
	return limits
}

// consoleTestPost is the console's "send test event": the sample batch of
// posthorn test-webhook, for the first event type the settings post.
func consoleTestPost(cfg *config.Config) func(context.Context, settings.EventWebhook) (ui.TestResult, error) {
	return func(ctx context.Context, s settings.EventWebhook) (ui.TestResult, error) {
		if err := s.Validate(cfg.AllowInsecureHTTP); err != nil {
			return ui.TestResult{}, err
		}
		family := settings.Deliveries
		for _, f := range []string{settings.Deliveries, settings.Bounces, settings.Blocks} {
			if s.Posts(f) {
				family = f
				break
			}
		}
		evs, err := sampleEvents(cfg, family, time.Now())
		if err != nil {
			return ui.TestResult{}, err
		}
		ct, body, err := dispatcher.Encode(s, cfg.ServerComposition, family, evs)
		if err != nil {
			return ui.TestResult{}, err
		}
		p, err := dispatcher.NewPoster(dispatcher.PosterOptions{Version: version, CAFile: s.CAFile})
		if err != nil {
			return ui.TestResult{}, err
		}
		defer p.Close()
		ids := make([]string, len(evs))
		for i := range evs {
			ids[i] = evs[i].ID
		}
		res := p.Post(ctx, dispatcher.NewRequest(s, dispatcher.BatchID(family, ids), 1, ct, body))
		out := ui.TestResult{Status: res.Status, Head: event.ValidUTF8(string(res.Response))}
		if res.Outcome != dispatcher.Success {
			return out, errors.New(res.Reason)
		}
		return out, nil
	}
}

// startConsole opens the web console's listener and serves it until ctx
// ends or stop is called. It starts nothing when [ui] listen is empty or no
// user exists yet (nobody could log in). The listener opens before it
// returns, so a port already in use is an error at startup.
//
// metrics, if not nil, is served at /metrics without a login
// (metrics.public).
func startConsole(ctx context.Context, cfg *config.Config, store *sqlite.Store, blockSvc *blockService, log *slog.Logger, metrics http.Handler) (stop func(), err error) {
	stop = func() {}
	u := cfg.UI
	if u.Listen == "" {
		return stop, nil
	}
	users, err := store.Users(ctx)
	if err != nil {
		return stop, err
	}
	if len(users) == 0 {
		// Without a user the console is only worth serving for the API.
		tokens, err := store.APITokens(ctx)
		if err != nil {
			return stop, err
		}
		if !slices.ContainsFunc(tokens, func(t sqlite.APIToken) bool { return t.Revoked.IsZero() }) {
			log.Warn("web console not started: no user or API token exists; run 'posthorn user add NAME' (or 'posthorn token add NAME' for the API only) and restart", "listen", u.Listen)
			return stop, nil
		}
	}
	opts := ui.Options{
		Store:             store,
		AllowInsecureHTTP: cfg.AllowInsecureHTTP,
		Location:          u.Location(),
		TLS:               u.TLS(),
		IdleTimeout:       time.Duration(u.IdleTimeout),
		MaxSessionAge:     time.Duration(u.SessionLifetime),
		TrustedProxies:    u.Proxies(),
		Hostname:          cfg.Hostname,
		MaxMessageSize:    int64(cfg.Milter.MaxMessageSize),
		Logger:            log,
		Metrics:           metrics,
	}
	opts.Settings = consoleSettings{store: store, allowHTTP: cfg.AllowInsecureHTTP}
	opts.SendTestEvent = consoleTestPost(cfg)
	opts.Posts = console.Posts{Store: store}
	opts.Spool = console.Spool{Store: store}
	opts.Inbound = store
	opts.InboundSettings = consoleSettings{store: store, allowHTTP: cfg.AllowInsecureHTTP}
	opts.PostfixLimits = postfixLimits
	if blockSvc != nil {
		opts.Blocks = consoleBlocks{blockSvc}
		opts.Tokens = store // /api/v1/blocks
	}
	handler, err := ui.New(opts)
	if err != nil {
		return stop, err
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Pages are small; the CSV download lifts this deadline for
		// itself (ui.Server.eventCSV).
		WriteTimeout: time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	var certs *certReloader
	if u.TLS() {
		certs = &certReloader{certFile: u.TLSCert, keyFile: u.TLSKey, log: log}
		if _, err := certs.get(nil); err != nil {
			return stop, fmt.Errorf("web console: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
	}
	ln, err := net.Listen("tcp", u.Listen)
	if err != nil {
		return stop, fmt.Errorf("web console: %w", err)
	}
	scheme := "http"
	if certs != nil {
		scheme = "https"
	}
	log.Info("web console listening", "url", scheme+"://"+ln.Addr().String()+"/", "users", len(users))

	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		if certs != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("web console stopped", "err", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
			<-done
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return stop, nil
}

// certReloader loads the console's certificate again when its files
// change, so that a renewal (certbot, an ACME client) needs no restart.
// A renewal caught half-written keeps the previous certificate.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time
	// The times of files that failed to load, so that they are not
	// tried (and logged) again at every handshake.
	badCertMod, badKeyMod time.Time
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err1 := os.Stat(c.certFile)
	ks, err2 := os.Stat(c.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if c.cert != nil {
			c.log.Warn("web console: TLS files unreadable; keeping the loaded certificate", "err", err)
			return c.cert, nil
		}
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	if c.cert != nil && cs.ModTime().Equal(c.certMod) && ks.ModTime().Equal(c.keyMod) {
		return c.cert, nil
	}
	if c.cert != nil && cs.ModTime().Equal(c.badCertMod) && ks.ModTime().Equal(c.badKeyMod) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.badCertMod, c.badKeyMod = cs.ModTime(), ks.ModTime()
		if c.cert != nil {
			c.log.Warn("web console: new TLS files do not load; keeping the loaded certificate", "err", err)
			return c.cert, nil
		}
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	if c.cert != nil {
		c.log.Info("web console: TLS certificate reloaded", "cert", c.certFile)
	}
	c.cert, c.certMod, c.keyMod = &cert, cs.ModTime(), ks.ModTime()
	return c.cert, nil
}
