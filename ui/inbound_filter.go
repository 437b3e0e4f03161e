package ui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/posthorn/posthorn/settings"
)

// filterView is the add/edit form of one inbound filter.
type filterView struct {
	Orig  string // the name of the filter being edited; "" for a new one
	F     settings.InboundFilter
	Raw   map[string]string // number fields as typed, when they did not parse
	Errs  map[string]string // "name", "endpoint", "conditions[0].pattern", ...
	Other string            // problems outside this filter (older invalid settings)
	// The secret fields (secretInput); NewSecret is a generated signing
	// secret, shown once, after it was saved.
	Basic, APIKey, Signing *secretInput
	NewSecret              string
}

func (v *filterView) value(field, setting string) string {
	if raw, ok := v.Raw[field]; ok {
		return raw
	}
	return setting
}

func (v *filterView) advancedOpen() bool {
	for f := range v.Errs {
		if !strings.HasPrefix(f, "conditions") && f != "name" && f != "endpoint" && f != "json" {
			return true
		}
	}
	return false
}

func condErr(v *filterView, i int, field string) string {
	return v.Errs["conditions["+strconv.Itoa(i)+"]."+field]
}

func newFilterView(f settings.InboundFilter, orig string) *filterView {
	return &filterView{
		Orig: orig, F: f, Raw: map[string]string{}, Errs: map[string]string{},
		Basic:   &secretInput{Field: "basic_password", Stored: f.BasicPassword != ""},
		APIKey:  &secretInput{Field: "api_key", Stored: f.APIKey != ""},
		Signing: &secretInput{Field: "signing_secret", Stored: f.SigningSecret != ""},
	}
}

// filterIndex finds a filter by name, without regard to case as names are
// compared; -1 when there is none.
func filterIndex(in settings.Inbound, name string) int {
	return slices.IndexFunc(in.Filters, func(f settings.InboundFilter) bool { return strings.EqualFold(f.Name, name) })
}

// filterPage shows the form (GET /settings/inbound/filter[?name=NAME]).
func (s *Server) filterPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.inboundSettings == nil {
		http.NotFound(w, r)
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		f := settings.NewInboundFilter("", "", settings.Condition{Header: settings.ToHeader})
		s.render(w, r, http.StatusOK, filterPage(newFilterView(f, "")))
		return
	}
	in, err := s.currentInbound(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	i := filterIndex(in, name)
	if i < 0 {
		s.plainError(w, r, http.StatusNotFound, "err.nofilter", name)
		return
	}
	s.render(w, r, http.StatusOK, filterPage(newFilterView(in.Filters[i], in.Filters[i].Name)))
}

// saveFilter handles the form (POST /settings/inbound/filter): "+" adds a
// condition row and shows the form again; save validates the whole
// settings with the filter in place and stores them.
func (s *Server) saveFilter(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.inboundSettings == nil {
		http.NotFound(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	in, err := s.currentInbound(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	orig := r.PostForm.Get("orig")
	idx := -1
	cur := settings.NewInboundFilter("", "")
	if orig != "" {
		if idx = filterIndex(in, orig); idx < 0 {
			s.plainError(w, r, http.StatusConflict, "err.filtergone", orig)
			return
		}
		cur = in.Filters[idx]
	}
	f, v, generated := s.parseFilterForm(ctx, r.PostForm, cur, orig)

	if r.PostForm.Get("action") == "add" {
		// Not validated yet (the new row is empty), but a secret that
		// was not kept must say so.
		v.F.Conditions = append(v.F.Conditions, settings.Condition{})
		v.Errs = secretErrs(v.Errs)
		s.render(w, r, http.StatusOK, filterPage(v))
		return
	}

	next := in
	next.Filters = slices.Clone(in.Filters)
	pos := idx
	if idx < 0 {
		next.Filters = append(next.Filters, f)
		pos = len(next.Filters) - 1
	} else {
		next.Filters[idx] = f
	}
	// Every problem shows at once: with the form's own (numbers that do
	// not parse, passwords that differ) Validate runs without saving.
	var errs settings.InboundErrors
	if len(v.Errs) > 0 {
		if err := next.Validate(s.allowHTTP); err != nil && !errors.As(err, &errs) {
			s.serverError(w, r, err)
			return
		}
	} else {
		errs, err = s.saveInboundSettings(ctx, next)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	prefix := "filters[" + strconv.Itoa(pos) + "]."
	for _, path := range errs.Fields() {
		if field, ok := strings.CutPrefix(path, prefix); ok {
			if _, seen := v.Errs[field]; !seen {
				v.Errs[field] = fieldError(ctx, filterErrKey(field), errs[path])
			}
		} else {
			// Problems of other filters or the domains (settings saved
			// before a rule was added): shown, but not at a field here.
			v.Other = joinErr(v.Other, path+": "+errs[path])
		}
	}
	if len(v.Errs) > 0 || v.Other != "" {
		s.render(w, r, http.StatusUnprocessableEntity, filterPage(v))
		return
	}
	s.log.Info("console: inbound filter saved", "user", infoFrom(ctx).user, "filter", f)
	if generated {
		// The one time the new secret is shown, now that it is stored.
		saved := newFilterView(f, f.Name)
		saved.NewSecret = string(f.SigningSecret)
		s.render(w, r, http.StatusOK, filterPage(saved))
		return
	}
	http.Redirect(w, r, "/settings/inbound?done=saved", http.StatusSeeOther)
}

// filterErrKey maps a filter field path to the catalog's Japanese rule.
func filterErrKey(field string) string {
	if i := strings.LastIndex(field, "."); i >= 0 {
		return "cond." + field[i+1:]
	}
	return "filter." + field
}

// parseFilterForm turns the form into a filter over cur. Condition rows
// left entirely empty, and rows marked for removal, are dropped; secrets
// are read as readSecret says, and generated says the signing secret is a
// new one, to be shown once saved.
func (s *Server) parseFilterForm(ctx context.Context, form url.Values, cur settings.InboundFilter, orig string) (f settings.InboundFilter, v *filterView, generated bool) {
	f = cur
	v = newFilterView(cur, orig)
	checked := func(name string) bool { return form.Get(name) != "" }
	f.Name = strings.TrimSpace(form.Get("name"))
	f.Endpoint = strings.TrimSpace(form.Get("endpoint"))
	f.JSON = checked("json")
	f.BasicUser = strings.TrimSpace(form.Get("basic_user"))
	f.APIKeyBearer = checked("api_key_bearer")
	f.CAFile = strings.TrimSpace(form.Get("ca_file"))
	f.Disabled = checked("disabled")

	headers, patterns := form["header"], form["pattern"]
	removed := map[string]bool{}
	for _, i := range form["remove"] {
		removed[i] = true
	}
	f.Conditions = nil
	for i := range min(len(headers), len(patterns)) {
		h, p := strings.TrimSpace(headers[i]), patterns[i]
		if removed[strconv.Itoa(i)] || (h == "" && p == "") {
			continue
		}
		f.Conditions = append(f.Conditions, settings.Condition{Header: h, Pattern: p})
	}

	f.BasicPassword, v.Basic = s.readSecret(ctx, form, "filter", "basic_password", cur.BasicPassword, v.Errs)
	f.APIKey, v.APIKey = s.readSecret(ctx, form, "filter", "api_key", cur.APIKey, v.Errs)
	f.SigningSecret, v.Signing, generated = s.readSigningSecret(ctx, form, "filter", cur.SigningSecret, v.Errs)

	number := func(field string, dst *int, lo, hi int) {
		raw := strings.TrimSpace(form.Get(field))
		n, err := strconv.Atoi(raw)
		if err != nil {
			v.Raw[field] = raw
			v.Errs[field] = trf(ctx, "err.number", lo, hi)
			return
		}
		*dst = n
	}
	number("retry_interval", &f.RetryInterval, settings.MinRetryInterval, settings.MaxRetryInterval)
	number("timeout", &f.Timeout, settings.MinTimeout, settings.MaxTimeout)
	if d, err := settings.ParseDuration(strings.TrimSpace(form.Get("retry_period"))); err == nil {
		f.RetryPeriod = d
	} else {
		v.Raw["retry_period"] = form.Get("retry_period")
		v.Errs["retry_period"] = tr(ctx, "err.induration")
	}

	v.F = f
	return f, v, generated
}

// deleteFilter removes a filter after checking the logged-in user's
// password (POST /settings/inbound/filter/delete). Wrong passwords count
// as failed logins, with the same limits.
func (s *Server) deleteFilter(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.inboundSettings == nil {
		http.NotFound(w, r)
		return
	}
	name := r.PostFormValue("name")
	in, err := s.currentInbound(ctx)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	idx := filterIndex(in, name)
	if idx < 0 {
		http.Redirect(w, r, "/settings/inbound?done=deleted", http.StatusSeeOther)
		return
	}
	user := infoFrom(ctx).user
	res, err := s.checkLogin(ctx, r.RemoteAddr, user, r.PostFormValue("password"))
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if res != loginOK {
		v := s.newInboundSettingsView(ctx, in)
		v.DeleteName, v.DeleteErr = in.Filters[idx].Name, "in.delete.wrong"
		status := http.StatusUnauthorized
		if res == loginLimited {
			v.DeleteErr, status = "login.limited", http.StatusTooManyRequests
		}
		s.log.Warn("console: filter not deleted: wrong password", "user", user, "filter", name, "addr", r.RemoteAddr)
		s.render(w, r, status, inboundSettingsPage(v))
		return
	}
	next := in
	next.Filters = slices.Delete(slices.Clone(in.Filters), idx, idx+1)
	errs, err := s.saveInboundSettings(ctx, next)
	if err == nil && errs != nil {
		err = errs
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("console: inbound filter deleted", "user", user, "filter", in.Filters[idx].Name)
	http.Redirect(w, r, "/settings/inbound?done=deleted", http.StatusSeeOther)
}
