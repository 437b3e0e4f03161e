package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

var (
	pruneT0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pruneNow = pruneT0.Add(100 * 24 * time.Hour)
	pruneCut = pruneNow.Add(-30 * 24 * time.Hour)
)

// pruneEvent is a log reader's event at t; tracked ones have a bounce
// address as their return path (testRules), so their deliveries and
// bounces are in bounce_lookup.
func pruneEvent(n int, typ event.Type, t time.Time) event.Event {
	e := event.Event{
		ID: fmt.Sprintf("ev-%03d", n), Type: typ, Time: t, Host: "mx1", QueueID: fmt.Sprintf("Q%d", n/3),
		MessageID: fmt.Sprintf("<m%d@app.test>", n/3), ReturnPath: "bounces@bounce.shop.test",
		To: fmt.Sprintf("user%d@example.org", n%7),
	}
	if typ == event.Bounced {
		e.DSN, e.Reason, e.Class = "5.2.2", "550 5.2.2 mailbox full", event.ClassOverCapacity
	}
	return e
}

func count(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// tableCounts is the number of rows of each table Prune deletes from.
func tableCounts(t *testing.T, s *Store) map[string]int {
	out := map[string]int{}
	for _, tb := range PruneTables {
		out[tb] = count(t, s, "SELECT count(*) FROM "+tb)
	}
	return out
}

// noOrphans checks that every row that points at another still finds it,
// as the console's detail views and the Event Webhook's replay need.
func noOrphans(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{
		`SELECT count(*) FROM webhook_attempts WHERE batch_id NOT IN (SELECT batch_id FROM webhook_batches)`,
		`SELECT count(*) FROM bounce_lookup WHERE seq NOT IN (SELECT seq FROM events)`,
		`SELECT count(*) FROM inbound_log WHERE post IS NOT NULL AND post NOT IN (SELECT id FROM inbound_posts)`,
	} {
		if n := count(t, s, q); n != 0 {
			t.Errorf("%d orphans: %s", n, q)
		}
	}
	ctx := context.Background()
	// Every batch kept has all its events, for its detail and a replay.
	batches, err := s.WebhookLog(ctx, WebhookLogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		evs, err := s.BatchEvents(ctx, b.ID)
		if err != nil || len(evs) != b.Events {
			t.Errorf("batch %s (%s) has %d of its %d events (%v)", b.ID, b.State, len(evs), b.Events, err)
		}
		if _, _, ok, err := s.WebhookBatchByID(ctx, b.ID); !ok || err != nil {
			t.Errorf("detail of batch %s: %v %v", b.ID, ok, err)
		}
	}
	// The console's reads and the CSV's walk see every stored event.
	n := 0
	if err := s.EachEvent(ctx, event.Query{}, func(*event.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := count(t, s, `SELECT count(*) FROM events`); n != want {
		t.Errorf("EachEvent saw %d events, the table has %d", n, want)
	}
	if _, err := s.RecentEvents(ctx, event.Query{Limit: 100}); err != nil {
		t.Error(err)
	}
	if _, err := s.InboundLog(ctx, event.InboundQuery{}); err != nil {
		t.Error(err)
	}
	if _, err := s.Blocks(ctx, BlockQuery{Removed: true}); err != nil {
		t.Error(err)
	}
}

// TestPrune fills every log with rows on both sides of the cutoff, some
// still pending, and prunes in batches of 3 rows: only finished rows older
// than the cutoff go, and what stays is whole.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	rules := &testRules{now: pruneT0, at: pruneT0}
	s := openTest(t, Options{BounceRules: rules, Now: func() time.Time { return pruneNow }})

	// Old events, then formed into batches of 4 as the dispatcher would.
	var old []event.Event
	types := []event.Type{event.Queued, event.Succeeded, event.Bounced}
	for i := range 30 {
		old = append(old, pruneEvent(i, types[i%3], pruneT0.Add(time.Duration(i)*time.Minute)))
	}
	if err := s.Commit(ctx, event.Batch{Events: old}); err != nil {
		t.Fatal(err)
	}
	ids := formAll(t, s, 4, pruneT0)
	if len(ids) < 6 {
		t.Fatalf("formed %d batches", len(ids))
	}
	// The families without events are skipped up to here too.
	if err := s.Form(ctx, nil, map[string]int64{"deliveries": 30, "bounces": 30, "blocks": 30}, pruneT0); err != nil {
		t.Fatal(err)
	}
	// Every batch was attempted; one is deferred (pending), one failed,
	// one is leased right now.
	pendingID, leasedID := ids[len(ids)/2], ids[1]
	at := pruneT0.Add(time.Hour)
	for i, id := range ids {
		a := Attempt{BatchID: id, Attempt: 1, At: at, Host: "mx1", Endpoint: "https://hook.example/", State: StateSucceeded, Status: 200}
		switch {
		case id == pendingID:
			a.State, a.Status, a.Next = StateDeferred, 503, pruneNow.Add(time.Minute)
		case i == 0:
			a.State, a.Status, a.Reason = StateFailed, 400, "bad request"
		}
		if err := s.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Requeue(ctx, WebhookLogQuery{ID: leasedID}, pruneT0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimDue(ctx, pruneNow, pruneNow.Add(time.Minute), 1); err != nil || len(got) != 1 || got[0] != leasedID {
		t.Fatalf("claim = %v, %v", got, err)
	}
	// Old events not yet in a batch, and recent ones.
	unformed := []event.Event{pruneEvent(100, event.Succeeded, pruneT0), pruneEvent(101, event.Bounced, pruneT0)}
	recent := []event.Event{pruneEvent(200, event.Succeeded, pruneNow.Add(-time.Hour)), pruneEvent(201, event.Bounced, pruneNow.Add(-time.Hour))}
	recent[1].To = "recent@example.org"
	if err := s.Commit(ctx, event.Batch{Events: append(unformed, recent...)}); err != nil {
		t.Fatal(err)
	}

	// Inbound: a message with one POST done and one pending, a message
	// done, a denied row, all old; a recent denied row.
	msg := func(qid string, received time.Time, rcpts ...event.InboundRecipient) *event.InboundMessage {
		return &event.InboundMessage{Host: "mx1", QueueID: qid, Received: received, EnvelopeFrom: "s@customer.example",
			From: "a@customer.example", MessageID: "<" + qid + "@customer.example>", Recipients: rcpts}
	}
	if err := s.Capture(ctx, msg("IN1", pruneT0,
		event.InboundRecipient{Address: "orders@shop.example", Filters: []string{"orders"}},
		event.InboundRecipient{Address: "nobody@shop.example"},
		event.InboundRecipient{Address: "billing@shop.example", Filters: []string{"billing"}})); err != nil {
		t.Fatal(err)
	}
	if err := s.Capture(ctx, msg("IN2", pruneT0.Add(time.Minute),
		event.InboundRecipient{Address: "orders@shop.example", Filters: []string{"orders"}})); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueInbound(ctx, pruneNow, nil, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("due = %+v, %v", due, err)
	}
	var billing int64
	for _, p := range due {
		if p.Filter == "billing" {
			billing = p.ID
			continue
		}
		if err := s.RecordInbound(ctx, InboundAttempt{Post: p.ID, At: pruneT0.Add(time.Hour), Attempted: true, State: "succeeded", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LogInbound(ctx, []event.InboundLogEntry{
		{Time: pruneT0, Status: event.InboundDenied, To: "spam@other.example", Reason: "domain not allowed"},
		{Time: pruneNow.Add(-time.Hour), Status: event.InboundDenied, To: "spam2@other.example", Reason: "domain not allowed"},
	}); err != nil {
		t.Fatal(err)
	}

	// Bounce messages: one old, one recent.
	for i, at := range []time.Time{pruneT0, pruneNow.Add(-time.Hour)} {
		d := DSN{ID: fmt.Sprintf("<dsn%d@remote.example>", i), Host: "mx1", Received: at, MessageID: "<unknown@app.test>",
			Recipients: []DSNRecipient{{Address: "gone@example.org", Status: "5.1.1", Class: event.ClassUnknownUser}}}
		if _, err := s.RecordDSN(ctx, d); err != nil {
			t.Fatal(err)
		}
	}

	// Suppression list: removed long ago, live, removed lately, and the
	// newest entry removed long ago (kept: its id is the newest).
	for _, b := range []struct {
		addr    string
		removed time.Time
	}{
		{"old1@example.org", pruneT0.Add(time.Hour)},
		{"old2@example.org", pruneT0.Add(time.Hour)},
		{"live@example.org", time.Time{}},
		{"lately@example.org", pruneNow.Add(-time.Hour)},
		{"newest@example.org", pruneT0.Add(time.Hour)},
	} {
		if _, _, err := s.AddBlock(ctx, NewBlock{Address: b.addr, Reason: "manual", Now: pruneT0}); err != nil {
			t.Fatal(err)
		}
		if !b.removed.IsZero() {
			if _, _, err := s.DeleteBlock(ctx, b.addr, b.removed); err != nil {
				t.Fatal(err)
			}
		}
	}

	before := tableCounts(t, s)
	pendingBatch, _, _, err := s.WebhookBatchByID(ctx, pendingID)
	if err != nil {
		t.Fatal(err)
	}
	formed, err := s.Progress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	minFormed := formed["deliveries"]
	for _, f := range formed {
		minFormed = min(minFormed, f)
	}

	unformedBefore := count(t, s, `SELECT count(*) FROM events WHERE seq > ?`, minFormed)

	got, err := s.Prune(ctx, pruneCut, 3)
	if err != nil {
		t.Fatal(err)
	}
	after := tableCounts(t, s)
	for _, tb := range PruneTables {
		if int64(before[tb]-after[tb]) != got[tb] {
			t.Errorf("%s: %d rows before, %d after, Prune says %d deleted", tb, before[tb], after[tb], got[tb])
		}
	}
	for _, tb := range []string{"webhook_batches", "webhook_attempts", "events", "bounce_lookup", "inbound_log", "dsns", "bounce_counts", "blocks"} {
		if got[tb] == 0 {
			t.Errorf("nothing pruned from %s: %v", tb, got)
		}
	}
	t.Logf("pruned %v", got)
	noOrphans(t, s)

	// Batches: only the pending and the leased one are left.
	left, err := s.WebhookLog(ctx, WebhookLogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var leftIDs []string
	for _, b := range left {
		leftIDs = append(leftIDs, b.ID)
	}
	if want := []string{pendingID, leasedID}; len(left) != 2 || !(leftIDs[0] == want[0] && leftIDs[1] == want[1] || leftIDs[0] == want[1] && leftIDs[1] == want[0]) {
		t.Errorf("batches left %v, want the pending %s and the leased %s", leftIDs, pendingID, leasedID)
	}
	// Events: every old one left is at or after the first event of a
	// batch kept, or not yet formed, or the newest.
	floor := pendingBatch.FirstSeq
	for _, b := range left {
		floor = min(floor, b.FirstSeq)
	}
	if n := count(t, s, `SELECT count(*) FROM events WHERE time < ? AND seq < ?`, boundNanos(pruneCut), floor); n != 0 {
		t.Errorf("%d old events before the first kept batch's left", n)
	}
	for _, e := range append(unformed, recent...) {
		if _, ok, err := s.EventAt(ctx, e.Time, e.ID); !ok || err != nil {
			t.Errorf("event %s (unformed or recent) pruned: %v", e.ID, err)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM events WHERE seq > ?`, minFormed); n != unformedBefore {
		t.Errorf("%d unformed events left, want all %d", n, unformedBefore)
	}
	// Inbound: the pending POST's row and the recent row.
	rows, err := s.InboundLog(ctx, event.InboundQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Status != event.InboundQueued || rows[0].Filter != "billing" || rows[1].To != "spam2@other.example" {
		t.Errorf("inbound log left: %+v", rows)
	}
	// DSNs, counts, list.
	if n := count(t, s, `SELECT count(*) FROM dsns`); n != 1 {
		t.Errorf("%d bounce messages left, want the recent one", n)
	}
	if c := counts(t, s, "recent@example.org"); c[event.ClassOverCapacity] != 1 {
		t.Errorf("recent count pruned: %v", c)
	}
	if c := counts(t, s, "user1@example.org"); len(c) != 0 {
		t.Errorf("old count kept: %v", c)
	}
	bs, err := s.Blocks(ctx, BlockQuery{Removed: true})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, b := range bs {
		addrs = append(addrs, b.Address)
	}
	if fmt.Sprint(addrs) != "[newest@example.org lately@example.org live@example.org]" {
		t.Errorf("list entries left: %v", addrs)
	}

	// Nothing more to do...
	if again, err := s.Prune(ctx, pruneCut, 3); err != nil || again.Total() != 0 {
		t.Errorf("second prune = %v, %v", again, err)
	}
	// ... until the pending batch and POST end: then they go too, and
	// the events after the batch, but not those of the batch still leased
	// nor the unformed ones.
	if err := s.RecordInbound(ctx, InboundAttempt{Post: billing, At: pruneNow, Attempted: true, State: "succeeded", Status: 200}); err != nil {
		t.Errorf("the pending POST after pruning: %v", err)
	}
	if err := s.Record(ctx, Attempt{BatchID: pendingID, Attempt: 2, At: pruneNow, State: StateSucceeded, Status: 200}); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Prune(ctx, pruneCut, 3); err != nil || again["webhook_batches"] != 1 || again["inbound_log"] != 1 {
		t.Errorf("prune after the batch ended = %v, %v", again, err)
	}
	noOrphans(t, s)
}

// TestPruneKeepsNewestEvent: with every event old and posted, the newest
// stays, so that the next event stored gets the next position rather than
// one the Event Webhook's progress has passed.
func TestPruneKeepsNewestEvent(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{})
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, pruneEvent(i, event.Succeeded, pruneT0.Add(time.Duration(i)*time.Second)))
	}
	if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	// Every family switched off: nothing is batched, progress moves on.
	if err := s.Form(ctx, nil, map[string]int64{"deliveries": 10, "bounces": 10, "blocks": 10}, pruneT0); err != nil {
		t.Fatal(err)
	}
	got, err := s.Prune(ctx, pruneCut, 4)
	if err != nil || got["events"] != 9 {
		t.Fatalf("Prune = %v, %v; want 9 events", got, err)
	}
	if err := s.Commit(ctx, event.Batch{Events: []event.Event{pruneEvent(50, event.Succeeded, pruneNow)}}); err != nil {
		t.Fatal(err)
	}
	if last, err := s.LastSeq(ctx); err != nil || last != 11 {
		t.Errorf("next event at position %d (%v), want 11", last, err)
	}
}

// TestPruneStops: a cancelled prune stops between transactions and
// reports what it deleted.
func TestPruneStops(t *testing.T) {
	s := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := s.Prune(ctx, pruneCut, 0)
	if err == nil || got.Total() != 0 {
		t.Errorf("Prune after cancel = %v, %v", got, err)
	}
}

// TestPruneQueryPlans checks that the walks read the time indexes rather
// than the tables.
func TestPruneQueryPlans(t *testing.T) {
	s := openTest(t, Options{})
	for _, c := range []struct{ query, index string }{
		{`SELECT seq, time, id, type, message_id FROM events WHERE time < 1 AND (time, id) > (0, '') ORDER BY time, id LIMIT 5`, "events_time"},
		{`SELECT rowid, first_time, last_time, batch_id, state, coalesce(lease_until > 1, 0) FROM webhook_batches
			WHERE first_time < 1 AND (first_time, rowid) > (0, 0) ORDER BY first_time, rowid LIMIT 5`, "webhook_batches_time"},
		{`SELECT id, received, status FROM inbound_log WHERE received < 1 AND (received, id) > (0, 0) ORDER BY received, id LIMIT 5`, "inbound_log_received"},
		{`SELECT min(first_seq) FROM webhook_batches WHERE first_time < 1`, "webhook_batches_time"},
		{`DELETE FROM bounce_lookup WHERE message_id = '' AND seq = 1`, "PRIMARY KEY"},
		{`SELECT address, class FROM bounce_counts WHERE (address, class) > ('', 0) AND last_at < 1 ORDER BY address, class LIMIT 5`, "PRIMARY KEY"},
		{`SELECT id FROM dsns WHERE id > '' AND received_at < 1 ORDER BY id LIMIT 5`, "PRIMARY KEY"},
	} {
		plan := queryPlan(t, s.w, c.query)
		if !strings.Contains(plan, c.index) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s\nplan:\n%s\nwant %s, no sort", c.query, plan, c.index)
		}
	}
}

// BenchmarkPruneEvents prunes 200,000 posted events (genEvents' busy
// relay) in batches of DefaultPruneBatch and reports the time per
// transaction, which is how long the log reader and the milter may wait.
func BenchmarkPruneEvents(b *testing.B) {
	const n = 200000
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		s := openTest(b, Options{})
		for i := 0; i < n; i += 5000 {
			if err := s.Commit(ctx, event.Batch{Events: genEvents(i, 5000)}); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Form(ctx, nil, map[string]int64{"deliveries": n, "bounces": n, "blocks": n}, testStart); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		got, err := s.Prune(ctx, testStart.Add(24*time.Hour), 0)
		took := time.Since(start)
		if err != nil || got["events"] != n-1 {
			b.Fatalf("Prune = %v, %v", got, err)
		}
		b.ReportMetric(float64(took.Microseconds())/1000/float64((n+DefaultPruneBatch-1)/DefaultPruneBatch), "ms/tx")
		b.ReportMetric(float64(took.Nanoseconds())/n, "ns/event")
	}
}

// formOld stores events at the given times, all deliveries, forms them into
// batches of size and moves every family's progress past them; it returns
// the batches' ids, oldest first.
func formOld(t *testing.T, s *Store, size int, times ...time.Time) []string {
	t.Helper()
	ctx := context.Background()
	var evs []event.Event
	for i, at := range times {
		evs = append(evs, pruneEvent(i, event.Succeeded, at))
	}
	if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	ids := formAll(t, s, size, pruneT0)
	n := int64(len(times))
	if err := s.Form(ctx, nil, map[string]int64{"deliveries": n, "bounces": n, "blocks": n}, pruneT0); err != nil {
		t.Fatal(err)
	}
	// The newest event is never pruned: one after all of them.
	if err := s.Commit(ctx, event.Batch{Events: []event.Event{pruneEvent(999, event.Queued, pruneNow)}}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestPruneFailedWithExpiredLease: batches failed after their dispatcher's
// lease ran out (FailOldest, Expire, or a row an older binary failed with
// the lease left in place) are pruned with their events, rather than held,
// with every event after them, until serve restarts.
func TestPruneFailedWithExpiredLease(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{Now: func() time.Time { return pruneNow }})
	var times []time.Time
	for i := range 12 {
		times = append(times, pruneT0.Add(time.Duration(i)*time.Minute))
	}
	ids := formOld(t, s, 4, times...)
	if len(ids) != 3 {
		t.Fatalf("formed %v, want 3 batches", ids)
	}
	// A dispatcher claims them all and dies.
	if got, err := s.ClaimDue(ctx, pruneT0, pruneT0.Add(time.Minute), 10); err != nil || len(got) != 3 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	later := pruneT0.Add(2 * time.Hour)
	if b, _, err := s.FailOldest(ctx, 4, later, "backlog over its limit"); err != nil || b != 1 {
		t.Fatalf("FailOldest = %d, %v", b, err)
	}
	if b, _, _, err := s.Expire(ctx, later, time.Hour, false, func(int) string { return "retry period over" }); err != nil || b != 2 {
		t.Fatalf("Expire = %d, %v", b, err)
	}
	for _, id := range ids {
		b, _, ok, err := s.WebhookBatchByID(ctx, id)
		if err != nil || !ok || b.State != StateFailed || b.Leased {
			t.Errorf("batch %s: %+v %v %v; want failed, not leased", id, b, ok, err)
		}
	}
	// As an older binary left them: failed, the expired lease in place.
	if _, err := s.w.Exec(`UPDATE webhook_batches SET lease_until = ? WHERE batch_id = ?`,
		boundNanos(pruneT0.Add(time.Minute)), ids[2]); err != nil {
		t.Fatal(err)
	}
	got, err := s.Prune(ctx, pruneCut, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got["webhook_batches"] != 3 || got["events"] != 12 {
		t.Errorf("Prune = %v; want the 3 batches and their 12 events", got)
	}
	noOrphans(t, s)
}

// TestPruneBatchAcrossCutoff: a finished batch with events on both sides of
// the cutoff stays, with all its events, until its last event is old too;
// its newer events keep the post that carried them.
func TestPruneBatchAcrossCutoff(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{Now: func() time.Time { return pruneNow }})
	ids := formOld(t, s, 4,
		pruneT0, pruneT0.Add(time.Minute), pruneT0.Add(2*time.Minute), pruneT0.Add(3*time.Minute),
		pruneCut.Add(-2*time.Minute), pruneCut.Add(-time.Minute), pruneCut.Add(time.Minute), pruneCut.Add(2*time.Minute))
	if len(ids) != 2 {
		t.Fatalf("formed %v, want 2 batches", ids)
	}
	for _, id := range ids {
		if err := s.Record(ctx, Attempt{BatchID: id, Attempt: 1, At: pruneCut.Add(time.Hour), Host: "mx1",
			Endpoint: "https://hook.example/", State: StateSucceeded, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Prune(ctx, pruneCut, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got["webhook_batches"] != 1 || got["events"] != 4 {
		t.Errorf("Prune = %v; want the old batch and its 4 events", got)
	}
	if _, _, ok, err := s.WebhookBatchByID(ctx, ids[1]); !ok || err != nil {
		t.Errorf("the batch across the cutoff was pruned: %v", err)
	}
	if evs, err := s.BatchEvents(ctx, ids[1]); err != nil || len(evs) != 4 {
		t.Errorf("the batch across the cutoff has %d events (%v), want 4", len(evs), err)
	}
	noOrphans(t, s)
	// Once its last event is old, it goes with all of them.
	got, err = s.Prune(ctx, pruneCut.Add(3*time.Minute), 3)
	if err != nil || got["webhook_batches"] != 1 || got["events"] != 4 {
		t.Errorf("Prune later = %v, %v; want the batch and its 4 events", got, err)
	}
	noOrphans(t, s)
}
