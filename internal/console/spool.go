package console

import (
	"context"

	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

var _ ui.Spool = Spool{}

// Spool gives the dashboard and the metrics each webhook's backlog and its
// endpoint's latest attempt. Endpoints are passed as stored: the console
// strips them for display in one place (ui's shownEndpoint).
type Spool struct{ Store *sqlite.Store }

func (c Spool) SpoolStatus(ctx context.Context) ([]ui.WebhookStatus, error) {
	ev, err := c.Store.EventWebhookBacklog(ctx)
	if err != nil {
		return nil, err
	}
	in, err := c.Store.InboundBacklog(ctx)
	if err != nil {
		return nil, err
	}
	out := []ui.WebhookStatus{uiBacklog("event", ev), uiBacklog("inbound", in)}
	// The Inbound Webhook's latest attempt went to one of its filters:
	// the row names it.
	out[1].Last.Filter = in.Last.Filter
	// Then one row per filter: the Inbound Webhook's one latest attempt
	// hides a dead filter endpoint while another filter's posts succeed.
	byFilter, err := c.Store.InboundBacklogByFilter(ctx)
	if err != nil {
		return nil, err
	}
	set, _, err := c.Store.InboundSettings(ctx)
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
