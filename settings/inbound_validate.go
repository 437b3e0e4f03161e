package settings

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// InboundErrors maps a field path ("domains[2]", "filters[0].endpoint",
// "filters[1].conditions[0].pattern") to what is wrong with it. Messages
// name the allowed range and never hold a secret's value.
type InboundErrors map[string]string

// filterFieldOrder is the order the console shows a filter's fields in.
var filterFieldOrder = []string{
	"name", "endpoint", "conditions", "header", "pattern", "json", "basic_user", "basic_password",
	"api_key", "api_key_bearer", "signing_secret", "ca_file", "retry_interval", "retry_period",
	"timeout", "disabled",
}

var inboundTopOrder = []string{"domains", "log_denied", "filters"}

// sharedFields are the filter fields validated by the Event Webhook's rules.
var sharedFields = []string{"endpoint", "basic_user", "basic_password", "api_key", "api_key_bearer", "signing_secret", "ca_file"}

// pathKey splits "filters[1].conditions[0].pattern" into comparable
// parts: field names ranked by form order, indexes as numbers.
func pathKey(p string) []int {
	var key []int
	for _, seg := range strings.Split(p, ".") {
		name, idx, hasIdx := strings.Cut(seg, "[")
		rank := slices.Index(filterFieldOrder, name)
		if len(key) == 0 {
			rank = slices.Index(inboundTopOrder, name)
		}
		if rank < 0 {
			rank = 1000
		}
		key = append(key, rank)
		if hasIdx {
			n, _ := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			key = append(key, n)
		} else {
			key = append(key, -1)
		}
	}
	return key
}

// Fields returns the paths in error in form order: domains, then filters
// by position, each filter's fields as the form shows them.
func (e InboundErrors) Fields() []string {
	out := make([]string, 0, len(e))
	for f := range e {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b string) int {
		if c := slices.Compare(pathKey(a), pathKey(b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out
}

// Error lists every problem as "path: message", in form order.
func (e InboundErrors) Error() string {
	parts := make([]string, 0, len(e))
	for _, f := range e.Fields() {
		parts = append(parts, f+": "+e[f])
	}
	return "invalid inbound settings: " + strings.Join(parts, "; ")
}

func (e InboundErrors) add(field, format string, args ...any) {
	if _, ok := e[field]; !ok {
		e[field] = fmt.Sprintf(format, args...)
	}
}

// Normalized returns s with its domains in lower case without a trailing
// dot, internationalized names in their ASCII (xn--) form: the form
// Validate checks and the milter compares against. A name that cannot be
// converted is left for Validate to report.
func (s Inbound) Normalized() Inbound {
	out := s
	out.Domains = make([]string, len(s.Domains))
	for i, d := range s.Domains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		if a, err := ASCIIDomain(d); err == nil {
			d = a
		}
		out.Domains[i] = d
	}
	out.Filters = slices.Clone(s.Filters)
	return out
}

// Validate checks the settings against WIRE.md §4 and returns every
// problem at once as InboundErrors, or nil. It is the one validation the
// UI, `posthorn settings import` and the store use. allowHTTP is the daemon
// config's allow_insecure_http.
func (s Inbound) Validate(allowHTTP bool) error {
	e := InboundErrors{}
	if len(s.Domains) > MaxDomains {
		e.add("domains", "at most %d domains, got %d", MaxDomains, len(s.Domains))
	}
	for i, de := range s.DomainErrors() {
		e.add(fmt.Sprintf("domains[%d]", i), "%s", de.Error())
	}

	if len(s.Filters) > MaxFilters {
		e.add("filters", "at most %d filters, got %d", MaxFilters, len(s.Filters))
	}
	names := map[string]int{}
	for i, f := range s.Filters {
		p := fmt.Sprintf("filters[%d].", i)
		f.validate(e, p, allowHTTP)
		ln := strings.ToLower(f.Name)
		if j, dup := names[ln]; dup && f.Name != "" {
			e.add(p+"name", "%q is already the name of filters[%d]: names must be unique", f.Name, j)
		}
		names[ln] = i
	}
	if len(e) == 0 {
		return nil
	}
	return e
}

func (f InboundFilter) validate(e InboundErrors, p string, allowHTTP bool) {
	switch {
	case strings.TrimSpace(f.Name) == "":
		e.add(p+"name", "required")
	case len(f.Name) > MaxFilterName:
		e.add(p+"name", "must be at most %d bytes, got %d", MaxFilterName, len(f.Name))
	case hasControl(f.Name) || f.Name != strings.TrimSpace(f.Name):
		e.add(p+"name", "must not contain control characters or leading or trailing spaces")
	}

	// The endpoint and credential rules are the Event Webhook's (WIRE.md
	// §1): running its validation on those fields makes both webhooks
	// accept and refuse the same values, also when its rules change.
	if f.Endpoint == "" {
		// The Event Webhook's rules let an unused endpoint be empty; a
		// filter always posts.
		want := "an https:// URL"
		if allowHTTP {
			want = "an https:// or http:// URL"
		}
		e.add(p+"endpoint", "required: %s", want)
	}
	ew := Default()
	ew.Endpoint, ew.BasicUser, ew.BasicPassword = f.Endpoint, f.BasicUser, f.BasicPassword
	ew.APIKey, ew.APIKeyBearer, ew.SigningSecret, ew.CAFile = f.APIKey, f.APIKeyBearer, f.SigningSecret, f.CAFile
	if err := ew.Validate(allowHTTP); err != nil {
		if fe, ok := err.(FieldErrors); ok {
			for k, v := range fe {
				if slices.Contains(sharedFields, k) {
					e.add(p+k, "%s", v)
				}
			}
		}
	}

	switch {
	case len(f.Conditions) == 0:
		e.add(p+"conditions", "at least one condition is required")
	case len(f.Conditions) > MaxConditions:
		e.add(p+"conditions", "at most %d conditions, got %d", MaxConditions, len(f.Conditions))
	}
	for j, c := range f.Conditions {
		cp := fmt.Sprintf("%sconditions[%d].", p, j)
		if !validFieldName(c.Header) {
			e.add(cp+"header", "must be a header name: printable ASCII without spaces or colons (RFC 5322 §2.2), got %q", c.Header)
		}
		switch {
		case c.Pattern == "":
			e.add(cp+"pattern", "required: a regular expression (RE2 syntax); use ^$ for an absent or empty header")
		case len(c.Pattern) > MaxPattern:
			e.add(cp+"pattern", "must be at most %d bytes, got %d", MaxPattern, len(c.Pattern))
		default:
			if _, err := c.Compile(); err != nil {
				e.add(cp+"pattern", "not a valid regular expression (RE2 syntax): %s", strings.TrimPrefix(err.Error(), "compile pattern: "))
			}
		}
	}

	if f.RetryInterval < MinRetryInterval || f.RetryInterval > MaxRetryInterval {
		e.add(p+"retry_interval", "must be between %d and %d seconds, got %d", MinRetryInterval, MaxRetryInterval, f.RetryInterval)
	}
	if rp := time.Duration(f.RetryPeriod); rp < MinInboundRetryPeriod || rp > MaxInboundRetryPeriod {
		e.add(p+"retry_period", "must be between %s and %s, got %s",
			Duration(MinInboundRetryPeriod), Duration(MaxInboundRetryPeriod), f.RetryPeriod)
	}
	if f.Timeout < MinTimeout || f.Timeout > MaxTimeout {
		e.add(p+"timeout", "must be between %d and %d seconds, got %d", MinTimeout, MaxTimeout, f.Timeout)
	}
}

// validFieldName: RFC 5322 §2.2, a field name is printable US-ASCII
// (33–126) except the colon.
func validFieldName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// ASCIIDomain returns an internationalized domain name in its ASCII
// (xn--) form, lower case: the one form in which the allowed domains are
// kept and recipients compared, because Postfix hands the milter the
// recipient as the client wrote it and an SMTPUTF8 client (RFC 6531) may
// write either form. The conversion is IDNA's lookup profile (UTS #46
// mapping, RFC 5891 rules). An ASCII name is returned lower-cased as it
// is.
func ASCIIDomain(d string) (string, error) {
	ascii := true
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(d), nil
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", err
	}
	return strings.ToLower(a), nil
}

// DomainCode says what is wrong with one allowed domain, so that a user
// interface can say it in its own language; DomainError.Error is the
// English text the CLI and the store's errors show.
type DomainCode string

const (
	DomainEmpty   DomainCode = "empty"   // nothing between the separators
	DomainLong    DomainCode = "long"    // over 253 characters (RFC 1035 §2.3.4)
	DomainDot     DomainCode = "dot"     // a trailing dot
	DomainAddress DomainCode = "address" // an address, not a domain
	DomainIDNA    DomainCode = "idna"    // refused by IDNA (RFC 5891)
	DomainLabel   DomainCode = "label"   // a label empty or over 63 characters
	DomainHyphen  DomainCode = "hyphen"  // a label starting or ending with '-'
	DomainChars   DomainCode = "chars"   // not letters, digits, hyphens and dots
	DomainRepeat  DomainCode = "repeat"  // the same domain as an earlier entry
)

// DomainError is what is wrong with one entry of Inbound.Domains.
type DomainError struct {
	Code DomainCode
	// Domain is the entry as written, or its ASCII (xn--) form for the
	// label rules, which are checked in that form.
	Domain string
	// Repeats is, for DomainRepeat, the index of the earlier entry.
	Repeats int
	// Err is, for DomainIDNA, the IDNA library's reason.
	Err error
}

func (de DomainError) Error() string {
	switch de.Code {
	case DomainEmpty:
		return "empty domain"
	case DomainLong:
		return fmt.Sprintf("must be at most 253 characters, got %d", len(de.Domain))
	case DomainDot:
		return fmt.Sprintf("%q: write it without the trailing dot", de.Domain)
	case DomainAddress:
		return fmt.Sprintf("%q: a domain, not an address", de.Domain)
	case DomainIDNA:
		return fmt.Sprintf("%q is not a valid internationalized domain name: %v", de.Domain, de.Err)
	case DomainLabel:
		return fmt.Sprintf("%q is not a domain name: labels are 1 to 63 characters", de.Domain)
	case DomainHyphen:
		return fmt.Sprintf("%q is not a domain name: a label cannot start or end with a hyphen", de.Domain)
	case DomainChars:
		return fmt.Sprintf("%q is not a domain name: letters, digits, hyphens and dots only", de.Domain)
	case DomainRepeat:
		return fmt.Sprintf("%q repeats domains[%d]", de.Domain, de.Repeats)
	}
	return fmt.Sprintf("%q: %s", de.Domain, de.Code)
}

// DomainErrors returns the problem of each entry of s.Domains that has
// one, by index: the domain rules of Validate, whose messages are these
// errors' texts, in a form a user interface can translate.
func (s Inbound) DomainErrors() map[int]DomainError {
	out := map[int]DomainError{}
	seen := map[string]int{}
	for i, d := range s.Domains {
		if de, bad := checkDomain(d); bad {
			out[i] = de
			continue
		}
		ld, _ := ASCIIDomain(d) // checkDomain has converted it once
		if j, dup := seen[ld]; dup {
			out[i] = DomainError{Code: DomainRepeat, Domain: d, Repeats: j}
		}
		seen[ld] = i
	}
	return out
}

// checkDomain says what is wrong with d as a domain name the milter can
// compare recipients with, if anything. Names are LDH labels (RFC 1123
// §2.1); an internationalized name is converted to its ASCII (xn--) form
// first.
func checkDomain(d string) (DomainError, bool) {
	bad := func(code DomainCode, d string) (DomainError, bool) { return DomainError{Code: code, Domain: d}, true }
	switch {
	case d == "":
		return bad(DomainEmpty, d)
	case len(d) > 253:
		return bad(DomainLong, d)
	case strings.HasSuffix(d, "."):
		return bad(DomainDot, d)
	case strings.HasPrefix(d, "@") || strings.Contains(d, "@"):
		return bad(DomainAddress, d)
	}
	a, err := ASCIIDomain(d)
	if err != nil {
		return DomainError{Code: DomainIDNA, Domain: d, Err: err}, true
	}
	if !strings.EqualFold(a, d) {
		d = a // the labels below are checked in their ASCII form
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return bad(DomainLabel, d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad(DomainHyphen, d)
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !(c >= 'a' && c <= 'z' || label[i] >= '0' && label[i] <= '9' || label[i] == '-') {
				return bad(DomainChars, d)
			}
		}
	}
	return DomainError{}, false
}
