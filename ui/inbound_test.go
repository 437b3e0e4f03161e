package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// testInbound makes n inbound log rows a minute apart, the newest at
// testNow.
func testInbound(n int) []event.InboundLogEntry {
	sts := []event.InboundStatus{event.InboundSucceeded, event.InboundDenied, event.InboundQueued,
		event.InboundDeferred, event.InboundFailed}
	out := make([]event.InboundLogEntry, n)
	for i := range out {
		out[i] = event.InboundLogEntry{
			Time:   testNow.Add(-time.Duration(n-1-i) * time.Minute),
			Status: sts[i%len(sts)], From: fmt.Sprintf("Customer %d <c%d@example.com>", i, i),
			To: fmt.Sprintf("support%d@example.org", i), Host: "mx1.example.net",
			MessageID: fmt.Sprintf("<in%d@example.com>", i), QueueID: fmt.Sprintf("4Q%05d", i), Filter: "support",
		}
		if out[i].Status == event.InboundDenied {
			out[i].Filter, out[i].Reason = "", "recipient domain not allowed"
		}
	}
	return out
}

var inboundTo = regexp.MustCompile(`<tr data-testid="inbound-row"><td class="time">[^<]*</td><td class="addr">([^<]*)</td>`)

func TestInboundLog(t *testing.T) {
	e := newEnv(t, nil)
	rows := testInbound(130)
	rows[128].From = `"<script>alert(1)</script>" <x@example.com>`
	rows[128].Filter = `<script>alert("filter")</script>`
	if err := e.store.LogInbound(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login()
	to := func(body string) []string {
		var out []string
		for _, m := range inboundTo.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}

	resp, body := c.get("/inbound")
	wantStatus(t, resp, http.StatusOK, body)
	if got := to(body); len(got) != 10 || got[0] != "support129@example.org" || !strings.Contains(body, `data-testid="more-notice"`) {
		t.Errorf("first page: %q", got)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(&#34;filter&#34;)") {
		t.Error("a filter name or From is not escaped")
	}
	golden(t, "inbound_page1.html", []byte(mainOf(body)))

	_, body = c.get("/inbound?status=denied&from=2025-06-02T11:30")
	if got := to(body); strings.Join(got, " ") != "support126@example.org support121@example.org support116@example.org support111@example.org support106@example.org support101@example.org" {
		t.Errorf("denied since 11:30: %q", got)
	}
	_, body = c.get("/inbound?page=10")
	if got := to(body); len(got) != 10 || got[0] != "support39@example.org" {
		t.Errorf("page 10: %q", got)
	}
	resp, body = c.get("/inbound?page=2", "HX-Request", "true", "HX-Target", "results")
	if !strings.HasPrefix(body, `<section id="results"`) || resp.StatusCode != http.StatusOK {
		t.Errorf("htmx page: %s", body)
	}
	resp, _ = c.get("/inbound?to=nonsense")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad period: %s", resp.Status)
	}

	all, _ := e.store.InboundLog(context.Background(), event.InboundQuery{})
	denied := all[126]
	_, body = c.get(fmt.Sprintf("/inbound/%d", denied.ID), "HX-Request", "true", "HX-Target", "dialog")
	for _, want := range []string{"support126@example.org", "recipient domain not allowed", "&lt;in126@example.com&gt;", "mx1.example.net", `<form method="dialog">`} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q:\n%s", want, body)
		}
	}
	resp, body = c.get(fmt.Sprintf("/inbound/%d?page=2", denied.ID))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<dialog open class="detail"`) {
		t.Errorf("no-JavaScript detail: %s", resp.Status)
	}
	for _, p := range []string{"/inbound/999999", "/inbound/x"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s", p, resp.Status)
		}
	}
}

func filterForm(kv ...string) url.Values {
	v := url.Values{
		"action":         {"save"},
		"name":           {"support"},
		"endpoint":       {"https://hooks.example.com/inbound"},
		"header":         {"To", "Subject"},
		"pattern":        {`^support@example\.org$`, "(?i)invoice"},
		"retry_interval": {"60"},
		"retry_period":   {"1d"},
		"timeout":        {"30"},
	}
	return with(v, kv...)
}

func TestInboundSettings(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.PostfixLimits = func(context.Context) ([]PostfixLimit, error) {
			return []PostfixLimit{{"message_size_limit", "10240000"}, {"in_flow_delay", "1s"}}, nil
		}
	})
	ctx := context.Background()
	c := e.client()
	c.login()

	resp, body := c.get("/settings/inbound")
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.Contains(body, "10240000") || !strings.Contains(body, "postconf -e") {
		t.Error("Postfix's limits are not shown with where to change them")
	}

	// Domains: one per line, normalised; a bad one is named in the error.
	resp, body = c.post("/settings/inbound", url.Values{"domains": {"example.org\nmail@example.net\n"}})
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `data-testid="domains-error"`) || !strings.Contains(body, "line 2 (&#34;mail@example.net&#34;): a domain, not an address") {
		t.Errorf("bad domain not shown:\n%s", mainOf(body))
	}
	// In Japanese, with lines rather than the settings' indexes.
	resp, body = c.send(jaPost(t, c, "/settings/inbound", url.Values{"domains": {"example.org\n\nexample.net, EXAMPLE.org\nbad_domain.example"}}))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	for _, want := range []string{"3 行目 (&#34;EXAMPLE.org&#34;): 1 行目と同じドメインです", "4 行目 (&#34;bad_domain.example&#34;): ドメイン名ではありません"} {
		if !strings.Contains(body, want) {
			t.Errorf("Japanese domain error lacks %q:\n%s", want, mainOf(body))
		}
	}
	if strings.Contains(body, "domains[") {
		t.Error("an internal index is shown")
	}
	resp, _ = c.post("/settings/inbound", url.Values{"domains": {"Example.ORG\r\nexample.net.\n\n"}, "log_denied": {"on"}})
	wantStatus(t, resp, http.StatusSeeOther, "")
	in, _, _ := e.store.InboundSettings(ctx)
	if strings.Join(in.Domains, ",") != "example.org,example.net" || !in.LogDenied {
		t.Errorf("saved domains %q, log_denied %v", in.Domains, in.LogDenied)
	}

	// A new filter: "+" adds a row without saving, removal drops one.
	c.get("/settings/inbound/filter")
	resp, body = c.post("/settings/inbound/filter", filterForm("action", "add"))
	wantStatus(t, resp, http.StatusOK, body)
	if n := strings.Count(body, `data-testid="condition"`); n != 3 {
		t.Errorf("after +: %d condition rows, want 3", n)
	}
	if in, _, _ := e.store.InboundSettings(ctx); len(in.Filters) != 0 {
		t.Error("+ saved the filter")
	}

	// Errors show next to their fields.
	form := filterForm("endpoint", "http://hooks.example.com/", "retry_interval", "5", "basic_user", "u",
		"basic_password", "p1", "basic_password_confirm", "p2")
	form["pattern"] = []string{`^support@example\.org$`, "(unclosed"}
	resp, body = c.post("/settings/inbound/filter", form)
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	for _, id := range []string{`id="endpoint-error"`, `id="retry_interval-error"`, `id="basic_password-error"`, `id="conditions[1].pattern-error"`} {
		if !strings.Contains(body, id) {
			t.Errorf("no error %s", id)
		}
	}
	golden(t, "filter_errors.html", []byte(mainOf(body)))

	form = filterForm("basic_user", "hook", "basic_password", "s3cret-pw", "basic_password_confirm", "s3cret-pw", "api_key", "s3cret-key")
	form["header"] = append(form["header"], "")
	form["pattern"] = append(form["pattern"], "")
	resp, body = c.post("/settings/inbound/filter", form)
	wantStatus(t, resp, http.StatusSeeOther, body)
	in, _, _ = e.store.InboundSettings(ctx)
	if len(in.Filters) != 1 || len(in.Filters[0].Conditions) != 2 || in.Filters[0].BasicPassword != "s3cret-pw" {
		t.Fatalf("saved filters: %v", in.Filters)
	}

	// A second filter may not take the first one's name.
	resp, body = c.post("/settings/inbound/filter", filterForm("name", "SUPPORT"))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `id="name-error"`) {
		t.Errorf("duplicate name not refused next to the field:\n%s", mainOf(body))
	}

	// Editing keeps secrets left empty, never shows them, and can rename.
	_, body = c.get("/settings/inbound/filter?name=support")
	if strings.Contains(body, "s3cret") || !strings.Contains(body, `data-testid="basic_password-state">set<`) {
		t.Errorf("edit form shows a secret or hides that it is set")
	}
	form = filterForm("orig", "support", "name", `help <desk>`, "basic_user", "hook", "remove", "1")
	resp, body = c.post("/settings/inbound/filter", form)
	wantStatus(t, resp, http.StatusSeeOther, body)
	in, _, _ = e.store.InboundSettings(ctx)
	if f := in.Filters[0]; f.Name != "help <desk>" || f.BasicPassword != "s3cret-pw" || f.APIKey != "s3cret-key" || len(f.Conditions) != 1 {
		t.Errorf("after the edit: %s (%d conditions)", f, len(f.Conditions))
	}
	_, body = c.get("/settings/inbound")
	if strings.Contains(body, "help <desk>") || !strings.Contains(body, "help &lt;desk&gt;") {
		t.Error("a filter name is not escaped")
	}
	golden(t, "inbound_settings.html", []byte(mainOf(body)))

	// Deleting asks for the logged-in user's password.
	resp, body = c.post("/settings/inbound/filter/delete", url.Values{"name": {"help <desk>"}, "password": {"wrong password"}})
	wantStatus(t, resp, http.StatusUnauthorized, body)
	if !strings.Contains(body, `data-testid="delete-error"`) {
		t.Error("wrong password not shown at the filter")
	}
	if in, _, _ := e.store.InboundSettings(ctx); len(in.Filters) != 1 {
		t.Fatal("deleted with a wrong password")
	}
	resp, _ = c.post("/settings/inbound/filter/delete", url.Values{"name": {"help <desk>"}, "password": {testPassword}})
	wantStatus(t, resp, http.StatusSeeOther, "")
	if in, _, _ := e.store.InboundSettings(ctx); len(in.Filters) != 0 {
		t.Error("not deleted with the right password")
	}
	if resp, _ := c.get("/settings/inbound/filter?name=nonesuch"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("editing a missing filter: %s", resp.Status)
	}
	resp, _ = c.post("/settings/inbound/filter", filterForm("orig", "nonesuch"))
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("saving a filter deleted meanwhile: %s", resp.Status)
	}
}

func TestInboundUnavailable(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Inbound, o.InboundSettings = nil, nil
		o.PostfixLimits = func(context.Context) ([]PostfixLimit, error) { return nil, errors.New("unused") }
	})
	c := e.client()
	c.login()
	for _, p := range []string{"/inbound", "/settings/inbound"} {
		_, body := c.get(p)
		if !strings.Contains(body, `data-testid="unavailable"`) {
			t.Errorf("%s does not say it is unavailable", p)
		}
	}
	for _, p := range []string{"/settings/inbound", "/settings/inbound/filter", "/settings/inbound/filter/delete"} {
		if resp, _ := c.post(p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %s", p, resp.Status)
		}
	}
	_ = settings.ToHeader
}

// jaPost is a form post from a browser asking for Japanese.
func jaPost(t *testing.T, c *client, path string, form url.Values) *http.Request {
	t.Helper()
	form.Set("csrf", c.csrf)
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Language", "ja")
	return req
}

// TestReceiveLimits: Postfix's limits with the total of SMTP sessions, and
// Posthorn's own size limit with a warning when it is the lower one.
func TestReceiveLimits(t *testing.T) {
	for _, tc := range []struct {
		size string
		warn bool
	}{{"10240000", false}, {"104857600", true}, {"0", true}} {
		e := newEnv(t, func(o *Options) {
			o.MaxMessageSize = 64 << 20
			o.PostfixLimits = func(context.Context) ([]PostfixLimit, error) {
				return []PostfixLimit{{"message_size_limit", tc.size}, {SMTPMaxproc, "100 (default_process_limit)"}}, nil
			}
		})
		c := e.client()
		c.login()
		_, body := c.get("/settings/inbound")
		for _, want := range []string{"master.cf smtp/inet maxproc", "Concurrent SMTP sessions of all clients", `data-testid="milter-size"`, "67108864"} {
			if !strings.Contains(body, want) {
				t.Errorf("message_size_limit %s: the limits lack %q", tc.size, want)
			}
		}
		if got := strings.Contains(body, `data-testid="size-warning"`); got != tc.warn {
			t.Errorf("message_size_limit %s: warning %v, want %v", tc.size, got, tc.warn)
		}
	}
}
