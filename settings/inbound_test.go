package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// validInbound is a complete, valid configuration the cases below change
// one thing at a time.
func validInbound() Inbound {
	orders := NewInboundFilter("orders", "https://hooks.example.com/orders",
		Condition{Header: "To", Pattern: `^orders@shop\.example$`},
		Condition{Header: "Subject", Pattern: `(?i)order`})
	orders.BasicUser, orders.BasicPassword = "mailer", password
	orders.APIKey = apiKey
	orders.SigningSecret = signing
	support := NewInboundFilter("support", "https://hooks.example.com/support",
		Condition{Header: "to", Pattern: `^support@`})
	support.JSON = true
	return Inbound{
		Domains:   []string{"shop.example", "xn--bcher-kva.example"},
		LogDenied: true,
		Filters:   []InboundFilter{orders, support},
	}
}

func TestInboundValidate(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*Inbound)
		allowHTTP bool
		want      InboundErrors // nil: valid
	}{
		{"valid", func(*Inbound) {}, false, nil},
		{"zero value", func(s *Inbound) { *s = Inbound{} }, false, nil},
		{"upper-case domain", func(s *Inbound) { s.Domains[0] = "Shop.Example" }, false, nil},
		{"ranges at their low ends", func(s *Inbound) {
			f := &s.Filters[0]
			f.RetryInterval, f.RetryPeriod, f.Timeout = 10, Duration(24*time.Hour), 1
		}, false, nil},
		{"ranges at their high ends", func(s *Inbound) {
			f := &s.Filters[0]
			f.RetryInterval, f.RetryPeriod, f.Timeout = 600, Duration(240*time.Hour), 999
		}, false, nil},
		{"http allowed in development", func(s *Inbound) { s.Filters[1].Endpoint = "http://127.0.0.1:8080/in" }, true, nil},
		{"disabled filter is still validated", func(s *Inbound) { s.Filters[1].Disabled, s.Filters[1].Timeout = true, 0 }, false,
			InboundErrors{"filters[1].timeout": "must be between 1 and 999 seconds, got 0"}},

		{"empty domain", func(s *Inbound) { s.Domains[1] = "" }, false,
			InboundErrors{"domains[1]": "empty domain"}},
		{"duplicate domain", func(s *Inbound) { s.Domains = append(s.Domains, "SHOP.example") }, false,
			InboundErrors{"domains[2]": `"SHOP.example" repeats domains[0]`}},
		{"address instead of domain", func(s *Inbound) { s.Domains[0] = "info@shop.example" }, false,
			InboundErrors{"domains[0]": `"info@shop.example": a domain, not an address`}},
		{"unicode domain", func(s *Inbound) { s.Domains[1] = "Bücher.example" }, false, nil},
		{"unicode domain repeating its ASCII form", func(s *Inbound) { s.Domains = append(s.Domains, "bücher.example") }, false,
			InboundErrors{"domains[2]": `"bücher.example" repeats domains[1]`}},
		{"invalid unicode domain", func(s *Inbound) { s.Domains[1] = "bü cher.example" }, false,
			InboundErrors{"domains[1]": `"bü cher.example" is not a valid internationalized domain name: idna: disallowed rune U+0020`}},
		{"trailing dot", func(s *Inbound) { s.Domains[0] = "shop.example." }, false,
			InboundErrors{"domains[0]": `"shop.example.": write it without the trailing dot`}},
		{"underscore", func(s *Inbound) { s.Domains[0] = "my_shop.example" }, false,
			InboundErrors{"domains[0]": `"my_shop.example" is not a domain name: letters, digits, hyphens and dots only`}},
		{"empty label", func(s *Inbound) { s.Domains[0] = "shop..example" }, false,
			InboundErrors{"domains[0]": `"shop..example" is not a domain name: labels are 1 to 63 characters`}},
		{"hyphen at label end", func(s *Inbound) { s.Domains[0] = "shop-.example" }, false,
			InboundErrors{"domains[0]": `"shop-.example" is not a domain name: a label cannot start or end with a hyphen`}},

		{"no name", func(s *Inbound) { s.Filters[0].Name = " " }, false,
			InboundErrors{"filters[0].name": "required"}},
		{"duplicate name differing in case", func(s *Inbound) { s.Filters[1].Name = "Orders" }, false,
			InboundErrors{"filters[1].name": `"Orders" is already the name of filters[0]: names must be unique`}},
		{"name with a newline", func(s *Inbound) { s.Filters[0].Name = "a\nb" }, false,
			InboundErrors{"filters[0].name": "must not contain control characters or leading or trailing spaces"}},
		{"name too long", func(s *Inbound) { s.Filters[0].Name = strings.Repeat("n", 101) }, false,
			InboundErrors{"filters[0].name": "must be at most 100 bytes, got 101"}},
		{"no endpoint", func(s *Inbound) { s.Filters[0].Endpoint = "" }, false,
			InboundErrors{"filters[0].endpoint": "required: an https:// URL"}},
		{"http endpoint", func(s *Inbound) { s.Filters[0].Endpoint = "http://hooks.example.com/" }, false,
			InboundErrors{"filters[0].endpoint": "must start with https:// (plain http:// needs allow_insecure_http in the daemon config)"}},
		{"basic user without password", func(s *Inbound) { s.Filters[0].BasicPassword = "" }, false,
			InboundErrors{"filters[0].basic_password": "required when basic_user is set"}},
		{"basic and bearer", func(s *Inbound) { s.Filters[0].APIKeyBearer = true }, false,
			InboundErrors{"filters[0].api_key_bearer": "cannot be combined with Basic authentication (basic_user): choose one"}},
		{"bad signing secret", func(s *Inbound) { s.Filters[0].SigningSecret = "secret" }, false,
			InboundErrors{"filters[0].signing_secret": "must be whsec_ followed by the base64 of 24 to 64 random bytes"}},
		{"relative ca file", func(s *Inbound) { s.Filters[1].CAFile = "ca.pem" }, false,
			InboundErrors{"filters[1].ca_file": `must be an absolute path, got "ca.pem"`}},
		{"no conditions", func(s *Inbound) { s.Filters[1].Conditions = nil }, false,
			InboundErrors{"filters[1].conditions": "at least one condition is required"}},
		{"invalid regular expression", func(s *Inbound) { s.Filters[0].Conditions[1].Pattern = "(order" }, false,
			InboundErrors{"filters[0].conditions[1].pattern": "not a valid regular expression (RE2 syntax): error parsing regexp: missing closing ): `(order`"}},
		{"back-reference is not RE2", func(s *Inbound) { s.Filters[0].Conditions[1].Pattern = `(a)\1` }, false,
			InboundErrors{"filters[0].conditions[1].pattern": "not a valid regular expression (RE2 syntax): error parsing regexp: invalid escape sequence: `\\1`"}},
		{"empty pattern", func(s *Inbound) { s.Filters[0].Conditions[0].Pattern = "" }, false,
			InboundErrors{"filters[0].conditions[0].pattern": "required: a regular expression (RE2 syntax); use ^$ for an absent or empty header"}},
		{"header with a colon", func(s *Inbound) { s.Filters[0].Conditions[1].Header = "Subject:" }, false,
			InboundErrors{"filters[0].conditions[1].header": `must be a header name: printable ASCII without spaces or colons (RFC 5322 §2.2), got "Subject:"`}},
		{"retry interval 9", func(s *Inbound) { s.Filters[0].RetryInterval = 9 }, false,
			InboundErrors{"filters[0].retry_interval": "must be between 10 and 600 seconds, got 9"}},
		{"retry interval 601", func(s *Inbound) { s.Filters[0].RetryInterval = 601 }, false,
			InboundErrors{"filters[0].retry_interval": "must be between 10 and 600 seconds, got 601"}},
		{"retry period 23h", func(s *Inbound) { s.Filters[0].RetryPeriod = Duration(23 * time.Hour) }, false,
			InboundErrors{"filters[0].retry_period": "must be between 1d and 10d, got 23h"}},
		{"retry period 11d", func(s *Inbound) { s.Filters[0].RetryPeriod = Duration(11 * 24 * time.Hour) }, false,
			InboundErrors{"filters[0].retry_period": "must be between 1d and 10d, got 11d"}},
		{"timeout 1000", func(s *Inbound) { s.Filters[0].Timeout = 1000 }, false,
			InboundErrors{"filters[0].timeout": "must be between 1 and 999 seconds, got 1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validInbound()
			tt.change(&s)
			err := s.Validate(tt.allowHTTP)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var got InboundErrors
			if !errors.As(err, &got) {
				t.Fatalf("Validate = %v (%T), want InboundErrors", err, err)
			}
			if fmt.Sprint(map[string]string(got)) != fmt.Sprint(map[string]string(tt.want)) {
				t.Errorf("Validate =\n  %v\nwant\n  %v", got, tt.want)
			}
			for _, secret := range []string{password, apiKey, signing} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals a secret: %v", err)
				}
			}
		})
	}
}

// TestInboundErrorsOrder: problems read top to bottom like the form, with
// filters[10] after filters[2].
func TestInboundErrorsOrder(t *testing.T) {
	s := validInbound()
	for len(s.Filters) < 11 {
		f := s.Filters[1]
		f.Name = fmt.Sprint("f", len(s.Filters))
		s.Filters = append(s.Filters, f)
	}
	s.Filters[10].Timeout = 0
	s.Filters[2].Conditions = append(s.Filters[2].Conditions, Condition{Header: "X", Pattern: "("})
	s.Filters[2].Endpoint = ""
	s.Filters[2].RetryInterval = 0
	s.Domains = append(s.Domains, "")
	err := s.Validate(false)
	want := "invalid inbound settings: domains[2]: empty domain; filters[2].endpoint: required: an https:// URL; " +
		"filters[2].conditions[1].pattern: not a valid regular expression (RE2 syntax): error parsing regexp: missing closing ): `(`; " +
		"filters[2].retry_interval: must be between 10 and 600 seconds, got 0; " +
		"filters[10].timeout: must be between 1 and 999 seconds, got 0"
	if err == nil || err.Error() != want {
		t.Errorf("Validate =\n  %v\nwant\n  %s", err, want)
	}
}

func TestInboundTooMany(t *testing.T) {
	s := Inbound{Domains: make([]string, MaxDomains+1)}
	for i := range s.Domains {
		s.Domains[i] = fmt.Sprintf("d%d.example", i)
	}
	f := validInbound().Filters[1]
	f.Conditions = make([]Condition, MaxConditions+1)
	for i := range f.Conditions {
		f.Conditions[i] = Condition{Header: "Subject", Pattern: "x"}
	}
	s.Filters = []InboundFilter{f}
	got, ok := s.Validate(false).(InboundErrors)
	if !ok || got["domains"] != "at most 10000 domains, got 10001" || got["filters[0].conditions"] != "at most 50 conditions, got 51" {
		t.Errorf("Validate = %v", got)
	}
}

func TestNormalized(t *testing.T) {
	s := Inbound{Domains: []string{" Shop.Example. ", "a.example", "Bücher.Example"}}
	n := s.Normalized()
	if fmt.Sprint(n.Domains) != "[shop.example a.example xn--bcher-kva.example]" {
		t.Errorf("Normalized domains = %q", n.Domains)
	}
	if s.Domains[0] != " Shop.Example. " {
		t.Error("Normalized changed its receiver")
	}
	if !n.AllowsDomain("SHOP.example") || n.AllowsDomain("sub.shop.example") {
		t.Error("AllowsDomain compares whole names without regard to case")
	}
	if !n.AllowsDomain("BÜCHER.example") || !n.AllowsDomain("xn--bcher-kva.example") {
		t.Error("AllowsDomain does not match an internationalized name in both forms")
	}
}

func TestInboundFilterLookup(t *testing.T) {
	s := validInbound()
	if f, ok := s.Filter("SUPPORT"); !ok || f.Endpoint != "https://hooks.example.com/support" {
		t.Errorf("Filter(SUPPORT) = %v %v", f, ok)
	}
	if _, ok := s.Filter("nope"); ok {
		t.Error("Filter(nope) found something")
	}
	if !s.Filters[1].Conditions[0].IsTo() || s.Filters[0].Conditions[1].IsTo() {
		t.Error("IsTo: the To condition is the envelope recipient, whatever the case of its name")
	}
	if s.Filters[0].RetryIntervalDuration() != time.Minute || s.Filters[0].TimeoutDuration() != 30*time.Second {
		t.Error("durations of the default filter")
	}
}

// TestInboundNoSecretsInLogs: fmt verbs and slog show that a secret is set,
// never its value.
func TestInboundNoSecretsInLogs(t *testing.T) {
	s := validInbound()
	s.Filters[1].APIKey, s.Filters[1].APIKeyBearer = apiKey, true
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("settings", "inbound", s, "filter", s.Filters[0])
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v", s, s, s), fmt.Sprintf("%#v", s.Filters[0]), buf.String()} {
		for _, secret := range []string{password, apiKey, signing} {
			if strings.Contains(out, secret) {
				t.Errorf("output reveals a secret: %s", out)
			}
		}
	}
	want := `inbound filter "orders" https://hooks.example.com/orders multipart if To=~"^orders@shop\\.example$" && Subject=~"(?i)order" retry_interval 60s retry_period 1d timeout 30s basic_user "mailer" basic_password [redacted] api_key [redacted] in body signing_secret [redacted]`
	if got := s.Filters[0].String(); got != want {
		t.Errorf("String =\n  %s\nwant\n  %s", got, want)
	}
}

// TestInboundJSONRoundTrip: the field names are the YAML names, and
// a secret survives an export (reflection-based encoders see its value).
func TestInboundJSONRoundTrip(t *testing.T) {
	s := validInbound()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"domains"`, `"log_denied"`, `"filters"`, `"conditions"`, `"header"`, `"pattern"`,
		`"retry_interval":60`, `"retry_period":"1d"`, `"api_key_bearer"`, `"disabled"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	var back Inbound
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%s|%s", back.Filters[0].BasicPassword, string(back.Filters[0].BasicPassword)) != "[redacted]|"+password {
		t.Error("secret lost in the round trip")
	}
	if back.String() != s.String() {
		t.Errorf("round trip changed the settings:\n%s\n%s", back, s)
	}
}

// TestDomainErrors: each domain rule has its code (what the console
// translates), and Validate's message for the entry is the error's text.
func TestDomainErrors(t *testing.T) {
	in := Inbound{Domains: []string{"shop.example", "info@shop.example", "SHOP.example", "shop.example.", "my_shop.example",
		"shop..example", "shop-.example", "bü cher.example", strings.Repeat("a", 254), "", "ok.example"}}
	want := map[int]DomainCode{1: DomainAddress, 2: DomainRepeat, 3: DomainDot, 4: DomainChars, 5: DomainLabel, 6: DomainHyphen,
		7: DomainIDNA, 8: DomainLong, 9: DomainEmpty}
	got := in.DomainErrors()
	if len(got) != len(want) {
		t.Errorf("%d domain errors, want %d: %v", len(got), len(want), got)
	}
	for i, code := range want {
		if got[i].Code != code {
			t.Errorf("domains[%d] %q: code %q, want %q", i, in.Domains[i], got[i].Code, code)
		}
	}
	if got[2].Repeats != 0 {
		t.Errorf("the repeat names domains[%d], want domains[0]", got[2].Repeats)
	}
	var ie InboundErrors
	if err := in.Validate(false); !errors.As(err, &ie) {
		t.Fatalf("Validate: %v", err)
	}
	for i, de := range got {
		if msg := ie[fmt.Sprintf("domains[%d]", i)]; msg != de.Error() {
			t.Errorf("domains[%d]: Validate says %q, the error %q", i, msg, de.Error())
		}
	}
}
