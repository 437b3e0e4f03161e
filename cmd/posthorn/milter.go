package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/posthorn/posthorn/blocks"
	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
	"github.com/posthorn/posthorn/milter"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

// The store is the milter's spool and the inbound dispatcher's outbox.
var (
	_ milter.Spool             = (*sqlite.Store)(nil)
	_ dispatcher.InboundOutbox = (*sqlite.Store)(nil)
)

// suppressionList is the suppression list as the outbound role sees it:
// addresses compared in their normalised form, and each refusal's records
// waking the Event Webhook's dispatcher.
type suppressionList struct {
	store  *sqlite.Store
	notify func()
}

func (l suppressionList) IsBlocked(ctx context.Context, addr string) (bool, error) {
	a, err := blocks.Normalize(addr)
	if err != nil {
		// Only a normalised address is ever stored (blocks add refuses the
		// others), so one that cannot be normalised is not on the list.
		return false, nil
	}
	return l.store.IsBlocked(ctx, a)
}

func (l suppressionList) RecordSuppressed(ctx context.Context, evs []event.Event) error {
	if err := l.store.RecordSuppressed(ctx, evs); err != nil {
		return err
	}
	l.notify()
	return nil
}

// bounceIntake reads the bounce mail the inbound role hands over (RFC 3464
// reports and the providers' texts, blocks.ParseDSN), classifies each
// failed recipient with the log reader's rules, so that a DSN and a
// maillog line with the same reply get the same class, and has the store
// match and record it. Every bounce message that records nothing new is
// logged with why: at warn when it could not be matched (not a bounce, or
// about mail Posthorn did not see delivered), lower when it was already
// known. Delay notices (RFC 3464 action "delayed") are not bounces.
type bounceIntake struct {
	store  *sqlite.Store
	notify func() // wakes the Event Webhook
	log    *slog.Logger
}

func (b bounceIntake) Bounce(ctx context.Context, m *milter.BounceMail) (string, error) {
	to := make([]string, len(m.Recipients))
	d := sqlite.DSN{ID: m.ID, Host: m.Host, Received: m.Received}
	for i, r := range m.Recipients {
		to[i] = r.Address
		if r.VERP != "" {
			d.VERP = append(d.VERP, sqlite.VERPRecipient{Recipient: r.VERP, ReturnPath: r.Address})
		}
	}
	log := b.log.With("message_id", m.MessageID, "queue_id", m.QueueID, "to", to, "from", m.EnvelopeFrom)
	rep, err := blocks.ParseDSN(m.Message)
	if err != nil {
		why := err.Error()
		if errors.Is(err, blocks.ErrNotBounce) {
			why = "not a bounce: it names no failed recipient in a form Posthorn reads"
		}
		log.Warn("bounce mail unmatched", "why", why)
		return milter.DecisionBounceUnmatched, nil
	}
	d.MessageID = rep.MessageID
	var other []string
	for _, r := range rep.Recipients {
		if !r.Failed() {
			other = append(other, r.Address+" "+r.Action)
			continue
		}
		d.Recipients = append(d.Recipients, sqlite.DSNRecipient{Address: r.Address, Status: r.Status,
			Diagnostic: r.Diagnostic, Class: r.Class(logtail.Classify)})
	}
	if len(d.Recipients) == 0 {
		log.Info("bounce mail ignored: the report says no delivery failed", "original_message_id", d.MessageID, "recipients", other)
		return milter.DecisionBounceIgnored, nil
	}
	res, err := b.store.RecordDSN(ctx, d)
	if err != nil {
		return "", err
	}
	if res.Outcome == sqlite.DSNRepeated {
		log.Info("bounce mail read before: nothing changed")
		return milter.DecisionBounceIgnored, nil
	}
	for _, r := range res.Recipients {
		switch r.Outcome {
		case sqlite.DSNUnmatched:
			why := r.Why
			if d.MessageID != "" {
				// The store keeps it: a delivery of the original that
				// the log reader stores within a day matches it then.
				why += "; waiting a day for its delivery to be read from the maillog"
			}
			log.Warn("bounce mail unmatched", "original_message_id", d.MessageID, "recipient", r.Address, "why", why)
		case sqlite.DSNKnown:
			log.Debug("bounce mail about a known bounce", "original_message_id", d.MessageID, "recipient", r.Address, "why", r.Why)
		}
	}
	for _, e := range res.Events {
		log.Info("bounce recorded", "original_message_id", e.MessageID, "recipient", e.Recipient(), "class", int(e.Class),
			"dsn", e.DSN, "original_queue_id", e.QueueID)
	}
	if len(res.Events) > 0 && b.notify != nil {
		b.notify()
	}
	switch res.Outcome {
	case sqlite.DSNRecorded:
		return milter.DecisionBounce, nil
	case sqlite.DSNKnown:
		return milter.DecisionBounceIgnored, nil
	}
	return milter.DecisionBounceUnmatched, nil
}

// inboundSvc runs the Inbound Webhook inside serve: the milter's two roles
// (when configured), the dispatcher that posts captured mail and a settings
// poller. Old observations are pruned with the logs (retention.go).
type inboundSvc struct {
	srv       *milter.Server // nil when no role is configured
	listeners []net.Listener
	d         *dispatcher.Inbound
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	shutdown  time.Duration
	log       *slog.Logger
}

// notifyingSpool wakes the dispatcher after each capture.
type notifyingSpool struct {
	*sqlite.Store
	d *dispatcher.Inbound
}

func (n notifyingSpool) Capture(ctx context.Context, m *event.InboundMessage) error {
	err := n.Store.Capture(ctx, m)
	if err == nil {
		n.d.Notify()
	}
	return err
}

// startInbound starts the Inbound Webhook. The milter listeners are open
// when it returns, so that Postfix can connect as soon as serve reports
// ready; stop shuts everything down gracefully. notifyEvents wakes the
// Event Webhook's dispatcher after the outbound role stored records of
// suppressed recipients. observe, if not nil, is told of the milter's
// answer at the end of each message (the metrics).
func startInbound(ctx context.Context, cfg *config.Config, store *sqlite.Store, notifyEvents func(), log *slog.Logger, observe func(decision string, took time.Duration), observePost func(dispatcher.PostReport)) (stop func(), err error) {
	bounceLog := log.With("component", "bounce mail")
	log = log.With("component", "inbound webhook")
	mc := cfg.Milter
	cur, saved, err := store.InboundSettings(ctx)
	if err != nil {
		return nil, err
	}
	policy, err := milter.NewPolicy(cur, milter.UnknownDomain(mc.UnknownDomain))
	if err != nil {
		// Saved settings were validated; a newer rule can refuse old ones.
		return nil, fmt.Errorf("inbound settings: %w", err)
	}
	describeInbound(log, cur, saved, "inbound settings")

	live := &liveSettings[settings.Inbound]{cur: cur}
	s := &inboundSvc{shutdown: time.Duration(mc.ShutdownTimeout), log: log}
	s.d, err = dispatcher.NewInbound(dispatcher.InboundOptions{
		Outbox:            store,
		Settings:          live.get,
		AllowHTTP:         cfg.AllowInsecureHTTP,
		ServerComposition: cfg.ServerComposition,
		Version:           version,
		Concurrency:       mc.PostConcurrency,
		Logger:            log,
		Observe:           observePost,
	})
	if err != nil {
		return nil, err
	}
	if mc.Inbound != "" || mc.Outbound != "" {
		s.srv, err = milter.NewServer(milter.Options{
			Host:           cfg.Hostname,
			Policy:         policy,
			Spool:          notifyingSpool{store, s.d},
			AfterCapture:   milter.AfterCapture(mc.AfterCapture),
			MaxMessageSize: int64(mc.MaxMessageSize),
			MetadataHeader: mc.MetadataHeader,
			TempDir:        mc.TempDir,
			CaptureTimeout: time.Duration(mc.CaptureTimeout),
			Observe:        observe,
			Suppression:    suppressionList{store, notifyEvents},
			SuppressAction: milter.SuppressAction(mc.Suppressed),
			Bounce: milter.BounceOptions{
				Addresses:  cfg.Blocks.BounceAddresses,
				VERP:       cfg.Blocks.VERP,
				Delimiters: cfg.Blocks.VERPDelimiters,
				Sink:       bounceIntake{store: store, notify: notifyEvents, log: bounceLog},
			},
			Log: log,
		})
		if err != nil {
			return nil, err
		}
		if err := s.listen(mc); err != nil {
			return nil, err
		}
	}

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Go(func() {
		if err := s.d.Run(rctx); err != nil {
			log.Error("inbound dispatcher stopped", "err", err)
		}
	})
	s.wg.Go(func() {
		var p *milter.Policy
		check := func(next settings.Inbound) (err error) {
			p, err = milter.NewPolicy(next, milter.UnknownDomain(mc.UnknownDomain))
			return err
		}
		live.poll(rctx, log, "inbound settings", store.InboundSettings, check, func(next settings.Inbound, saved bool) {
			if s.srv != nil {
				s.srv.SetPolicy(p)
			}
			describeInbound(log, next, saved, "inbound settings changed")
			s.d.Notify()
		})
	})
	return s.stop, nil
}

// listen opens the configured roles' listeners and serves them.
func (s *inboundSvc) listen(mc config.Milter) error {
	mode, err := strconv.ParseUint(mc.SocketMode, 8, 32)
	if err != nil {
		return fmt.Errorf("milter.socket_mode: %w", err) // validated by config.Load
	}
	so := milter.SocketOptions{Mode: fs.FileMode(mode), Group: mc.SocketGroup}
	for _, role := range []struct {
		name, addr string
		serve      func(net.Listener) error
	}{
		{"inbound", mc.Inbound, s.srv.ServeInbound},
		{"outbound", mc.Outbound, s.srv.ServeOutbound},
	} {
		if role.addr == "" {
			continue
		}
		a, err := milter.ParseAddress(role.addr)
		if err == nil {
			var ln net.Listener
			if ln, err = milter.Listen(a, so); err == nil {
				s.listeners = append(s.listeners, ln)
				s.log.Info("milter listening", "role", role.name, "address", a.String())
				s.wg.Go(func() {
					if err := role.serve(ln); err != nil {
						s.log.Error("milter stopped serving", "role", role.name, "err", err)
					}
				})
				continue
			}
		}
		for _, ln := range s.listeners {
			ln.Close()
		}
		return fmt.Errorf("milter.%s: %w", role.name, err)
	}
	return nil
}

// stop ends the milter gracefully (open transactions finish, within
// shutdown_timeout), then the dispatcher and the helpers.
func (s *inboundSvc) stop() {
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.shutdown)
		if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("milter shutdown", "err", err)
		}
		cancel()
	}
	s.cancel()
	s.wg.Wait()
}

func describeInbound(log *slog.Logger, s settings.Inbound, saved bool, msg string) {
	if !saved {
		log.Info(msg, "settings", "none saved: no inbound domain is allowed (posthorn settings import FILE)")
		return
	}
	log.Info(msg, "settings", s)
	for i, f := range s.Filters {
		if settings.PlainHTTP(f.Endpoint) {
			warnPlainHTTP(log.With("filter", f.Name), fmt.Sprintf("inbound.filters[%d].endpoint", i), f.Endpoint)
		}
	}
}
