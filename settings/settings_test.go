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
	_ "time/tzdata" // zone names resolve even where the system lacks tzdata
)

const (
	password = "pa55-w0rd-SECRET"
	apiKey   = "key-SECRET-0123456789"
	// 32 bytes of base64: a valid Standard Webhooks secret.
	signing = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// valid is a complete, valid configuration the cases below change one
// thing at a time.
func valid() EventWebhook {
	s := Default()
	s.Endpoint = "https://hooks.example.com/posthorn?channel=mail"
	s.Deliveries, s.Bounces, s.Blocks = true, true, true
	s.Timezone = "Asia/Tokyo"
	s.BasicUser, s.BasicPassword = "mailer", password
	s.APIKey = apiKey
	s.SigningSecret = signing
	return s
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		change    func(*EventWebhook)
		allowHTTP bool
		want      FieldErrors // nil: valid
	}{
		{"valid", func(*EventWebhook) {}, false, nil},
		{"defaults with an endpoint", func(s *EventWebhook) { *s = Default(); s.Endpoint = "https://h.example/" }, false, nil},
		{"version 3 json", func(s *EventWebhook) { s.Version, s.JSON = 3, true }, false, nil},
		{"version 2 json", func(s *EventWebhook) { s.JSON = true }, false, nil},
		{"bearer without basic", func(s *EventWebhook) { s.BasicUser, s.BasicPassword, s.APIKeyBearer = "", "", true }, false, nil},
		{"basic user without password", func(s *EventWebhook) { s.BasicPassword = "" }, false,
			FieldErrors{"basic_password": "required when basic_user is set"}},
		{"ranges at their low ends", func(s *EventWebhook) {
			s.Interval, s.MaxEvents, s.Timeout, s.RetryPeriod = 1, 100, 1, Duration(time.Hour)
		}, false, nil},
		{"ranges at their high ends", func(s *EventWebhook) {
			s.Interval, s.MaxEvents, s.Timeout, s.RetryPeriod = 600, 10000, 999, Duration(240*time.Hour)
		}, false, nil},
		{"unpadded signing secret", func(s *EventWebhook) { s.SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, false, nil},
		{"ca file", func(s *EventWebhook) { s.CAFile = "/etc/posthorn/ca.pem" }, false, nil},
		{"http allowed", func(s *EventWebhook) { s.Endpoint = "http://127.0.0.1:8080/hook" }, true, nil},

		{"no endpoint", func(s *EventWebhook) { s.Endpoint = "" }, false,
			FieldErrors{"endpoint": "required when deliveries, bounces or blocks is on: an https:// URL"}},
		{"no endpoint, one event type", func(s *EventWebhook) { *s = Default(); s.Blocks = true }, true,
			FieldErrors{"endpoint": "required when deliveries, bounces or blocks is on: an https:// or http:// URL"}},
		// A new installation's settings are valid: the webhook is off.
		{"defaults: off", func(s *EventWebhook) { *s = Default() }, false, nil},
		{"http refused", func(s *EventWebhook) { s.Endpoint = "http://hooks.example.com/" }, false,
			FieldErrors{"endpoint": "must start with https:// (plain http:// needs allow_insecure_http in the daemon config)"}},
		{"ftp refused even in development", func(s *EventWebhook) { s.Endpoint = "ftp://hooks.example.com/" }, true,
			FieldErrors{"endpoint": `must start with https://, got scheme "ftp"`}},
		{"no scheme", func(s *EventWebhook) { s.Endpoint = "hooks.example.com/x" }, false,
			FieldErrors{"endpoint": `must start with https://, got scheme ""`}},
		{"credentials in the URL", func(s *EventWebhook) { s.Endpoint = "https://u:" + password + "@hooks.example.com/" }, false,
			FieldErrors{"endpoint": "must not contain a user name or password: use basic_user and basic_password"}},
		{"no host", func(s *EventWebhook) { s.Endpoint = "https:///path" }, false,
			FieldErrors{"endpoint": "has no host name: want an https:// URL"}},
		{"space in URL", func(s *EventWebhook) { s.Endpoint = "https://hooks.example.com/a b" }, false,
			FieldErrors{"endpoint": "not a valid URL: want an https:// URL"}},
		{"bad URL", func(s *EventWebhook) { s.Endpoint = "https://[::1" }, false,
			FieldErrors{"endpoint": "not a valid URL: want an https:// URL"}},
		{"URL too long", func(s *EventWebhook) { s.Endpoint = "https://h.example/" + strings.Repeat("a", 2048) }, false,
			FieldErrors{"endpoint": "must be at most 2048 characters, got 2066"}},

		{"version 0", func(s *EventWebhook) { s.Version = 0 }, false,
			FieldErrors{"version": "must be between 1 and 3, got 0"}},
		{"version 4", func(s *EventWebhook) { s.Version, s.JSON = 4, true }, false,
			FieldErrors{"version": "must be between 1 and 3, got 4"}},
		{"no time zone", func(s *EventWebhook) { s.Timezone = "" }, false,
			FieldErrors{"timezone": "required: an IANA zone name such as Asia/Tokyo, or Local for the server's zone"}},
		{"unknown time zone", func(s *EventWebhook) { s.Timezone = "Mars/Olympus" }, false,
			FieldErrors{"timezone": `unknown time zone "Mars/Olympus": want an IANA zone name such as Asia/Tokyo, or Local`}},
		{"json with version 1", func(s *EventWebhook) { s.Version, s.JSON, s.Blocks = 1, true, false }, false,
			FieldErrors{"json": "needs version 2 or 3, got version 1"}},
		{"version 3 as a form", func(s *EventWebhook) { s.Version = 3 }, false,
			FieldErrors{"json": "must be true with version 3, which is JSON only"}},
		{"blocks with version 1", func(s *EventWebhook) { s.Version = 1 }, false,
			FieldErrors{"blocks": "needs version 2 or 3, got version 1 (it has no blocks records)"}},

		{"basic and bearer together", func(s *EventWebhook) { s.APIKeyBearer = true }, false,
			FieldErrors{"api_key_bearer": "cannot be combined with Basic authentication (basic_user): choose one"}},
		{"bearer without a key", func(s *EventWebhook) { s.BasicUser, s.BasicPassword, s.APIKey, s.APIKeyBearer = "", "", "", true }, false,
			FieldErrors{"api_key": "required when api_key_bearer is set"}},
		{"bearer key with a space", func(s *EventWebhook) {
			s.BasicUser, s.BasicPassword, s.APIKey, s.APIKeyBearer = "", "", "a "+apiKey, true
		}, false,
			FieldErrors{"api_key": "must be printable ASCII without spaces to be sent as a Bearer token"}},
		{"body key with a newline", func(s *EventWebhook) { s.APIKey = apiKey + "\n" }, false,
			FieldErrors{"api_key": "must not contain control characters"}},
		{"password without user", func(s *EventWebhook) { s.BasicUser = "" }, false,
			FieldErrors{"basic_user": "required when basic_password is set"}},
		{"colon in user", func(s *EventWebhook) { s.BasicUser = "a:b" }, false,
			FieldErrors{"basic_user": "must not contain a colon (RFC 7617)"}},
		{"control in password", func(s *EventWebhook) { s.BasicPassword = password + "\r\nX-Injected: 1" }, false,
			FieldErrors{"basic_password": "must not contain control characters (RFC 7617)"}},

		{"interval 0", func(s *EventWebhook) { s.Interval = 0 }, false,
			FieldErrors{"interval": "must be between 1 and 600 seconds, got 0"}},
		{"interval 601", func(s *EventWebhook) { s.Interval = 601 }, false,
			FieldErrors{"interval": "must be between 1 and 600 seconds, got 601"}},
		{"max events 99", func(s *EventWebhook) { s.MaxEvents = 99 }, false,
			FieldErrors{"max_events": "must be between 100 and 10000, got 99"}},
		{"max events 10001", func(s *EventWebhook) { s.MaxEvents = 10001 }, false,
			FieldErrors{"max_events": "must be between 100 and 10000, got 10001"}},
		{"timeout 0", func(s *EventWebhook) { s.Timeout = 0 }, false,
			FieldErrors{"timeout": "must be between 1 and 999 seconds, got 0"}},
		{"timeout 1000", func(s *EventWebhook) { s.Timeout = 1000 }, false,
			FieldErrors{"timeout": "must be between 1 and 999 seconds, got 1000"}},
		{"retry period 59m", func(s *EventWebhook) { s.RetryPeriod = Duration(59 * time.Minute) }, false,
			FieldErrors{"retry_period": "must be between 1h and 10d, got 59m0s"}},
		{"retry period 241h", func(s *EventWebhook) { s.RetryPeriod = Duration(241 * time.Hour) }, false,
			FieldErrors{"retry_period": "must be between 1h and 10d, got 241h"}},
		{"signing secret without prefix", func(s *EventWebhook) { s.SigningSecret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" }, false,
			FieldErrors{"signing_secret": "must be whsec_ followed by the base64 of 24 to 64 random bytes"}},
		{"signing secret too short", func(s *EventWebhook) { s.SigningSecret = "whsec_c2hvcnQ=" }, false,
			FieldErrors{"signing_secret": "must be whsec_ followed by the base64 of 24 to 64 random bytes"}},
		{"signing secret not base64", func(s *EventWebhook) { s.SigningSecret = "whsec_not base64!" }, false,
			FieldErrors{"signing_secret": "must be whsec_ followed by the base64 of 24 to 64 random bytes"}},
		{"relative ca file", func(s *EventWebhook) { s.CAFile = "ca.pem" }, false,
			FieldErrors{"ca_file": `must be an absolute path, got "ca.pem"`}},

		{"all errors at once", func(s *EventWebhook) { *s = EventWebhook{Deliveries: true} }, false, FieldErrors{
			"endpoint":     "required when deliveries, bounces or blocks is on: an https:// URL",
			"version":      "must be between 1 and 3, got 0",
			"timezone":     "required: an IANA zone name such as Asia/Tokyo, or Local for the server's zone",
			"interval":     "must be between 1 and 600 seconds, got 0",
			"max_events":   "must be between 100 and 10000, got 0",
			"timeout":      "must be between 1 and 999 seconds, got 0",
			"retry_period": "must be between 1h and 10d, got 0s",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.change(&s)
			err := s.Validate(tc.allowHTTP)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var got FieldErrors
			if !errors.As(err, &got) {
				t.Fatalf("Validate = %v (%T), want FieldErrors", err, err)
			}
			if fmt.Sprint(map[string]string(got)) != fmt.Sprint(map[string]string(tc.want)) {
				t.Errorf("Validate =\n  %v\nwant\n  %v", map[string]string(got), map[string]string(tc.want))
			}
			for _, secret := range []string{password, apiKey, signing} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals a secret: %v", err)
				}
			}
		})
	}
}

func TestFieldErrorsOrder(t *testing.T) {
	fe := FieldErrors{"timeout": "t", "zzz": "z", "endpoint": "e", "aaa": "a", "interval": "i"}
	want := "invalid event webhook settings: endpoint: e; interval: i; timeout: t; aaa: a; zzz: z"
	if got := fe.Error(); got != want {
		t.Errorf("Error() = %q\nwant %q", got, want)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s := valid()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("settings", "s", s, "key", s.APIKey)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("settings", "s", s, "key", s.APIKey)
	outputs := map[string]string{
		"String":  s.String(),
		"%v":      fmt.Sprintf("%v", s),
		"%+v":     fmt.Sprintf("%+v", s),
		"%#v":     fmt.Sprintf("%#v", s),
		"%s key":  fmt.Sprintf("%s %v %q %x", s.APIKey, s.BasicPassword, s.SigningSecret, s.APIKey),
		"%#v key": fmt.Sprintf("%#v", s.APIKey),
		"slog":    logged.String(),
	}
	for name, out := range outputs {
		for _, secret := range []string{password, apiKey, signing, "MDEy"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s reveals a secret: %s", name, out)
			}
		}
	}
	want := `event webhook https://hooks.example.com/posthorn (query and credentials hidden) version 2 form (deliveries,bounces,blocks) timezone Asia/Tokyo interval 1s max_events 100 timeout 30s retry_period 1d basic_user "mailer" basic_password [redacted] api_key [redacted] in body signing_secret [redacted]`
	if got := s.String(); got != want {
		t.Errorf("String() =\n  %s\nwant\n  %s", got, want)
	}
	// Encoders that work by reflection must keep the values: export needs them.
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(j, []byte(apiKey)) || !bytes.Contains(j, []byte(`"retry_period":"1d"`)) {
		t.Errorf("json.Marshal lost a value: %s", j)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string // String() of the result
		err  bool
	}{
		{in: "1d", want: 24 * time.Hour, text: "1d"},
		{in: "10d", want: 240 * time.Hour, text: "10d"},
		{in: "36h", want: 36 * time.Hour, text: "36h"},
		{in: "1d12h", want: 36 * time.Hour, text: "36h"},
		{in: "90m", want: 90 * time.Minute, text: "1h30m0s"},
		{in: "86400", want: 24 * time.Hour, text: "1d"},
		{in: " 2h ", want: 2 * time.Hour, text: "2h"},
		{in: "0", want: 0, text: "0s"},
		{in: "", err: true},
		{in: "-1h", err: true},
		{in: "-1", err: true},
		{in: "+1d", err: true},
		{in: "1dd", err: true},
		{in: "d", err: true},
		{in: "1d-1h", err: true},
		{in: "99999999999999999999d", err: true},
		{in: "1w", err: true},
	}
	for _, tc := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tc.in))
		if tc.err {
			if err == nil {
				t.Errorf("UnmarshalText(%q) = %v, want an error", tc.in, time.Duration(d))
			}
			continue
		}
		if err != nil || time.Duration(d) != tc.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tc.in, time.Duration(d), err, tc.want)
			continue
		}
		if got := d.String(); got != tc.text {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.want, got, tc.text)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
			t.Errorf("round trip of %q: %v, %v", d.String(), time.Duration(back), err)
		}
	}
}

func TestPostsAndLocation(t *testing.T) {
	s := valid()
	s.Bounces = false
	for fam, want := range map[string]bool{Deliveries: true, Bounces: false, Blocks: true, "other": false} {
		if got := s.Posts(fam); got != want {
			t.Errorf("Posts(%q) = %v, want %v", fam, got, want)
		}
	}
	s.Version = 1
	if s.Posts(Blocks) {
		t.Error("Posts(blocks) with version 1 = true: version 1 has no blocks")
	}
	if loc, err := s.Location(); err != nil || loc.String() != "Asia/Tokyo" {
		t.Errorf("Location() = %v, %v", loc, err)
	}
	s.Timezone = ""
	if _, err := s.Location(); err == nil {
		t.Error("Location() with no zone: want an error, not UTC")
	}
	if d := Default(); d.IntervalDuration() != time.Second || d.TimeoutDuration() != 30*time.Second {
		t.Errorf("Default durations: %v %v", d.IntervalDuration(), d.TimeoutDuration())
	}
}

func TestNewSigningSecret(t *testing.T) {
	a, b := NewSigningSecret(), NewSigningSecret()
	if a == b {
		t.Error("two secrets are equal")
	}
	key, err := a.SigningKey()
	if err != nil || len(key) != 32 {
		t.Errorf("SigningKey of a new secret: %d bytes, %v", len(key), err)
	}
}
