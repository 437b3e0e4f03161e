package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/internal/console"
	"github.com/posthorn/posthorn/logtail"
	"github.com/posthorn/posthorn/sqlite"
)

// The store must satisfy what the log reader declares it needs.
var _ logtail.Sink = (*sqlite.Store)(nil)

// The blocks command is registered here: blocks.go sorts before main.go,
// whose init sets the command table.
func init() { commands = append(commands, blocksCommand) }

func runServe(ctx context.Context, args []string, _, stderr io.Writer) int {
	hup, stopHup := hangups()
	defer stopHup()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	log := newLevelLogger(cfg.Log, level, stderr)
	sd, err := newNotifier()
	if err != nil {
		log.Warn("not notifying the service manager", "err", err)
	}
	rl := newReloader(*path, cfg, level, log, sd)
	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	go rl.run(rctx, hup)
	if err := serve(ctx, cfg, log, daemon{notify: sd, reload: rl}); err != nil {
		log.Error("posthorn stopped", "err", err)
		return exitFor(err)
	}
	return exitOK
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	return newLevelLogger(c, logLevel(c.Level), w)
}

// newLevelLogger is newLogger with the level given apart, so that a
// *slog.LevelVar can change it while running.
func newLevelLogger(c config.Log, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == config.FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	if toJournal(w) {
		// The journal stamps every line itself; a second time stamp
		// only makes the lines longer in journalctl.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// daemon is what serve reports to and registers with: the service
// manager (Type=notify) and the SIGHUP reloader. The zero value does
// neither, for callers that run the pipeline outside a service.
type daemon struct {
	notify *notifier
	reload *reloader
	// onReady, if set, runs once startup is complete (posthorn demo).
	onReady func()
	// observe, if set, sees every batch the log reader committed.
	observe func(event.Batch)
}

// ready tells the service manager that startup is complete.
func (d daemon) ready(log *slog.Logger, text string) {
	if err := d.notify.notify(notifyReady, status(text)); err != nil {
		log.Warn("notify service manager", "err", err)
	}
	if d.onReady != nil {
		d.onReady()
	}
}

// observedSink hands each committed batch to a daemon's observer.
type observedSink struct {
	logtail.Sink
	observe func(event.Batch)
}

func (o observedSink) Commit(ctx context.Context, b event.Batch) error {
	err := o.Sink.Commit(ctx, b)
	if err == nil {
		o.observe(b)
	}
	return err
}

// serve follows the maillog into the store until ctx is done.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, d daemon) (err error) {
	// Exclusive: two daemons following one log into one store would
	// store every event twice over and race for the log position.
	store, err := sqlite.Open(cfg.Store.Path, sqlite.Options{Exclusive: true})
	if err != nil {
		return err
	}
	defer store.Close()
	// A damaged page shows only when a statement reads it, as "database
	// disk image is malformed": name the file and what to do.
	defer func() { err = store.Explain(err) }()

	tailer, err := newTailer(ctx, cfg, store, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	defer tailer.Source.Close()
	m := newMetrics(time.Now)
	defer startPruner(ctx, cfg, store, log, m)()
	alerts := newAlertWatcher(cfg.Alerts, log, time.Now)
	if err := alerts.resume(ctx, store); err != nil {
		return err
	}
	observePost := func(r dispatcher.PostReport) {
		m.observePost(r)
		alerts.observe(r)
	}
	wh, err := startWebhook(ctx, cfg, store, log, observePost)
	if err != nil {
		return err
	}
	defer wh.stop()
	actx, stopAlerts := context.WithCancel(ctx)
	var alertsDone sync.WaitGroup
	alertsDone.Go(func() { alerts.run(actx) })
	defer func() { stopAlerts(); alertsDone.Wait() }()
	clk, err := newClock()
	if err != nil {
		return err
	}
	defer clk.Stop()
	blockSvc := newBlockService(cfg, store, clk, wh.d.Notify)
	rules, err := newBounceRules(cfg, blockSvc, log)
	if err != nil {
		return err
	}
	// Bounces are counted, and addresses registered, as they are stored.
	store.SetBounceRules(rules)
	defer startBlocks(ctx, blockSvc, log)()
	tailer.Sink = countingSink{wh.sink(store), m}
	source := "the journal (maillog.journald)"
	if !cfg.Maillog.Journald {
		source = filepath.Clean(cfg.Maillog.Path)
	}
	tailer.Sink = healthSink{tailer.Sink, newLogHealth(log, source, tailer.Summary, time.Now)}
	if d.observe != nil {
		tailer.Sink = observedSink{tailer.Sink, d.observe}
	}
	var consoleMetrics http.Handler
	if cfg.Metrics.Listen != "" || cfg.Metrics.Public {
		m.follow(tailer, console.Spool{Store: store}, store.Path())
		m.followWebhook(wh.d.Stats)
		if cfg.Metrics.Public {
			consoleMetrics = m.handler(log)
		}
		if cfg.Metrics.Listen != "" {
			stopMetrics, _, err := startMetrics(cfg.Metrics.Listen, m.handler(log), log)
			if err != nil {
				return err
			}
			defer stopMetrics()
		}
	}
	stopConsole, err := startConsole(ctx, cfg, store, blockSvc, log, consoleMetrics)
	if err != nil {
		return err
	}
	defer stopConsole()
	stopInbound, err := startInbound(ctx, cfg, store, wh.d.Notify, log, m.observeMilter, observePost)
	if err != nil {
		return err
	}
	defer stopInbound()
	// The store is migrated, the log source and the listeners (console,
	// milter) are open: tell systemd.
	d.ready(log, "following the maillog into "+store.Path())
	err = tailer.Run(ctx)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		log.Info("shutting down", "lines", tailer.Summary().Lines)
		return nil
	}
	if err == nil {
		err = errors.New("log source ended")
	}
	return err
}

// tailLinger is how long the log reader gathers a live log's lines before
// it commits them. Committing each burst of lines (a few per message) cost
// a fifth of serve's CPU while mail flowed through the milter benchmark,
// in write transactions that hold up the milter's captures; a tenth of a
// second is nothing next to the Event Webhook's batching interval.
const tailLinger = 100 * time.Millisecond

// journalctl is the program the journald source runs, looked up in PATH.
const journalctl = "journalctl"

// newTailer restores the log reader where the last run committed it.
func newTailer(ctx context.Context, cfg *config.Config, store *sqlite.Store, log *slog.Logger) (*logtail.Tailer, error) {
	m := cfg.Maillog
	source := "journald"
	if !m.Journald {
		source = "file:" + filepath.Clean(m.Path)
	}
	cur, ok, err := store.Cursor(ctx, source)
	if err != nil {
		return nil, err
	}
	msgs, err := store.OpenMessages(ctx)
	if err != nil {
		return nil, err
	}
	corr := logtail.NewCorrelator(logtail.CorrelatorOptions{
		MessageTTL: time.Duration(m.MessageTTL),
		Grace:      time.Duration(m.OutOfOrder),
		Persist:    true,
		OnUnknown: func(k event.MessageKey, pending int, why string) {
			log.Warn("delivery outcome unknown", "host", k.Host, "queueid", k.QueueID, "recipients", pending, "why", why)
		},
	})
	if err := corr.Restore(msgs); err != nil {
		return nil, fmt.Errorf("%s: %w", store.Path(), err)
	}

	ref := time.Now()
	var src logtail.Source
	if m.Journald {
		if !ok && logtail.Start(m.Start) != logtail.StartBegin {
			// As for a file below: store where the very first run
			// starts, the journal's newest entry, and follow from it.
			var end event.Cursor
			var found bool
			end, found, err = logtail.JournalEnd(ctx, journalctl)
			if err != nil {
				return nil, err
			}
			if found {
				if err := store.Commit(ctx, event.Batch{Cursor: end}); err != nil {
					return nil, err
				}
				cur = end
			}
		}
		src, err = logtail.NewJournalSource(cur, logtail.JournalOptions{
			Journalctl: journalctl,
			Start:      logtail.Start(m.Start), Units: m.JournaldUnits, Identifiers: m.JournaldIdentifiers, Logger: log,
		})
	} else {
		if fi, serr := os.Stat(m.Path); serr == nil {
			ref = fi.ModTime()
		}
		var fsrc *logtail.FileSource
		fsrc, err = logtail.NewFileSource(m.Path, cur, logtail.FileOptions{Start: logtail.Start(m.Start), Logger: log})
		if err == nil && !ok {
			// Store where the very first run starts ("end": the current
			// size), so that a crash before the first batch does not move
			// the start to a later end and skip the lines in between.
			err = store.Commit(ctx, event.Batch{Cursor: fsrc.Cursor()})
		}
		src = fsrc
	}
	if err != nil {
		return nil, err
	}
	log.Info("following maillog", "source", source, "resume", ok, "offset", cur.Offset, "open_messages", len(msgs), "store", store.Path())
	return &logtail.Tailer{
		Source:     src,
		Sink:       store,
		Resolver:   logtail.NewResolver(m.Location(), ref, m.Year),
		Correlator: corr,
		BatchLines: m.BatchLines,
		Linger:     tailLinger,
		Log:        log,
	}, nil
}
