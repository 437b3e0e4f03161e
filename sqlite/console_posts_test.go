package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// TestEventPosts: an event's post is the batch of its family whose seq
// range holds it, with the endpoint of that batch's latest attempt; an
// event in no batch, or in one never attempted, has no endpoint.
func TestEventPosts(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	evs := commitEvents(t, s, 40) // seq 1..40
	due := testStart
	err := s.Form(ctx, []Formed{
		{ID: "a", Family: "deliveries", First: 1, Last: 10, Events: 10, FirstTime: evs[0].Time, LastTime: evs[9].Time},
		{ID: "b", Family: "deliveries", First: 11, Last: 20, Events: 10, FirstTime: evs[10].Time, LastTime: evs[19].Time},
	}, map[string]int64{"deliveries": 20}, due)
	if err != nil {
		t.Fatal(err)
	}
	for i, ep := range []string{"https://old.example/hook", "https://new.example/hook"} {
		if err := s.Record(ctx, Attempt{BatchID: "a", Attempt: i + 1, At: due.Add(time.Duration(i) * time.Minute), Endpoint: ep,
			State: []string{"deferred", "succeeded"}[i], Status: []int{503, 200}[i], Response: []byte("answer " + ep)}); err != nil {
			t.Fatal(err)
		}
	}
	wantEndpoint := func(i int) string {
		if i < 10 && evs[i].Type.Family() == "deliveries" {
			return "https://new.example/hook"
		}
		return ""
	}
	for i, e := range evs {
		p, ok, err := s.EventPostOf(ctx, e.Time, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		fam := e.Type.Family()
		switch {
		case fam == "deliveries" && i < 10:
			if !ok || p.BatchID != "a" || p.Last == nil || p.Last.Attempt != 2 || p.Last.Status != 200 ||
				p.Last.Endpoint != "https://new.example/hook" || string(p.Last.Response) != "answer https://new.example/hook" {
				t.Errorf("event %d: post %+v %v, want a's second attempt", i, p, ok)
			}
		case fam == "deliveries" && i < 20:
			if !ok || p.BatchID != "b" || p.Last != nil || p.State != "queued" {
				t.Errorf("event %d: post %+v %v, want b, not attempted", i, p, ok)
			}
		default:
			if ok {
				t.Errorf("event %d (%s): post %+v, want none", i, e.Type, p)
			}
		}
	}
	if _, ok, err := s.EventPostOf(ctx, testStart, "nonesuch"); ok || err != nil {
		t.Errorf("unknown event: %v %v", ok, err)
	}

	// The CSV's pass: the same answer for every event, in time order.
	for _, q := range []event.Query{{}, {Types: []event.Type{event.Succeeded, event.Bounced}}} {
		i := 0
		err = s.EachEventPosted(ctx, q, func(e *event.Event, endpoint string) error {
			for evs[i].ID != e.ID {
				i++
			}
			if endpoint != wantEndpoint(i) {
				t.Errorf("event %d (%s): endpoint %q, want %q", i, e.Type, endpoint, wantEndpoint(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestWebhookLogNewest: the screen's order, also across statuses merged
// from their own index ranges.
func TestWebhookLogNewest(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	evs := commitEvents(t, s, 50)
	var formed []Formed
	for i := range 5 {
		formed = append(formed, Formed{ID: string(rune('a' + i)), Family: "deliveries", First: int64(i*10 + 1), Last: int64(i*10 + 10),
			Events: 10, FirstTime: evs[i*10].Time, LastTime: evs[i*10+9].Time})
	}
	if err := s.Form(ctx, formed, map[string]int64{"deliveries": 50}, testStart); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "d"} {
		if err := s.Record(ctx, Attempt{BatchID: id, Attempt: 1, At: testStart, State: "failed", Status: 500}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(q WebhookLogQuery) string {
		rows, err := s.WebhookLog(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for _, r := range rows {
			out += r.ID
		}
		return out
	}
	for _, tc := range []struct {
		q    WebhookLogQuery
		want string
	}{
		{WebhookLogQuery{}, "abcde"},
		{WebhookLogQuery{Newest: true}, "edcba"},
		{WebhookLogQuery{Newest: true, Limit: 2}, "ed"},
		{WebhookLogQuery{Newest: true, Limit: 2, AfterReceived: evs[30].Time, AfterID: "d"}, "cb"},
		{WebhookLogQuery{Newest: true, Limit: 3, States: []string{"failed", "queued"}}, "edc"},
		{WebhookLogQuery{Newest: true, Limit: 10, States: []string{"failed"}}, "db"},
		{WebhookLogQuery{Limit: 3, States: []string{"queued", "failed"}}, "abc"},
	} {
		if got := ids(tc.q); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.q, got, tc.want)
		}
	}
}
