package ui

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/settings"
)

// webhookView is the Event Webhook settings form: the values shown, which
// secrets are stored, and the errors next to the fields.
type webhookView struct {
	Available bool
	S         settings.EventWebhook // values shown; secrets are never rendered
	Raw       map[string]string     // number fields as typed, when they did not parse
	Errs      map[string]string     // field (YAML name) → message in the page language
	// The secret fields: whether each is stored, and a value typed but
	// not saved yet.
	Basic, APIKey, Signing *secretInput
	Saved                  bool
	// NewSecret is a generated signing secret, shown once, after it was
	// saved.
	NewSecret string
	CanTest   bool
	Test      *testView
}

type testView struct {
	Result TestResult
	Err    string
}

// value is what a number or duration field shows: what was typed when it
// did not parse, else the setting.
func (v *webhookView) value(field, setting string) string {
	if raw, ok := v.Raw[field]; ok {
		return raw
	}
	return setting
}

func (v *webhookView) advancedOpen() bool {
	for _, f := range []string{"basic_user", "basic_password", "api_key", "api_key_bearer", "signing_secret",
		"ca_file", "interval", "max_events", "timeout", "retry_period"} {
		if v.Errs[f] != "" {
			return true
		}
	}
	return false
}

// current returns the stored settings, or the defaults of a new
// installation.
func (s *Server) currentWebhook(ctx context.Context) (settings.EventWebhook, error) {
	wh, err := s.webhookSettings(ctx)
	if err != nil || wh == nil {
		return settings.Default(), err
	}
	return *wh, nil
}

func (s *Server) newWebhookView(cur settings.EventWebhook) *webhookView {
	return &webhookView{
		Available: s.settings != nil,
		S:         cur,
		Basic:     &secretInput{Field: "basic_password", Stored: cur.BasicPassword != ""},
		APIKey:    &secretInput{Field: "api_key", Stored: cur.APIKey != ""},
		Signing:   &secretInput{Field: "signing_secret", Stored: cur.SigningSecret != ""},
		CanTest:   s.sendTest != nil,
	}
}

// webhookPage shows the settings (GET /settings/event-webhook).
func (s *Server) webhookPage(w http.ResponseWriter, r *http.Request) {
	cur, err := s.currentWebhook(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newWebhookView(cur)
	v.Saved = r.URL.Query().Get("saved") == "1"
	s.render(w, r, http.StatusOK, webhookPage(v))
}

// saveWebhook validates and saves the form (POST /settings/event-webhook).
// The settings package's Validate is the one judge, as for `settings
// import`; the form adds only what a form has: numbers that do not parse,
// and the password confirmation.
func (s *Server) saveWebhook(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.settings == nil {
		http.Error(w, "404 not found: the Event Webhook settings are not available", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	cur, err := s.currentWebhook(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	next, v, generated := s.parseWebhookForm(ctx, r, cur)
	// Every problem shows at once; where the form found one already (a
	// number that did not parse, passwords that differ) its message stays.
	if err := next.Validate(s.allowHTTP); err != nil {
		var fe settings.FieldErrors
		if !errors.As(err, &fe) {
			s.serverError(w, r, err)
			return
		}
		for _, f := range fe.Fields() {
			if _, ok := v.Errs[f]; !ok {
				v.Errs[f] = fieldError(ctx, "err."+f, fe[f])
			}
		}
	}
	if len(v.Errs) > 0 {
		s.render(w, r, http.StatusUnprocessableEntity, webhookPage(v))
		return
	}
	if err := s.settings.SaveEventWebhookSettings(ctx, next); err != nil {
		// The store validates again; its verdict is shown like ours.
		var fe settings.FieldErrors
		if !errors.As(err, &fe) {
			s.serverError(w, r, err)
			return
		}
		for _, f := range fe.Fields() {
			v.Errs[f] = fieldError(ctx, "err."+f, fe[f])
		}
		s.render(w, r, http.StatusUnprocessableEntity, webhookPage(v))
		return
	}
	s.log.Info("console: event webhook settings saved", "user", infoFrom(ctx).user, "settings", next)
	if generated {
		// The one time the new secret is shown, now that it is stored:
		// no redirect, no cache.
		saved := s.newWebhookView(next)
		saved.Saved, saved.NewSecret = true, string(next.SigningSecret)
		s.render(w, r, http.StatusOK, webhookPage(saved))
		return
	}
	http.Redirect(w, r, "/settings/event-webhook?saved=1", http.StatusSeeOther)
}

// fieldError is a settings error in the page language: Validate's English
// message, or the field's rule under key in the catalog.
func fieldError(ctx context.Context, key, english string) string {
	if lang := infoFrom(ctx).lang; lang != "en" {
		if m, ok := catalog[key]; ok && m[lang] != "" {
			return m[lang]
		}
	}
	return english
}

// parseWebhookForm turns the form into settings over cur (readSecret says
// how secret fields are read); generated says the signing secret is a new
// one, to be shown once saved.
func (s *Server) parseWebhookForm(ctx context.Context, r *http.Request, cur settings.EventWebhook) (next settings.EventWebhook, v *webhookView, generated bool) {
	f := r.PostForm
	next = cur
	v = s.newWebhookView(cur)
	v.Raw, v.Errs = map[string]string{}, map[string]string{}
	checked := func(name string) bool { return f.Get(name) != "" }

	next.Endpoint = strings.TrimSpace(f.Get("endpoint"))
	next.Deliveries, next.Bounces, next.Blocks = checked("deliveries"), checked("bounces"), checked("blocks")
	if n, err := strconv.Atoi(f.Get("version")); err == nil {
		next.Version = n
	} else {
		next.Version = 0 // Validate names the range
	}
	next.Timezone = strings.TrimSpace(f.Get("timezone"))
	next.JSON = checked("json")
	next.BasicUser = strings.TrimSpace(f.Get("basic_user"))
	next.APIKeyBearer = checked("api_key_bearer")
	next.CAFile = strings.TrimSpace(f.Get("ca_file"))

	next.BasicPassword, v.Basic = s.readSecret(ctx, f, "webhook", "basic_password", cur.BasicPassword, v.Errs)
	next.APIKey, v.APIKey = s.readSecret(ctx, f, "webhook", "api_key", cur.APIKey, v.Errs)
	next.SigningSecret, v.Signing, generated = s.readSigningSecret(ctx, f, "webhook", cur.SigningSecret, v.Errs)

	number := func(field string, dst *int, lo, hi int) {
		raw := strings.TrimSpace(f.Get(field))
		n, err := strconv.Atoi(raw)
		if err != nil {
			v.Raw[field] = raw
			v.Errs[field] = trf(ctx, "err.number", lo, hi)
			return
		}
		*dst = n
	}
	number("interval", &next.Interval, settings.MinInterval, settings.MaxInterval)
	number("max_events", &next.MaxEvents, settings.MinMaxEvents, settings.MaxMaxEvents)
	number("timeout", &next.Timeout, settings.MinTimeout, settings.MaxTimeout)
	if raw := strings.TrimSpace(f.Get("retry_period")); raw != "" {
		d, err := settings.ParseDuration(raw)
		if err != nil {
			v.Raw["retry_period"] = raw
			v.Errs["retry_period"] = tr(ctx, "err.duration")
		} else {
			next.RetryPeriod = d
		}
	} else {
		v.Raw["retry_period"] = raw
		v.Errs["retry_period"] = tr(ctx, "err.duration")
	}

	// The form shows what was entered; secrets only as their state.
	v.S = next
	return next, v, generated
}

// testWebhook posts a sample event with the saved settings and shows the
// endpoint's answer (POST /settings/event-webhook/test).
func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.settings == nil || s.sendTest == nil {
		http.Error(w, "404 not found: test posts are not available", http.StatusNotFound)
		return
	}
	cur, err := s.webhookSettings(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := s.newWebhookView(settings.Default())
	if cur != nil {
		v = s.newWebhookView(*cur)
	}
	v.Test = &testView{}
	switch {
	case cur == nil:
		v.Test.Err = tr(ctx, "wh.test.noanswer")
	default:
		// The post may wait the whole timeout (up to 999 s), longer than
		// the server's write deadline (one minute, cmd/posthorn): this
		// answer gets a deadline of its own (a recorder in tests has none
		// to move).
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Duration(cur.Timeout)*time.Second + time.Minute))
		res, err := s.sendTest(ctx, *cur)
		v.Test.Result = res
		if err != nil {
			v.Test.Err = err.Error()
		}
	}
	s.render(w, r, http.StatusOK, webhookPage(v))
}
