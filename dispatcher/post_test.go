package dispatcher

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/nettest"
	"github.com/posthorn/posthorn/settings"
)

// now is the Poster's fixed clock in these tests: signatures and
// Retry-After dates are checked against it.
var now = time.Date(2026, 3, 14, 5, 0, 0, 0, time.UTC)

const (
	testSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	testPass   = "s3cret-pass"
	testKey    = "key-0123456789"
)

// startReceiver starts a real HTTPS server and returns its URL and a
// Poster that trusts it through the ca_file option, as a user with a
// private CA would configure it.
func startReceiver(t *testing.T, h http.Handler) (*httptest.Server, *Poster) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	// Handshakes that fail on purpose would print to stderr.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := NewPoster(PosterOptions{Version: "1.2.3", CAFile: ca, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return srv, p
}

// seen is what a receiver saw of one request.
type seen struct {
	header http.Header
	body   []byte
	proto  string
	tls    uint16
}

// recorder answers with status and passes each request it sees on.
func recorder(status int, extra http.Header) (http.Handler, <-chan seen) {
	ch := make(chan seen, 16)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var v uint16
		if r.TLS != nil {
			v = r.TLS.Version
		}
		ch <- seen{header: r.Header.Clone(), body: body, proto: r.Proto, tls: v}
		for k, vs := range extra {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"ok":true}`)
	}), ch
}

// verifyStandardWebhook checks a request the way a Standard Webhooks
// consumer does, written from the spec independently of Sign: strip
// whsec_, base64-decode the key, HMAC-SHA256 "id.ts.body", compare in
// constant time against each "v1," entry of the space-separated list, and
// refuse a timestamp more than five minutes from the receiver's clock.
func verifyStandardWebhook(secret string, h http.Header, body []byte, clock time.Time) error {
	id, ts, sigs := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"), h.Get("Webhook-Signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := clock.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s too far from %s", time.Unix(sec, 0), clock)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
	want := mac.Sum(nil)
	for _, entry := range strings.Split(sigs, " ") {
		version, b64, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

func baseSettings(endpoint string) settings.EventWebhook {
	s := settings.Default()
	s.Endpoint = endpoint
	s.Deliveries = true
	s.SigningSecret = testSecret
	return s
}

func TestPostAuthAndHeaders(t *testing.T) {
	h, ch := recorder(http.StatusOK, nil)
	srv, p := startReceiver(t, h)

	tests := []struct {
		name      string
		change    func(*settings.EventWebhook)
		wantAuth  string
		keyInBody bool
	}{
		{"basic and api key in body", func(s *settings.EventWebhook) {
			s.BasicUser, s.BasicPassword, s.APIKey = "mailer", testPass, testKey
		}, "Basic " + base64.StdEncoding.EncodeToString([]byte("mailer:"+testPass)), true},
		{"api key in body only", func(s *settings.EventWebhook) { s.APIKey = testKey }, "", true},
		{"bearer", func(s *settings.EventWebhook) { s.APIKey, s.APIKeyBearer = testKey, true }, "Bearer " + testKey, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSettings(srv.URL + "/hook")
			tc.change(&s)
			if err := s.Validate(false); err != nil {
				t.Fatal(err)
			}
			ct, body, err := Encode(s, "mail.example.com", settings.Deliveries, fixtures[settings.Deliveries])
			if err != nil {
				t.Fatal(err)
			}
			res := p.Post(context.Background(), NewRequest(s, "batch_abc", 3, ct, body))
			if res.Outcome != Success || res.Status != 200 || res.Kind != KindHTTP {
				t.Fatalf("result %+v", res)
			}
			if string(res.Response) != `{"ok":true}` || res.Read != 11 || res.Truncated {
				t.Errorf("response kept %q read %d truncated %v", res.Response, res.Read, res.Truncated)
			}
			got := <-ch
			if !bytes.Equal(got.body, body) {
				t.Errorf("body changed on the way")
			}
			if got.proto != "HTTP/1.1" || got.tls < tls.VersionTLS12 {
				t.Errorf("proto %s, TLS version %x", got.proto, got.tls)
			}
			for k, want := range map[string]string{
				"Authorization":    tc.wantAuth,
				"Content-Type":     ct,
				"User-Agent":       "posthorn/1.2.3",
				"Posthorn-Attempt": "3",
				"Content-Length":   strconv.Itoa(len(body)),
				"Webhook-Id":       "batch_abc",
				"Connection":       "keep-alive",
			} {
				if g := got.header.Get(k); g != want {
					t.Errorf("%s: %q, want %q", k, g, want)
				}
			}
			rb, err := decodeLikeReceiver(ct, got.body)
			if err != nil {
				t.Fatal(err)
			}
			if (rb.APIKey == testKey) != tc.keyInBody {
				t.Errorf("api_key in body = %q, want it there: %v", rb.APIKey, tc.keyInBody)
			}
			if err := verifyStandardWebhook(testSecret, got.header, got.body, now); err != nil {
				t.Errorf("signature: %v", err)
			}
			if err := verifyStandardWebhook("whsec_"+base64.StdEncoding.EncodeToString([]byte("another-key-of-24-bytes!")), got.header, got.body, now); err == nil {
				t.Error("signature verifies with a different key")
			}
		})
	}
}

// A retry carries the same id and body, a new timestamp and a new signature.
func TestPostResignsEachAttempt(t *testing.T) {
	h, ch := recorder(http.StatusOK, nil)
	srv, p := startReceiver(t, h)
	s := baseSettings(srv.URL)
	clock := now
	p.now = func() time.Time { return clock }
	body := []byte(`{"frozen":true}`)
	var got [2]seen
	for i := range got {
		clock = now.Add(time.Duration(i) * time.Hour)
		if res := p.Post(context.Background(), NewRequest(s, "batch_x", i+1, ContentTypeJSON, body)); res.Outcome != Success {
			t.Fatalf("attempt %d: %+v", i+1, res)
		}
		got[i] = <-ch
		if err := verifyStandardWebhook(testSecret, got[i].header, got[i].body, clock); err != nil {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	if got[0].header.Get("Webhook-Id") != got[1].header.Get("Webhook-Id") || !bytes.Equal(got[0].body, got[1].body) {
		t.Error("id or body changed between attempts")
	}
	if got[0].header.Get("Webhook-Timestamp") == got[1].header.Get("Webhook-Timestamp") ||
		got[0].header.Get("Webhook-Signature") == got[1].header.Get("Webhook-Signature") {
		t.Error("the retry was not signed again")
	}
	// The first attempt's signature is stale an hour later: that is why we re-sign.
	if err := verifyStandardWebhook(testSecret, got[0].header, got[0].body, clock); err == nil {
		t.Error("an hour-old signature verified")
	}
}

func TestPostStatus(t *testing.T) {
	retryDate := now.Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		status     int
		retryAfter string
		want       Outcome
		wantAfter  time.Duration
	}{
		{200, "", Success, 0},
		{204, "", Success, 0},
		{299, "", Success, 0},
		{400, "", Permanent, 0},
		{401, "", Permanent, 0},
		{404, "", Permanent, 0},
		{410, "", Permanent, 0},
		{413, "", Permanent, 0},
		{400, "120", Permanent, 0}, // Retry-After means nothing without a retry
		{408, "", Retry, 0},
		{429, "30", Retry, 30 * time.Second},
		{500, "", Retry, 0},
		{500, "120", Retry, 120 * time.Second},
		{502, "garbage", Retry, 0},
		{503, retryDate, Retry, 90 * time.Second},
		{503, "0", Retry, time.Second},                             // clamped up
		{503, "999999999", Retry, 24 * time.Hour},                  // clamped down
		{503, "Fri, 13 Mar 2026 00:00:00 GMT", Retry, time.Second}, // in the past
		{504, "", Retry, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.retryAfter), func(t *testing.T) {
			extra := http.Header{}
			if tc.retryAfter != "" {
				extra.Set("Retry-After", tc.retryAfter)
			}
			h, ch := recorder(tc.status, extra)
			srv, p := startReceiver(t, h)
			res := p.Post(context.Background(), NewRequest(baseSettings(srv.URL), "batch_s", 1, ContentTypeJSON, []byte("{}")))
			<-ch
			if res.Outcome != tc.want || res.Status != tc.status || res.RetryAfter != tc.wantAfter {
				t.Errorf("outcome %v status %d retry-after %v; want %v %d %v", res.Outcome, res.Status, res.RetryAfter, tc.want, tc.status, tc.wantAfter)
			}
			if !strings.HasPrefix(res.Reason, "HTTP "+strconv.Itoa(tc.status)) {
				t.Errorf("reason %q", res.Reason)
			}
			// The right delay: the next attempt honours Retry-After when it
			// is longer than the schedule's 10 s (jitter at its top, 12 s).
			if tc.want == Retry {
				state, next := Decide(res, 1, now, now, 24*time.Hour, func() float64 { return 0.999999 })
				want := now.Add(max(tc.wantAfter, 12*time.Second))
				if state != StateDeferred || next.Sub(want).Abs() > time.Millisecond {
					t.Errorf("Decide = %s %v, want deferred %v", state, next, want)
				}
			}
		})
	}
}

func TestPostRedirectNotFollowed(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	for _, code := range []int{301, 302, 303, 307, 308} {
		mux.HandleFunc(fmt.Sprintf("/r%d", code), func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/other", code)
		})
	}
	srv, p := startReceiver(t, mux)
	for _, code := range []int{301, 302, 303, 307, 308} {
		res := p.Post(context.Background(), NewRequest(baseSettings(fmt.Sprintf("%s/r%d", srv.URL, code)), "batch_r", 1, ContentTypeJSON, []byte("{}")))
		if res.Outcome != Permanent || res.Status != code ||
			!strings.Contains(res.Reason, "redirects are not followed") || !strings.Contains(res.Reason, "(Location: /other)") {
			t.Errorf("%d: %+v", code, res)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect target was requested %d times", n)
	}
}

// An endpoint that accepts the request and never answers costs one timeout,
// no more.
func TestPostTimeout(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	srv, p := startReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for handlers

	r := NewRequest(baseSettings(srv.URL), "batch_t", 1, ContentTypeJSON, []byte("{}"))
	r.Timeout = 200 * time.Millisecond
	start := time.Now()
	res := p.Post(context.Background(), r)
	<-arrived
	if res.Outcome != Retry || res.Kind != KindTimeout || res.Status != 0 {
		t.Errorf("result %+v", res)
	}
	if res.Reason != "timeout: no complete answer within 200ms" {
		t.Errorf("reason %q", res.Reason)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Post took %v with a 200ms timeout", took)
	}
}

// Stopping the daemon interrupts an attempt at once.
func TestPostCanceled(t *testing.T) {
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	srv, p := startReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-release
	}))
	t.Cleanup(func() { close(release) })
	res := p.Post(ctx, NewRequest(baseSettings(srv.URL), "batch_c", 1, ContentTypeJSON, []byte("{}")))
	if res.Outcome != Retry || res.Kind != KindCanceled {
		t.Errorf("result %+v", res)
	}
}

// A 50 MB answer: we read 64 KiB, keep 512 bytes, and hang up, so the
// receiver cannot push the rest.
func TestPostHugeResponse(t *testing.T) {
	const total = 50 << 20
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	written := make(chan int, 1)
	srv, p := startReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(total))
		n := 0
		for n < total {
			m, err := w.Write(chunk)
			n += m
			if err != nil {
				break
			}
		}
		written <- n
	}))
	start := time.Now()
	res := p.Post(context.Background(), NewRequest(baseSettings(srv.URL), "batch_h", 1, ContentTypeJSON, []byte("{}")))
	took := time.Since(start)
	if res.Outcome != Success || res.Read != MaxResponseRead || !res.Truncated {
		t.Errorf("outcome %v read %d truncated %v", res.Outcome, res.Read, res.Truncated)
	}
	if !bytes.Equal(res.Response, chunk[:KeptResponse]) {
		t.Errorf("kept %d bytes %q", len(res.Response), res.Response[:min(len(res.Response), 32)])
	}
	n := <-written // the handler ends when its write fails on the closed connection
	if n >= total {
		t.Errorf("the receiver sent all %d bytes: we did not hang up", n)
	}
	t.Logf("receiver managed to write %d of %d bytes; Post took %v", n, total, took)
}

// Every connection-level failure is temporary, and says what it was without
// repeating the URL (it may hold a token).
func TestPostTransportErrors(t *testing.T) {
	closed := nettest.RefusedAddr(t)

	h, _ := recorder(200, nil)
	srv, _ := startReceiver(t, h)
	untrusting, err := NewPoster(PosterOptions{Version: "1", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(untrusting.Close)

	plain := httptest.NewServer(h) // answers TLS with plain HTTP
	t.Cleanup(plain.Close)

	tests := []struct {
		name, url string
		kind      string
	}{
		{"refused", "https://" + closed + "/hook?token=SECRETTOKEN", KindNetwork},
		{"unknown CA", srv.URL + "/hook?token=SECRETTOKEN", KindTLS},
		{"not TLS", strings.Replace(plain.URL, "http://", "https://", 1) + "/?token=SECRETTOKEN", KindTLS},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSettings(tc.url)
			s.BasicUser, s.BasicPassword = "u", testPass
			res := untrusting.Post(context.Background(), NewRequest(s, "batch_e", 1, ContentTypeJSON, []byte("{}")))
			if res.Outcome != Retry || res.Kind != tc.kind {
				t.Errorf("result %+v, want retry %s", res, tc.kind)
			}
			if strings.Contains(res.Reason, "SECRETTOKEN") || strings.Contains(res.Reason, testPass) {
				t.Errorf("reason reveals a secret: %s", res.Reason)
			}
			t.Logf("reason: %s", res.Reason)
		})
	}
}

// Settings that cannot make a request are retried: the user can fix them
// before the retry period ends. The reason never quotes a secret.
func TestPostConfigErrors(t *testing.T) {
	h, _ := recorder(200, nil)
	srv, p := startReceiver(t, h)
	tests := []struct {
		name   string
		change func(*Request)
		reason string
	}{
		{"dot in id", func(r *Request) { r.ID = "a.b" }, "invalid webhook id"},
		{"empty id", func(r *Request) { r.ID = "" }, "invalid webhook id"},
		{"no timeout", func(r *Request) { r.Timeout = 0 }, "no timeout set"},
		{"bad URL", func(r *Request) { r.URL = "https://[::1/?token=SECRETTOKEN" }, "invalid endpoint URL"},
		{"bad secret", func(r *Request) { r.SigningSecret = "whsec_SECRETTOKEN" },
			"signing_secret must be whsec_ followed by the base64 of 24 to 64 random bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRequest(baseSettings(srv.URL), "batch_k", 1, ContentTypeJSON, []byte("{}"))
			tc.change(&r)
			res := p.Post(context.Background(), r)
			if res.Outcome != Retry || res.Kind != KindConfig || res.Reason != tc.reason {
				t.Errorf("result %+v, want retry config %q", res, tc.reason)
			}
		})
	}
}

// Attempts to one endpoint share a kept-alive connection.
func TestPostKeepAlive(t *testing.T) {
	h, ch := recorder(200, nil)
	srv := httptest.NewUnstartedServer(h)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p, err := NewPoster(PosterOptions{Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	p.transport.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for i := range 3 {
		if res := p.Post(context.Background(), NewRequest(baseSettings(srv.URL), "batch_ka", i+1, ContentTypeJSON, []byte("{}"))); res.Outcome != Success {
			t.Fatalf("attempt %d: %+v", i+1, res)
		}
		<-ch
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 attempts, want 1", n)
	}
}

func TestNewPosterCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "x.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.pem"), "read ca_file: open "},
		{notPEM, "read ca_file " + notPEM + ": no PEM certificate in it"},
	} {
		_, err := NewPoster(PosterOptions{CAFile: tc.file})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("NewPoster(%s) = %v, want %q…", tc.file, err, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	bg := context.Background()
	done, cancel := context.WithCancel(bg)
	cancel()
	tests := []struct {
		err    error
		parent context.Context
		kind   string
	}{
		{&url.Error{Op: "Post", URL: "https://h/?t=SECRETTOKEN", Err: context.DeadlineExceeded}, bg, KindTimeout},
		{&url.Error{Op: "Post", URL: "https://h/", Err: &net.DNSError{Err: "no such host", Name: "h", IsNotFound: true}}, bg, KindDNS},
		{&url.Error{Op: "Post", URL: "https://h/", Err: &net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}}, bg, KindTLS},
		{&url.Error{Op: "Post", URL: "https://h/", Err: &tls.CertificateVerificationError{Err: errors.New("x509: certificate has expired")}}, bg, KindTLS},
		{&url.Error{Op: "Post", URL: "https://h/", Err: io.ErrUnexpectedEOF}, bg, KindNetwork},
		{&url.Error{Op: "Post", URL: "https://h/", Err: context.Canceled}, done, KindCanceled},
	}
	for _, tc := range tests {
		kind, reason := classify(tc.err, tc.parent, time.Second)
		if kind != tc.kind || strings.Contains(reason, "SECRETTOKEN") || strings.Contains(reason, "https://") {
			t.Errorf("classify(%v) = %s %q, want kind %s and no URL", tc.err, kind, reason, tc.kind)
		}
	}
}

func TestSignKnownVector(t *testing.T) {
	// Computed independently: python3 -c 'import hmac,hashlib,base64;
	// print(base64.b64encode(hmac.new(b"0123456789abcdef0123456789abcdef",
	// b"msg_1.1773464400.{}", hashlib.sha256).digest()).decode())'
	key, _ := settings.Secret(testSecret).SigningKey()
	got := Sign(key, "msg_1", now, []byte("{}"))
	if got != "v1,"+signVector {
		t.Errorf("Sign = %s, want v1,%s", got, signVector)
	}
}

const signVector = "sv5zwd+fsniUoQd246cITAYw6LCMjCC4ltmmCL42w4Q="

// WIRE.md §1: TLS 1.2 or newer. A server that stops at TLS 1.1 is refused
// (a temporary failure: the receiver can be upgraded within the period).
func TestPostRefusesOldTLS(t *testing.T) {
	h, _ := recorder(200, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	p, err := NewPoster(PosterOptions{Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	p.transport.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	res := p.Post(context.Background(), NewRequest(baseSettings(srv.URL), "batch_tls", 1, ContentTypeJSON, []byte("{}")))
	if res.Outcome != Retry || res.Kind != KindTLS {
		t.Errorf("result %+v, want a TLS failure", res)
	}
	t.Logf("reason: %s", res.Reason)
}

// BenchmarkPost measures one signed attempt of a 1,000-event batch over a
// kept-alive loopback TLS connection, the receiver reading the whole body.
func BenchmarkPost(b *testing.B) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	p, err := NewPoster(PosterOptions{Version: "1"})
	if err != nil {
		b.Fatal(err)
	}
	p.transport.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	s := baseSettings(srv.URL)
	s.JSON = true
	evs := make([]event.Event, 1000)
	for i := range evs {
		evs[i] = fixtures[settings.Deliveries][i%4]
		evs[i].ID = fmt.Sprint("ev-", i)
	}
	ct, body, err := Encode(s, "mail.example.com", settings.Deliveries, evs)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if res := p.Post(context.Background(), NewRequest(s, "batch_bench", 1, ct, body)); res.Outcome != Success {
			b.Fatal(res.Reason)
		}
	}
	b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
