package dispatcher

import (
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
