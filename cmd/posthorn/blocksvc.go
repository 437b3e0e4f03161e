package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/posthorn/posthorn/blocks"
	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/milter"
	"github.com/posthorn/posthorn/sqlite"
)

// The store applies the suppression list's rules to the bounces it keeps.
var _ sqlite.BounceRules = (*bounceRules)(nil)

// blockService is the suppression list as `posthorn blocks`, the console's
// Blocks screen and /api/v1/blocks share it, so that the three schedule,
// validate and word their errors alike.
type blockService struct {
	store *sqlite.Store
	clk   clock
	// zone and execTime override [blocks] timezone and exec_time (the
	// command's --zone and --exec-time); empty: the config's.
	zone, execTime string
	cfg            config.Blocks
	maillogZone    *time.Location
	// notify, when set, wakes the Event Webhook after a registration or a
	// deletion stored its record.
	notify func()
}

func newBlockService(cfg *config.Config, store *sqlite.Store, clk clock, notify func()) *blockService {
	return &blockService{store: store, clk: clk, cfg: cfg.Blocks, maillogZone: cfg.Maillog.Location(), notify: notify}
}

// When says when a new registration takes effect: at once, at a given
// time, or (both zero) at the next daily execution time.
type blockWhen struct {
	Now bool
	At  time.Time
}

// schedule is the daily execution time in the blocks zone. The zone is
// looked up on every call: the Event Webhook's, its default, may be
// changed on the console while serve runs.
func (s *blockService) schedule(ctx context.Context) (blocks.Schedule, error) {
	loc, err := s.location(ctx)
	if err != nil {
		return blocks.Schedule{}, err
	}
	execTime := s.execTime
	if execTime == "" {
		execTime = s.cfg.ExecTime
	}
	return blocks.ParseSchedule(execTime, loc)
}

// location is the zone of the execution time and of the times shown:
// --zone, else [blocks] timezone, else the Event Webhook's (so that the
// schedule and the posted `created` agree), else the maillog's.
func (s *blockService) location(ctx context.Context) (*time.Location, error) {
	if s.zone != "" {
		loc, err := time.LoadLocation(s.zone)
		if err != nil {
			return nil, fmt.Errorf("load time zone: %w", err)
		}
		return loc, nil
	}
	if loc := s.cfg.Location(); loc != nil {
		return loc, nil
	}
	if ew, ok, err := s.store.EventWebhookSettings(ctx); err == nil && ok && ew.Timezone != "" {
		if loc, err := ew.Location(); err == nil {
			return loc, nil
		}
	}
	return s.maillogZone, nil
}

// invalidBlock marks an error of the request itself (not an address, a
// time in the past), which the API answers with 400 naming the field
// ("address", "at").
type invalidBlock struct {
	field string
	error
}

func (e invalidBlock) Unwrap() error { return e.error }

// Add puts an address on the list. watch is the watch period in days; a
// negative value means [blocks] watch_days. A time in the past is refused:
// "now" is the way to register at once.
func (s *blockService) Add(ctx context.Context, addr string, reason blocks.Reason, when blockWhen, watch int) (sqlite.Block, error) {
	norm, err := blocks.Normalize(addr)
	if err != nil {
		return sqlite.Block{}, invalidBlock{"address", err}
	}
	sched, err := s.schedule(ctx)
	if err != nil {
		return sqlite.Block{}, err
	}
	now := s.clk.Now()
	at := when.At
	switch {
	case when.Now:
		at = now
	case at.IsZero():
		at = sched.Next(now)
	case at.Before(now):
		return sqlite.Block{}, invalidBlock{"at", fmt.Errorf("%s is in the past; register now instead", at.In(sched.Loc).Format("2006-01-02 15:04"))}
	}
	if watch < 0 {
		watch = s.cfg.WatchDays
	}
	entry, evs, err := s.store.AddBlock(ctx, sqlite.NewBlock{
		Address: norm, Reason: string(reason), At: at, Now: now,
		Expires: sched.WatchExpiry(at, watch),
	})
	if err == nil && len(evs) > 0 && s.notify != nil {
		s.notify()
	}
	return entry, err
}

// Delete lifts a registered address (a `deleted` record); Cancel drops a
// registration that has not taken effect (no record). Each refuses the
// other's case with an error that says what to do instead.
func (s *blockService) Delete(ctx context.Context, addr string) (sqlite.Block, error) {
	return s.remove(ctx, addr, false)
}

func (s *blockService) Cancel(ctx context.Context, addr string) (sqlite.Block, error) {
	return s.remove(ctx, addr, true)
}

func (s *blockService) remove(ctx context.Context, addr string, cancel bool) (sqlite.Block, error) {
	norm, err := blocks.Normalize(addr)
	if err != nil {
		return sqlite.Block{}, invalidBlock{"address", err}
	}
	var entry sqlite.Block
	if cancel {
		entry, err = s.store.CancelBlock(ctx, norm, s.clk.Now())
	} else {
		entry, _, err = s.store.DeleteBlock(ctx, norm, s.clk.Now())
		if err == nil && s.notify != nil {
			s.notify()
		}
	}
	switch {
	case errors.Is(err, sqlite.ErrBlockScheduled):
		err = fmt.Errorf("%w: %s is only scheduled; cancel it instead", err, norm)
	case errors.Is(err, sqlite.ErrBlockRegistered):
		err = fmt.Errorf("%w: %s is registered; delete it instead", err, norm)
	}
	return entry, err
}

// List returns the entries q selects, newest first.
func (s *blockService) List(ctx context.Context, q sqlite.BlockQuery) ([]sqlite.Block, error) {
	return s.store.Blocks(ctx, q)
}

// blockRules translates [blocks.auto_register] into the per-class rules:
// a count of 0 leaves the class off.
func blockRules(a config.AutoRegister) blocks.Rules {
	counts := map[event.Class]int{
		event.ClassUnknownHost: a.UnknownHost, event.ClassUnknownUser: a.UnknownUser,
		event.ClassTimeout: a.Timeout, event.ClassPolicy: a.Policy,
		event.ClassOverCapacity: a.OverCapacity, event.ClassForwarding: a.Forwarding,
		event.ClassReceiverError: a.ReceiverError, event.ClassTooLarge: a.TooLarge,
		event.ClassAddressFormat: a.AddressFormat, event.ClassOther: a.Other,
	}
	r := blocks.Rules{}
	for c, n := range counts {
		r[c] = blocks.Rule{Class: c, Enabled: n > 0, After: max(n, 1)}
	}
	return r
}

// bounceRules is the store's sqlite.BounceRules: which deliveries to keep
// findable for bounce mail (those whose return path is a bounce address),
// how an address is counted (normalised as the list holds it), and when
// an automatic registration takes effect: at the next daily execution
// time on the service's clock, with the configured watch period, as a
// registration made with `posthorn blocks add` without --now.
type bounceRules struct {
	svc     *blockService
	rules   blocks.Rules
	bounces *milter.BounceAddresses
	log     *slog.Logger
}

func newBounceRules(cfg *config.Config, svc *blockService, log *slog.Logger) (*bounceRules, error) {
	b, err := milter.NewBounceAddresses(milter.BounceOptions{
		Addresses: cfg.Blocks.BounceAddresses, VERP: cfg.Blocks.VERP, Delimiters: cfg.Blocks.VERPDelimiters,
	})
	if err != nil {
		return nil, fmt.Errorf("blocks.bounce_addresses: %w", err) // validated by config.Load
	}
	return &bounceRules{svc: svc, rules: blockRules(cfg.Blocks.AutoRegister), bounces: b, log: log.With("component", "blocks")}, nil
}

func (r *bounceRules) Tracks(returnPath string) bool {
	_, ok := r.bounces.Match(returnPath)
	return ok
}

func (r *bounceRules) Address(rcpt string) (string, bool) {
	a, err := blocks.Normalize(rcpt)
	return a, err == nil
}

func (r *bounceRules) Register(c event.Class, count int) bool { return r.rules.Register(c, count) }

func (r *bounceRules) Schedule(ctx context.Context) (now, at, expires time.Time) {
	now = r.svc.clk.Now()
	sched, err := r.svc.schedule(ctx)
	if err != nil {
		// The config was validated; only a zone that vanished from the
		// system gets here. The registration still happens, at 00:00 UTC.
		r.log.Warn("automatic registration: execution time unknown, using 00:00 UTC", "err", err)
		sched = blocks.Schedule{}
	}
	at = sched.Next(now)
	return now, at, sched.WatchExpiry(at, r.svc.cfg.WatchDays)
}

func (r *bounceRules) Registered(entries []sqlite.Block) {
	for _, b := range entries {
		r.log.Info("suppression list: registration after bounces", "address", b.Address, "reason", b.Reason,
			"bounces", b.Occurrences, "takes_effect", b.Scheduled)
	}
}
