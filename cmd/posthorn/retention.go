package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
)

// When serve prunes: a minute after it starts, once the log reader has
// caught up with what it found, and then every hour. An hour's worth of
// old rows is a few transactions even on a busy relay.
const (
	pruneFirst = time.Minute
	pruneEvery = time.Hour
)

// prunedTables are the tables a run counts, the metric's labels.
var prunedTables = append(sqlite.PruneTables[:len(sqlite.PruneTables):len(sqlite.PruneTables)], "observations")

// pruneStore is what the pruner needs of the store.
type pruneStore interface {
	Prune(ctx context.Context, before time.Time, batch int) (sqlite.Pruned, error)
	PruneObservations(ctx context.Context, before time.Time, limit int) (int64, error)
}

// logPruner deletes the log rows older than [store] retention and the
// outbound milter role's observations older than milter.observation_ttl,
// in small transactions (sqlite.Store.Prune), and logs and counts what it
// deleted.
type logPruner struct {
	store        pruneStore
	retention    time.Duration // 0: logs are kept
	observations time.Duration
	now          func() time.Time
	after        func(time.Duration) <-chan time.Time // time.After; a test's ticks
	log          *slog.Logger
	count        func(sqlite.Pruned) // the metrics; nil: none
}

// startPruner starts the pruner of serve; stop ends it and waits for it
// (a prune in progress stops after its current transaction).
func startPruner(ctx context.Context, cfg *config.Config, store pruneStore, log *slog.Logger, m *metrics) (stop func()) {
	p := &logPruner{
		store:        store,
		retention:    time.Duration(cfg.Store.Retention),
		observations: time.Duration(cfg.Milter.ObservationTTL),
		now:          time.Now,
		after:        time.After,
		log:          log.With("component", "retention"),
		count:        m.observePruned,
	}
	if p.retention == 0 {
		p.log.Info("logs are kept without limit (store.retention = \"0\")")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { p.run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// run prunes after pruneFirst and then every pruneEvery until ctx ends.
func (p *logPruner) run(ctx context.Context) {
	wait := pruneFirst
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.after(wait):
		}
		p.once(ctx)
		wait = pruneEvery
	}
}

// once prunes what is due now and logs it: at info when it deleted
// something, at debug when not.
func (p *logPruner) once(ctx context.Context) {
	start := time.Now()
	now := p.now()
	got := sqlite.Pruned{}
	var err error
	// Counted once the run is logged, so that a test told of the count
	// finds the line.
	defer func() {
		if p.count != nil {
			p.count(got)
		}
	}()
	if p.retention > 0 {
		got, err = p.store.Prune(ctx, now.Add(-p.retention), 0)
		if got == nil {
			got = sqlite.Pruned{}
		}
	}
	if err == nil {
		// Observations are only useful until the log reader has read the
		// message's lines (observation_ttl).
		for {
			var n int64
			n, err = p.store.PruneObservations(ctx, now.Add(-p.observations), sqlite.DefaultPruneBatch)
			got["observations"] += n
			if err != nil || n < sqlite.DefaultPruneBatch || ctx.Err() != nil {
				break
			}
		}
	}
	attrs := []any{"rows", got.Total(), "took", time.Since(start).Round(time.Millisecond)}
	for _, t := range prunedTables {
		if got[t] > 0 {
			attrs = append(attrs, t, got[t])
		}
	}
	if p.retention > 0 {
		attrs = append(attrs, "older_than", now.Add(-p.retention).UTC().Format(time.RFC3339))
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("pruning old rows failed", append(attrs, "err", err)...)
		}
		return
	}
	level := slog.LevelDebug
	if got.Total() > 0 {
		level = slog.LevelInfo
	}
	p.log.Log(ctx, level, "pruned old rows", attrs...)
}
