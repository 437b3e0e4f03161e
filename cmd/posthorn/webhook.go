package main

import (
	"context"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

// The store is the dispatcher's outbox.
var _ dispatcher.Outbox = (*sqlite.Store)(nil)

// settingsPoll is how often serve reads the Event Webhook settings again,
// so that a change saved by `posthorn settings import` or the web console
// applies without a restart.
const settingsPoll = 2 * time.Second

// liveSettings are settings that serve reads again every settingsPoll;
// the dispatchers read the current ones with get.
type liveSettings[T any] struct {
	mu  sync.Mutex
	cur T
}

func (l *liveSettings[T]) get() T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// poll reads the settings every settingsPoll until ctx ends.
func (l *liveSettings[T]) poll(ctx context.Context, log *slog.Logger, what string,
	read func(context.Context) (T, bool, error), check func(T) error, changed func(next T, saved bool)) {
	t := time.NewTicker(settingsPoll)
	defer t.Stop()
	l.pollOn(ctx, t.C, log, what, read, check, changed)
}

// pollOn reads the settings at every tick until ctx ends. Settings that
// changed are checked (nil check: always taken; an error keeps the
// current ones, logged), then made current, then changed is told.
func (l *liveSettings[T]) pollOn(ctx context.Context, tick <-chan time.Time, log *slog.Logger, what string,
	read func(context.Context) (T, bool, error), check func(T) error, changed func(next T, saved bool)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		next, saved, err := read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("read "+what, "err", err)
			}
			continue
		}
		if reflect.DeepEqual(next, l.get()) {
			continue
		}
		if check != nil {
			if err := check(next); err != nil {
				log.Error(what+" changed but are not valid: keeping the previous ones", "err", err)
				continue
			}
		}
		l.mu.Lock()
		l.cur = next
		l.mu.Unlock()
		changed(next, saved)
	}
}

// webhook runs the Event Webhook dispatcher beside the log reader.
type webhook struct {
	d    *dispatcher.Dispatcher
	stop func() // stops the dispatcher and waits for it
}

// startWebhook starts forming and posting batches from the store. It
// returns when the dispatcher runs; stop ends it.
//
// observe, if not nil, is told of each attempt (metrics and alerts).
func startWebhook(ctx context.Context, cfg *config.Config, store *sqlite.Store, log *slog.Logger, observe func(dispatcher.PostReport)) (*webhook, error) {
	if cfg.AllowInsecureHTTP {
		log.Warn(strings.TrimPrefix(insecureHTTPWarning, "warning: "))
	}
	log = log.With("component", "event webhook")
	cur, ok, err := store.EventWebhookSettings(ctx)
	if err != nil {
		return nil, err
	}
	describe(log, cur, ok, "event webhook settings")
	live := &liveSettings[settings.EventWebhook]{cur: cur}
	d, err := dispatcher.New(dispatcher.Options{
		Outbox:            store,
		Settings:          live.get,
		AllowHTTP:         cfg.AllowInsecureHTTP,
		ServerComposition: cfg.ServerComposition,
		Hostname:          cfg.Hostname,
		MaxPending:        int64(cfg.Webhook.MaxPending),
		Observations:      store,
		Version:           version,
		Logger:            log,
		Observe:           observe,
	})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := d.Run(rctx); err != nil {
			log.Error("event webhook stopped", "err", err)
		}
	})
	wg.Go(func() {
		live.poll(rctx, log, "event webhook settings", store.EventWebhookSettings, nil, func(s settings.EventWebhook, saved bool) {
			describe(log, s, saved, "event webhook settings changed")
			// Also the fix of a failing endpoint: the hold is lifted.
			d.SettingsChanged()
		})
	})
	return &webhook{d: d, stop: func() { cancel(); wg.Wait() }}, nil
}

// describe logs settings without their secrets.
// describe logs settings without their secrets. It runs at start and on
// each change, so a plain http:// endpoint is warned about once per change
// (issue 3: http is for local development, "with a warning in the log").
func describe(log *slog.Logger, s settings.EventWebhook, saved bool, msg string) {
	switch {
	case !saved:
		log.Info(msg, "settings", "none saved: nothing is posted (posthorn settings import FILE)")
	default:
		log.Info(msg, "settings", s)
		if settings.PlainHTTP(s.Endpoint) {
			warnPlainHTTP(log, "event_webhook.endpoint", s.Endpoint)
		}
	}
}

// warnPlainHTTP logs that an endpoint in use is plain http://.
func warnPlainHTTP(log *slog.Logger, field, endpoint string) {
	log.Warn("plain http:// endpoint: posts and their credentials cross the network unencrypted (allow_insecure_http is for local development only)",
		"field", field, "endpoint", settings.LogEndpoint(endpoint))
}

// sink is the log reader's sink: the store, which is all it takes for
// events to wait in the outbox, and a nudge to the dispatcher, which never
// blocks the reader.
func (w *webhook) sink(store *sqlite.Store) notifyingSink {
	return notifyingSink{store: store, d: w.d}
}

type notifyingSink struct {
	store *sqlite.Store
	d     *dispatcher.Dispatcher
}

func (n notifyingSink) Commit(ctx context.Context, b event.Batch) error {
	err := n.store.Commit(ctx, b)
	if err == nil && len(b.Events) > 0 {
		n.d.Notify()
	}
	return err
}
