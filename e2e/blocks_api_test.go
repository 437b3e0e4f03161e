package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBlocksAPI drives /api/v1/blocks of a real `posthorn serve` over
// HTTPS with a token made by the real `posthorn token add`: refused
// without it, list, add, delete and cancel with it, refused with 403 once
// `posthorn token revoke` has run; the Event Webhook receiver gets the
// `registered` and `deleted` records the API's changes caused, and nothing
// for the cancelled registration.
func TestBlocksAPI(t *testing.T) {
	recv := startReceiver(t)
	dir := testDir(t)
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := consoleCert(t, dir)
	port := freePort(t)
	cfg := writeConfig(t, dir, maillog, fmt.Sprintf(`[ui]
listen = "127.0.0.1:%d"
tls_cert = %q
tls_key = %q
timezone = "UTC"
`, port, certFile, keyFile))
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append([]byte("server_composition = \"e2e-composition\"\n"), data...), 0o644)
	importSettings(t, dir, cfg, hookSettings(recv.url, recv.caFile, "  blocks: true\n"))

	// The console starts only once a user exists.
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("e2e console password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	posthornCmd(t, 0, "user", "add", "admin", "--password-file", pw, "--config", cfg)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(posthorn, "token", "add", "crm", "--config", cfg)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("posthorn token add: %v\n%s", err, stderr.String())
	}
	token := strings.TrimSpace(stdout.String())
	if !regexp.MustCompile(`^ph_[0-9a-f]{64}$`).MatchString(token) {
		t.Fatalf("posthorn token add printed %q", stdout.String())
	}

	d := startServe(t, cfg)
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	waitFor(t, d, 30*time.Second, "the console to answer", func() bool {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	call := func(method, path, tok, body string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
		}
		return resp.StatusCode, resp.Header, v
	}
	want := func(method, path, tok, body string, status int, check func(map[string]any) bool) map[string]any {
		t.Helper()
		got, _, v := call(method, path, tok, body)
		if got != status || (check != nil && !check(v)) {
			t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, got, v, status)
		}
		return v
	}
	field := func(k, val string) func(map[string]any) bool {
		return func(v map[string]any) bool { return v[k] == val }
	}
	errCode := func(code string) func(map[string]any) bool {
		return func(v map[string]any) bool {
			e, _ := v["error"].(map[string]any)
			return e != nil && e["code"] == code
		}
	}

	status, h, _ := call("GET", "/api/v1/blocks", "", "")
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("without a token: %d, WWW-Authenticate %q", status, h.Get("WWW-Authenticate"))
	}
	want("GET", "/api/v1/blocks", "ph_"+strings.Repeat("0", 64), "", http.StatusUnauthorized, errCode("unauthorized"))

	want("POST", "/api/v1/blocks", token, `{"address":"API@Example.ORG","now":true,"reason":"unsubscribe"}`, http.StatusCreated, field("status", "registered"))
	want("POST", "/api/v1/blocks", token, `{"address":"later@example.org","at":"2099-01-01 00:00","watchDays":0}`, http.StatusCreated, field("status", "scheduled"))
	want("POST", "/api/v1/blocks", token, `{"address":"API@example.org","now":true}`, http.StatusConflict, errCode("conflict"))
	want("POST", "/api/v1/blocks", token, `{"address":"no-at-sign","now":true}`, http.StatusBadRequest, errCode("invalid_request"))
	want("GET", "/api/v1/blocks?rows=500", token, "", http.StatusBadRequest, errCode("invalid_request"))
	list := want("GET", "/api/v1/blocks?address=example.org&rows=1", token, "", http.StatusOK, nil)
	if list["total"] != 2.0 || len(list["blocks"].([]any)) != 1 {
		t.Errorf("list: %v", list)
	}
	want("DELETE", "/api/v1/blocks/later@example.org", token, "", http.StatusConflict, errCode("conflict"))
	want("DELETE", "/api/v1/blocks/API%40example.org", token, "", http.StatusOK, field("status", "deleted"))
	want("POST", "/api/v1/blocks/later@example.org/cancel", token, "", http.StatusOK, field("status", "cancelled"))
	want("DELETE", "/api/v1/blocks/API@example.org", token, "", http.StatusNotFound, errCode("not_found"))

	// What the API did is what the CLI sees.
	out := posthornCmd(t, 0, "blocks", "list", "--removed", "--config", cfg)
	for _, s := range []string{"API@example.org", "unsubscribe", "deleted", "later@example.org", "cancelled"} {
		if !strings.Contains(out, s) {
			t.Errorf("blocks list lacks %q:\n%s", s, out)
		}
	}
	out = posthornCmd(t, 0, "token", "list", "--config", cfg)
	if !regexp.MustCompile(`(?m)^crm +\d{4}-\d\d-\d\d \d\d:\d\d +\d{4}-\d\d-\d\d \d\d:\d\d +-$`).MatchString(out) {
		t.Errorf("token list after use:\n%s", out)
	}

	// Revoked while serve runs: refused at once.
	posthornCmd(t, 0, "token", "revoke", "crm", "--config", cfg)
	want("GET", "/api/v1/blocks", token, "", http.StatusForbidden, errCode("forbidden"))

	// The receiver gets the registration and the deletion, and nothing
	// for the cancelled entry, which never took effect.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		posts, _, errs := recv.snapshot()
		if len(errs) > 0 {
			t.Fatalf("receiver: %v", errs)
		}
		got := map[string]map[string]string{}
		for _, p := range posts {
			for _, r := range p.records {
				got[r["status"]+" "+r["email"]] = r
			}
		}
		if len(got) >= 2 {
			for _, k := range []string{"registered API@example.org", "deleted API@example.org"} {
				if r, ok := got[k]; !ok || r["reason"] != "unsubscribe" {
					t.Errorf("record %q: %v; got %v", k, r, got)
				}
			}
			if len(got) != 2 {
				t.Errorf("got %d records, want 2: %v", len(got), got)
			}
			break
		}
		select {
		case <-recv.notify:
		case <-ctx.Done():
			t.Fatalf("receiver got %v; serve log:\n%s", got, tail(d.log.Name(), 20))
		case err := <-d.done:
			t.Fatalf("serve exited: %v", err)
		}
	}
	// The token never reached the log.
	if log := readFile(t, d.log.Name()); strings.Contains(log, token) || strings.Contains(log, token[3:]) {
		t.Error("serve's log holds the token")
	}
}

// consoleCert writes a self-signed certificate for 127.0.0.1 and its key,
// and returns a pool that trusts it.
func consoleCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "posthorn e2e console"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "console.crt"), filepath.Join(dir, "console.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
