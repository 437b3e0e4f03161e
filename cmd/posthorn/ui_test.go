package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

func TestParsePostconf(t *testing.T) {
	got := parsePostconf("message_size_limit = 10240000\nsmtpd_client_connection_count_limit = 50\nin_flow_delay = 1s\nempty_one =\nwarning: junk\n")
	want := []ui.PostfixLimit{{Name: "message_size_limit", Value: "10240000"}, {Name: "smtpd_client_connection_count_limit", Value: "50"},
		{Name: "in_flow_delay", Value: "1s"}, {Name: "empty_one", Value: ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// common name.
func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	var logs bytes.Buffer
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := c.get(nil); err == nil {
		t.Fatal("loaded a certificate that does not exist")
	}
	writeCert(t, certFile, keyFile, "first")
	cn := func() string {
		t.Helper()
		cert, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("loaded %q", got)
	}
	// A renewal: new files with a later modification time.
	writeCert(t, certFile, keyFile, "second")
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	if got := cn(); got != "second" {
		t.Errorf("after renewal %q, want second", got)
	}
	// A half-written renewal keeps the loaded certificate, logged once.
	os.WriteFile(certFile, []byte("-----BEGIN CERT"), 0o644)
	evenLater := later.Add(time.Minute)
	os.Chtimes(certFile, evenLater, evenLater)
	for range 3 {
		if got := cn(); got != "second" {
			t.Errorf("with a broken file %q, want second", got)
		}
	}
	if n := bytes.Count(logs.Bytes(), []byte("keeping the loaded certificate")); n != 1 {
		t.Errorf("the broken file was logged %d times, want once:\n%s", n, logs.String())
	}
}

// consoleConfig is a config whose store is in a temp dir and whose console
// listens on a free loopback port.
func consoleConfig(t *testing.T, tlsFiles bool) (*config.Config, *sqlite.Store) {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	text := fmt.Sprintf("hostname = \"mx1\"\n[store]\npath = %q\n[ui]\nlisten = %q\n", filepath.Join(dir, "posthorn.db"), addr)
	if tlsFiles {
		writeCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), "console")
		text += fmt.Sprintf("tls_cert = %q\ntls_key = %q\n", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	}
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(cfg.Store.Path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return cfg, store
}

func TestStartConsole(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// No user yet: nothing listens, and the log says what to do.
	cfg, store := consoleConfig(t, false)
	stop, err := startConsole(ctx, cfg, store, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := http.Get("http://" + cfg.UI.Listen + "/healthz"); err == nil {
		t.Error("the console listens without any user")
	}
	if !bytes.Contains(logs.Bytes(), []byte("posthorn user add NAME")) {
		t.Errorf("log: %s", logs.String())
	}
	// A revoked API token is not a reason to serve; a live one is: the
	// API is the console's only use then.
	_, hash := ui.NewAPIToken()
	if err := store.AddAPIToken(ctx, "old", hash, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := store.RevokeAPIToken(ctx, "old", time.Now()); err != nil {
		t.Fatal(err)
	}
	stop, err = startConsole(ctx, cfg, store, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + cfg.UI.Listen + "/healthz"); err == nil {
		t.Error("the console listens with only a revoked token")
	}
	stop()
	_, hash = ui.NewAPIToken()
	if err := store.AddAPIToken(ctx, "crm", hash, time.Now()); err != nil {
		t.Fatal(err)
	}
	stop, err = startConsole(ctx, cfg, store, nil, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + cfg.UI.Listen + "/healthz"); err != nil {
		t.Errorf("the console does not listen with a live API token and no user: %v", err)
	} else {
		resp.Body.Close()
	}
	stop()

	for _, withTLS := range []bool{false, true} {
		cfg, store := consoleConfig(t, withTLS)
		if err := store.AddUser(ctx, "admin", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"); err != nil {
			t.Fatal(err)
		}
		stop, err := startConsole(ctx, cfg, store, nil, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		client := http.DefaultClient
		url := "http://" + cfg.UI.Listen + "/healthz"
		if withTLS {
			url = "https://" + cfg.UI.Listen + "/healthz"
			client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("TLS %v: %v", withTLS, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok\n" || (withTLS && resp.Header.Get("Strict-Transport-Security") == "") {
			t.Errorf("TLS %v: healthz %q, headers %v", withTLS, body, resp.Header)
		}
		// A second console on the same address fails at start.
		if _, err := startConsole(ctx, cfg, store, nil, log, nil); err == nil {
			t.Error("two consoles on one address")
		}
		stop()
		if _, err := client.Get(url); err == nil {
			t.Errorf("TLS %v: still listening after stop", withTLS)
		}
	}
}

func TestMasterMaxproc(t *testing.T) {
	defaults := []ui.PostfixLimit{{Name: "default_process_limit", Value: "100"}}
	for _, tc := range []struct {
		line   string
		limits []ui.PostfixLimit
		want   string
		ok     bool
	}{
		{"smtp       inet  n       -       y       -       20      smtpd\n", defaults, "20", true},
		{"smtp       inet  n       -       y       -       -       smtpd", defaults, "100 (default_process_limit)", true},
		{"smtp inet n - y - - smtpd -o smtpd_milters=inet:127.0.0.1:8891", defaults, "100 (default_process_limit)", true},
		{"smtp inet n - y - - smtpd", nil, "", false},
		{"", defaults, "", false},
		{"smtp inet n -", defaults, "", false},
	} {
		got, ok := masterMaxproc(tc.line, tc.limits)
		if got != tc.want || ok != tc.ok {
			t.Errorf("masterMaxproc(%q) = %q %v, want %q %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}
