package settings

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// FieldErrors maps a field's YAML name to what is wrong with it. The
// message names the allowed range, and never holds a secret's value.
type FieldErrors map[string]string

// fieldOrder is the order the console shows the fields in (WIRE.md §4), so
// that Error reads top to bottom like the form.
var fieldOrder = []string{
	"endpoint", "bounces", "deliveries", "blocks", "version", "timezone", "json",
	"basic_user", "basic_password", "api_key", "api_key_bearer",
	"interval", "max_events", "timeout", "retry_period", "signing_secret", "ca_file",
}

// Fields returns the names of the fields in error, in form order.
func (fe FieldErrors) Fields() []string {
	var out []string
	for _, f := range fieldOrder {
		if _, ok := fe[f]; ok {
			out = append(out, f)
		}
	}
	var rest []string
	for f := range fe {
		if !slices.Contains(fieldOrder, f) {
			rest = append(rest, f)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// Error lists every field error as "field: message", in form order.
func (fe FieldErrors) Error() string {
	parts := make([]string, 0, len(fe))
	for _, f := range fe.Fields() {
		parts = append(parts, f+": "+fe[f])
	}
	return "invalid event webhook settings: " + strings.Join(parts, "; ")
}

// add keeps the first message per field: the first rule broken is the one
// to fix first.
func (fe FieldErrors) add(field, format string, args ...any) {
	if _, ok := fe[field]; !ok {
		fe[field] = fmt.Sprintf(format, args...)
	}
}

// Validate checks every field against WIRE.md §4 and returns all the
// problems at once as FieldErrors, or nil. An empty endpoint is valid only
// while no event type is chosen: it means the Event Webhook is off. allowHTTP is the daemon config's
// development switch (allow_insecure_http) that lets the endpoint be a
// plain http:// URL.
func (s EventWebhook) Validate(allowHTTP bool) error {
	fe := FieldErrors{}
	s.validateEndpoint(fe, allowHTTP)

	if s.Version < MinVersion || s.Version > MaxVersion {
		fe.add("version", "must be between %d and %d, got %d", MinVersion, MaxVersion, s.Version)
	}
	switch {
	case s.Timezone == "":
		fe.add("timezone", "required: an IANA zone name such as Asia/Tokyo, or %s for the server's zone", LocalZone)
	default:
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			fe.add("timezone", "unknown time zone %q: want an IANA zone name such as Asia/Tokyo, or %s", s.Timezone, LocalZone)
		}
	}
	// WIRE.md §2: JSON is a version-2 option; version 3 exists only as JSON.
	if s.JSON && s.Version == 1 {
		fe.add("json", "needs version 2 or 3, got version 1")
	}
	if !s.JSON && s.Version == 3 {
		fe.add("json", "must be true with version 3, which is JSON only")
	}
	if s.Blocks && s.Version == 1 {
		fe.add("blocks", "needs version 2 or 3, got version 1 (it has no blocks records)")
	}

	// RFC 7617 §2: the user-id cannot contain a colon, and neither part
	// control characters.
	if strings.Contains(s.BasicUser, ":") {
		fe.add("basic_user", "must not contain a colon (RFC 7617)")
	}
	if hasControl(s.BasicUser) {
		fe.add("basic_user", "must not contain control characters (RFC 7617)")
	}
	if s.BasicPassword != "" && s.BasicUser == "" {
		fe.add("basic_user", "required when basic_password is set")
	}
	// Basic authentication with an empty password is almost always a
	// password that got lost on the way (a form, an import), not a choice.
	if s.BasicUser != "" && s.BasicPassword == "" {
		fe.add("basic_password", "required when basic_user is set")
	}
	if hasControl(string(s.BasicPassword)) {
		fe.add("basic_password", "must not contain control characters (RFC 7617)")
	}
	if s.APIKeyBearer {
		// WIRE.md §1: only one Authorization header can be sent.
		if s.BasicUser != "" {
			fe.add("api_key_bearer", "cannot be combined with Basic authentication (basic_user): choose one")
		}
		switch {
		case s.APIKey == "":
			fe.add("api_key", "required when api_key_bearer is set")
		case !visibleASCII(string(s.APIKey)):
			fe.add("api_key", "must be printable ASCII without spaces to be sent as a Bearer token")
		}
	} else if hasControl(string(s.APIKey)) {
		fe.add("api_key", "must not contain control characters")
	}

	if s.Interval < MinInterval || s.Interval > MaxInterval {
		fe.add("interval", "must be between %d and %d seconds, got %d", MinInterval, MaxInterval, s.Interval)
	}
	if s.MaxEvents < MinMaxEvents || s.MaxEvents > MaxMaxEvents {
		fe.add("max_events", "must be between %d and %d, got %d", MinMaxEvents, MaxMaxEvents, s.MaxEvents)
	}
	if s.Timeout < MinTimeout || s.Timeout > MaxTimeout {
		fe.add("timeout", "must be between %d and %d seconds, got %d", MinTimeout, MaxTimeout, s.Timeout)
	}
	if rp := time.Duration(s.RetryPeriod); rp < MinRetryPeriod || rp > MaxRetryPeriod {
		fe.add("retry_period", "must be between %s and %s, got %s",
			Duration(MinRetryPeriod), Duration(MaxRetryPeriod), s.RetryPeriod)
	}
	if s.SigningSecret != "" {
		if _, err := s.SigningSecret.SigningKey(); err != nil {
			fe.add("signing_secret", "%v", err)
		}
	}
	if s.CAFile != "" && !filepath.IsAbs(s.CAFile) {
		// The file is read by the daemon, maybe on another machine than
		// the one that validates an import, so only its form is checked.
		fe.add("ca_file", "must be an absolute path, got %q", s.CAFile)
	}
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// maxEndpoint bounds the URL so it fits a log row and a request line.
const maxEndpoint = 2048

func (s EventWebhook) validateEndpoint(fe FieldErrors, allowHTTP bool) {
	want := "an https:// URL"
	if allowHTTP {
		want = "an https:// or http:// URL"
	}
	if s.Endpoint == "" {
		// No endpoint is the Event Webhook turned off (a new installation,
		// or an administrator who stopped it): valid as long as nothing is
		// to be posted, so that such settings export and import back.
		if s.Deliveries || s.Bounces || s.Blocks {
			fe.add("endpoint", "required when deliveries, bounces or blocks is on: %s", want)
		}
		return
	}
	if len(s.Endpoint) > maxEndpoint {
		fe.add("endpoint", "must be at most %d characters, got %d", maxEndpoint, len(s.Endpoint))
		return
	}
	// The URL is not quoted back: it may hold a token in its query.
	u, err := url.Parse(s.Endpoint)
	if err != nil || hasControl(s.Endpoint) || strings.ContainsAny(s.Endpoint, " \t") {
		fe.add("endpoint", "not a valid URL: want %s", want)
		return
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		fe.add("endpoint", "must start with https:// (plain http:// needs allow_insecure_http in the daemon config)")
		return
	default:
		fe.add("endpoint", "must start with https://, got scheme %q", u.Scheme)
		return
	}
	if u.User != nil {
		fe.add("endpoint", "must not contain a user name or password: use basic_user and basic_password")
		return
	}
	if u.Hostname() == "" {
		fe.add("endpoint", "has no host name: want %s", want)
	}
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

func visibleASCII(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= 0x20 || r >= 0x7f })
}

// Standard Webhooks (standardwebhooks.com, "Signature scheme"): a symmetric
// secret is 24 to 64 random bytes, written as base64 after "whsec_".
const (
	SigningSecretPrefix = "whsec_"
	minSigningKey       = 24
	maxSigningKey       = 64
)

var errSigningSecret = fmt.Errorf("must be %s followed by the base64 of %d to %d random bytes", SigningSecretPrefix, minSigningKey, maxSigningKey)

// SigningKey decodes a "whsec_" secret into the HMAC key. Its error never
// quotes the secret.
func (s Secret) SigningKey() ([]byte, error) {
	b64, ok := strings.CutPrefix(string(s), SigningSecretPrefix)
	if !ok {
		return nil, errSigningSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Some generators drop the padding.
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil || len(key) < minSigningKey || len(key) > maxSigningKey {
		return nil, errSigningSecret
	}
	return key, nil
}

// NewSigningSecret returns a fresh secret of 32 random bytes, for the UI's
// "generate" button.
func NewSigningSecret() Secret {
	key := make([]byte, 32)
	rand.Read(key) // never fails (crypto/rand documentation, Go 1.24+)
	return Secret(SigningSecretPrefix + base64.StdEncoding.EncodeToString(key))
}
