package main

import (
	"context"

	"github.com/posthorn/posthorn/settings"
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
		ev.Last.Endpoint = settings.LogEndpoint(ev.Last.Endpoint)
	}
	if in.Last.Filter != "" {
		in.Last.Endpoint = "filter " + in.Last.Filter
	}
	out := []ui.WebhookStatus{uiBacklog("event", ev), uiBacklog("inbound", in)}
	// Then one row per filter: the Inbound Webhook's one latest attempt
	// hides a dead filter endpoint while another filter's posts succeed.
	byFilter, err := c.store.InboundBacklogByFilter(ctx)
	if err != nil {
		return nil, err
	}
	set, _, err := c.store.InboundSettings(ctx)
	if err != nil {
		return nil, err
	}
	waiting := map[string]sqlite.FilterBacklog{}
	for _, f := range byFilter {
		waiting[f.Filter] = f
	}
	for _, f := range set.Filters {
		b := waiting[f.Name]
		delete(waiting, f.Name)
		row := uiBacklog("inbound", sqlite.Backlog{Pending: b.Pending, Oldest: b.Oldest, Last: b.Last})
		row.Filter, row.Endpoint = f.Name, f.Endpoint
		out = append(out, row)
	}
	// Posts of a filter deleted or renamed since still wait: shown too.
	for _, b := range byFilter {
		if _, gone := waiting[b.Filter]; gone {
			row := uiBacklog("inbound", sqlite.Backlog{Pending: b.Pending, Oldest: b.Oldest, Last: b.Last})
			row.Filter = b.Filter
			out = append(out, row)
		}
	}
	return out, nil
}

func uiBacklog(webhook string, b sqlite.Backlog) ui.WebhookStatus {
	return ui.WebhookStatus{Webhook: webhook, Pending: b.Pending, Oldest: b.Oldest, Last: ui.LastAttempt{
		At: b.Last.At, Endpoint: b.Last.Endpoint, Result: b.Last.State, Code: b.Last.Status, Reason: b.Last.Reason}}
}
