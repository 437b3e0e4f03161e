package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
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
	// Hostname names this server in the Event Webhook log.
	Hostname string
	// MaxPending bounds the events waiting in queued and deferred batches;
	// past it the oldest are failed (logged and counted, never dropped
	// silently). 0: no bound.
	MaxPending int64
	// Observations, if set, fills header From, Subject and the metadata
	// header of deliveries and bounces records from what the milter's
	// outbound role saw of the message (WIRE.md §2: they are not in the
	// maillog).
	Observations Observations
	// Version is Posthorn's version, for the User-Agent.
	Version string
	Logger  *slog.Logger
	// Now and Rand replace the clock and the jitter source in tests.
	Now  func() time.Time
	Rand func() float64
	// Poll is how often stored events are looked for without a Notify;
	// default 1 s.
	Poll time.Duration
	// Observe, if set, is told of each recorded attempt. It is called
	// from the delivering goroutine and must not block; cmd/posthorn
	// feeds its metrics and alerts from it.
	Observe func(PostReport)
}

// Stats are counters since the Dispatcher started, ready to be exported as
// metrics.
type Stats struct {
	BatchesFormed    int64
	EventsFormed     int64
	Attempts         int64
	BatchesSucceeded int64
	EventsSucceeded  int64
	// Failed by an attempt: a permanent failure, or the last attempt of
	// the retry period failing.
	BatchesFailed int64
	EventsFailed  int64
	// Failed without a further attempt because their retry period was
	// over (the endpoint was held off, or the backlog was older than the
	// period).
	BatchesExpired int64
	EventsExpired  int64
	// OverflowEvents were failed, unposted, because more than MaxPending
	// events were waiting.
	OverflowEvents int64
}

// Dispatcher forms batches from stored events and delivers them. Two
// goroutines run it: one forms batches, the other makes attempts, so a slow
// endpoint delays neither batching nor — since events reach the store
// without the dispatcher — the log reader.
type Dispatcher struct {
	o Options

	// Owned by the forming goroutine.
	batcher  *Batcher
	loaded   bool             // progress and pos are read from the store
	pos      int64            // position of the last stored event read
	progress map[string]int64 // per family, as stored
	want     map[string]int64 // progress to store with the next write
	wroteAt  time.Time        // last write of progress alone
	// Batches closed but not yet stored, and when batches were last
	// stored: see formEvery.
	unwritten []Batch
	formedAt  time.Time

	// failing is set by the delivering goroutine while the endpoint fails
	// temporarily: nothing formed can go out before the next probe, so
	// batches are stored less often (formEveryFailing).
	failing   atomic.Bool
	checkedAt time.Time // last look at the number of pending events

	// Owned by the delivering goroutine.
	poster   *Poster
	posterCA string
	hold     time.Time // endpoint failing: no attempt before this
	streak   int       // temporary failures in a row, of any batch
	// The settings of the last step: a change lifts the hold.
	last     settings.EventWebhook
	lastSeen bool
	// Replays counted while the endpoint is held: a change lifts it.
	replays      int64
	replaysKnown bool
	// No retry period of a pending batch ends before expireAt, with the
	// period setting expirePeriod.
	expireAt     time.Time
	expirePeriod time.Duration
	// The body of the batch expected next, made during the attempt before.
	prep *prepared

	notify chan struct{} // new events stored
	frozen chan struct{} // a batch was formed

	mu    sync.Mutex
	stats Stats
}

// Delivery pacing.
const (
	// leaseMargin is added to the timeout for a claim's lease: a batch
	// whose attempt outlives timeout+margin was lost with its process.
	leaseMargin = 30 * time.Second
	// maxIdle bounds how long the deliverer sleeps without looking at the
	// store, which other processes (`posthorn replay`) change too.
	maxIdle = 10 * time.Second
	// readChunk is the most events read from the store at once.
	readChunk = 5000
	// progressEvery bounds how often progress alone (skipped events, no
	// batch) is written: losing it to a crash only means reading those
	// events again.
	progressEvery = time.Second
	// formEvery bounds how often closed batches are stored while events
	// keep coming: each store is a transaction on the one writer, touching
	// the pages of every index of the batches table, and a catch-up that
	// formed batches after each of the log reader's commits spent a sixth
	// of the writer's time on them. Batches that close after a quiet spell
	// are stored at once; in a stream, at most formEvery later.
	formEvery = 500 * time.Millisecond
	// formEveryFailing is formEvery while the endpoint fails: a dead
	// endpoint must not cost the log reader more than the batches' rows.
	formEveryFailing = 5 * time.Second
	// formMax is the most closed batches kept waiting to be stored (their
	// event ids: some 6 MB at max_events = 100).
	formMax = 1000
	// maxHold bounds how long a failing endpoint is left alone.
	maxHold = 24 * time.Hour
	// checkEvery is how often the pending events are counted against
	// MaxPending.
	checkEvery = 5 * time.Second
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
		want:    map[string]int64{},
		notify:  make(chan struct{}, 1),
		frozen:  make(chan struct{}, 1),
	}, nil
}

// Notify tells the dispatcher that events were stored. It never blocks,
// so the log reader can call it after every commit.
func (d *Dispatcher) Notify() { signal(d.notify) }

// SettingsChanged tells the dispatcher that the settings changed. It
// wakes both goroutines: any change counts as the administrator acting on
// a failing endpoint (a fixed URL, credential or CA is the usual one), so
// the hold after its failures is lifted and the waiting batches go out at
// once. It never blocks.
func (d *Dispatcher) SettingsChanged() {
	signal(d.notify)
	signal(d.frozen)
}

// Stats returns the counters so far.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

func (d *Dispatcher) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

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
	if n, err := d.o.Outbox.ReleaseLeases(ctx); err != nil {
		return fmt.Errorf("run dispatcher: %w", err)
	} else if n > 0 {
		d.o.Logger.Info("event webhook: batches in flight when the last run stopped are due again", "batches", n)
	}
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

// anyPosted reports whether the settings post any family.
func anyPosted(s settings.EventWebhook) bool {
	for _, f := range families {
		if s.Posts(f) {
			return true
		}
	}
	return false
}

// Form reads newly stored events, adds them to open batches, and stores
// every batch that closes. It returns when it wants to run again: when the
// earliest open batch falls due, or within Poll to look for new events.
//
// Forming needs only the settings' event types and limits, so it goes on
// while the endpoint is misconfigured: the events wait in queued batches,
// bounded by MaxPending. A family that is switched off has its events
// skipped as they are read, so switching it on later does not post the
// backlog; with every family off nothing is read at all.
func (d *Dispatcher) Form(ctx context.Context) (time.Time, error) {
	next, err := d.form(ctx)
	if err != nil {
		// Read everything unformed again next time: nothing was posted,
		// so batches formed anew may differ without harm.
		d.loaded = false
		d.batcher.Reset()
		clear(d.want)
		return time.Time{}, fmt.Errorf("form batches: %w", err)
	}
	return next, nil
}

func (d *Dispatcher) form(ctx context.Context) (time.Time, error) {
	s := d.o.Settings()
	now := d.o.Now()
	if !d.loaded {
		p, err := d.o.Outbox.Progress(ctx)
		if err != nil {
			return time.Time{}, err
		}
		d.progress, d.pos = p, -1
		for _, f := range families {
			if d.pos < 0 || p[f] < d.pos {
				d.pos = p[f]
			}
		}
		d.loaded = true
	}
	d.batcher.SetLimits(s.MaxEvents, s.IntervalDuration())

	var closed []Batch
	if !anyPosted(s) {
		closed = d.batcher.Flush()
		last, err := d.o.Outbox.LastSeq(ctx)
		if err != nil {
			return time.Time{}, err
		}
		d.pos = max(d.pos, last)
		d.skipTo(d.pos)
	} else {
		for {
			evs, err := d.o.Outbox.Unformed(ctx, d.pos, readChunk)
			if err != nil {
				return time.Time{}, err
			}
			for _, p := range evs {
				closed = d.add(s, now, p, closed)
			}
			if len(evs) > 0 {
				d.pos = evs[len(evs)-1].Seq
			}
			if len(evs) < readChunk {
				break
			}
			// Store what closed so far, so a long catch-up holds at most a
			// chunk's worth of batches in memory.
			if err := d.store(ctx, s, now, closed, true); err != nil {
				return time.Time{}, err
			}
			closed = nil
		}
		d.skipTo(d.pos)
	}
	closed = append(closed, d.batcher.Due(now)...)
	next := now.Add(d.o.Poll)
	every := formEvery
	if d.failing.Load() {
		every = formEveryFailing
	}
	if wait, n := d.formedAt.Add(every), len(d.unwritten)+len(closed); n > 0 && n < formMax && now.Before(wait) {
		// In a stream of events: stored with the next ones.
		d.unwritten = append(d.unwritten, closed...)
		next = earliest(next, wait)
	} else if err := d.store(ctx, s, now, closed, false); err != nil {
		return time.Time{}, err
	}
	if err := d.bound(ctx, now); err != nil {
		return time.Time{}, err
	}
	if due, ok := d.batcher.Next(); ok && due.Before(next) {
		next = due
	}
	return next, nil
}

// store writes the batches kept waiting and closed, with the progress they
// make.
func (d *Dispatcher) store(ctx context.Context, s settings.EventWebhook, now time.Time, closed []Batch, force bool) error {
	all := append(d.unwritten, closed...)
	if err := d.write(ctx, s, now, all, force); err != nil {
		return err
	}
	d.unwritten = nil
	if len(all) > 0 {
		d.formedAt = now
	}
	return nil
}

// formed is how far a family's events are dealt with: stored progress, or
// progress not yet written.
func (d *Dispatcher) formed(fam string) int64 { return max(d.progress[fam], d.want[fam]) }

// skipTo notes that families without an open batch have nothing waiting up
// to pos.
func (d *Dispatcher) skipTo(pos int64) {
	for _, f := range families {
		if !d.batcher.Open(f) && pos > d.formed(f) {
			d.want[f] = pos
		}
	}
}

func (d *Dispatcher) add(s settings.EventWebhook, now time.Time, p Pending, closed []Batch) []Batch {
	fam := p.Type.Family()
	if p.Seq <= d.formed(fam) {
		return closed // formed or skipped before a restart or an error
	}
	skip := !s.Posts(fam) || !p.Type.Valid()
	if !skip {
		b, full, err := d.batcher.Add(now, p)
		if err != nil {
			d.o.Logger.Warn("event not posted", "event_id", p.ID, "type", p.Type, "err", err)
			skip = true
		} else if full {
			closed = append(closed, b)
		}
	}
	if skip {
		// A batch is a gapless range of its family's events: the open
		// one closes before an event of its family is skipped.
		if b, ok := d.batcher.Close(fam); ok {
			closed = append(closed, b)
		}
		d.want[fam] = p.Seq
	}
	return closed
}

// write stores closed batches together with the progress they and the
// skipped events make; progress alone is written at most every
// progressEvery unless force is set.
func (d *Dispatcher) write(ctx context.Context, s settings.EventWebhook, now time.Time, closed []Batch, force bool) error {
	if len(closed) == 0 && (len(d.want) == 0 || (!force && now.Sub(d.wroteAt) < progressEvery && !d.wroteAt.IsZero())) {
		return nil
	}
	prog := maps.Clone(d.want)
	formed := make([]Formed, len(closed))
	events := 0
	for i, b := range closed {
		formed[i] = FromBatch(b, d.o.Hostname, s.Endpoint)
		prog[b.Family] = max(prog[b.Family], b.Last)
		events += b.Len()
	}
	if err := d.o.Outbox.Form(ctx, formed, prog, now); err != nil {
		return err
	}
	for f, v := range prog {
		d.progress[f] = max(d.progress[f], v)
	}
	clear(d.want)
	if len(closed) == 0 {
		d.wroteAt = now
		return nil
	}
	for _, b := range closed {
		d.o.Logger.Debug("batch queued", "batch", b.ID, "type", b.Family, "events", b.Len())
	}
	d.count(func(st *Stats) { st.BatchesFormed += int64(len(closed)); st.EventsFormed += int64(events) })
	signal(d.frozen)
	return nil
}

// bound fails the oldest pending events when more than MaxPending wait.
func (d *Dispatcher) bound(ctx context.Context, now time.Time) error {
	if d.o.MaxPending <= 0 || (now.Sub(d.checkedAt) < checkEvery && !d.checkedAt.IsZero()) {
		return nil
	}
	d.checkedAt = now
	n, err := d.o.Outbox.PendingEvents(ctx)
	if err != nil || n <= d.o.MaxPending {
		return err
	}
	reason := fmt.Sprintf("spool full: more than max_pending = %d events waited to be posted; the oldest were failed unposted (posthorn replay re-queues them)", d.o.MaxPending)
	batches, events, err := d.o.Outbox.FailOldest(ctx, n-d.o.MaxPending, now, reason)
	if err != nil {
		return err
	}
	d.count(func(st *Stats) { st.OverflowEvents += events })
	d.o.Logger.Error("event webhook spool full: oldest pending events failed unposted",
		"events", events, "batches", batches, "pending", n, "max_pending", d.o.MaxPending)
	return nil
}

// Deliver makes attempts, one at a time and in event order, until no
// batch is due or the endpoint fails temporarily; then it holds off until
// that batch's next attempt, so a dead endpoint sees one probe per retry
// step, not one per batch, and each probe is the oldest batch waiting.
// Batches whose retry period (counted from when they were formed) ends
// meanwhile are failed without another attempt. A change of the settings,
// or a replay, lifts the hold. It returns when it wants to run again
// (zero: when woken).
func (d *Dispatcher) Deliver(ctx context.Context) (time.Time, error) {
	for ctx.Err() == nil {
		now := d.o.Now()
		s := d.o.Settings()
		if err := d.reconsider(ctx, s, now); err != nil {
			return time.Time{}, fmt.Errorf("deliver batches: %w", err)
		}
		held := now.Before(d.hold)
		expires, err := d.expire(ctx, s, now, held)
		if err != nil {
			return time.Time{}, fmt.Errorf("deliver batches: %w", err)
		}
		if held {
			d.prep = nil // made for an attempt that is not coming soon
			// Back within Poll to look for a replay.
			return earliest(d.hold, expires, now.Add(d.o.Poll)), nil
		}
		if s.Endpoint == "" {
			// The Event Webhook is off (an empty endpoint, WIRE.md §4):
			// batches formed before wait for an endpoint, or for the end
			// of their retry period; saving one wakes this loop.
			return earliest(expires), nil
		}
		if err := s.Validate(d.o.AllowHTTP); err != nil {
			// Without anything due there is nothing to complain about
			// (a new installation has no settings yet).
			next, ok, nerr := d.o.Outbox.NextDue(ctx)
			switch {
			case nerr != nil:
				return time.Time{}, fmt.Errorf("deliver batches: %w", nerr)
			case !ok:
				return earliest(expires), nil
			case next.After(now):
				return earliest(next, expires), nil
			}
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
			if err != nil {
				return time.Time{}, fmt.Errorf("deliver batches: %w", err)
			}
			if !ok {
				return earliest(expires), nil
			}
			return earliest(next, expires), nil
		}
		if err := d.attempt(ctx, s, p, ids[0]); err != nil {
			return time.Time{}, err
		}
	}
	return time.Time{}, nil
}

// earliest returns the earliest of the times that are set (zero: none).
func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

// reconsider lifts the endpoint's hold when the settings changed or
// batches were replayed since it was set: either is someone acting on the
// failure (a fixed URL, credential or CA; `posthorn replay` after the
// receiver is back), who should not wait hours for the next step of the
// backoff. A replay made by another process is seen through the store's
// count. The count is read before every attempt, not only once the
// endpoint is held: a replay made while the failing probe was in flight
// (up to its timeout) must count as one made after it.
func (d *Dispatcher) reconsider(ctx context.Context, s settings.EventWebhook, now time.Time) error {
	if d.lastSeen && s != d.last && (d.streak > 0 || !d.hold.IsZero()) {
		d.o.Logger.Info("event webhook settings changed: trying the endpoint again now")
		if err := d.lift(ctx, now); err != nil {
			return err
		}
	}
	d.last, d.lastSeen = s, true
	n, err := d.o.Outbox.Replays(ctx)
	if err != nil {
		return err
	}
	if d.replaysKnown && n != d.replays && (d.streak > 0 || now.Before(d.hold)) {
		d.o.Logger.Info("event webhook batches were replayed: trying the endpoint again now")
		if err := d.lift(ctx, now); err != nil {
			return err
		}
	}
	d.replays, d.replaysKnown = n, true
	return nil
}

// lift ends the endpoint's hold and makes the deferred batches due, so
// that delivery resumes in event order with the batch that failed first.
func (d *Dispatcher) lift(ctx context.Context, now time.Time) error {
	// The hold stays until the batches are due, so that a failed write
	// is retried by the next run rather than forgotten.
	if _, err := d.o.Outbox.RetryNow(ctx, now); err != nil {
		return err
	}
	d.hold, d.streak = time.Time{}, 0
	d.failing.Store(false)
	return nil
}

// expire fails the batches whose retry period is over, when one may be,
// and returns when the next one ends. While the endpoint is held even a
// batch due for its last attempt is failed: that attempt would go to an
// endpoint that is failing, after the period the user allowed.
func (d *Dispatcher) expire(ctx context.Context, s settings.EventWebhook, now time.Time, held bool) (time.Time, error) {
	// Settings that fail validation still have a period to count.
	period := min(max(time.Duration(s.RetryPeriod), settings.MinRetryPeriod), settings.MaxRetryPeriod)
	if period == d.expirePeriod && now.Before(d.expireAt) {
		return d.expireAt, nil
	}
	failing := d.streak > 0
	reason := func(round int) string {
		switch {
		case round == 0 && failing:
			return fmt.Sprintf("retry period of %s over without an attempt: the endpoint is failing", settings.Duration(period))
		case round == 0:
			return fmt.Sprintf("retry period of %s over without an attempt", settings.Duration(period))
		case round == 1:
			return fmt.Sprintf("retry period of %s over after 1 attempt", settings.Duration(period))
		}
		return fmt.Sprintf("retry period of %s over after %d attempts", settings.Duration(period), round)
	}
	batches, events, next, err := d.o.Outbox.Expire(ctx, now, period, !held, reason)
	if err != nil {
		return time.Time{}, err
	}
	if next.IsZero() {
		// Nothing pending: a batch formed from now on ends its period
		// later than this.
		next = now.Add(period)
	}
	d.expireAt, d.expirePeriod = next, period
	if batches > 0 {
		d.count(func(st *Stats) { st.BatchesExpired += int64(batches); st.EventsExpired += events })
		d.o.Logger.Error("event webhook: retry period over, batches failed without another attempt (posthorn replay re-queues them)",
			"batches", batches, "events", events, "retry_period", settings.Duration(period))
	}
	return next, nil
}

// body returns the batch's frozen body, encoding and freezing it at the
// first attempt with the settings of that moment. A body prepared with the
// same settings while the attempt before was in flight is the same bytes,
// made a few milliseconds earlier: it is used, and frozen only now.
func (d *Dispatcher) body(ctx context.Context, s settings.EventWebhook, id string, f Frozen, prep *prepared) (ct string, body []byte, err error) {
	if f.Body != nil {
		return f.ContentType, f.Body, nil
	}
	if prep != nil && prep.id == id && prep.s == s {
		ct, body = prep.ct, prep.body
	} else {
		ct, body, err = d.encode(ctx, s, id, f.Family)
		if err != nil {
			return "", nil, err
		}
	}
	return d.o.Outbox.FreezeBody(ctx, id, ct, body)
}

// encode reads a batch's events and makes its body.
func (d *Dispatcher) encode(ctx context.Context, s settings.EventWebhook, id, family string) (ct string, body []byte, err error) {
	evs, err := d.o.Outbox.BatchEvents(ctx, id)
	if err != nil {
		return "", nil, err
	}
	d.observe(ctx, evs)
	ct, body, err = Encode(s, d.o.ServerComposition, family, evs)
	if err != nil {
		return "", nil, errEncode{err}
	}
	return ct, body, nil
}

// prepared is the body of a batch not yet claimed, made ahead.
type prepared struct {
	id   string
	s    settings.EventWebhook
	ct   string
	body []byte
}

// prepareNext makes, in the background, the body of the batch the next
// claim is expected to return, so that reading and encoding it overlaps
// the POST in flight: the POSTs themselves stay one at a time, in order.
// Nothing is written: the batch is claimed, its attempt counted and its
// body frozen only when its turn comes, so a crash or a failing endpoint
// leaves it as it was. The channel gets nil when there is nothing to
// prepare or preparing failed (its attempt does it again, and reports).
func (d *Dispatcher) prepareNext(ctx context.Context, s settings.EventWebhook, now time.Time) <-chan *prepared {
	out := make(chan *prepared, 1)
	go func() {
		out <- func() *prepared {
			id, ok, err := d.o.Outbox.NextClaim(ctx, now)
			if err != nil || !ok {
				return nil
			}
			f, err := d.o.Outbox.Frozen(ctx, id)
			if err != nil || f.Body != nil {
				return nil
			}
			ct, body, err := d.encode(ctx, s, id, f.Family)
			if err != nil {
				return nil
			}
			return &prepared{id: id, s: s, ct: ct, body: body}
		}()
	}()
	return out
}

// errEncode marks a batch that cannot be encoded with the current settings
// (a blocks batch after a switch to version 1, say): it fails, as retrying
// cannot help.
type errEncode struct{ error }

func (d *Dispatcher) attempt(ctx context.Context, s settings.EventWebhook, p *Poster, id string) error {
	f, err := d.o.Outbox.Frozen(ctx, id)
	if err != nil {
		return fmt.Errorf("deliver %s: %w", id, err)
	}
	prep := d.prep
	d.prep = nil
	ct, body, err := d.body(ctx, s, id, f, prep)
	events := f.Events
	var res Result
	var ee errEncode
	switch {
	case errors.As(err, &ee):
		res = Result{Outcome: Permanent, Kind: KindConfig, Reason: err.Error(), Started: d.o.Now()}
	case err != nil:
		return fmt.Errorf("deliver %s: %w", id, err)
	default:
		next := d.prepareNext(ctx, s, d.o.Now())
		res = p.Post(ctx, NewRequest(s, id, f.Attempt, ct, body))
		d.prep = <-next
	}
	now := d.o.Now()
	state, next := Decide(res, f.Round, f.PeriodStart, now, time.Duration(s.RetryPeriod), d.o.Rand)
	switch {
	case res.Kind == KindCanceled:
		// Not the endpoint's fault: try again as soon as we are back.
		state, next = StateDeferred, now
	case res.Outcome == Retry:
		// The endpoint, not only this batch, backs off along the retry
		// schedule: otherwise every batch queued behind a dead endpoint
		// would be its first probe, one every 10 s.
		d.streak++
		d.failing.Store(true)
		// The retry periods' cache was made without this hold: batches it
		// spared for their last try are now failed without it.
		d.expireAt = time.Time{}
		if probe, ok := NextAttempt(d.streak, now, now, maxHold, res.RetryAfter, d.o.Rand); ok {
			d.hold = probe
		}
		switch {
		case state != StateDeferred:
		case next.After(d.hold):
			d.hold = next
		case next.Equal(f.PeriodStart.Add(time.Duration(s.RetryPeriod))):
			// This batch's last try, when its period ends, is not put off.
			d.hold = next
		}
	default:
		d.streak = 0 // the endpoint answered
		d.failing.Store(false)
	}
	// Recorded even while stopping: the write is short, and an unrecorded
	// attempt would wait for its lease to run out.
	a := Attempt{BatchID: id, Attempt: f.Attempt, At: res.Started, Host: d.o.Hostname, Endpoint: s.Endpoint,
		State: state, Status: res.Status, Reason: res.Reason, Response: res.Response, Next: next}
	if err := d.o.Outbox.Record(context.WithoutCancel(ctx), a); err != nil {
		return fmt.Errorf("deliver %s: record attempt %d: %w", id, f.Attempt, err)
	}
	d.count(func(st *Stats) {
		st.Attempts++
		switch state {
		case StateSucceeded:
			st.BatchesSucceeded++
			st.EventsSucceeded += int64(events)
		case StateFailed:
			st.BatchesFailed++
			st.EventsFailed += int64(events)
		}
	})
	endpoint := settings.LogEndpoint(s.Endpoint)
	if d.o.Observe != nil {
		d.o.Observe(PostReport{Webhook: WebhookEvent, Endpoint: endpoint, At: res.Started, State: state,
			Status: res.Status, Reason: res.Reason, Took: res.Took})
	}
	level := slog.LevelInfo
	if state != StateSucceeded {
		level = slog.LevelWarn
	}
	attrs := []any{"batch", id, "attempt", f.Attempt, "events", events, "endpoint", endpoint,
		"state", state, "status", res.Status, "took", res.Took.Round(time.Millisecond)}
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

// Observations is what the milter recorded of a message when Postfix
// received it, by queue ID.
type Observations interface {
	Observation(ctx context.Context, host, queueID string) (event.Observation, bool, error)
}

// observe fills From, Subject and APIData of events the log reader could
// not know them for. A failed lookup leaves them empty, as for mail the
// milter never saw: the batch goes out all the same.
//
// It runs when the body is made, at the first attempt, not when the batch
// is formed: forming reads only each event's position, id, type and time,
// and looking up at formation would mean reading every event in full and
// writing what was found, per event, on the log reader's path — the write
// per event the outbox is built to avoid. The milter's records outlive
// the wait if milter.observation_ttl exceeds retry_period plus Postfix's
// queue lifetime (the README says so); a batch first attempted later
// carries them empty.
func (d *Dispatcher) observe(ctx context.Context, evs []event.Event) {
	if d.o.Observations == nil {
		return
	}
	type key struct{ host, qid string }
	seen := map[key]event.Observation{}
	for i := range evs {
		e := &evs[i]
		if e.QueueID == "" || e.From != "" || e.Subject != "" || e.APIData != "" {
			continue
		}
		k := key{e.Host, e.QueueID}
		o, done := seen[k]
		if !done {
			var ok bool
			var err error
			o, ok, err = d.o.Observations.Observation(ctx, e.Host, e.QueueID)
			if err != nil {
				d.o.Logger.Warn("read the milter's observation", "queue_id", e.QueueID, "event_id", e.ID, "message_id", e.MessageID, "err", err)
			}
			if !ok {
				o = event.Observation{}
			}
			seen[k] = o
		}
		e.From, e.Subject, e.APIData = o.From, o.Subject, o.APIData
	}
}
