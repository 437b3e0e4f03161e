package ui

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/settings"
)

// validForm is a complete, valid settings form.
func validForm() url.Values {
	return url.Values{
		"endpoint":     {"https://hooks.example.com/posthorn"},
		"deliveries":   {"on"},
		"bounces":      {"on"},
		"version":      {"2"},
		"timezone":     {"Asia/Tokyo"},
		"json":         {"on"},
		"interval":     {"5"},
		"max_events":   {"500"},
		"timeout":      {"20"},
		"retry_period": {"2d"},
	}
}

func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	return out
}

func TestWebhookForm(t *testing.T) {
	tests := []struct {
		name   string
		form   url.Values
		lang   string
		errs   []string // fields with an error next to them
		golden string
	}{
		{name: "valid", form: validForm()},
		{name: "interval out of range", form: with(validForm(), "interval", "601"), errs: []string{"interval"}, golden: "webhook_interval.html"},
		{name: "interval not a number", form: with(validForm(), "interval", "ten"), errs: []string{"interval"}},
		{name: "every range", form: with(validForm(), "interval", "0", "max_events", "99", "timeout", "1000", "retry_period", "30m"),
			errs: []string{"interval", "max_events", "timeout", "retry_period"}},
		{name: "ten days is the longest retry", form: with(validForm(), "retry_period", "10d")},
		{name: "more than ten days", form: with(validForm(), "retry_period", "10d1h"), errs: []string{"retry_period"}},
		{name: "retry period unreadable", form: with(validForm(), "retry_period", "soon"), errs: []string{"retry_period"}},
		{name: "http endpoint", form: with(validForm(), "endpoint", "http://hooks.example.com/"), errs: []string{"endpoint"}},
		{name: "no endpoint", form: with(validForm(), "endpoint", ""), errs: []string{"endpoint"}},
		{name: "JSON needs version 2", form: with(validForm(), "version", "1"), errs: []string{"json"}},
		{name: "version 3 is JSON only", form: with(validForm(), "version", "3", "json", ""), errs: []string{"json"}},
		{name: "blocks need version 2", form: with(validForm(), "version", "1", "json", "", "blocks", "on"), errs: []string{"blocks"}},
		{name: "bad version", form: with(validForm(), "version", "9"), errs: []string{"version"}},
		{name: "bad zone", form: with(validForm(), "timezone", "Mars/Olympus"), errs: []string{"timezone"}},
		{name: "Basic and Bearer", form: with(validForm(), "basic_user", "hook", "basic_password", "pw", "basic_password_confirm", "pw",
			"api_key", "k123", "api_key_bearer", "on"), errs: []string{"api_key_bearer"}},
		{name: "password confirmation differs", form: with(validForm(), "basic_user", "hook", "basic_password", "pw1", "basic_password_confirm", "pw2"),
			errs: []string{"basic_password"}, golden: "webhook_mismatch.html"},
		{name: "bearer without key", form: with(validForm(), "api_key_bearer", "on"), errs: []string{"api_key"}},
		{name: "bad signing secret", form: with(validForm(), "signing_secret", "whsec_short"), errs: []string{"signing_secret"}},
		{name: "relative CA file", form: with(validForm(), "ca_file", "ca.pem"), errs: []string{"ca_file"}},
		{name: "Japanese errors", form: with(validForm(), "interval", "601", "version", "1"), lang: "ja", errs: []string{"interval", "json"},
			golden: "webhook_ja.html"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := e.client()
			c.login()
			if tc.lang != "" {
				c.post("/lang", url.Values{"lang": {tc.lang}, "back": {"/"}})
			}
			c.get("/settings/event-webhook")
			resp, body := c.post("/settings/event-webhook", tc.form)
			if len(tc.errs) == 0 {
				wantStatus(t, resp, http.StatusSeeOther, body)
				return
			}
			wantStatus(t, resp, http.StatusUnprocessableEntity, body)
			for _, f := range tc.errs {
				if !strings.Contains(body, `data-testid="`+f+`-error"`) {
					t.Errorf("no error next to %s", f)
				}
			}
			if n := strings.Count(body, `class="error" id=`); n != len(tc.errs) {
				t.Errorf("%d field errors, want %d", n, len(tc.errs))
			}
			if _, saved, _ := e.settings.EventWebhookSettings(context.Background()); saved {
				t.Error("invalid settings were saved")
			}
			if tc.golden != "" {
				golden(t, tc.golden, []byte(mainOf(body)))
			}
		})
	}
}

// TestWebhookSecrets: secrets are saved, never shown, kept when the field
// is left empty, replaced or removed on request.
func TestWebhookSecrets(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	ctx := context.Background()

	resp, body := c.get("/settings/event-webhook")
	wantStatus(t, resp, http.StatusOK, body)
	golden(t, "webhook_defaults.html", []byte(mainOf(body)))

	form := with(validForm(), "basic_user", "hook", "basic_password", "s3cret-basic", "basic_password_confirm", "s3cret-basic",
		"api_key", "s3cret-apikey")
	resp, body = c.post("/settings/event-webhook", form)
	wantStatus(t, resp, http.StatusSeeOther, body)
	if loc := resp.Header.Get("Location"); loc != "/settings/event-webhook?saved=1" {
		t.Errorf("after saving: Location %q", loc)
	}
	got, _, _ := e.settings.EventWebhookSettings(ctx)
	want := settings.EventWebhook{
		Endpoint: "https://hooks.example.com/posthorn", Deliveries: true, Bounces: true, Version: 2,
		Timezone: "Asia/Tokyo", JSON: true, BasicUser: "hook", BasicPassword: "s3cret-basic", APIKey: "s3cret-apikey",
		Interval: 5, MaxEvents: 500, Timeout: 20, RetryPeriod: settings.Duration(48 * time.Hour),
	}
	if got.String() != want.String() || got.BasicPassword != want.BasicPassword || got.APIKey != want.APIKey {
		t.Errorf("saved\n %s\nwant\n %s", got, want)
	}

	resp, body = c.get("/settings/event-webhook?saved=1")
	wantStatus(t, resp, http.StatusOK, body)
	if strings.Contains(body, "s3cret") {
		t.Error("a secret is rendered back")
	}
	for _, f := range []string{"basic_password", "api_key"} {
		if !strings.Contains(body, `data-testid="`+f+`-state">set<`) {
			t.Errorf("%s not shown as set", f)
		}
	}
	if !strings.Contains(body, `data-testid="saved"`) {
		t.Error("no saved notice")
	}

	// Saving again with the secret fields empty keeps them.
	resp, _ = c.post("/settings/event-webhook", with(validForm(), "basic_user", "hook", "interval", "7"))
	wantStatus(t, resp, http.StatusSeeOther, "")
	got, _, _ = e.settings.EventWebhookSettings(ctx)
	if got.BasicPassword != "s3cret-basic" || got.APIKey != "s3cret-apikey" || got.Interval != 7 {
		t.Errorf("secrets not kept: %s", got)
	}
	// An invalid save shows neither the stored nor the typed secret.
	_, body = c.post("/settings/event-webhook", with(validForm(), "basic_user", "hook", "api_key", "s3cret-typed", "interval", "0"))
	if strings.Contains(body, "s3cret") {
		t.Error("a secret is rendered back after an invalid save")
	}
	// Remove clears.
	resp, _ = c.post("/settings/event-webhook", with(validForm(), "basic_password_clear", "on", "api_key_clear", "on"))
	wantStatus(t, resp, http.StatusSeeOther, "")
	got, _, _ = e.settings.EventWebhookSettings(ctx)
	if got.BasicPassword != "" || got.APIKey != "" || got.BasicUser != "" {
		t.Errorf("secrets not removed: %s", got)
	}

	// A generated signing secret is shown once, on the answer to the save.
	resp, body = c.post("/settings/event-webhook", with(validForm(), "signing_secret_generate", "on"))
	wantStatus(t, resp, http.StatusOK, body)
	got, _, _ = e.settings.EventWebhookSettings(ctx)
	if got.SigningSecret == "" || !strings.Contains(body, string(got.SigningSecret)) {
		t.Errorf("generated secret not saved or not shown")
	}
	if _, err := got.SigningSecret.SigningKey(); err != nil {
		t.Error(err)
	}
	_, body = c.get("/settings/event-webhook")
	if strings.Contains(body, string(got.SigningSecret)) {
		t.Error("the signing secret is shown again")
	}
}

func TestWebhookUnavailable(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Settings = nil })
	c := e.client()
	c.login()
	_, body := c.get("/settings/event-webhook")
	if !strings.Contains(body, `data-testid="unavailable"`) {
		t.Error("no notice that the settings are unavailable")
	}
	resp, _ := c.post("/settings/event-webhook", validForm())
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("saving without a settings store: %s", resp.Status)
	}
}

func TestWebhookTestPost(t *testing.T) {
	var posted *settings.EventWebhook
	e := newEnv(t, func(o *Options) {
		o.SendTestEvent = func(_ context.Context, s settings.EventWebhook) (TestResult, error) {
			posted = &s
			if s.Timeout == 1 {
				return TestResult{}, errors.New("dial tcp: connection refused")
			}
			return TestResult{Status: 204, Head: "<ok>"}, nil
		}
	})
	c := e.client()
	c.login()
	_, body := c.get("/settings/event-webhook")
	if !strings.Contains(body, `data-testid="send-test"`) {
		t.Fatal("no test button")
	}
	_, body = c.post("/settings/event-webhook/test", nil)
	if posted != nil || !strings.Contains(body, "Save the settings first") {
		t.Errorf("test post before any save: posted %v", posted)
	}
	c.post("/settings/event-webhook", validForm())
	_, body = c.post("/settings/event-webhook/test", nil)
	if posted == nil || posted.Endpoint != "https://hooks.example.com/posthorn" ||
		!strings.Contains(body, "HTTP 204") || !strings.Contains(body, "&lt;ok&gt;") {
		t.Errorf("test post: %v\n%s", posted, mainOf(body))
	}
	c.post("/settings/event-webhook", with(validForm(), "timeout", "1"))
	_, body = c.post("/settings/event-webhook/test", nil)
	if !strings.Contains(body, "connection refused") {
		t.Errorf("failed test post not shown:\n%s", mainOf(body))
	}
}

// TestWebhookStoreRefuses: the store validates again (here without
// allow_insecure_http while the console allows it); its errors show next
// to the fields like the console's own.
func TestWebhookStoreRefuses(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowInsecureHTTP = true })
	c := e.client()
	c.login()
	c.get("/settings/event-webhook")
	resp, body := c.post("/settings/event-webhook", with(validForm(), "endpoint", "http://hooks.example.com/"))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `data-testid="endpoint-error"`) || !strings.Contains(body, "allow_insecure_http") {
		t.Errorf("store's refusal not shown next to the endpoint:\n%s", mainOf(body))
	}
}

// TestWebhookTestPostOutlastsWriteTimeout: a test post may take up to its
// timeout, longer than the server's write deadline; the answer still
// reaches the browser. The endpoint here answers after four write
// timeouts of the server.
func TestWebhookTestPostOutlastsWriteTimeout(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	e := newEnv(t, func(o *Options) {
		o.SendTestEvent = func(ctx context.Context, _ settings.EventWebhook) (TestResult, error) {
			select {
			case <-time.After(4 * writeTimeout): // the slow endpoint
			case <-ctx.Done():
				return TestResult{}, ctx.Err()
			}
			return TestResult{Status: 200, Head: "slow but fine"}, nil
		}
	})
	// Log in and save on a server without a write deadline: only the
	// test post meets the short one, so a slow machine cannot fail the
	// setup's requests.
	c := e.client()
	c.login()
	c.get("/settings/event-webhook")
	if resp, body := c.post("/settings/event-webhook", validForm()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %s\n%s", resp.Status, mainOf(body))
	}
	// The same console and store behind a server with the short write
	// deadline; the cookie jar holds the session for both (cookies do not
	// depend on the port, RFC 6265 §8.5).
	ts := httptest.NewUnstartedServer(e.srv)
	ts.Config.WriteTimeout = writeTimeout
	ts.Start()
	t.Cleanup(ts.Close)
	c.base = ts.URL
	resp, body := c.post("/settings/event-webhook/test", nil)
	wantStatus(t, resp, http.StatusOK, body)
	if !strings.Contains(body, "slow but fine") {
		t.Errorf("the slow answer is not shown:\n%s", mainOf(body))
	}
}
