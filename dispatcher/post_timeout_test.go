package dispatcher

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The timeout bounds the whole exchange (context deadline on the request,
// which covers connecting, the TLS handshake, the headers and reading the
// body), not only the wait for headers that TestPostTimeout checks.
// Endpoints that stall at the other steps must end at the timeout too.

const stallTimeout = 300 * time.Millisecond

// checkTook: the attempt lasted the timeout, not much less (it did wait)
// and not much more (it was cut off).
func checkTook(t *testing.T, res Result) {
	t.Helper()
	if res.Took < stallTimeout || res.Took > stallTimeout+3*time.Second {
		t.Errorf("the attempt took %v with a timeout of %v", res.Took, stallTimeout)
	}
}

// A server that accepts the TCP connection and never speaks TLS: the
// handshake waits for a ServerHello that never comes.
func TestPostTimeoutTLSHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 4)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never written to
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	p, err := NewPoster(PosterOptions{Version: "1.2.3", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	r := NewRequest(baseSettings("https://"+ln.Addr().String()+"/hook"), "batch_tls", 1, ContentTypeJSON, []byte("{}"))
	r.Timeout = stallTimeout
	res := p.Post(context.Background(), r)
	<-accepted // the connection was made: it is the handshake that stalled
	if res.Outcome != Retry || res.Kind != KindTimeout || res.Status != 0 {
		t.Errorf("result %+v", res)
	}
	if res.Reason != "timeout: no complete answer within 300ms" {
		t.Errorf("reason %q", res.Reason)
	}
	checkTook(t, res)
}

// A receiver that sends its headers at once and then drips its body one
// byte at a time, never finishing: every read gets a byte, so only a
// deadline on the whole exchange ends it.
func TestPostTimeoutDrippingBody(t *testing.T) {
	started := make(chan struct{}, 1)
	srv, p := startReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		drip := time.NewTicker(10 * time.Millisecond) // the pace of the drip, not a synchronisation
		defer drip.Stop()
		for {
			select {
			case <-r.Context().Done(): // the client gave up
				return
			case <-drip.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	}))
	r := NewRequest(baseSettings(srv.URL), "batch_drip", 1, ContentTypeJSON, []byte("{}"))
	r.Timeout = stallTimeout
	res := p.Post(context.Background(), r)
	<-started
	// The status line decides the outcome (WIRE.md §1); the cut-short body
	// is only noted for the log.
	if res.Outcome != Success || res.Status != http.StatusOK ||
		!strings.HasSuffix(res.Reason, "(response body cut short: timeout: no complete answer within 300ms)") {
		t.Errorf("result %+v", res)
	}
	if res.Read == 0 || res.Read >= MaxResponseRead {
		t.Errorf("read %d bytes of the drip", res.Read)
	}
	checkTook(t, res)
}
