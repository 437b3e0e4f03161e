// Package settings holds the webhook settings that live in the database and
// their one validation, shared by the web UI, `posthorn settings import` and
// the API so that the same rules apply wherever settings are written
// (ARCHITECTURE.md, "Settings"). Field names and ranges follow the hosted
// service's console (WIRE.md §4). It imports only the standard library and
// event.
package settings

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Ranges of WIRE.md §4, exported so the UI can show them next to the fields.
const (
	MinInterval    = 1 // seconds
	MaxInterval    = 600
	MinMaxEvents   = 100
	MaxMaxEvents   = 10000
	MinTimeout     = 1 // seconds
	MaxTimeout     = 999
	MinRetryPeriod = time.Hour
	MaxRetryPeriod = 10 * 24 * time.Hour
)

// Payload versions: 1 and 2 are the hosted service's, 3 is Posthorn's own
// (WIRE.md §2).
const (
	MinVersion = 1
	MaxVersion = 3
)

// LocalZone is the time-zone name that means "the server's local zone"
// (the default, our choice in WIRE.md §2). time.LoadLocation accepts it.
const LocalZone = "Local"

// Event-type families of WIRE.md §2, the values of event_type.
const (
	Deliveries = "deliveries"
	Bounces    = "bounces"
	Blocks     = "blocks"
)

// EventWebhook is the Event Webhook's settings (WIRE.md §4). The zero value
// is not usable; start from Default.
//
// Changes take effect for batches formed afterwards: a batch's body is frozen
// at its first attempt (it carries version, time zone, encoding and a body
// api_key), while endpoint, Basic/Bearer, timeout, signing secret and CA
// file are read again on every attempt.
type EventWebhook struct {
	// Endpoint is the https:// URL batches are POSTed to; empty (allowed
	// only with no event type chosen) means the Event Webhook is off.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Bounces, Deliveries and Blocks choose which event types are posted.
	Bounces    bool `yaml:"bounces" json:"bounces"`
	Deliveries bool `yaml:"deliveries" json:"deliveries"`
	Blocks     bool `yaml:"blocks" json:"blocks"`
	// Version is the payload version: 1, 2, or 3 (Posthorn-native, JSON).
	Version int `yaml:"version" json:"version"`
	// Timezone is the IANA zone `created` is written in, or "Local".
	Timezone string `yaml:"timezone" json:"timezone"`
	// JSON posts application/json instead of a form (version 2 and 3;
	// version 3 is JSON only).
	JSON bool `yaml:"json" json:"json"`
	// BasicUser and BasicPassword send Authorization: Basic (RFC 7617).
	BasicUser     string `yaml:"basic_user" json:"basic_user"`
	BasicPassword Secret `yaml:"basic_password" json:"basic_password"`
	// APIKey is sent as the api_key parameter, or as Authorization: Bearer
	// (RFC 6750) when APIKeyBearer is set.
	APIKey       Secret `yaml:"api_key" json:"api_key"`
	APIKeyBearer bool   `yaml:"api_key_bearer" json:"api_key_bearer"`
	// Interval is the notify interval in seconds: a batch is posted this
	// long after its first event at the latest.
	Interval int `yaml:"interval" json:"interval"`
	// MaxEvents closes a batch early when it holds this many events.
	MaxEvents int `yaml:"max_events" json:"max_events"`
	// Timeout is the time in seconds one attempt may take, from connecting
	// to the end of the response.
	Timeout int `yaml:"timeout" json:"timeout"`
	// RetryPeriod is how long a batch is retried, counted from when it
	// was formed (or replayed), before it is given up (our addition).
	RetryPeriod Duration `yaml:"retry_period" json:"retry_period"`
	// SigningSecret ("whsec_" + base64) turns on Standard Webhooks
	// signatures (our addition).
	SigningSecret Secret `yaml:"signing_secret" json:"signing_secret"`
	// CAFile is a PEM file of extra root certificates for an endpoint
	// behind a private CA (our addition); the system roots still apply.
	CAFile string `yaml:"ca_file" json:"ca_file"`
}

// Default returns the settings of a new installation: no endpoint and no
// event type, the Event Webhook off until both are chosen.
func Default() EventWebhook {
	return EventWebhook{
		Version:     2,
		Timezone:    LocalZone,
		Interval:    1,
		MaxEvents:   100,
		Timeout:     30,
		RetryPeriod: Duration(24 * time.Hour),
	}
}

// Posts reports whether events of the family (deliveries, bounces, blocks)
// are posted with these settings.
func (s EventWebhook) Posts(family string) bool {
	switch family {
	case Deliveries:
		return s.Deliveries
	case Bounces:
		return s.Bounces
	case Blocks:
		return s.Blocks && s.Version >= 2
	}
	return false
}

// Location loads the configured time zone.
func (s EventWebhook) Location() (*time.Location, error) {
	if s.Timezone == "" {
		// time.LoadLocation("") is UTC; an empty setting is a mistake, not UTC.
		return nil, fmt.Errorf("load time zone: none set")
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return nil, fmt.Errorf("load time zone %q: %w", s.Timezone, err)
	}
	return loc, nil
}

// IntervalDuration is Interval as a time.Duration.
func (s EventWebhook) IntervalDuration() time.Duration {
	return time.Duration(s.Interval) * time.Second
}

// TimeoutDuration is Timeout as a time.Duration.
func (s EventWebhook) TimeoutDuration() time.Duration {
	return time.Duration(s.Timeout) * time.Second
}

// String describes the settings for logs without any secret: a secret shows
// only whether it is set.
func (s EventWebhook) String() string {
	var b strings.Builder
	if s.Endpoint == "" {
		b.WriteString("event webhook off (no endpoint)")
	} else {
		fmt.Fprintf(&b, "event webhook %s", markedEndpoint(s.Endpoint))
	}
	fmt.Fprintf(&b, " version %d", s.Version)
	if s.JSON {
		b.WriteString(" json")
	} else {
		b.WriteString(" form")
	}
	var fams []string
	for _, f := range []string{Deliveries, Bounces, Blocks} {
		if s.Posts(f) {
			fams = append(fams, f)
		}
	}
	if len(fams) == 0 {
		fams = []string{"no events"}
	}
	fmt.Fprintf(&b, " (%s) timezone %s interval %ds max_events %d timeout %ds retry_period %s",
		strings.Join(fams, ","), s.Timezone, s.Interval, s.MaxEvents, s.Timeout, s.RetryPeriod)
	if s.BasicUser != "" {
		fmt.Fprintf(&b, " basic_user %q basic_password %s", s.BasicUser, s.BasicPassword)
	}
	if s.APIKey != "" {
		if s.APIKeyBearer {
			fmt.Fprintf(&b, " api_key %s as bearer", s.APIKey)
		} else {
			fmt.Fprintf(&b, " api_key %s in body", s.APIKey)
		}
	}
	if s.SigningSecret != "" {
		fmt.Fprintf(&b, " signing_secret %s", s.SigningSecret)
	}
	if s.CAFile != "" {
		fmt.Fprintf(&b, " ca_file %s", s.CAFile)
	}
	return b.String()
}

// GoString keeps %#v from printing the secrets field by field.
func (s EventWebhook) GoString() string { return "settings.EventWebhook{" + s.String() + "}" }

// LogValue keeps slog (the JSON handler included) from printing secrets.
func (s EventWebhook) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Secret is a credential. Printing it with fmt or slog shows only whether
// it is set; use string(s) where the value itself is needed. Encoders that
// work by reflection (YAML, JSON) still see the value, which `settings
// export` needs: never log such output.
type Secret string

const redacted = "[redacted]"

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	if s == "" {
		return "[unset]"
	}
	return redacted
}

// GoString implements fmt.GoStringer for %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
