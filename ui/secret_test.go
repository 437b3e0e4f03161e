package ui

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	sealedField = regexp.MustCompile(`<input type="hidden" name="([a-z_]+_sealed)" value="([^"]+)"`)
	newSecret   = regexp.MustCompile(`data-testid="new-secret"><p>[^<]*</p><code>([^<]+)</code>`)
)

// resubmit is what a browser sends again from a form shown after an
// error: the fields given plus the hidden sealed values of the page.
func resubmit(page string, form url.Values) url.Values {
	out := with(form)
	for _, m := range sealedField.FindAllStringSubmatch(page, -1) {
		out.Set(m[1], m[2])
	}
	return out
}

func wantState(t *testing.T, body, field, want string) {
	t.Helper()
	if !strings.Contains(body, `data-testid="`+field+`-state">`+want+`<`) {
		t.Errorf("%s: state is not %q", field, want)
	}
}

// TestWebhookSecretsAcrossErrors: secrets typed into a form refused for
// another field are not echoed, not called "set", and are saved by the
// next submit that leaves their fields empty.
func TestWebhookSecretsAcrossErrors(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	ctx := context.Background()
	c.get("/settings/event-webhook")

	typed := with(validForm(), "basic_user", "hook", "basic_password", "s3cret-basic", "basic_password_confirm", "s3cret-basic",
		"api_key", "s3cret-apikey", "signing_secret", "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "interval", "601")
	resp, body := c.post("/settings/event-webhook", typed)
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if strings.Contains(body, "s3cret") || strings.Contains(body, "MDEyMzQ1Njc4OWFi") {
		t.Fatal("a typed secret is echoed")
	}
	for _, f := range []string{"basic_password", "api_key", "signing_secret"} {
		wantState(t, body, f, "entered, not saved yet")
	}
	if n := len(sealedField.FindAllString(body, -1)); n != 3 {
		t.Fatalf("%d sealed fields, want 3", n)
	}

	// The browser resubmits with the password fields empty.
	again := resubmit(body, with(validForm(), "basic_user", "hook"))
	resp, body = c.post("/settings/event-webhook", again)
	wantStatus(t, resp, http.StatusSeeOther, body)
	got, _, _ := e.settings.EventWebhookSettings(ctx)
	if got.BasicUser != "hook" || got.BasicPassword != "s3cret-basic" || got.APIKey != "s3cret-apikey" ||
		got.SigningSecret != "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" {
		t.Errorf("saved %s: typed secrets lost", got)
	}
	_, body = c.get("/settings/event-webhook?saved=1")
	wantState(t, body, "basic_password", "set")

	// A sealed value that does not open (changed, another session's) is
	// refused at its field, and nothing is saved.
	bad := with(validForm(), "basic_user", "hook", "api_key_sealed", again.Get("api_key_sealed")+"x", "interval", "9")
	resp, body = c.post("/settings/event-webhook", bad)
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `data-testid="api_key-error"`) || !strings.Contains(body, "enter it again") {
		t.Errorf("a broken sealed value is not refused at its field:\n%s", mainOf(body))
	}
	other := e.client()
	other.login()
	other.get("/settings/event-webhook")
	resp, body = other.post("/settings/event-webhook", with(validForm(), "basic_user", "hook", "basic_password_sealed", again.Get("basic_password_sealed")))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `data-testid="basic_password-error"`) {
		t.Error("a sealed value of another session is accepted")
	}
	if got, _, _ := e.settings.EventWebhookSettings(ctx); got.Interval != 5 {
		t.Errorf("saved after a refused sealed value: %s", got)
	}

	// Basic without a password is refused at the password.
	resp, body = c.post("/settings/event-webhook", with(validForm(), "basic_user", "hook", "basic_password_clear", "on"))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `data-testid="basic_password-error"`) {
		t.Errorf("Basic user without a password not refused at the password:\n%s", mainOf(body))
	}
}

// TestWebhookGenerateAcrossErrors: a generated signing secret is shown
// only once it is saved; a refused form keeps the request, not a secret.
func TestWebhookGenerateAcrossErrors(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	ctx := context.Background()
	c.get("/settings/event-webhook")

	resp, body := c.post("/settings/event-webhook", with(validForm(), "signing_secret_generate", "on", "interval", "601"))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if strings.Contains(body, `data-testid="new-secret"`) || strings.Contains(body, "whsec_") {
		t.Fatal("a secret that was not saved is shown as new")
	}
	if !strings.Contains(body, `name="signing_secret_generate" checked`) {
		t.Error("the generate request is lost")
	}
	wantState(t, body, "signing_secret", "not set")

	resp, body = c.post("/settings/event-webhook", resubmit(body, with(validForm(), "signing_secret_generate", "on")))
	wantStatus(t, resp, http.StatusOK, body)
	m := newSecret.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no new secret after saving:\n%s", mainOf(body))
	}
	if got, _, _ := e.settings.EventWebhookSettings(ctx); string(got.SigningSecret) != m[1] {
		t.Errorf("shown %q, saved %q", m[1], got.SigningSecret)
	}
}

// TestFilterSecretsAcrossAdd: "+" (adding a condition) keeps typed
// secrets and the generate request, and Save stores them.
func TestFilterSecretsAcrossAdd(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	ctx := context.Background()
	c.get("/settings/inbound/filter")

	typed := filterForm("action", "add", "basic_user", "hook", "basic_password", "s3cret-pw", "basic_password_confirm", "s3cret-pw",
		"api_key", "s3cret-key")
	resp, body := c.post("/settings/inbound/filter", typed)
	wantStatus(t, resp, http.StatusOK, body)
	if strings.Contains(body, "s3cret") {
		t.Fatal("a typed secret is echoed")
	}
	wantState(t, body, "basic_password", "entered, not saved yet")
	wantState(t, body, "api_key", "entered, not saved yet")

	// "+" again, now asking for a signing secret: none is shown yet.
	form := resubmit(body, filterForm("action", "add", "basic_user", "hook", "signing_secret_generate", "on"))
	resp, body = c.post("/settings/inbound/filter", form)
	wantStatus(t, resp, http.StatusOK, body)
	if strings.Contains(body, `data-testid="new-secret"`) || strings.Contains(body, "whsec_") {
		t.Fatal("+ shows a signing secret that is not saved")
	}
	if !strings.Contains(body, `name="signing_secret_generate" checked`) {
		t.Error("+ loses the generate request")
	}

	form = resubmit(body, filterForm("basic_user", "hook", "signing_secret_generate", "on"))
	resp, body = c.post("/settings/inbound/filter", form)
	wantStatus(t, resp, http.StatusOK, body)
	in, _, _ := e.store.InboundSettings(ctx)
	if len(in.Filters) != 1 {
		t.Fatalf("filters %v", in.Filters)
	}
	f := in.Filters[0]
	if f.BasicUser != "hook" || f.BasicPassword != "s3cret-pw" || f.APIKey != "s3cret-key" || f.SigningSecret == "" {
		t.Errorf("saved %s: secrets lost", f)
	}
	if m := newSecret.FindStringSubmatch(body); m == nil || m[1] != string(f.SigningSecret) {
		t.Errorf("the new secret shown is not the one saved (%v)", m)
	}

	// Basic without a password is refused at the password.
	resp, body = c.post("/settings/inbound/filter", filterForm("name", "other", "basic_user", "u"))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	if !strings.Contains(body, `data-testid="basic_password-error"`) {
		t.Errorf("Basic user without a password not refused at the password:\n%s", mainOf(body))
	}
}

// TestSealedSecretBoundToFieldAndForm: a sealed value opens only in the
// field and form it was sealed for (sealAD): moved into another field, or
// from the Event Webhook form into the filter form, it is refused with
// "enter it again" and nothing is saved.
func TestSealedSecretBoundToFieldAndForm(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	c.login()
	ctx := context.Background()
	c.get("/settings/event-webhook")
	resp, body := c.post("/settings/event-webhook", with(validForm(), "api_key", "s3cret-apikey", "interval", "601"))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	sealed := resubmit(body, url.Values{}).Get("api_key_sealed")
	if sealed == "" {
		t.Fatalf("no sealed api_key:\n%s", mainOf(body))
	}
	refused := func(body, field string) {
		t.Helper()
		if !strings.Contains(body, `data-testid="`+field+`-error"`) || !strings.Contains(body, "enter it again") {
			t.Errorf("a sealed value out of its place is not refused at %s:\n%s", field, mainOf(body))
		}
		if strings.Contains(body, "s3cret") {
			t.Error("the sealed secret is echoed")
		}
	}

	// Another field of the same form.
	resp, body = c.post("/settings/event-webhook", with(validForm(), "basic_user", "hook", "basic_password_sealed", sealed))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	refused(body, "basic_password")
	if _, saved, _ := e.settings.EventWebhookSettings(ctx); saved {
		t.Error("saved with another field's sealed value")
	}

	// The same field of another form.
	c.get("/settings/inbound/filter")
	resp, body = c.post("/settings/inbound/filter", filterForm("api_key_sealed", sealed))
	wantStatus(t, resp, http.StatusUnprocessableEntity, body)
	refused(body, "api_key")
	if in, _, _ := e.store.InboundSettings(ctx); len(in.Filters) != 0 {
		t.Errorf("saved with another form's sealed value: %v", in.Filters)
	}
}
