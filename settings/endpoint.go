package settings

import (
	"net/url"
	"strconv"
	"strings"
)

// LogEndpoint is an endpoint URL as logs, alerts, metrics, the log
// commands and the console show it: scheme, host and path. The query and
// the user information are dropped, as they are where receivers put tokens
// (a token in the query is common; WIRE.md allows Basic authentication in
// the URL).
func LogEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable endpoint)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// PlainHTTP reports whether an endpoint is a plain http:// URL, which only
// the daemon config's allow_insecure_http lets through and which is worth
// a warning wherever it is in use: the posts, credentials included, cross
// the network in clear text.
func PlainHTTP(endpoint string) bool {
	scheme, _, ok := strings.Cut(endpoint, ":")
	return ok && strings.EqualFold(scheme, "http")
}

// PlainHTTPFields returns the settings fields that hold a plain http://
// endpoint, by their path in the settings document
// ("event_webhook.endpoint", "inbound.filters[2].endpoint"); ew and in may
// be nil.
func PlainHTTPFields(ew *EventWebhook, in *Inbound) []string {
	var out []string
	if ew != nil && PlainHTTP(ew.Endpoint) {
		out = append(out, "event_webhook.endpoint")
	}
	if in != nil {
		for i, f := range in.Filters {
			if PlainHTTP(f.Endpoint) {
				out = append(out, "inbound.filters["+strconv.Itoa(i)+"].endpoint")
			}
		}
	}
	return out
}

// markedEndpoint is LogEndpoint with a mark where something was left out,
// for the settings' String: an administrator reading the log should see
// that the URL goes on.
func markedEndpoint(raw string) string {
	out := LogEndpoint(raw)
	if u, err := url.Parse(raw); err == nil && (u.RawQuery != "" || u.User != nil || u.Fragment != "") {
		out += " (query and credentials hidden)"
	}
	return out
}
