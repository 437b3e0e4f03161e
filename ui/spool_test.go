package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

type fakeSpool []WebhookStatus

func (f fakeSpool) SpoolStatus(context.Context) ([]WebhookStatus, error) { return f, nil }

// TestDashboardSpool: the dashboard shows each webhook's backlog, the age
// of its oldest pending item and its endpoint's latest attempt, escaped.
func TestDashboardSpool(t *testing.T) {
	spool := fakeSpool{
		{Webhook: "event", Pending: 1234, Oldest: testNow.Add(-90 * time.Minute),
			Last: LastAttempt{At: testNow.Add(-42 * time.Second), Endpoint: "https://hooks.example.com/e?token=EVENT-SECRET", Result: PostDeferred, Code: 503, Reason: "HTTP 503: <b>busy</b>"}},
		{Webhook: "inbound", Pending: 1, Oldest: testNow.Add(-10 * time.Minute),
			Last: LastAttempt{At: testNow.Add(-time.Minute), Endpoint: "https://support.example/hook?token=SECRET", Filter: "support", Result: PostSucceeded, Code: 200}},
		{Webhook: "inbound", Filter: "orders", Endpoint: "https://orders.example/hook?token=SECRET", Pending: 1, Oldest: testNow.Add(-10 * time.Minute),
			Last: LastAttempt{At: testNow.Add(-2 * time.Minute), Result: PostDeferred, Code: 503, Reason: "HTTP 503"}},
		{Webhook: "inbound", Filter: "support", Endpoint: "https://support.example/hook"},
	}
	e := newEnv(t, func(o *Options) { o.Spool = spool })
	c := e.client()
	c.login()
	resp, body := c.get(livePath, "HX-Request", "true")
	wantStatus(t, resp, http.StatusOK, body)
	start := strings.Index(body, `<table class="log" data-testid="spool">`)
	end := strings.Index(body[max(start, 0):], "</table>")
	if start < 0 || end < 0 {
		t.Fatalf("no spool table:\n%s", body)
	}
	golden(t, "dashboard_spool.html", []byte(body[start:start+end+len("</table>")]+"\n"))
	if strings.Contains(body, "<b>busy") {
		t.Error("a reason is not escaped")
	}
	// One row per filter, the dead one visible though the webhook's
	// latest attempt succeeded; the Inbound Webhook's row names the filter
	// of its latest attempt, the Event Webhook's the endpoint without its
	// query; no endpoint token.
	for _, want := range []string{`data-testid="spool-filter-orders"`, `data-testid="spool-filter-support"`, "nothing waiting", "HTTP 503",
		`<div class="addr">https://hooks.example.com/e</div>`, `<div class="addr">Inbound filter support</div>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the backlog table lacks %s", want)
		}
	}
	if strings.Contains(body, "SECRET") {
		t.Error("a filter endpoint's token is shown")
	}

	// Without a Spool the dashboard has no such table.
	e = newEnv(t, nil)
	c = e.client()
	c.login()
	if _, body := c.get("/"); strings.Contains(body, `data-testid="spool"`) {
		t.Error("spool table without a Spool")
	}
}
