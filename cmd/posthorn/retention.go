package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
)

// When serve prunes: a minute after it starts, out of the way of the
// start's own writes (it does not wait for the log reader to catch up: a
// prune yields the writer between transactions), and then every hour. An
// hour's worth of old rows is a few transactions even on a busy relay.
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

// startPruner starts the pruner of serve; it ends with ctx or stop, which
// also waits for it. A prune in progress is cancelled: its current
// transaction rolls back, what earlier ones deleted stays deleted, and the
// next run deletes the rest.
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
	ctx, cancel := context.WithCancel(ctx)
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
	var errs []error
	// Counted once the run is logged, so that a test told of the count
	// finds the line.
	defer func() {
		if p.count != nil {
			p.count(got)
		}
	}()
	if p.retention > 0 {
		logs, err := p.store.Prune(ctx, now.Add(-p.retention), 0)
		maps.Copy(got, logs)
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Observations are only useful until the log reader has read the
	// message's lines (observation_ttl), a lifetime of their own: they are
	// pruned even when the logs could not be.
	for ctx.Err() == nil {
		n, err := p.store.PruneObservations(ctx, now.Add(-p.observations), sqlite.DefaultPruneBatch)
		got["observations"] += n
		if err != nil {
			errs = append(errs, err)
			break
		}
		if n < sqlite.DefaultPruneBatch {
			break
		}
	}
	err := errors.Join(errs...)
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
