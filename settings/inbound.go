package settings

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"
)

// Ranges of the Inbound Webhook's filter fields (WIRE.md §4), exported so
// the UI can show them next to the fields.
const (
	MinRetryInterval        = 10 // seconds
	MaxRetryInterval        = 600
	MinInboundRetryPeriod   = 24 * time.Hour
	MaxInboundRetryPeriod   = 10 * 24 * time.Hour
	MaxFilters              = 1000
	MaxConditions           = 50
	MaxDomains              = 10000
	MaxFilterName           = 100
	MaxPattern              = 1000
	DefaultRetryInterval    = 60
	DefaultInboundTimeout   = 30
	DefaultInboundRetryDays = 1
)

// ToHeader is the condition header that means the envelope recipient, not
// the To header field (WIRE.md §4).
const ToHeader = "To"

// Inbound is the Inbound Webhook's settings (WIRE.md §4): the domains mail
// is accepted for, whether refusals for other domains are logged, and the
// filters that decide which endpoint a message is posted to. The zero value
// is valid and accepts no mail: with no allowed domain every recipient is
// refused (or passed through, as the daemon config decides).
type Inbound struct {
	// Domains are the recipient domains mail is accepted for, lower case,
	// in ASCII (xn--) form for internationalized names (Normalized
	// converts names given in Unicode). A domain matches
	// itself only, not its subdomains.
	Domains []string `yaml:"domains" json:"domains"`
	// LogDenied records mail refused because the recipient domain is not
	// allowed in the inbound log (off by default: spam makes it huge).
	LogDenied bool `yaml:"log_denied" json:"log_denied"`
	// Filters are tried in order for each recipient; every enabled filter
	// whose conditions all match gets one POST of the message.
	Filters []InboundFilter `yaml:"filters" json:"filters"`
}

// InboundFilter is one named filter (WIRE.md §4).
type InboundFilter struct {
	// Name is unique among the filters (compared without regard to case)
	// and is posted as the filter parameter.
	Name string `yaml:"name" json:"name"`
	// Endpoint is the https:// URL matching messages are POSTed to.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Conditions must all match (AND).
	Conditions []Condition `yaml:"conditions" json:"conditions"`
	// JSON posts application/json without attachments instead of
	// multipart/form-data with them.
	JSON bool `yaml:"json" json:"json"`
	// BasicUser and BasicPassword send Authorization: Basic (RFC 7617).
	BasicUser     string `yaml:"basic_user" json:"basic_user"`
	BasicPassword Secret `yaml:"basic_password" json:"basic_password"`
	// APIKey is sent as the api_key parameter, or as Authorization: Bearer
	// (RFC 6750) when APIKeyBearer is set.
	APIKey       Secret `yaml:"api_key" json:"api_key"`
	APIKeyBearer bool   `yaml:"api_key_bearer" json:"api_key_bearer"`
	// SigningSecret ("whsec_" + base64) turns on Standard Webhooks
	// signatures (our addition).
	SigningSecret Secret `yaml:"signing_secret" json:"signing_secret"`
	// CAFile is a PEM file of extra root certificates for an endpoint
	// behind a private CA (our addition).
	CAFile string `yaml:"ca_file" json:"ca_file"`
	// RetryInterval is the time in seconds between attempts while the
	// endpoint fails.
	RetryInterval int `yaml:"retry_interval" json:"retry_interval"`
	// RetryPeriod is how long a message is retried, counted from its
	// capture, before it is given up and its data dropped.
	RetryPeriod Duration `yaml:"retry_period" json:"retry_period"`
	// Timeout is the time in seconds one attempt may take.
	Timeout int `yaml:"timeout" json:"timeout"`
	// Disabled keeps the filter but stops using it.
	Disabled bool `yaml:"disabled" json:"disabled"`
}

// Condition is one test of a filter: the RE2 regular expression Pattern
// must match somewhere in the value of the header named Header (case does
// not matter in the name). Anchor it with ^ and $ to match the whole value,
// and start it with (?i) to ignore case. Header "To" means the envelope
// recipient. A header that occurs several times matches when any of its
// values does; an absent header is tested as one empty value, so "^$"
// means "absent or empty".
type Condition struct {
	Header  string `yaml:"header" json:"header"`
	Pattern string `yaml:"pattern" json:"pattern"`
}

// IsTo reports whether the condition tests the envelope recipient.
func (c Condition) IsTo() bool { return strings.EqualFold(c.Header, ToHeader) }

// Compile compiles the pattern (RE2 syntax, regexp package).
func (c Condition) Compile() (*regexp.Regexp, error) {
	re, err := regexp.Compile(c.Pattern)
	if err != nil {
		return nil, fmt.Errorf("compile pattern: %w", err)
	}
	return re, nil
}

// NewInboundFilter returns a filter with the default ranges: retry every
// minute for a day, 30 s per attempt.
func NewInboundFilter(name, endpoint string, conds ...Condition) InboundFilter {
	return InboundFilter{
		Name:          name,
		Endpoint:      endpoint,
		Conditions:    conds,
		RetryInterval: DefaultRetryInterval,
		RetryPeriod:   Duration(DefaultInboundRetryDays * 24 * time.Hour),
		Timeout:       DefaultInboundTimeout,
	}
}

// RetryIntervalDuration is RetryInterval as a time.Duration.
func (f InboundFilter) RetryIntervalDuration() time.Duration {
	return time.Duration(f.RetryInterval) * time.Second
}

// TimeoutDuration is Timeout as a time.Duration.
func (f InboundFilter) TimeoutDuration() time.Duration {
	return time.Duration(f.Timeout) * time.Second
}

// Filter returns the filter named name (compared without regard to case).
func (s Inbound) Filter(name string) (InboundFilter, bool) {
	for _, f := range s.Filters {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return InboundFilter{}, false
}

// AllowsDomain reports whether domain, in either form of an
// internationalized name, is one of the allowed domains.
func (s Inbound) AllowsDomain(domain string) bool {
	if a, err := ASCIIDomain(domain); err == nil {
		domain = a
	}
	for _, d := range s.Domains {
		if strings.EqualFold(d, domain) {
			return true
		}
	}
	return false
}

// String describes a filter for logs without any secret.
func (f InboundFilter) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inbound filter %q %s", f.Name, markedEndpoint(f.Endpoint))
	if f.JSON {
		b.WriteString(" json")
	} else {
		b.WriteString(" multipart")
	}
	if f.Disabled {
		b.WriteString(" disabled")
	}
	var conds []string
	for _, c := range f.Conditions {
		conds = append(conds, fmt.Sprintf("%s=~%q", c.Header, c.Pattern))
	}
	fmt.Fprintf(&b, " if %s retry_interval %ds retry_period %s timeout %ds",
		strings.Join(conds, " && "), f.RetryInterval, f.RetryPeriod, f.Timeout)
	if f.BasicUser != "" {
		fmt.Fprintf(&b, " basic_user %q basic_password %s", f.BasicUser, f.BasicPassword)
	}
	if f.APIKey != "" {
		if f.APIKeyBearer {
			fmt.Fprintf(&b, " api_key %s as bearer", f.APIKey)
		} else {
			fmt.Fprintf(&b, " api_key %s in body", f.APIKey)
		}
	}
	if f.SigningSecret != "" {
		fmt.Fprintf(&b, " signing_secret %s", f.SigningSecret)
	}
	if f.CAFile != "" {
		fmt.Fprintf(&b, " ca_file %s", f.CAFile)
	}
	return b.String()
}

// GoString keeps %#v from printing the secrets field by field.
func (f InboundFilter) GoString() string { return "settings.InboundFilter{" + f.String() + "}" }

// LogValue keeps slog from printing secrets.
func (f InboundFilter) LogValue() slog.Value { return slog.StringValue(f.String()) }

// String describes the settings for logs without any secret.
func (s Inbound) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "inbound domains [%s] log_denied %t", strings.Join(s.Domains, " "), s.LogDenied)
	for _, f := range s.Filters {
		b.WriteString("; ")
		b.WriteString(f.String())
	}
	return b.String()
}

// GoString keeps %#v from printing secrets.
func (s Inbound) GoString() string { return "settings.Inbound{" + s.String() + "}" }

// LogValue keeps slog from printing secrets.
func (s Inbound) LogValue() slog.Value { return slog.StringValue(s.String()) }
