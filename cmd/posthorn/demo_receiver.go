package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/settings"
)

// demoReceiver is the demo's stand-in for the application a Posthorn user
// runs: an HTTPS endpoint on the loopback interface that answers 200 and
// prints what it received. Its certificate is made in memory at start and
// trusted through the webhook's ca_file, the way a private CA is.
type demoReceiver struct {
	URL    string // the endpoint to configure
	CAFile string // the certificate, to trust
	// Secret is the signing secret the webhook is given; the receiver
	// checks each post's signature with it (Standard Webhooks).
	Secret settings.Secret
	key    []byte

	out   io.Writer
	outMu *sync.Mutex // shared with the demo's event lines
	srv   *http.Server
	done  chan struct{}

	mu    sync.Mutex
	posts int
	// received, when set, is called after each post is printed (tests).
	received func()
}

// startDemoReceiver listens on 127.0.0.1 with a fresh self-signed
// certificate written to dir/receiver-ca.pem.
func startDemoReceiver(dir string, out io.Writer, outMu *sync.Mutex) (*demoReceiver, error) {
	cert, pemBytes, err := selfSigned(time.Now())
	if err != nil {
		return nil, fmt.Errorf("start demo receiver: %w", err)
	}
	caFile := filepath.Join(dir, "receiver-ca.pem")
	if err := os.WriteFile(caFile, pemBytes, 0o640); err != nil {
		return nil, fmt.Errorf("start demo receiver: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start demo receiver: %w", err)
	}
	secret := settings.NewSigningSecret()
	key, err := secret.SigningKey()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("start demo receiver: %w", err)
	}
	r := &demoReceiver{
		URL:    "https://" + ln.Addr().String() + "/hooks/posthorn",
		CAFile: caFile,
		Secret: secret,
		key:    key,
		out:    out,
		outMu:  outMu,
		done:   make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/posthorn", r.handle)
	r.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		// The demo's output is for people: TLS chatter from a port
		// scanner or a browser that distrusts the certificate is not.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(r.done)
		if err := r.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(out, "posthorn demo: receiver stopped: %v\n", err)
		}
	}()
	return r, nil
}

// Close stops the receiver.
func (r *demoReceiver) Close() {
	r.srv.Close()
	<-r.done
}

// Posts returns how many posts arrived.
func (r *demoReceiver) Posts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.posts
}

// handle prints one post: its webhook-id and, for each record, the status
// and recipient, whichever encoding (form or JSON, WIRE.md §2) it came in.
func (r *demoReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 8<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	family, records := demoRecords(req.Header.Get("Content-Type"), body)
	r.mu.Lock()
	r.posts++
	n := r.posts
	r.mu.Unlock()

	var b strings.Builder
	fmt.Fprintf(&b, "  ⇒ receiver got post #%d: %d %s records (%s, %d bytes), webhook-id %s, %s\n",
		n, len(records), family, req.Header.Get("Content-Type"), len(body), req.Header.Get(dispatcher.HeaderWebhookID),
		r.checkSignature(req.Header, body))
	for _, rec := range records {
		to := firstString(rec, "to", "email", "envelopeTo")
		fmt.Fprintf(&b, "      %-10s %s\n", firstString(rec, "status", "event"), to)
	}
	r.outMu.Lock()
	io.WriteString(r.out, b.String())
	r.outMu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
	if r.received != nil {
		r.received()
	}
}

// checkSignature verifies the Standard Webhooks signature as a receiver
// would: HMAC-SHA256 over id.timestamp.body with the shared secret.
func (r *demoReceiver) checkSignature(h http.Header, body []byte) string {
	id, ts, sig := h.Get(dispatcher.HeaderWebhookID), h.Get(dispatcher.HeaderWebhookTimestamp), h.Get(dispatcher.HeaderWebhookSignature)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil || sig == "" {
		return "not signed"
	}
	want := dispatcher.Sign(r.key, id, time.Unix(secs, 0), body)
	for _, s := range strings.Fields(sig) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return "signature ok"
		}
	}
	return "SIGNATURE WRONG"
}

// demoRecords reads the records of a post: JSON {"event_type":…,
// "event":{family:[…]}} or a form whose event parameter holds the same
// object as JSON.
func demoRecords(contentType string, body []byte) (string, []map[string]any) {
	var events map[string][]map[string]any
	if strings.HasPrefix(contentType, "application/json") {
		var v struct {
			Event map[string][]map[string]any `json:"event"`
		}
		if json.Unmarshal(body, &v) == nil {
			events = v.Event
		}
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		_ = json.Unmarshal([]byte(form.Get("event")), &events)
	}
	families := make([]string, 0, len(events))
	for f := range events {
		families = append(families, f)
	}
	sort.Strings(families)
	var all []map[string]any
	for _, f := range families {
		all = append(all, events[f]...)
	}
	return strings.Join(families, "+"), all
}

func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// selfSigned makes a P-256 certificate for 127.0.0.1 and localhost, valid
// for a day, that is its own root: a client that trusts it (ca_file)
// verifies the server as usual, name and dates included.
func selfSigned(now time.Time) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "posthorn demo receiver"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
