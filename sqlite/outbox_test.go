package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/dispatcher/outboxtest"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// The store is the dispatcher's outbox; cmd/posthorn asserts it too.
var _ dispatcher.Outbox = (*Store)(nil)

// storeHarness is the real store, in a file under t.TempDir, for the
// scenarios the in-memory outbox runs.
func storeHarness(t *testing.T) outboxtest.Harness {
	s := openTest(t, Options{})
	ctx := context.Background()
	failOn := ""
	outboxHooks.Store(s, func(op string) error {
		if op == failOn {
			return fmt.Errorf("%s: %w", op, outboxtest.ErrInjected)
		}
		return nil
	})
	t.Cleanup(func() { outboxHooks.Delete(s) })
	return outboxtest.Harness{
		Outbox: s,
		Store: func(t testing.TB, evs ...event.Event) {
			t.Helper()
			if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
				t.Fatal(err)
			}
		},
		Inspect: func(t testing.TB, id string) (outboxtest.Batch, bool) {
			t.Helper()
			b, atts, ok, err := s.WebhookBatchByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return outboxtest.Batch{}, false
			}
			evs, err := s.BatchEvents(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			out := outboxtest.Batch{ID: b.ID, Family: b.Family, State: b.State, ContentType: b.ContentType, Body: b.Body,
				Attempts: b.Attempts, Next: b.NextAttempt, Leased: b.Leased, Reason: b.Reason, Host: b.Host, First: b.FirstSeq}
			for _, e := range evs {
				out.Events = append(out.Events, e.ID)
			}
			for _, a := range atts {
				out.Records = append(out.Records, dispatcher.Attempt{BatchID: id, Attempt: a.Attempt, At: a.At, Host: a.Host,
					Endpoint: a.Endpoint, State: a.State, Status: a.Status, Reason: a.Reason, Response: a.Response, Next: a.NextAttempt})
			}
			return out, true
		},
		IDs: func(t testing.TB) []string {
			t.Helper()
			rows, err := s.WebhookLog(ctx, WebhookLogQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, b := range rows {
				ids = append(ids, b.ID)
			}
			return ids
		},
		FailOn: func(method string) { failOn = method },
		Replay: func(t testing.TB, now time.Time) int {
			t.Helper()
			n, _, err := s.Requeue(ctx, WebhookLogQuery{States: []string{StateFailed}}, now)
			if err != nil {
				t.Fatal(err)
			}
			return n
		},
	}
}

// TestOutboxScenarios runs the dispatcher's scenarios against the store.
func TestOutboxScenarios(t *testing.T) {
	outboxtest.Run(t, storeHarness)
}

// formAll forms every stored event into batches of size n with the
// dispatcher's Batcher, as the dispatcher does, and returns their ids.
func formAll(t *testing.T, s *Store, n int, due time.Time) []string {
	t.Helper()
	ctx := context.Background()
	evs, err := s.Unformed(ctx, 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	b := dispatcher.NewBatcher(n, time.Hour)
	var closed []dispatcher.Batch
	for _, p := range evs {
		got, full, err := b.Add(due, p)
		if err != nil {
			t.Fatal(err)
		}
		if full {
			closed = append(closed, got)
		}
	}
	closed = append(closed, b.Flush()...)
	var formed []Formed
	var ids []string
	prog := map[string]int64{}
	for _, c := range closed {
		formed = append(formed, dispatcher.FromBatch(c, "mx1", "https://hook.example/"))
		ids = append(ids, c.ID)
		prog[c.Family] = max(prog[c.Family], c.Last)
	}
	if err := s.Form(ctx, formed, prog, due); err != nil {
		t.Fatal(err)
	}
	return ids
}

// A batch's members are its family's events in its range, whatever else
// was stored between them.
func TestBatchEventsRange(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	evs := genEvents(0, 60) // all types interleaved
	if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	ids := formAll(t, s, 7, testStart)
	seen := map[string]bool{}
	for _, id := range ids {
		got, err := s.BatchEvents(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var gotIDs []string
		for _, e := range got {
			gotIDs = append(gotIDs, e.ID)
			if seen[e.ID] {
				t.Errorf("event %s in two batches", e.ID)
			}
			seen[e.ID] = true
		}
		fam := got[0].Type.Family()
		if dispatcher.BatchID(fam, gotIDs) != id {
			t.Errorf("batch %s: its events give id %s", id, dispatcher.BatchID(fam, gotIDs))
		}
		for _, e := range got {
			orig := evs[slices.IndexFunc(evs, func(o event.Event) bool { return o.ID == e.ID })]
			if !e.Time.Equal(orig.Time) || e.Reason != orig.Reason || e.Class != orig.Class || e.To != orig.To {
				t.Errorf("event %s read back as %+v", e.ID, e)
			}
		}
	}
	if len(seen) != len(evs) {
		t.Errorf("%d events in batches, want %d", len(seen), len(evs))
	}
	last, _ := s.LastSeq(ctx)
	if p, _ := s.Progress(ctx); p["deliveries"] != last-1 || p["bounces"] != last || p["blocks"] != 0 {
		t.Errorf("progress %v, last event %d", p, last)
	}
	// Forming the same batches again changes nothing.
	before, _ := s.WebhookLog(ctx, WebhookLogQuery{})
	formAll(t, s, 7, testStart.Add(time.Hour))
	if after, _ := s.WebhookLog(ctx, WebhookLogQuery{}); len(after) != len(before) || !after[0].NextAttempt.Equal(testStart) {
		t.Errorf("forming again: %d batches, was %d", len(after), len(before))
	}
}

// Events stored before the webhook schema existed are never posted.
func TestUpgradeStartsProgressAtTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	old := rawDB(t, path)
	execFile(t, old, "testdata/schema_v1.sql")
	old.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	p, err := s.Progress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := s.LastSeq(ctx)
	if last == 0 || p["deliveries"] != last || p["bounces"] != last || p["blocks"] != last {
		t.Errorf("progress %v after the upgrade, want all at %d", p, last)
	}
	if evs, _ := s.Unformed(ctx, p["deliveries"], 10); len(evs) != 0 {
		t.Errorf("%d events to form after the upgrade", len(evs))
	}
}

func TestWebhookLogAndRequeue(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	evs := genEvents(0, 40)
	if err := s.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	ids := formAll(t, s, 10, testStart)
	all, err := s.WebhookLog(ctx, WebhookLogQuery{})
	if err != nil || len(all) != len(ids) {
		t.Fatalf("log: %d rows, %v; want %d", len(all), err, len(ids))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Received.Before(all[i-1].Received) {
			t.Error("log not in time order")
		}
	}
	// Attempt every batch once: the first fails, the rest succeed.
	now := testStart.Add(time.Minute)
	claimed, err := s.ClaimDue(ctx, now, now.Add(time.Minute), 100)
	if err != nil || len(claimed) != len(ids) {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	for i, id := range claimed {
		st, status := StateSucceeded, 200
		if i == 0 {
			st, status = StateFailed, 400
		}
		if _, _, err := s.FreezeBody(ctx, id, "application/json", []byte(`{"n":`+fmt.Sprint(i)+`}`)); err != nil {
			t.Fatal(err)
		}
		err := s.Record(ctx, Attempt{BatchID: id, Attempt: 1, At: now, Host: "mx1", Endpoint: "https://hook.example/",
			State: st, Status: status, Reason: fmt.Sprint("HTTP ", status), Response: []byte{0xff, 'x'}})
		if err != nil {
			t.Fatal(err)
		}
	}
	failed, err := s.WebhookLog(ctx, WebhookLogQuery{States: []string{StateFailed}})
	if err != nil || len(failed) != 1 || failed[0].ID != claimed[0] || failed[0].LastStatus != 400 || failed[0].Reason != "HTTP 400" {
		t.Fatalf("failed rows %+v, %v", failed, err)
	}
	if _, err := s.WebhookLog(ctx, WebhookLogQuery{States: []string{"lost"}}); err == nil {
		t.Error("an unknown status was accepted")
	}
	// Time bounds select batches with any event in range.
	mid := all[len(all)/2]
	got, _ := s.WebhookLog(ctx, WebhookLogQuery{Since: mid.Received, Until: mid.Received.Add(time.Nanosecond)})
	if !slices.ContainsFunc(got, func(b WebhookBatch) bool { return b.ID == mid.ID }) {
		t.Errorf("batch %s not selected by its own time", mid.ID)
	}
	// Paging.
	page1, _ := s.WebhookLog(ctx, WebhookLogQuery{Limit: 2})
	page2, _ := s.WebhookLog(ctx, WebhookLogQuery{Limit: 2, AfterReceived: page1[1].Received, AfterID: page1[1].ID})
	if len(page2) == 0 || page2[0].ID != all[2].ID {
		t.Errorf("second page starts at %v, want %s", page2, all[2].ID)
	}

	b, atts, ok, err := s.WebhookBatchByID(ctx, claimed[0])
	if err != nil || !ok || len(atts) != 1 || !bytes.Equal(atts[0].Response, []byte{0xff, 'x'}) || string(b.Body) != `{"n":0}` {
		t.Fatalf("detail: %+v %+v %v %v", b, atts, ok, err)
	}

	// Replay the failed one: same id and body, due now, attempts go on.
	later := now.Add(time.Hour)
	n, events, err := s.Requeue(ctx, WebhookLogQuery{States: []string{StateFailed}}, later)
	if err != nil || n != 1 || events != int64(b.Events) {
		t.Fatalf("Requeue = %d, %d, %v", n, events, err)
	}
	again, err := s.ClaimDue(ctx, later, later.Add(time.Minute), 10)
	if err != nil || len(again) != 1 || again[0] != claimed[0] {
		t.Fatalf("after replay claimed %v, %v", again, err)
	}
	f, err := s.Frozen(ctx, again[0])
	if err != nil || f.Attempt != 2 || f.Round != 1 || !f.PeriodStart.Equal(later) || string(f.Body) != `{"n":0}` {
		t.Errorf("replayed batch: %+v, %v", f, err)
	}
	if r, err := s.Replays(ctx); err != nil || r != 1 {
		t.Errorf("Replays after one replay = %d, %v", r, err)
	}
	// Replaying everything leaves the one in flight alone.
	n, _, err = s.Requeue(ctx, WebhookLogQuery{}, later)
	if err != nil || n != len(ids)-1 {
		t.Errorf("Requeue all = %d, %v; want %d", n, err, len(ids)-1)
	}
}

func TestEventWebhookSettings(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	got, ok, err := s.EventWebhookSettings(ctx)
	if err != nil || ok || got != settings.Default() {
		t.Fatalf("before any save: %v %v %v", got, ok, err)
	}
	want := settings.Default()
	want.Endpoint = "https://hook.example/events?token=abc"
	want.Deliveries, want.Bounces, want.JSON, want.Version = true, true, true, 3
	want.BasicUser, want.BasicPassword = "u", "p"
	want.APIKey = "k"
	want.RetryPeriod = settings.Duration(36 * time.Hour)
	want.SigningSecret = settings.NewSigningSecret()
	if err := s.SaveEventWebhookSettings(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err = s.EventWebhookSettings(ctx)
	if err != nil || !ok || got != want {
		t.Errorf("read back %v %v %v, want %v", got, ok, err, want)
	}
	bad := want
	bad.MaxEvents = 5
	var fe settings.FieldErrors
	if err := s.SaveEventWebhookSettings(ctx, bad); !errors.As(err, &fe) || fe["max_events"] == "" {
		t.Errorf("invalid settings saved: %v", err)
	}
	insecure := want
	insecure.Endpoint = "http://localhost:8080/"
	if err := s.SaveEventWebhookSettings(ctx, insecure); err == nil {
		t.Error("http endpoint saved without allow_insecure_http")
	}
	if err := s.SaveEventWebhookSettingsHTTP(ctx, insecure, true); err != nil {
		t.Errorf("http endpoint with allow_insecure_http: %v", err)
	}
	if got, _, _ := s.EventWebhookSettings(ctx); got != insecure {
		t.Errorf("after the second save: %v", got)
	}
}

// Unformed answers from what Commit just stored as it would from the
// database, and falls back to the database where the ring cannot answer.
func TestUnformedRecent(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	evs := genEvents(0, 300)
	for i := 0; i < len(evs); i += 100 {
		if err := s.Commit(ctx, event.Batch{Events: evs[i : i+100]}); err != nil {
			t.Fatal(err)
		}
	}
	// A repeated batch adds nothing, to the table or to the ring.
	if err := s.Commit(ctx, event.Batch{Events: evs[200:]}); err != nil {
		t.Fatal(err)
	}
	fromDB := func(after int64, limit int) []Pending {
		rows, err := s.r.QueryContext(ctx, `SELECT seq, id, type, time FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []Pending
		for rows.Next() {
			var p Pending
			var typ string
			var ns int64
			rows.Scan(&p.Seq, &p.ID, &typ, &ns)
			p.Type, p.Time = event.Type(typ), time.Unix(0, ns).UTC()
			out = append(out, p)
		}
		return out
	}
	for _, c := range []struct {
		after int64
		limit int
	}{{0, 50}, {0, 1000}, {150, 10}, {299, 10}, {300, 10}} {
		got, err := s.Unformed(ctx, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if want := fromDB(c.after, c.limit); !slices.EqualFunc(got, want, func(a, b Pending) bool {
			return a.Seq == b.Seq && a.ID == b.ID && a.Type == b.Type && a.Time.Equal(b.Time)
		}) {
			t.Errorf("Unformed(%d, %d): %d events, the table has %d", c.after, c.limit, len(got), len(want))
		}
	}
	if r, ok := s.recent().get(0, 10); !ok || len(r) != 10 {
		t.Errorf("the ring does not hold the committed events: %d %v", len(r), ok)
	}
	// Another process's events, which the ring never saw, are found too.
	other, err := Open(s.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Commit(ctx, event.Batch{Events: genEvents(300, 5)}); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if got, _ := s.Unformed(ctx, 300, 10); len(got) != 5 {
		t.Errorf("events stored by another process: %d found, want 5", len(got))
	}
	// The ring keeps the newest recentMax events only.
	r := &recentRing{}
	var lastAdded int64
	for i := int64(0); i < 3*recentMax; i += 1000 {
		batch := make([]Pending, 1000)
		for k := range batch {
			batch[k] = Pending{Seq: i + int64(k) + 1}
		}
		r.add(batch)
		lastAdded = batch[999].Seq
	}
	if len(r.buf) > recentMax || r.buf[len(r.buf)-1].Seq != lastAdded || r.buf[0].Seq != lastAdded-int64(len(r.buf))+1 {
		t.Errorf("ring holds %d, last %d", len(r.buf), r.buf[len(r.buf)-1].Seq)
	}
	if _, ok := r.get(0, 10); ok {
		t.Error("the ring answered for events it dropped")
	}
	r.add([]Pending{{Seq: 1 << 40}})
	if got, ok := r.get(1<<40-1, 10); !ok || len(got) != 1 {
		t.Error("a gap did not restart the ring")
	}
}

// TestRetrySinceMigration: batches of an older schema keep the start of
// their retry period: their first attempt if they had one, else when they
// were formed (or replayed).
func TestRetrySinceMigration(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	db := rawDB(t, path)
	var before int
	for _, m := range ms {
		if strings.HasSuffix(m.name, "_webhook_period.sql") {
			break
		}
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		before = m.version
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", before)); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		`('new', 1, 10, 'queued', 0, 0, NULL, 100, 100)`,
		`('tried', 11, 20, 'deferred', 3, 0, 200, 100, 250)`,
		`('replayed', 21, 30, 'queued', 2, 2, NULL, 100, 300)`,
	} {
		if _, err := db.Exec(`INSERT INTO webhook_batches (batch_id, first_seq, last_seq, state, attempts, retry_from,
				first_attempt_at, created_at, updated_at, family, events, first_time, last_time)
			VALUES ` + row[:len(row)-1] + `, 'deliveries', 10, 0, 0)`); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.WebhookLog(context.Background(), WebhookLogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"new": 100, "tried": 200, "replayed": 300}
	for _, b := range rows {
		if got := b.RetrySince.UnixNano(); got != want[b.ID] {
			t.Errorf("batch %s: retry period from %d, want %d", b.ID, got, want[b.ID])
		}
	}
	if n, err := s.Replays(context.Background()); err != nil || n != 0 {
		t.Errorf("Replays = %d, %v", n, err)
	}
}

// TestExpireManyBatches: after a long outage more batches are over than
// one transaction takes; Expire fails them all, and spares a batch whose
// last attempt is due at the end of its period only when asked to.
func TestExpireManyBatches(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if err := s.Commit(ctx, event.Batch{Events: genEvents(0, 1201)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ids := formAll(t, s, 1, t0)
	// The first batch is deferred to its last attempt, at the period's end.
	if got, err := s.ClaimDue(ctx, t0, t0.Add(time.Minute), 1); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	end := t0.Add(24 * time.Hour)
	if err := s.Record(ctx, Attempt{BatchID: ids[0], Attempt: 1, At: t0, State: StateDeferred, Next: end}); err != nil {
		t.Fatal(err)
	}
	reason := func(round int) string { return fmt.Sprint("over after ", round) }
	if b, _, next, err := s.Expire(ctx, end.Add(-time.Second), 24*time.Hour, true, reason); err != nil || b != 0 || !next.Equal(end) {
		t.Fatalf("before the end: %d failed, next %v, %v", b, next, err)
	}
	b, ev, next, err := s.Expire(ctx, end, 24*time.Hour, true, reason)
	if err != nil || b != len(ids)-1 || ev != int64(len(ids)-1) || !next.IsZero() {
		t.Fatalf("at the end: %d batches, %d events failed, next %v, %v; want %d", b, ev, next, err, len(ids)-1)
	}
	rows, _ := s.WebhookLog(ctx, WebhookLogQuery{States: []string{StateFailed}})
	if len(rows) != len(ids)-1 || rows[0].Reason != "over after 0" {
		t.Errorf("%d failed rows, first %q", len(rows), rows[0].Reason)
	}
	// Held: the last attempt is not made either.
	if b, _, _, err := s.Expire(ctx, end, 24*time.Hour, false, reason); err != nil || b != 1 {
		t.Errorf("held: %d failed, %v; want the spared one", b, err)
	}
	if got, _, _, _ := s.WebhookBatchByID(ctx, ids[0]); got.State != StateFailed || got.Reason != "over after 1" {
		t.Errorf("spared batch: %s %q", got.State, got.Reason)
	}
}
