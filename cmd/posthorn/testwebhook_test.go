package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/posthorn/posthorn/internal/nettest"
)

// test-webhook posts the type asked for even when the settings turn it
// off — it is a test, often made while setting up — and says so.
func TestTestWebhookTypeTurnedOff(t *testing.T) {
	posts := make(chan string, 4)
	url, ca := nettest.HTTPSReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- string(body)
		io.WriteString(w, "thanks")
	}))
	cfg, _ := webhookConfig(t)
	doc := "event_webhook:\n  endpoint: " + url + "/hook\n  deliveries: true\n  json: true\n  ca_file: " + ca + "\n"
	if code, _, errs := runCmd(t, "settings", "import", writeFile(t, "s.yaml", []byte(doc)), "--config", cfg); code != exitOK {
		t.Fatalf("import: %s", errs)
	}

	code, out, errs := runCmd(t, "test-webhook", "--type", "blocks", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "note: blocks records are turned off in the settings (blocks: false): posthorn serve does not post them; this test posts one anyway") ||
		!strings.Contains(out, "thanks") {
		t.Errorf("test-webhook --type blocks: %d %q %q", code, out, errs)
	}
	if body := <-posts; !strings.Contains(body, "blocks") || !strings.Contains(body, "registered") {
		t.Errorf("posted %s", body)
	}

	code, out, errs = runCmd(t, "test-webhook", "--type", "deliveries", "--config", cfg)
	if code != exitOK || strings.Contains(out, "note:") {
		t.Errorf("test-webhook --type deliveries: %d %q %q", code, out, errs)
	}
	<-posts
}
