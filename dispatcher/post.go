package dispatcher

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/settings"
)

// Response limits (WIRE.md §1): a receiver cannot make us read or store
// more than this, whatever it sends.
const (
	MaxResponseRead = 64 << 10 // bytes read from a response body
	KeptResponse    = 512      // bytes of it kept for the log
)

// Outcome is how an attempt ended (WIRE.md §1).
type Outcome int

const (
	// Success: a 2xx answer.
	Success Outcome = iota + 1
	// Retry: 408, 429, 5xx, a timeout, a connection or TLS error — and our
	// own setting errors, which the user can fix before the period ends.
	Retry
	// Permanent: a 3xx (never followed) or any other 4xx.
	Permanent
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Retry:
		return "retry"
	case Permanent:
		return "permanent"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Kinds of failure, for the log and for metrics.
const (
	KindHTTP     = "http"     // the receiver answered; see Status
	KindTimeout  = "timeout"  // no complete answer within the timeout
	KindTLS      = "tls"      // handshake or certificate failure
	KindDNS      = "dns"      // the host name did not resolve
	KindNetwork  = "network"  // connection refused, reset, ...
	KindCanceled = "canceled" // the daemon is stopping
	KindConfig   = "config"   // the request could not be built from the settings
)

// Request is one attempt to deliver one batch.
type Request struct {
	URL         string
	ID          string // webhook-id: the batch id, the same on every attempt
	Attempt     int    // 1-based, sent as Posthorn-Attempt
	ContentType string
	Body        []byte        // the frozen body; never modified
	Timeout     time.Duration // for the whole attempt: connect, send, answer

	BasicUser     string
	BasicPassword string
	Bearer        string // Authorization: Bearer, instead of Basic
	SigningSecret string // "whsec_…"; empty: no signature
}

// NewRequest builds the attempt from the current settings: endpoint,
// credentials, timeout and signing secret are taken afresh on every
// attempt, while the body stays the one frozen at the first.
func NewRequest(s settings.EventWebhook, id string, attempt int, contentType string, body []byte) Request {
	r := Request{
		URL: s.Endpoint, ID: id, Attempt: attempt, ContentType: contentType, Body: body,
		Timeout:       s.TimeoutDuration(),
		SigningSecret: string(s.SigningSecret),
	}
	if s.APIKeyBearer {
		r.Bearer = string(s.APIKey)
	} else if s.BasicUser != "" {
		r.BasicUser, r.BasicPassword = s.BasicUser, string(s.BasicPassword)
	}
	return r
}

// Result is what one attempt did. It never holds a secret: Reason is
// written from the status or the innermost error, not from the request.
type Result struct {
	Outcome    Outcome
	Kind       string        // KindHTTP, KindTimeout, ...
	Status     int           // HTTP status; 0 without an answer
	Reason     string        // for the log: "HTTP 503 Service Unavailable", "timeout: ..."
	RetryAfter time.Duration // the answer's Retry-After, clamped to [1 s, 24 h]; 0 if none
	Response   []byte        // the first KeptResponse bytes of the body
	Read       int           // body bytes read, at most MaxResponseRead
	Truncated  bool          // the body was longer than MaxResponseRead
	Started    time.Time     // by the Poster's clock; also the webhook-timestamp
	Took       time.Duration
}

// PosterOptions configure the one HTTP client all attempts share.
type PosterOptions struct {
	// Version is Posthorn's version, sent as User-Agent: posthorn/VERSION.
	Version string
	// CAFile is a PEM file of root certificates added to the system's
	// (the ca_file setting). SSL_CERT_FILE and SSL_CERT_DIR work too,
	// through crypto/x509.
	CAFile string
	// Now is the clock for webhook-timestamp and Retry-After dates;
	// nil means time.Now.
	Now func() time.Time
}

// Poster sends attempts. It is safe for concurrent use; connections are
// kept alive between attempts to the same endpoint.
type Poster struct {
	client    *http.Client
	transport *http.Transport
	userAgent string
	now       func() time.Time
}

// NewPoster builds the shared client: TLS 1.2 or newer (WIRE.md §1),
// HTTP/1.1, no redirects, proxies from the environment (HTTPS_PROXY, for
// an egress proxy).
func NewPoster(o PosterOptions) (*Poster, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool() // no system roots: the file alone
		}
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read ca_file %s: no PEM certificate in it", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	t := &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		DialContext:     (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig: tlsConf,
		// The timeout of the attempt's context bounds every phase; these
		// only keep idle connections from piling up.
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: MaxResponseRead,
	}
	t.Protocols = new(http.Protocols)
	t.Protocols.SetHTTP1(true) // WIRE.md §1: HTTP/1.1
	now := o.Now
	if now == nil {
		now = time.Now
	}
	version := o.Version
	if version == "" {
		version = "dev"
	}
	return &Poster{
		client: &http.Client{
			Transport: t,
			// WIRE.md §1: a 3xx is a failure and is never followed (a
			// redirect could also point us at an internal address).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		transport: t,
		userAgent: "posthorn/" + version,
		now:       now,
	}, nil
}

// Close drops idle connections, for when the settings change and a new
// Poster replaces this one.
func (p *Poster) Close() { p.transport.CloseIdleConnections() }

// Post makes one attempt. It returns when the answer is read (at most
// MaxResponseRead bytes of it), the timeout passes or ctx ends — never
// later, whatever the endpoint does.
func (p *Poster) Post(ctx context.Context, r Request) Result {
	start := time.Now()
	res := p.post(ctx, r)
	res.Took = time.Since(start)
	return res
}

func (p *Poster) post(parent context.Context, r Request) Result {
	res := Result{Started: p.now()}
	fail := func(reason string) Result {
		res.Outcome, res.Kind, res.Reason = Retry, KindConfig, reason
		return res
	}
	if r.Timeout <= 0 {
		return fail("no timeout set")
	}
	if r.ID == "" || strings.ContainsAny(r.ID, ". \t\r\n") {
		// Standard Webhooks: the id is part of the signed "id.ts.body".
		return fail("invalid webhook id")
	}
	ctx, cancel := context.WithTimeout(parent, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return fail("invalid endpoint URL") // the URL is not repeated: it may hold a token
	}
	h := req.Header
	h.Set("Content-Type", r.ContentType)
	h.Set("User-Agent", p.userAgent)
	h.Set("Connection", "keep-alive")
	h.Set(HeaderAttempt, strconv.Itoa(r.Attempt))
	switch {
	case r.Bearer != "":
		h.Set("Authorization", "Bearer "+r.Bearer) // RFC 6750 §2.1
	case r.BasicUser != "":
		req.SetBasicAuth(r.BasicUser, r.BasicPassword) // RFC 7617
	}
	if r.SigningSecret != "" {
		key, err := settings.Secret(r.SigningSecret).SigningKey()
		if err != nil {
			return fail("signing_secret " + err.Error())
		}
		// Set directly, not with Header.Set, to keep the spec's lower case.
		h[HeaderWebhookID] = []string{r.ID}
		h[HeaderWebhookTimestamp] = []string{strconv.FormatInt(res.Started.Unix(), 10)}
		h[HeaderWebhookSignature] = []string{Sign(key, r.ID, res.Started, r.Body)}
	}

	resp, err := p.client.Do(req)
	if err != nil {
		res.Outcome = Retry
		res.Kind, res.Reason = classify(err, parent, r.Timeout)
		return res
	}
	defer resp.Body.Close() // unread rest: the connection is closed, not drained
	res.Status = resp.StatusCode
	res.Kind = KindHTTP
	res.Reason = "HTTP " + resp.Status
	res.Outcome = outcome(resp.StatusCode)

	// Read one byte past the limit to learn whether there was more.
	var kept capped
	n, readErr := io.Copy(&kept, io.LimitReader(resp.Body, MaxResponseRead+1))
	res.Response = kept.b
	res.Read = int(min(n, MaxResponseRead))
	res.Truncated = n > MaxResponseRead
	if readErr == nil && !res.Truncated && ctx.Err() != nil {
		// The deadline ended the read, though the transport may report
		// the cut as a clean end of the body.
		readErr = ctx.Err()
	}
	if readErr != nil {
		// The status line has been received and decides the outcome; the
		// body is only for the log.
		_, why := classify(readErr, parent, r.Timeout)
		res.Reason += " (response body cut short: " + why + ")"
	}

	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Reason += ": redirects are not followed, update the endpoint URL"
		if loc := resp.Header.Get("Location"); loc != "" {
			res.Reason += " (Location: " + clip(loc, 200) + ")"
		}
	case res.Outcome == Retry:
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), res.Started); ok {
			res.RetryAfter = d
		}
	}
	return res
}

// outcome classifies an HTTP status (WIRE.md §1).
func outcome(status int) Outcome {
	switch {
	case status >= 200 && status < 300:
		return Success
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		return Retry
	}
	return Permanent // 1xx that ends a request, 3xx, other 4xx
}

// classify names a transport error for the log. It reports the innermost
// error: the *url.Error around it repeats the URL, which may hold a token.
func classify(err error, parent context.Context, timeout time.Duration) (kind, reason string) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var dnsErr *net.DNSError
	switch {
	case parent.Err() != nil:
		return KindCanceled, "interrupted: the daemon is stopping"
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return KindTimeout, "timeout: no complete answer within " + timeout.String()
	case errors.As(err, &dnsErr):
		return KindDNS, "dns: " + err.Error()
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return KindTLS, "tls: the endpoint answered in plain HTTP"
	case isTLS(err):
		return KindTLS, "tls: " + strings.TrimPrefix(err.Error(), "tls: ")
	}
	return KindNetwork, "network: " + err.Error()
}

// isTLS reports a handshake or certificate failure. Alerts from the peer
// ("remote error: tls: handshake failure") and version or cipher mismatches
// have no exported type, so their text is the evidence.
func isTLS(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) ||
		errors.As(err, &invalid) || errors.As(err, &record) || strings.Contains(err.Error(), "tls: ")
}

// capped keeps the first KeptResponse bytes written to it and discards the
// rest.
type capped struct{ b []byte }

func (c *capped) Write(p []byte) (int, error) {
	if room := KeptResponse - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
