package dispatcher

import (
	"net/url"
	"time"
)

// Webhook names in a PostReport.
const (
	WebhookEvent   = "event"
	WebhookInbound = "inbound"
)

// PostReport is one recorded attempt as the dispatchers' Observe hooks
// tell it, for metrics and alerts. It is built after the attempt is
// stored, so an observer never sees an attempt that a crash could undo.
type PostReport struct {
	Webhook  string        // WebhookEvent or WebhookInbound
	Filter   string        // the inbound filter's name; "" for the Event Webhook
	Endpoint string        // LogEndpoint of the URL posted to
	At       time.Time     // when the request started
	State    string        // the state the attempt left the batch or post in
	Status   int           // HTTP status; 0 without an answer
	Reason   string        // "" on success
	Took     time.Duration // how long the request took
}

// LogEndpoint is an endpoint URL as logs, alerts and metrics show it:
// scheme, host and path. The query and user information are dropped, as
// they are where receivers put tokens (WIRE.md allows basic
// authentication in the URL).
func LogEndpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable endpoint)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
