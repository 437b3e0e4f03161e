package ui

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/zipaes/zipaestest"
)

// TestInboundZip: the download asks for a password twice, refuses a short
// or mistyped one next to the field, and returns every matching row (not
// only the 100 the screen shows) as CSV in an AES-256 ZIP that 7-Zip opens
// with that password only.
func TestInboundZip(t *testing.T) {
	bin := zipaestest.SevenZip(t)
	e := newEnv(t, nil)
	rows := testInbound(130)
	rows[126].Reason = "=HYPERLINK(\"http://x\")"
	rows[125].Filter = "日本語フィルタ"
	if err := e.store.LogInbound(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login()

	_, body := c.get("/inbound")
	if !strings.Contains(body, `href="/inbound/download"`) {
		t.Errorf("the log has no download link:\n%s", mainOf(body))
	}
	resp, body := c.get("/inbound/download?status=succeeded&status=denied")
	wantStatus(t, resp, http.StatusOK, body)
	golden(t, "inbound_download.html", []byte(mainOf(body)))

	form := url.Values{"status": {"succeeded", "denied"}}
	for _, bad := range []struct{ pw, confirm, want string }{
		{"short", "short", "At least 8 characters."},
		{"long enough", "long enougH", "The two passwords differ."},
	} {
		f := with(form, "password", bad.pw, "password_confirm", bad.confirm)
		resp, body := c.post("/inbound.zip", f)
		wantStatus(t, resp, http.StatusUnprocessableEntity, body)
		if !strings.Contains(body, `data-testid="zip-error">`+bad.want) || !strings.Contains(body, `aria-describedby="zip_password-error"`) {
			t.Errorf("%q/%q: error not shown next to the field:\n%s", bad.pw, bad.confirm, mainOf(body))
		}
	}
	f := with(form, "password", "zip pass 日本", "password_confirm", "zip pass 日本")
	resp, body = c.post("/inbound.zip", with(f, "csrf", "wrong"))
	wantStatus(t, resp, http.StatusForbidden, body)
	resp, body = c.post("/inbound.zip", f)
	wantStatus(t, resp, http.StatusOK, "(zip)")
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/zip" || !strings.HasPrefix(cd, `attachment; filename="posthorn-inbound-20250602-120000.zip"`) {
		t.Errorf("headers %q %q", ct, cd)
	}
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "log.zip")
	if err := os.WriteFile(zipPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "x", "-pwrong password", "-o"+filepath.Join(dir, "wrong"), zipPath).CombinedOutput(); err == nil {
		t.Errorf("7-Zip opened the archive with a wrong password:\n%s", out)
	}
	if out, err := exec.Command(bin, "x", "-pzip pass 日本", "-o"+filepath.Join(dir, "out"), zipPath).CombinedOutput(); err != nil {
		t.Fatalf("7-Zip: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out", "inbound-log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// 130 rows, statuses cycling through 5: 26 succeeded and 26 denied.
	if n := strings.Count(string(got), "\n"); n != 1+52 || strings.Contains(string(got), "\r") {
		t.Errorf("%d lines (want 53), CR present: %v", n, strings.Contains(string(got), "\r"))
	}
	golden(t, "inbound_download.csv", got)
}

// TestInboundZipNoStore: without an inbound log the download is a clear
// 404, not an empty archive.
func TestInboundZipNoStore(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Inbound = nil })
	c := e.client()
	c.login()
	c.get("/inbound/download")
	resp, body := c.post("/inbound.zip", url.Values{"password": {"12345678"}, "password_confirm": {"12345678"}})
	wantStatus(t, resp, http.StatusNotFound, body)
}
