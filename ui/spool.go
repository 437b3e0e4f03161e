package ui

import (
	"context"
	"time"
)

// Spool reports each webhook's backlog and its endpoint's health for the
// dashboard. cmd/posthorn adapts the store to it.
type Spool interface {
	SpoolStatus(ctx context.Context) ([]WebhookStatus, error)
}

// WebhookStatus is one webhook's backlog and the result of its latest
// attempt, or one inbound filter's.
type WebhookStatus struct {
	// Webhook is "event" or "inbound".
	Webhook string
	// Filter, when set, makes this the row of one inbound filter: its
	// waiting posts and the latest attempt among them, so that a dead
	// filter endpoint shows while others succeed. Endpoint is the
	// filter's URL.
	Filter, Endpoint string
	// Pending counts what waits to be posted: events for the Event
	// Webhook, posts (one per message and filter) for the Inbound one.
	Pending int64
	// Oldest is when the oldest pending item arrived; zero when nothing
	// is pending.
	Oldest time.Time
	// Last is the latest attempt; zero At when none was made yet.
	Last LastAttempt
}

// LastAttempt is the endpoint health shown: when it was last tried and
// what came of it.
type LastAttempt struct {
	At       time.Time
	Endpoint string // as stored: the console strips it for display
	// Filter is the inbound filter the attempt posted for, on the
	// Inbound Webhook's own row, which the console names instead of an
	// endpoint (a filter's row names its filter in its heading).
	Filter string
	Result string // succeeded, deferred, failed
	Code   int    // HTTP status, 0 when no answer came
	Reason string
}

func webhookName(ctx context.Context, w string) string {
	return tr(ctx, "dash.spool."+w)
}

// age is how long ago t was, in whole units a person reads at a glance.
func age(ctx context.Context, now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return trf(ctx, "age.s", max(0, int(d/time.Second)))
	case d < time.Hour:
		return trf(ctx, "age.m", int(d/time.Minute))
	case d < 48*time.Hour:
		return trf(ctx, "age.h", int(d/time.Hour))
	default:
		return trf(ctx, "age.d", int(d/(24*time.Hour)))
	}
}
