package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestMalformedRequests: a query or form that does not parse is refused
// with 400 on every route, never acted on as if it were empty.
func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	c := e.client()
	c.login()
	e.commit(testEvents(30))

	c.get("/settings/inbound")
	resp, body := c.post("/settings/inbound", with(nil, "domains", "example.org\nexample.net", "log_denied", "on"))
	wantStatus(t, resp, http.StatusSeeOther, body)

	// A body with a bad escape: the domains must stay.
	req, _ := http.NewRequest(http.MethodPost, c.base+"/settings/inbound", strings.NewReader("csrf="+c.csrf+"&domains=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body = c.send(req)
	wantStatus(t, resp, http.StatusBadRequest, body)
	if in, _, _ := e.store.InboundSettings(ctx); strings.Join(in.Domains, ",") != "example.org,example.net" {
		t.Errorf("domains after a malformed form: %q", in.Domains)
	}
	for _, path := range []string{"/settings/event-webhook", "/settings/inbound/filter", "/settings/inbound/filter/delete", "/inbound.zip", "/lang", "/logout"} {
		req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader("csrf="+c.csrf+"&x=%zz"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, body := c.send(req); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s with a malformed body: %s\n%s", path, resp.Status, body)
		}
	}

	// More parameters than Go parses: the CSV must not fall back to all
	// rows.
	many := strings.Repeat("status=failed&", 30000)
	for _, path := range []string{"/events.csv?", "/events?", "/posts.csv?", "/inbound?", "/events?from=%zz&"} {
		q := path
		if !strings.Contains(path, "%zz") {
			q += many
		}
		resp, body := c.get(q)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %.40s…: %s, want 400 (%d bytes)", q, resp.Status, len(body))
		}
	}

	// The refusal is in the page language.
	c.get("/", "Accept-Language", "ja")
	req, _ = http.NewRequest(http.MethodGet, c.base+"/events?from=%zz", nil)
	req.Header.Set("Accept-Language", "ja")
	resp, body = c.send(req)
	wantStatus(t, resp, http.StatusBadRequest, body)
	if !strings.Contains(body, "不正なリクエスト") {
		t.Errorf("400 not in Japanese: %q", body)
	}
}
