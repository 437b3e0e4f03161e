package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// prunerHarness runs a logPruner over a real store, its waits answered by
// the test: waits receives each duration the pruner waits for, tick ends
// the wait, and runs receives what each prune deleted.
type prunerHarness struct {
	store *sqlite.Store
	m     *metrics
	log   *lockedBuffer
	waits chan time.Duration
	tick  chan time.Time
	runs  chan sqlite.Pruned
	stop  func()
}

var pruneClock = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// startPrunerHarness starts the pruner over a fresh store; wrap, when not
// nil, stands between the pruner and the store.
func startPrunerHarness(t *testing.T, retention time.Duration, wrap func(*sqlite.Store) pruneStore) *prunerHarness {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "posthorn.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := &prunerHarness{store: store, m: newMetrics(time.Now), log: &lockedBuffer{},
		waits: make(chan time.Duration, 10), tick: make(chan time.Time), runs: make(chan sqlite.Pruned)}
	ctx := context.Background()
	// Ten events 40 days old, all posted (every family switched off), and
	// one of today; an observation of last month and one of today.
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, event.Event{ID: fmt.Sprint("old-", i), Type: event.Succeeded, Host: "mx1", QueueID: "Q1",
			Time: pruneClock.Add(-40 * 24 * time.Hour).Add(time.Duration(i) * time.Second)})
	}
	evs = append(evs, event.Event{ID: "new", Type: event.Succeeded, Host: "mx1", QueueID: "Q2", Time: pruneClock})
	if err := store.Commit(ctx, event.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := store.Form(ctx, nil, map[string]int64{"deliveries": 11, "bounces": 11, "blocks": 11}, pruneClock); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{pruneClock.Add(-30 * 24 * time.Hour), pruneClock} {
		if err := store.Observe(ctx, event.Observation{Host: "mx1", QueueID: fmt.Sprint("OBS", i), Time: at}); err != nil {
			t.Fatal(err)
		}
	}

	var ps pruneStore = store
	if wrap != nil {
		ps = wrap(store)
	}
	p := &logPruner{
		store:        ps,
		retention:    retention,
		observations: 7 * 24 * time.Hour,
		now:          func() time.Time { return pruneClock },
		after: func(d time.Duration) <-chan time.Time {
			h.waits <- d
			return h.tick
		},
		log: slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		count: func(got sqlite.Pruned) {
			h.m.observePruned(got)
			h.runs <- got
		},
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(rctx) })
	h.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(h.stop)
	return h
}

// next expects the pruner to wait for d, ends the wait and returns what
// the prune then deleted.
func (h *prunerHarness) next(t *testing.T, d time.Duration) sqlite.Pruned {
	t.Helper()
	if got := <-h.waits; got != d {
		t.Fatalf("pruner waits %v, want %v", got, d)
	}
	h.tick <- pruneClock
	return <-h.runs
}

func (h *prunerHarness) events(t *testing.T) int {
	t.Helper()
	n := 0
	if err := h.store.EachEvent(context.Background(), event.Query{}, func(*event.Event) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPrunerLoop: serve's pruner runs a minute after the start and then
// hourly, deletes what is older than the retention and the observations
// older than their TTL, logs each run (info with rows, debug without) and
// counts the rows.
func TestPrunerLoop(t *testing.T) {
	h := startPrunerHarness(t, 30*24*time.Hour, nil)

	got := h.next(t, pruneFirst)
	if got["events"] != 10 || got["observations"] != 1 || got.Total() != 11 {
		t.Errorf("first prune = %v, want 10 events and 1 observation", got)
	}
	if n := h.events(t); n != 1 {
		t.Errorf("%d events left, want the recent one", n)
	}
	if _, ok, _ := h.store.Observation(context.Background(), "mx1", "OBS1"); !ok {
		t.Error("the recent observation was pruned")
	}
	if log := h.log.String(); !strings.Contains(log, "level=INFO msg=\"pruned old rows\" rows=11") ||
		!strings.Contains(log, "events=10") || !strings.Contains(log, "observations=1") ||
		!strings.Contains(log, "older_than=2026-05-02T12:00:00Z") {
		t.Errorf("log of the first prune:\n%s", log)
	}

	if got := h.next(t, pruneEvery); got.Total() != 0 {
		t.Errorf("second prune = %v, want nothing", got)
	}
	if log := h.log.String(); !strings.Contains(log, "level=DEBUG msg=\"pruned old rows\" rows=0") {
		t.Errorf("log of the second prune:\n%s", log)
	}
	if v := testutil.ToFloat64(h.m.pruned.WithLabelValues("events")); v != 10 {
		t.Errorf("posthorn_store_pruned_rows_total{table=\"events\"} = %v, want 10", v)
	}
	if v := testutil.ToFloat64(h.m.pruned.WithLabelValues("inbound_log")); v != 0 {
		t.Errorf("posthorn_store_pruned_rows_total{table=\"inbound_log\"} = %v, want 0", v)
	}
	if got := <-h.waits; got != pruneEvery {
		t.Errorf("then waits %v, want %v", got, pruneEvery)
	}
	// Stopping ends the wait.
	h.stop()
}

// TestPrunerKeepsLogsWithoutRetention: retention "0" keeps every log row;
// observations are pruned all the same.
func TestPrunerKeepsLogsWithoutRetention(t *testing.T) {
	h := startPrunerHarness(t, 0, nil)
	got := h.next(t, pruneFirst)
	if got.Total() != 1 || got["observations"] != 1 {
		t.Errorf("prune = %v, want only the old observation", got)
	}
	if n := h.events(t); n != 11 {
		t.Errorf("%d events left, want all 11", n)
	}
}

// TestPrunerLogsFailure: a prune that fails is logged at warn, with what
// it deleted before, and the loop goes on.
func TestPrunerLogsFailure(t *testing.T) {
	h := startPrunerHarness(t, 30*24*time.Hour, nil)
	h.store.Close()
	if got := h.next(t, pruneFirst); got.Total() != 0 {
		t.Errorf("prune of a closed store = %v", got)
	}
	if log := h.log.String(); !strings.Contains(log, `level=WARN msg="pruning old rows failed" rows=0`) ||
		!strings.Contains(log, "database is closed") {
		t.Errorf("log:\n%s", log)
	}
	if got := <-h.waits; got != pruneEvery {
		t.Errorf("then waits %v, want %v", got, pruneEvery)
	}
}

// failingPrune is the real store whose Prune deletes part of the logs and
// then fails, as a full disk or a damaged page would make it.
type failingPrune struct{ *sqlite.Store }

func (f failingPrune) Prune(context.Context, time.Time, int) (sqlite.Pruned, error) {
	return sqlite.Pruned{"events": 3}, errors.New("disk I/O error")
}

// TestPrunerObservationsDespiteFailure: observations have their own
// lifetime and are pruned even when pruning the logs fails; the run is
// logged at warn with both counts and the error.
func TestPrunerObservationsDespiteFailure(t *testing.T) {
	h := startPrunerHarness(t, 30*24*time.Hour, func(s *sqlite.Store) pruneStore { return failingPrune{s} })
	got := h.next(t, pruneFirst)
	if got["observations"] != 1 || got["events"] != 3 {
		t.Errorf("prune = %v, want the 3 events reported and the old observation", got)
	}
	if _, ok, _ := h.store.Observation(context.Background(), "mx1", "OBS0"); ok {
		t.Error("the old observation was kept")
	}
	if log := h.log.String(); !strings.Contains(log, `level=WARN msg="pruning old rows failed" rows=4`) ||
		!strings.Contains(log, "observations=1") || !strings.Contains(log, "disk I/O error") {
		t.Errorf("log:\n%s", log)
	}
}
