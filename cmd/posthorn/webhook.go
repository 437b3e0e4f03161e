package main

import (
	"context"
	"log/slog"
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
	log = log.With("component", "event webhook")
	cur, ok, err := store.EventWebhookSettings(ctx)
	if err != nil {
		return nil, err
	}
	describe(log, cur, ok, "event webhook settings")
	var mu sync.Mutex
	get := func() settings.EventWebhook {
		mu.Lock()
		defer mu.Unlock()
		return cur
	}
	d, err := dispatcher.New(dispatcher.Options{
		Outbox:            store,
		Settings:          get,
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
		t := time.NewTicker(settingsPoll)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			s, ok, err := store.EventWebhookSettings(rctx)
			if err != nil {
				if rctx.Err() == nil {
					log.Warn("read event webhook settings", "err", err)
				}
				continue
			}
			mu.Lock()
			changed := s != cur
			cur = s
			mu.Unlock()
			if changed {
				describe(log, s, ok, "event webhook settings changed")
				d.Notify()
			}
		}
	})
	return &webhook{d: d, stop: func() { cancel(); wg.Wait() }}, nil
}

// describe logs settings without their secrets.
func describe(log *slog.Logger, s settings.EventWebhook, saved bool, msg string) {
	switch {
	case !saved:
		log.Info(msg, "settings", "none saved: nothing is posted (posthorn settings import FILE)")
	default:
		log.Info(msg, "settings", s)
	}
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
