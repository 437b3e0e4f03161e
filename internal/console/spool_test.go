package console

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// TestConsoleSpool runs the dashboard's backlog and health queries
// against the real schema: nothing at first, then the oldest pending
// batch and message and the latest attempt of each webhook.
func TestConsoleSpool(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	spool := Spool{Store: store}

	got, err := spool.SpoolStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (ui.WebhookStatus{Webhook: "event"}) || got[1] != (ui.WebhookStatus{Webhook: "inbound"}) {
		t.Fatalf("empty store: %+v", got)
	}

	base := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	var formed []sqlite.Formed
	for i, id := range []string{"b1", "b2", "b3"} {
		at := base.Add(time.Duration(i) * time.Minute)
		formed = append(formed, sqlite.Formed{ID: id, Family: "deliveries", First: int64(2*i + 1), Last: int64(2*i + 2), Events: 2,
			FirstTime: at, LastTime: at, Host: "mx1", Endpoint: "https://hooks.example.com/e"})
	}
	if err := store.Form(ctx, formed, map[string]int64{"deliveries": 6}, base); err != nil {
		t.Fatal(err)
	}
	for _, a := range []sqlite.Attempt{
		{BatchID: "b1", Attempt: 1, At: base.Add(time.Hour), State: sqlite.StateSucceeded, Status: 200},
		{BatchID: "b2", Attempt: 1, At: base.Add(2 * time.Hour), State: sqlite.StateDeferred, Status: 503, Reason: "HTTP 503", Next: base.Add(3 * time.Hour)},
	} {
		a.Endpoint = "https://hooks.example.com/e"
		if err := store.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	m := &event.InboundMessage{Host: "mx1", QueueID: "Q1", Received: base.Add(4 * time.Hour), MessageID: "<m@x>",
		Recipients: []event.InboundRecipient{{Address: "a@shop.example", Filters: []string{"orders"}}}}
	if err := store.Capture(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err = spool.SpoolStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev, in := got[0], got[1]
	if ev.Pending != 4 || !ev.Oldest.Equal(base.Add(time.Minute)) || !ev.Last.At.Equal(base.Add(2*time.Hour)) ||
		ev.Last.Result != "deferred" || ev.Last.Code != 503 || ev.Last.Endpoint != "https://hooks.example.com/e" {
		t.Errorf("event webhook: %+v", ev)
	}
	if in.Pending != 1 || in.Oldest.IsZero() || !in.Last.At.IsZero() {
		t.Errorf("inbound webhook before an attempt: %+v", in)
	}

	due, err := store.DueInbound(ctx, base.Add(5*time.Hour), nil, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("due inbound: %v %v", due, err)
	}
	if err := store.RecordInbound(ctx, sqlite.InboundAttempt{Post: due[0].ID, At: base.Add(5 * time.Hour), Attempted: true,
		State: "failed", Status: 410, Reason: "HTTP 410: gone"}); err != nil {
		t.Fatal(err)
	}
	got, err = spool.SpoolStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in := got[1]; in.Pending != 0 || !in.Oldest.IsZero() || in.Last.At.IsZero() || in.Last.Result != "failed" ||
		in.Last.Reason != "HTTP 410: gone" || in.Last.Filter != "orders" {
		t.Errorf("inbound webhook after a failed attempt: %+v", in)
	}
}

// TestConsoleSpoolFilters: after the webhooks' rows, one row per filter of
// the settings with its waiting posts and the latest attempt among them,
// so that a dead filter endpoint shows while another filter's posts
// succeed; a filter gone from the settings whose posts still wait too.
func TestConsoleSpoolFilters(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	to := settings.Condition{Header: settings.ToHeader, Pattern: "@shop\\.example$"}
	in := settings.Inbound{Domains: []string{"shop.example"}, Filters: []settings.InboundFilter{
		settings.NewInboundFilter("orders", "https://orders.example/hook?token=SECRET", to),
		settings.NewInboundFilter("support", "https://support.example/hook", to),
	}}
	if err := store.SaveInboundSettings(ctx, in, false); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	m := &event.InboundMessage{Host: "mx1", QueueID: "Q1", Received: base, MessageID: "<m@x>",
		Recipients: []event.InboundRecipient{{Address: "a@shop.example", Filters: []string{"orders", "support", "old"}}}}
	if err := store.Capture(ctx, m); err != nil {
		t.Fatal(err)
	}
	due, err := store.DueInbound(ctx, base, nil, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("due inbound: %v %v", due, err)
	}
	for _, p := range due {
		a := sqlite.InboundAttempt{Post: p.ID, At: base.Add(time.Minute), Attempted: true, State: "succeeded", Status: 200}
		if p.Filter == "orders" {
			a.State, a.Status, a.Reason, a.Next = "deferred", 503, "HTTP 503", base.Add(time.Hour)
		}
		if p.Filter == "old" {
			continue
		}
		if err := store.RecordInbound(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Spool{Store: store}.SpoolStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("rows %+v", got)
	}
	orders, support, old := got[2], got[3], got[4]
	if orders.Filter != "orders" || orders.Endpoint != "https://orders.example/hook?token=SECRET" || orders.Pending != 1 ||
		orders.Last.Result != "deferred" || orders.Last.Code != 503 || orders.Last.Reason != "HTTP 503" {
		t.Errorf("the dead filter: %+v", orders)
	}
	if support.Filter != "support" || support.Pending != 0 || !support.Last.At.IsZero() {
		t.Errorf("the working filter: %+v", support)
	}
	if old.Filter != "old" || old.Endpoint != "" || old.Pending != 1 {
		t.Errorf("the filter gone from the settings: %+v", old)
	}
}
