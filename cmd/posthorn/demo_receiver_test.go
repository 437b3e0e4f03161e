package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
)

// TestDemoReceiver: a client that trusts only the written ca_file reaches
// the receiver over verified TLS; the receiver prints each post's records
// from JSON and from a form, and tells a good signature from a bad one.
func TestDemoReceiver(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	r, err := startDemoReceiver(t.TempDir(), &out, &mu)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pemBytes, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in the ca_file")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()

	post := func(ct, body string, sign bool, tamper bool) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, r.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		if sign {
			now := time.Now()
			signed := body
			if tamper {
				signed += " "
			}
			req.Header[dispatcher.HeaderWebhookID] = []string{"batch_1"}
			req.Header[dispatcher.HeaderWebhookTimestamp] = []string{strconv.FormatInt(now.Unix(), 10)}
			req.Header[dispatcher.HeaderWebhookSignature] = []string{dispatcher.Sign(r.key, "batch_1", time.Unix(now.Unix(), 0), []byte(signed))}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok\n" {
			t.Errorf("answer %s %q", resp.Status, b)
		}
	}
	post("application/json", `{"server_composition":"","event_type":"deliveries","event":{"deliveries":[{"status":"succeeded","to":"bob@ok.test"},{"status":"deferred","to":"carol@ok.test"}]}}`, true, false)
	form := url.Values{"server_composition": {""}, "event_type": {"bounces"}, "event": {`{"bounces":[{"status":"2","to":"x@y.test"}]}`}}
	post("application/x-www-form-urlencoded", form.Encode(), true, true)
	post("application/json", `not json`, false, false)

	got := out.String()
	for _, want := range []string{
		"post #1: 2 deliveries records (application/json, ", "signature ok\n      succeeded  bob@ok.test\n      deferred   carol@ok.test\n",
		"post #2: 1 bounces records", "SIGNATURE WRONG\n      2          x@y.test\n",
		"post #3: 0  records", "not signed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if r.Posts() != 3 {
		t.Errorf("%d posts counted", r.Posts())
	}
}

// TestFreeListen: a taken port is skipped for the next free one.
func TestFreeListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	got, err := freeListen(taken)
	if err != nil || got == taken {
		t.Errorf("freeListen(%s) = %s, %v; want another port", taken, got, err)
	}
	for _, bad := range []string{"nonsense", "127.0.0.1:x", "127.0.0.1:70000"} {
		if _, err := freeListen(bad); err == nil {
			t.Errorf("freeListen(%q) accepted", bad)
		}
	}
}
