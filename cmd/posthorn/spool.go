package main

import (
	"context"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

var _ ui.Spool = consoleSpool{}

// consoleSpool gives the dashboard and the metrics each webhook's backlog
// and its endpoint's latest attempt.
type consoleSpool struct{ store *sqlite.Store }

func (c consoleSpool) SpoolStatus(ctx context.Context) ([]ui.WebhookStatus, error) {
	ev, err := c.store.EventWebhookBacklog(ctx)
	if err != nil {
		return nil, err
	}
	in, err := c.store.InboundBacklog(ctx)
	if err != nil {
		return nil, err
	}
	// The Event Webhook's URL may carry a token in its query: the
	// dashboard shows it as the logs do.
	if ev.Last.Endpoint != "" {
		ev.Last.Endpoint = dispatcher.LogEndpoint(ev.Last.Endpoint)
	}
	if in.Last.Filter != "" {
		in.Last.Endpoint = "filter " + in.Last.Filter
	}
	return []ui.WebhookStatus{uiBacklog("event", ev), uiBacklog("inbound", in)}, nil
}

func uiBacklog(webhook string, b sqlite.Backlog) ui.WebhookStatus {
	return ui.WebhookStatus{Webhook: webhook, Pending: b.Pending, Oldest: b.Oldest, Last: ui.LastAttempt{
		At: b.Last.At, Endpoint: b.Last.Endpoint, Result: b.Last.State, Code: b.Last.Status, Reason: b.Last.Reason}}
}
