package sqlite

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestWebhookLogPeriodOverlap: log events and replay select the batches
// with any event in the period, so a batch whose events straddle --since
// is in it (README, "posthorn log events").
func TestWebhookLogPeriodOverlap(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	at := func(hhmm string) time.Time {
		tm, err := time.Parse("15:04:05", hhmm)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2026, 3, 14, tm.Hour(), tm.Minute(), tm.Second(), 0, time.UTC)
	}
	batches := []Formed{
		{ID: "early", Family: "deliveries", First: 1, Last: 2, Events: 2, FirstTime: at("04:00:00"), LastTime: at("04:10:00")},
		{ID: "straddle", Family: "deliveries", First: 3, Last: 4, Events: 2, FirstTime: at("05:00:00"), LastTime: at("06:00:00")},
		{ID: "late", Family: "deliveries", First: 5, Last: 6, Events: 2, FirstTime: at("06:40:00"), LastTime: at("06:50:00")},
	}
	if err := s.Form(ctx, batches, nil, at("07:00:00")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		since, until string // "" for none
		want         []string
	}{
		{"inside the straddling batch", "05:30:00", "06:30:00", []string{"straddle"}},
		{"since its last event", "06:00:00", "06:30:00", []string{"straddle"}},
		{"since just after it", "06:00:01", "", []string{"late"}},
		{"until its first event, exclusive", "", "05:00:00", []string{"early"}},
		{"until just after its first event", "", "05:00:01", []string{"early", "straddle"}},
		{"since only", "04:05:00", "", []string{"early", "straddle", "late"}},
		{"between batches", "06:10:00", "06:30:00", nil},
		{"no bounds", "", "", []string{"early", "straddle", "late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q WebhookLogQuery
			if tc.since != "" {
				q.Since = at(tc.since)
			}
			if tc.until != "" {
				q.Until = at(tc.until)
			}
			rows, err := s.WebhookLog(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range rows {
				got = append(got, b.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("WebhookLog = %q, want %q", got, tc.want)
			}
		})
	}
	n, events, err := s.Requeue(ctx, WebhookLogQuery{Since: at("05:30:00"), Until: at("06:30:00")}, at("07:00:00"))
	if err != nil || n != 1 || events != 2 {
		t.Errorf("Requeue of 05:30 to 06:30 = %d batches, %d events, %v; want the straddling batch", n, events, err)
	}
}

// TestWebhookLogPlans: with an end to the period (the console always has
// one, and so does a bounded log events or replay) the query seeks a time
// index instead of reading the whole table.
func TestWebhookLogPlans(t *testing.T) {
	s := openTest(t, Options{})
	since, until := testStart, testStart.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		q     WebhookLogQuery
		index string
	}{
		{"period", WebhookLogQuery{Since: since, Until: until, Limit: 101}, "webhook_batches_time (first_time<?)"},
		{"period and status", WebhookLogQuery{Since: since, Until: until, States: []string{StateFailed}, Limit: 101}, "webhook_batches_state_time (state=? AND first_time<?)"},
		{"next page", WebhookLogQuery{Since: since, Until: until, AfterReceived: since, AfterID: "x", Limit: 1000}, "webhook_batches_time ("},
		{"status only", WebhookLogQuery{Since: since, States: []string{StateDeferred}}, "webhook_batches_state_time (state=?)"},
	} {
		where, args, err := tc.q.where()
		if err != nil {
			t.Fatal(err)
		}
		text := queryPlan(t, s.r, "SELECT "+batchColumns+" FROM webhook_batches"+where+
			" ORDER BY first_time, batch_id LIMIT ?", append(args, 100)...)
		if !strings.Contains(text, "SEARCH webhook_batches USING INDEX "+tc.index) || strings.Contains(text, "SCAN") {
			t.Errorf("%s: plan %q, want a search of %s", tc.name, text, tc.index)
		}
	}
}
