package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

func genInbound(n int) []event.InboundLogEntry {
	statuses := []event.InboundStatus{event.InboundSucceeded, event.InboundSucceeded, event.InboundDenied,
		event.InboundDeferred, event.InboundFailed, event.InboundQueued}
	out := make([]event.InboundLogEntry, n)
	for i := range out {
		out[i] = event.InboundLogEntry{
			// Two rows share each second, so ties are broken by id.
			Time:   testStart.Add(time.Duration(i/2) * time.Second),
			Status: statuses[i%len(statuses)],
			From:   "Sender <sender@example.com>", To: fmt.Sprintf("in%d@example.org", i),
			Host: "mx1.example.net", MessageID: fmt.Sprintf("<in%d@example.com>", i),
			QueueID: fmt.Sprintf("4Q%06d", i), Filter: "support", Reason: "",
		}
	}
	return out
}

func TestRecentInbound(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	rows := genInbound(600)
	if err := s.LogInbound(ctx, rows); err != nil {
		t.Fatal(err)
	}
	all, err := s.InboundLog(ctx, event.InboundQuery{})
	if err != nil || len(all) != len(rows) {
		t.Fatalf("InboundLog: %d rows, %v", len(all), err)
	}
	mid := testStart.Add(150 * time.Second)
	for name, q := range map[string]event.InboundQuery{
		"all":          {},
		"limit":        {Limit: 101},
		"denied":       {Statuses: []event.InboundStatus{event.InboundDenied}, Limit: 101},
		"two":          {Statuses: []event.InboundStatus{event.InboundFailed, event.InboundQueued, event.InboundFailed}, Limit: 50},
		"period":       {Since: testStart.Add(10 * time.Second), Until: mid, Limit: 101},
		"empty period": {Since: mid, Until: mid},
	} {
		var want []event.InboundLogEntry
		for _, e := range all {
			if (!q.Since.IsZero() && e.Time.Before(q.Since)) || (!q.Until.IsZero() && !e.Time.Before(q.Until)) {
				continue
			}
			if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, e.Status) {
				continue
			}
			want = append(want, e)
		}
		slices.Reverse(want)
		if q.Limit > 0 && len(want) > q.Limit {
			want = want[:q.Limit]
		}
		got, err := s.RecentInbound(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d rows, want %d", name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Errorf("%s: row %d is id %d, want %d", name, i, got[i].ID, want[i].ID)
				break
			}
		}
	}
	if _, err := s.RecentInbound(ctx, event.InboundQuery{Statuses: []event.InboundStatus{"bogus"}}); err == nil {
		t.Error("an unknown status was accepted")
	}
	e, ok, err := s.InboundEntry(ctx, all[17].ID)
	if err != nil || !ok || e.To != all[17].To || !e.Time.Equal(all[17].Time) {
		t.Errorf("InboundEntry: %+v %v %v", e, ok, err)
	}
	if _, ok, err := s.InboundEntry(ctx, 999999); ok || err != nil {
		t.Errorf("InboundEntry of a missing id: %v %v", ok, err)
	}

	since := all[100].Time
	want := map[event.InboundStatus]int64{}
	for _, e := range all {
		if !e.Time.Before(since) {
			want[e.Status]++
		}
	}
	counts, err := s.CountInboundSince(ctx, since)
	if err != nil || fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("CountInboundSince = %v %v, want %v", counts, err, want)
	}
}
