package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestInboundBacklogByFilter: each filter with waiting posts is a row of
// its own, with the latest attempt among them; a filter whose posts all
// succeeded has none.
func TestInboundBacklogByFilter(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	if err := s.Capture(ctx, testMessage()); err != nil { // posts for "orders" and "all"
		t.Fatal(err)
	}
	got, err := s.InboundBacklogByFilter(ctx)
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", []FilterBacklog{
		{Filter: "all", Pending: 1, Oldest: inboundTime.UTC()}, {Filter: "orders", Pending: 1, Oldest: inboundTime.UTC()}}) {
		t.Fatalf("before any attempt: %+v %v", got, err)
	}
	due, err := s.DueInbound(ctx, inboundTime, nil, 10)
	if err != nil || len(due) != 2 {
		t.Fatal(due, err)
	}
	// "orders" is down, "all" works.
	if err := s.RecordInbound(ctx, InboundAttempt{Post: due[0].ID, At: inboundTime.Add(time.Second), Attempted: true, State: "deferred",
		Status: 503, Reason: "HTTP 503", Next: inboundTime.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordInbound(ctx, InboundAttempt{Post: due[1].ID, At: inboundTime.Add(2 * time.Second), Attempted: true, State: "succeeded", Status: 200}); err != nil {
		t.Fatal(err)
	}
	got, err = s.InboundBacklogByFilter(ctx)
	if err != nil || len(got) != 1 || got[0].Filter != "orders" || got[0].Pending != 1 || got[0].Last.State != "deferred" ||
		got[0].Last.Status != 503 || got[0].Last.Reason != "HTTP 503" || got[0].Last.At.IsZero() {
		t.Errorf("after the attempts: %+v %v", got, err)
	}
}

func TestCountWebhookPostsSince(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	var formed []Formed
	for i := range 6 {
		formed = append(formed, Formed{ID: fmt.Sprint("b", i), Family: "deliveries", First: int64(i + 1), Last: int64(i + 1), Events: 1,
			FirstTime: testStart.Add(time.Duration(i) * time.Hour), LastTime: testStart.Add(time.Duration(i) * time.Hour)})
	}
	if err := s.Form(ctx, formed, map[string]int64{"deliveries": 6}, testStart); err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{StateSucceeded, StateFailed, StateSucceeded, StateDeferred} {
		if err := s.Record(ctx, Attempt{BatchID: fmt.Sprint("b", i+1), Attempt: 1, At: testStart, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	// b0 (queued) is before the period.
	got, err := s.CountWebhookPostsSince(ctx, testStart.Add(time.Hour))
	if err != nil || fmt.Sprint(got) != "map[deferred:1 failed:1 queued:1 succeeded:2]" {
		t.Errorf("counts %v %v", got, err)
	}
}
