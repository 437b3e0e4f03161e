package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// InboundOutbox is what the inbound dispatcher needs from the store
// (sqlite.Store implements it). Each captured message has one pending POST
// per filter that matched it; the store keeps per POST its message, filter,
// the recipients that matched (envelope-to), a stable webhook id, state
// (queued, deferred, succeeded, failed), attempts, next attempt and last
// result, and keeps the inbound log rows of the POST in the same state.
type InboundOutbox interface {
	// DueInbound returns up to limit queued or deferred POSTs whose next
	// attempt is at or before now, in due order, leaving out the filters
	// named in skip.
	DueInbound(ctx context.Context, now time.Time, skip []string, limit int) ([]InboundPost, error)
	// NextInboundDue returns the earliest next attempt of a pending POST of
	// a filter not named in skip; ok is false when there is none.
	NextInboundDue(ctx context.Context, skip []string) (at time.Time, ok bool, err error)
	// ExpireInbound fails, without an attempt, every queued or deferred
	// POST of filter captured before createdBefore, with the reason prefix
	// and the POST's own last reason (or fallback); it returns how many.
	ExpireInbound(ctx context.Context, filter string, createdBefore, at time.Time, prefix, fallback string) (int, error)
	// InboundMessage returns a captured message; its attachments' Content
	// read from the store as they are read.
	InboundMessage(ctx context.Context, id int64) (*event.InboundMessage, error)
	// RecordInbound stores the outcomes of attempts (or the end of POSTs
	// without one) in one transaction; a POST that ends drops its
	// message's content once no other POST of the message is pending.
	RecordInbound(ctx context.Context, attempts ...InboundAttempt) error
}

// InboundPost is a pending POST: one message to one filter. It is an alias
// of an unnamed struct type so that the store declares the same type
// without importing this package.
type InboundPost = struct {
	ID         int64
	Message    int64
	Filter     string
	Recipients []string // envelope-to: the recipients that matched the filter
	WebhookID  string
	Attempts   int
	Created    time.Time // capture time; the retry period counts from it
	LastReason string
}

// InboundAttempt is the outcome of one attempt at a POST, or the end of a
// POST without an attempt (its retry period ran out, its filter is gone).
type InboundAttempt = struct {
	Post      int64
	At        time.Time
	Attempted bool   // a request was made: count it
	State     string // queued, deferred, succeeded or failed
	Status    int    // HTTP status, 0 without an answer
	Reason    string // "" on success
	Response  []byte // the first bytes of the answer, for the detail view
	Next      time.Time
}

// InboundOptions configure the inbound dispatcher.
type InboundOptions struct {
	Outbox InboundOutbox
	// Settings returns the current inbound settings; it is called at every
	// round, so a change applies without a restart.
	Settings func() settings.Inbound
	// AllowHTTP is the daemon config's allow_insecure_http.
	AllowHTTP         bool
	ServerComposition string
	// Version is sent in the User-Agent.
	Version string
	// Concurrency is how many POSTs of one healthy filter are in flight at
	// once (default 4).
	Concurrency int
	// Page is how many due POSTs a round reads (default 256).
	Page int
	// Gather is how long Run waits, once Notify woke it, before the round
	// (default DefaultGather; negative: not at all). Mail comes in bursts:
	// a round of several POSTs costs one query of the due POSTs and one
	// wake-up instead of one each, and Posthorn's work then comes in
	// short bursts instead of beside every SMTP session Postfix is
	// answering; it made the milter's median overhead 0.1 ms smaller
	// (BenchmarkMilterOverhead). A POST waits at most this long for it.
	Gather time.Duration
	// Now is the clock (default time.Now); tests drive Round with their own.
	Now    func() time.Time
	Logger *slog.Logger
	// Observe, if set, is told of each recorded attempt; it must not
	// block.
	Observe func(PostReport)
}

// DefaultGather is InboundOptions.Gather's default: as long as the log
// reader gathers lines for a commit.
const DefaultGather = 100 * time.Millisecond

// Inbound posts captured messages (WIRE.md §3): one POST per message and
// matching filter, retried every retry_interval until retry_period after
// the capture. While a filter's endpoint fails it is probed with one
// message at a time, at each retry interval, instead of every queued
// message being tried: a dead endpoint gets one request per interval, and
// when it is back the queue drains at full speed.
type Inbound struct {
	o    InboundOptions
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	filters map[string]*filterState // by lower-case name
	posters map[string]*Poster      // by CA file
}

// farFuture is a capture time no POST has: "all of them".
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// filterState is what the dispatcher remembers of a filter's endpoint.
type filterState struct {
	name       string    // as the POSTs name it
	failing    bool      // the last attempt failed temporarily: probe one at a time
	until      time.Time // no attempt before this
	lastReason string    // of that failure, for posts that expire untried
}

// NewInbound checks the options.
func NewInbound(o InboundOptions) (*Inbound, error) {
	if o.Outbox == nil || o.Settings == nil {
		return nil, errors.New("create inbound dispatcher: no outbox or settings")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Page <= 0 {
		o.Page = 256
	}
	if o.Gather == 0 {
		o.Gather = DefaultGather
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inbound{o: o, log: log, wake: make(chan struct{}, 1),
		filters: map[string]*filterState{}, posters: map[string]*Poster{}}, nil
}

// Notify tells the dispatcher that a message was captured or the settings
// changed. It never blocks.
func (d *Inbound) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run posts until ctx ends, waking when something is due or Notify is
// called.
func (d *Inbound) Run(ctx context.Context) error {
	defer d.closePosters()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next, err := d.Round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.Error("inbound round failed", "err", err)
			next = d.o.Now().Add(5 * time.Second)
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(d.o.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
			if d.o.Gather > 0 {
				// Let the captures that follow within Gather join
				// this round (see InboundOptions.Gather).
				timer.Reset(d.o.Gather)
				select {
				case <-ctx.Done():
					return nil
				case <-timer.C:
				}
			}
		case <-timer.C:
		}
	}
}

func (d *Inbound) closePosters() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, p := range d.posters {
		p.Close()
		delete(d.posters, k)
	}
}

// Round makes the attempts due now, filter by filter in parallel, and
// returns when the next round is due (the zero time: nothing pending).
func (d *Inbound) Round(ctx context.Context) (time.Time, error) {
	now := d.o.Now()
	// The POSTs of a filter that backs off are left in the store: a dead
	// endpoint's backlog neither fills every page nor delays the others.
	skip := d.backingOff(now)
	due, err := d.o.Outbox.DueInbound(ctx, now, skip, d.o.Page)
	if err != nil {
		return time.Time{}, err
	}
	s := d.o.Settings()
	var order []string
	groups := map[string][]InboundPost{}
	for _, p := range due {
		k := strings.ToLower(p.Filter)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	errs := make([]error, len(order))
	progressed := make([]bool, len(order))
	each(len(order), func(i int) { progressed[i], errs[i] = d.filterRound(ctx, s, order[i], groups[order[i]], now) })
	if err := errors.Join(errs...); err != nil {
		return time.Time{}, err
	}
	moved := false
	for _, p := range progressed {
		moved = moved || p
	}
	if len(due) == d.o.Page && moved {
		return d.o.Now(), nil // a full page: more may be due now
	}
	return d.nextRound(ctx)
}

// backingOff names the filters whose endpoint backs off at now.
func (d *Inbound) backingOff(now time.Time) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, st := range d.filters {
		if st.until.After(now) && st.name != "" {
			out = append(out, st.name)
		}
	}
	return out
}

// nextRound is the earliest of the next due POST of a filter that does not
// back off and the end of the first back-off (whose filter may have POSTs
// due then). The zero time means nothing is pending.
func (d *Inbound) nextRound(ctx context.Context) (time.Time, error) {
	now := d.o.Now()
	skip := d.backingOff(now)
	next, ok, err := d.o.Outbox.NextInboundDue(ctx, skip)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		next = time.Time{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.filters {
		if st.until.After(now) && (next.IsZero() || st.until.Before(next)) {
			next = st.until
		}
	}
	return next, nil
}

func (d *Inbound) state(key string) *filterState {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.filters[key]
	if st == nil {
		st = &filterState{}
		d.filters[key] = st
	}
	return st
}

func (d *Inbound) poster(caFile string) (*Poster, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := d.posters[caFile]; p != nil {
		return p, nil
	}
	p, err := NewPoster(PosterOptions{Version: d.o.Version, CAFile: caFile, Now: d.o.Now})
	if err != nil {
		return nil, err
	}
	d.posters[caFile] = p
	return p, nil
}

// filterRound handles the due POSTs of one filter; it reports whether any
// of them changed state.
func (d *Inbound) filterRound(ctx context.Context, s settings.Inbound, key string, posts []InboundPost, now time.Time) (bool, error) {
	name := posts[0].Filter
	f, ok := s.Filter(key)
	if !ok {
		// The filter was deleted: its messages have nowhere to go.
		reason := fmt.Sprintf("filter %q no longer exists", name)
		n, err := d.o.Outbox.ExpireInbound(context.WithoutCancel(ctx), name, farFuture, now, reason, "")
		d.log.Warn("inbound posts failed", "filter", name, "posts", n, "reason", reason)
		return true, err
	}
	st := d.state(key)
	d.mu.Lock()
	st.name = name
	until, failing, lastReason := st.until, st.failing, st.lastReason
	d.mu.Unlock()
	if until.After(now) {
		return false, nil
	}
	moved := false
	if failing {
		// Before probing a failing endpoint, the posts whose retry period
		// is over fail together, with its last error, rather than each
		// waiting for a probe of its own.
		period := time.Duration(f.RetryPeriod)
		n, err := d.o.Outbox.ExpireInbound(context.WithoutCancel(ctx), name, now.Add(-period), now, "retry period over", lastReason)
		if err != nil {
			return true, err
		}
		if n > 0 {
			moved = true
			d.log.Warn("inbound posts failed", "filter", name, "posts", n, "reason", "retry period over: "+lastReason)
			live := posts[:0:0]
			for _, p := range posts {
				if !p.Created.Before(now.Add(-period)) {
					live = append(live, p)
				}
			}
			posts = live
		}
		if len(posts) == 0 {
			return moved, nil
		}
	}
	live := posts
	poster, err := d.poster(f.CAFile)
	if err != nil {
		// An unreadable ca_file is the user's to fix: back off like a
		// failing endpoint, one probe per interval.
		d.backoff(st, now, f, Result{Reason: err.Error()})
		d.log.Warn("inbound filter cannot post", "filter", f.Name, "err", err)
		return moved, nil
	}
	if failing {
		// Probe with the oldest message alone.
		done := d.attempt(ctx, poster, f, live[0])
		if err := d.record(ctx, f, done); err != nil {
			return true, err
		}
		res := done.res
		moved = true
		if res.Outcome == Retry {
			d.backoff(st, d.o.Now(), f, res)
			return moved, nil
		}
		d.mu.Lock()
		st.failing = false
		d.mu.Unlock()
		live = live[1:]
	}
	for len(live) > 0 {
		n := min(d.o.Concurrency, len(live))
		done := make([]attempted, n)
		each(n, func(i int) { done[i] = d.attempt(ctx, poster, f, live[i]) })
		moved = true
		if err := d.record(ctx, f, done...); err != nil {
			return moved, err
		}
		var failed *Result
		for i := range done {
			if r := &done[i].res; r.Outcome == Retry && (failed == nil || r.RetryAfter > failed.RetryAfter) {
				failed = r
			}
		}
		if failed != nil {
			d.backoff(st, d.o.Now(), f, *failed)
			return moved, nil
		}
		live = live[n:]
	}
	return moved, nil
}

// each runs fn(0) … fn(n-1) in parallel and waits for them; one runs on
// the caller's goroutine. Messages mostly come one at a time, and a round
// of one POST then costs no goroutine switch.
func each(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { fn(i) })
	}
	if n > 0 {
		fn(0)
	}
	wg.Wait()
}

// backoff marks a filter as failing until its next probe, after the
// temporary failure res.
func (d *Inbound) backoff(st *filterState, now time.Time, f settings.InboundFilter, res Result) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st.failing = true
	st.until = now.Add(max(f.RetryIntervalDuration(), res.RetryAfter))
	st.lastReason = res.Reason
}

// attempted is a POST made and the outcome to record.
type attempted struct {
	res Result
	rec InboundAttempt
}

// attempt makes one POST, decides its new state and logs it.
func (d *Inbound) attempt(ctx context.Context, poster *Poster, f settings.InboundFilter, p InboundPost) attempted {
	var res Result
	m, err := d.o.Outbox.InboundMessage(ctx, p.Message)
	var ct string
	var body []byte
	if err == nil {
		ct, body, err = EncodeInbound(m, f, p.Recipients, d.o.ServerComposition, p.WebhookID)
	}
	switch {
	case err != nil:
		// The stored message cannot be read: retry within the period,
		// which a store problem may outlast.
		res = Result{Outcome: Retry, Kind: KindConfig, Reason: "read message: " + err.Error(), Started: d.o.Now()}
	case !d.o.AllowHTTP && !strings.HasPrefix(strings.ToLower(f.Endpoint), "https://"):
		res = Result{Outcome: Retry, Kind: KindConfig, Reason: "endpoint is not https:// and allow_insecure_http is off", Started: d.o.Now()}
	default:
		req := Request{
			URL: f.Endpoint, ID: p.WebhookID, Attempt: p.Attempts + 1, ContentType: ct, Body: body,
			Timeout: f.TimeoutDuration(), SigningSecret: string(f.SigningSecret),
		}
		if f.APIKeyBearer {
			req.Bearer = string(f.APIKey)
		} else if f.BasicUser != "" {
			req.BasicUser, req.BasicPassword = f.BasicUser, string(f.BasicPassword)
		}
		res = poster.Post(ctx, req)
	}
	at := d.o.Now()
	a := InboundAttempt{Post: p.ID, At: at, Attempted: true, Status: res.Status, Response: res.Response}
	a.State, a.Next, a.Reason = decideInbound(res, at, p.Created, f)
	if res.Kind == KindCanceled {
		// The daemon is stopping: the POST is due again at start.
		a.State, a.Next = string(event.InboundDeferred), at
	}
	endpoint := settings.LogEndpoint(f.Endpoint)
	msg, level, detail := "inbound post failed", slog.LevelWarn, []any{"status", res.Status, "reason", a.Reason}
	switch a.State {
	case string(event.InboundSucceeded):
		msg, level, detail = "inbound post succeeded", slog.LevelDebug, []any{"status", res.Status, "took", res.Took}
	case string(event.InboundDeferred):
		msg, level, detail = "inbound post deferred", slog.LevelInfo, []any{"status", res.Status, "reason", res.Reason, "next", a.Next}
	}
	// Built only when it is written: a success is logged at debug level,
	// and formatting these fields cost more than the rest of a POST's
	// bookkeeping.
	if d.log.Enabled(ctx, level) {
		attrs := []any{"filter", f.Name, "webhook_id", p.WebhookID, "attempt", p.Attempts + 1, "endpoint", endpoint}
		if m != nil {
			attrs = append(attrs, "queue_id", m.QueueID, "message_id", m.MessageID)
		}
		d.log.Log(ctx, level, msg, append(attrs, detail...)...)
	}
	return attempted{res: res, rec: a}
}

// record stores the outcomes of POSTs made together in one transaction,
// then reports them. Its error is the store's.
func (d *Inbound) record(ctx context.Context, f settings.InboundFilter, done ...attempted) error {
	recs := make([]InboundAttempt, len(done))
	for i := range done {
		recs[i] = done[i].rec
	}
	if err := d.o.Outbox.RecordInbound(context.WithoutCancel(ctx), recs...); err != nil {
		return err
	}
	if d.o.Observe != nil {
		endpoint := settings.LogEndpoint(f.Endpoint)
		for _, a := range done {
			d.o.Observe(PostReport{Webhook: WebhookInbound, Filter: f.Name, Endpoint: endpoint, At: a.res.Started,
				State: a.rec.State, Status: a.res.Status, Reason: a.rec.Reason, Took: a.res.Took})
		}
	}
	return nil
}

// decideInbound turns an attempt's result into the POST's new state: a
// 2xx succeeds; a permanent failure fails; a temporary one is tried again
// after the retry interval (or the receiver's longer Retry-After), with one
// last attempt when the retry period ends, and fails after that.
func decideInbound(res Result, at, created time.Time, f settings.InboundFilter) (state string, next time.Time, reason string) {
	switch res.Outcome {
	case Success:
		return string(event.InboundSucceeded), time.Time{}, ""
	case Retry:
		deadline := created.Add(time.Duration(f.RetryPeriod))
		if !at.Before(deadline) {
			return string(event.InboundFailed), time.Time{}, "retry period over: " + res.Reason
		}
		next := at.Add(max(f.RetryIntervalDuration(), res.RetryAfter))
		if next.After(deadline) {
			next = deadline
		}
		return string(event.InboundDeferred), next, res.Reason
	}
	return string(event.InboundFailed), time.Time{}, res.Reason
}
