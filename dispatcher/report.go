package dispatcher

import (
	"time"

	"github.com/posthorn/posthorn/settings"
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
// scheme, host and path, without the query and user information where
// receivers put tokens. It is settings.LogEndpoint, which the log commands
// and the console use too.
func LogEndpoint(raw string) string { return settings.LogEndpoint(raw) }
