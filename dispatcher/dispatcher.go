package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// Options configure a Dispatcher. cmd/posthorn fills them from the config
// file and the store.
type Options struct {
	Outbox Outbox
	// Settings returns the current Event Webhook settings; it is called
	// from two goroutines and must be safe for that.
	Settings func() settings.EventWebhook
	// AllowHTTP is the config's allow_insecure_http (development only).
	AllowHTTP bool
	// ServerComposition is sent as server_composition (WIRE.md §2).
	ServerComposition string
	// Version is Posthorn's version, for the User-Agent.
	Version string
	Logger  *slog.Logger
	// Now and Rand replace the clock and the jitter source in tests.
	Now  func() time.Time
	Rand func() float64
	// Poll is how often stored events are looked for without a Notify;
	// default 1 s.
	Poll time.Duration
}

// Dispatcher forms batches from stored events and delivers them. Two
// goroutines run it: one forms and freezes batches, the other makes
// attempts, so a slow endpoint delays neither batching nor — since events
// reach the store without the dispatcher — the log reader.
type Dispatcher struct {
	o Options

	// Owned by the forming goroutine.
	batcher *Batcher
	after   map[string]string // family → store position of the last event read

	// Owned by the delivering goroutine.
	poster   *Poster
	posterCA string
	hold     time.Time // endpoint failing: no attempt before this

	notify chan struct{} // new events stored
	frozen chan struct{} // a batch was frozen
}

// Delivery pacing.
const (
	// leaseMargin is added to the timeout for a claim's lease: a batch
	// whose attempt outlives timeout+margin was lost with its process.
	leaseMargin = 30 * time.Second
	// maxIdle bounds how long the deliverer sleeps without looking at the
	// store, which other processes (`posthorn replay`) change too.
	maxIdle = 10 * time.Second
	// minRead is the least number of events read from the store at once.
	minRead = 500
)

// New returns a Dispatcher; Run starts it.
func New(o Options) (*Dispatcher, error) {
	if o.Outbox == nil || o.Settings == nil {
		return nil, errors.New("new dispatcher: Outbox and Settings are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	s := o.Settings()
	return &Dispatcher{
		o:       o,
		batcher: NewBatcher(s.MaxEvents, s.IntervalDuration()),
		after:   map[string]string{},
		notify:  make(chan struct{}, 1),
		frozen:  make(chan struct{}, 1),
	}, nil
}

// Notify tells the dispatcher that events were stored. It never blocks,
// so the log reader can call it after every commit.
func (d *Dispatcher) Notify() { signal(d.notify) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run forms and delivers batches until ctx ends. An attempt in flight is
// interrupted and recorded as deferred; open batches are dropped from
// memory, and formed again from the store at the next start.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { d.loop(ctx, "form batches", d.notify, d.Form) })
	d.loop(ctx, "deliver batches", d.frozen, d.Deliver)
	wg.Wait()
	if d.poster != nil {
		d.poster.Close()
	}
	return nil
}

// loop runs step until ctx ends: again when woken, when step asks for it,
// or after maxIdle. A repeated error is logged once.
func (d *Dispatcher) loop(ctx context.Context, what string, wake <-chan struct{}, step func(context.Context) (time.Time, error)) {
	var lastErr string
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next, err := step(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := maxIdle
		switch {
		case err != nil:
			if err.Error() != lastErr {
				d.o.Logger.Error(what, "err", err)
			}
			lastErr = err.Error()
			wait = d.o.Poll
		case !next.IsZero():
			lastErr = ""
			// The floor keeps a store that reports a due batch it will
			// not hand out from turning this into a busy loop.
			wait = min(wait, max(next.Sub(d.o.Now()), 10*time.Millisecond))
		default:
			lastErr = ""
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
	}
}

// Form reads newly stored events, adds them to open batches, and freezes
// every batch that closes. It returns when it wants to run again: when the
// earliest open batch falls due, or within Poll to look for new events.
func (d *Dispatcher) Form(ctx context.Context) (time.Time, error) {
	s := d.o.Settings()
	if err := s.Validate(d.o.AllowHTTP); err != nil {
		// Events wait in the store until the settings are fixed.
		return time.Time{}, fmt.Errorf("form batches: %w", err)
	}
	d.batcher.SetLimits(s.MaxEvents, s.IntervalDuration())
	now := d.o.Now()
	chunk := max(s.MaxEvents, minRead)
	for _, fam := range families {
		for {
			evs, pos, err := d.o.Outbox.Unbatched(ctx, fam, d.after[fam], chunk)
			if err != nil {
				return time.Time{}, fmt.Errorf("form batches: %w", err)
			}
			if len(evs) == 0 {
				break
			}
			if err := d.add(ctx, s, now, fam, evs); err != nil {
				// Read everything unfrozen again next time; events already
				// in open batches are recognised by their ids.
				clear(d.after)
				return time.Time{}, err
			}
			d.after[fam] = pos
			if len(evs) < chunk {
				break
			}
		}
	}
	for _, b := range d.batcher.Due(now) {
		if err := d.freeze(ctx, s, now, b); err != nil {
			clear(d.after)
			return time.Time{}, err
		}
	}
	next := now.Add(d.o.Poll)
	if due, ok := d.batcher.Next(); ok && due.Before(next) {
		next = due
	}
	return next, nil
}

func (d *Dispatcher) add(ctx context.Context, s settings.EventWebhook, now time.Time, fam string, evs []event.Event) error {
	var skip []event.Event
	for _, e := range evs {
		if !s.Posts(e.Type.Family()) || !e.Type.Valid() {
			skip = append(skip, e)
			continue
		}
		b, closed, err := d.batcher.Add(now, e)
		if err != nil {
			d.o.Logger.Warn("event not posted", "event", e.ID, "err", err)
			skip = append(skip, e)
			continue
		}
		if closed {
			if err := d.freeze(ctx, s, now, b); err != nil {
				return err
			}
		}
	}
	if len(skip) > 0 {
		if err := d.o.Outbox.Skip(ctx, skip); err != nil {
			return fmt.Errorf("form batches: skip %d %s events: %w", len(skip), fam, err)
		}
	}
	return nil
}

// freeze encodes a closed batch with the current settings and stores its
// bytes: from here on it is posted exactly so, whatever changes.
func (d *Dispatcher) freeze(ctx context.Context, s settings.EventWebhook, now time.Time, b Batch) error {
	ct, body, err := Encode(s, d.o.ServerComposition, b.Family, b.Events)
	if err != nil {
		return fmt.Errorf("freeze %s: %w", b.ID, err)
	}
	if err := d.o.Outbox.Freeze(ctx, b.ID, b.Family, b.Events, ct, body, now); err != nil {
		return fmt.Errorf("freeze %s: %w", b.ID, err)
	}
	d.o.Logger.Debug("batch queued", "batch", b.ID, "type", b.Family, "events", len(b.Events), "bytes", len(body))
	signal(d.frozen)
	return nil
}

// Deliver makes attempts, one at a time, until no batch is due or the
// endpoint fails temporarily; then it holds off until that batch's next
// attempt, so a dead endpoint sees one probe per retry step, not one per
// batch. It returns when it wants to run again (zero: when woken).
func (d *Dispatcher) Deliver(ctx context.Context) (time.Time, error) {
	for ctx.Err() == nil {
		now := d.o.Now()
		if now.Before(d.hold) {
			return d.hold, nil
		}
		s := d.o.Settings()
		if err := s.Validate(d.o.AllowHTTP); err != nil {
			return time.Time{}, fmt.Errorf("deliver batches: %w", err)
		}
		p, err := d.posterFor(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("deliver batches: %w", err)
		}
		ids, err := d.o.Outbox.ClaimDue(ctx, now, now.Add(s.TimeoutDuration()+leaseMargin), 1)
		if err != nil {
			return time.Time{}, fmt.Errorf("deliver batches: %w", err)
		}
		if len(ids) == 0 {
			next, ok, err := d.o.Outbox.NextDue(ctx)
			if err != nil || !ok {
				return time.Time{}, err
			}
			return next, nil
		}
		if err := d.attempt(ctx, s, p, ids[0]); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

func (d *Dispatcher) attempt(ctx context.Context, s settings.EventWebhook, p *Poster, id string) error {
	ct, body, attempt, first, err := d.o.Outbox.Frozen(ctx, id)
	if err != nil {
		return fmt.Errorf("deliver %s: %w", id, err)
	}
	res := p.Post(ctx, NewRequest(s, id, attempt, ct, body))
	now := d.o.Now()
	state, next := Decide(res, attempt, first, now, time.Duration(s.RetryPeriod), d.o.Rand)
	switch {
	case res.Kind == KindCanceled:
		// Not the endpoint's fault: try again as soon as we are back.
		state, next = StateDeferred, now
	case res.Outcome == Retry && state == StateDeferred:
		d.hold = next
	}
	// Recorded even while stopping: the write is short, and an unrecorded
	// attempt would wait for its lease to run out.
	if err := d.o.Outbox.Record(context.WithoutCancel(ctx), id, attempt, res.Started, s.Endpoint, state, res.Status, res.Reason, res.Response, next); err != nil {
		return fmt.Errorf("deliver %s: record attempt %d: %w", id, attempt, err)
	}
	level := slog.LevelInfo
	if state != StateSucceeded {
		level = slog.LevelWarn
	}
	attrs := []any{"batch", id, "attempt", attempt, "state", state, "status", res.Status, "took", res.Took.Round(time.Millisecond)}
	if state != StateSucceeded {
		attrs = append(attrs, "reason", res.Reason)
	}
	if state == StateDeferred {
		attrs = append(attrs, "next", next)
	}
	d.o.Logger.Log(ctx, level, "event webhook post", attrs...)
	return nil
}

// posterFor returns the shared Poster, built again when the CA file
// setting changes.
func (d *Dispatcher) posterFor(s settings.EventWebhook) (*Poster, error) {
	if d.poster != nil && d.posterCA == s.CAFile {
		return d.poster, nil
	}
	p, err := NewPoster(PosterOptions{Version: d.o.Version, CAFile: s.CAFile, Now: d.o.Now})
	if err != nil {
		return nil, err
	}
	if d.poster != nil {
		d.poster.Close()
	}
	d.poster, d.posterCA = p, s.CAFile
	return p, nil
}
