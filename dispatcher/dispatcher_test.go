package dispatcher

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// memOutbox is an in-memory Outbox that follows the contract written on
// the interface, so the dispatcher can be tested without the store. The
// sqlite store must behave the same.
type memOutbox struct {
	mu      sync.Mutex
	events  []event.Event     // in storage order
	batchOf map[string]string // event id → batch id, or "skipped"
	batches map[string]*memBatch
	failOn  string // a method that returns an error
}

type memBatch struct {
	id, family, ct string
	body           []byte
	events         []string
	state          string
	attempts       int
	first, next    time.Time
	lease          time.Time
	records        []memRecord
}

type memRecord struct {
	attempt  int
	at       time.Time
	endpoint string
	state    string
	status   int
	reason   string
	response []byte
	next     time.Time
}

func newMemOutbox() *memOutbox {
	return &memOutbox{batchOf: map[string]string{}, batches: map[string]*memBatch{}}
}

var errInjected = errors.New("injected failure")

func (m *memOutbox) store(evs ...event.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, evs...)
}

// Unbatched uses the index in m.events as its position.
func (m *memOutbox) Unbatched(_ context.Context, family, after string, limit int) ([]event.Event, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil {
			return nil, "", err
		}
		start = n + 1
	}
	var out []event.Event
	pos := after
	for i := start; i < len(m.events) && len(out) < limit; i++ {
		if e := m.events[i]; m.batchOf[e.ID] == "" && e.Type.Family() == family {
			out = append(out, e)
			pos = strconv.Itoa(i)
		}
	}
	return out, pos, nil
}

func (m *memOutbox) Skip(_ context.Context, evs []event.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range evs {
		m.batchOf[e.ID] = "skipped"
	}
	return nil
}

func (m *memOutbox) Freeze(_ context.Context, id, family string, evs []event.Event, ct string, body []byte, due time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failOn == "Freeze" {
		return errInjected
	}
	if _, ok := m.batches[id]; ok {
		return nil
	}
	b := &memBatch{id: id, family: family, ct: ct, body: bytes.Clone(body), state: StateQueued, next: due}
	for _, e := range evs {
		b.events = append(b.events, e.ID)
		m.batchOf[e.ID] = id
	}
	m.batches[id] = b
	return nil
}

// due lists the batches that could be claimed at now, in claim order.
func (m *memOutbox) due(now time.Time) []*memBatch {
	var out []*memBatch
	for _, b := range m.batches {
		if (b.state == StateQueued || b.state == StateDeferred) && !b.next.After(now) && !b.lease.After(now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *memBatch) int {
		return cmp.Or(a.next.Compare(b.next), cmp.Compare(a.id, b.id))
	})
	return out
}

func (m *memOutbox) ClaimDue(_ context.Context, now, leaseUntil time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, b := range m.due(now) {
		if len(ids) == limit {
			break
		}
		b.lease = leaseUntil
		b.attempts++
		if b.first.IsZero() {
			b.first = now
		}
		ids = append(ids, b.id)
	}
	return ids, nil
}

func (m *memOutbox) Frozen(_ context.Context, id string) (string, []byte, int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[id]
	if !ok {
		return "", nil, 0, time.Time{}, fmt.Errorf("no batch %s", id)
	}
	return b.ct, bytes.Clone(b.body), b.attempts, b.first, nil
}

func (m *memOutbox) Record(_ context.Context, id string, attempt int, at time.Time, endpoint, state string, status int, reason string, response []byte, next time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.batches[id]
	b.records = append(b.records, memRecord{attempt, at, endpoint, state, status, reason, bytes.Clone(response), next})
	b.state, b.next, b.lease = state, next, time.Time{}
	return nil
}

func (m *memOutbox) NextDue(context.Context) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var at time.Time
	ok := false
	for _, b := range m.batches {
		if b.state != StateQueued && b.state != StateDeferred {
			continue
		}
		due := b.next
		if b.lease.After(due) {
			due = b.lease
		}
		if !ok || due.Before(at) {
			at, ok = due, true
		}
	}
	return at, ok, nil
}

func (m *memOutbox) batch(t *testing.T, id string) memBatch {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[id]
	if !ok {
		t.Fatalf("no batch %s", id)
	}
	return *b
}

// frozenIDs returns the batch ids in the order they would be claimed.
func (m *memOutbox) frozenIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, b := range m.batches {
		out = append(out, b.id)
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(m.batches[a].next.Compare(m.batches[b].next), cmp.Compare(a, b))
	})
	return out
}

var _ Outbox = (*memOutbox)(nil)

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// script is a receiver that answers from a list of statuses (the last one
// repeats) and passes on what it saw.
type script struct {
	mu       sync.Mutex
	statuses []int
	headers  map[int]http.Header
	seen     chan seen
}

func newScript(statuses ...int) *script {
	return &script{statuses: statuses, headers: map[int]http.Header{}, seen: make(chan seen, 100)}
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	status := s.statuses[0]
	if len(s.statuses) > 1 {
		s.statuses = s.statuses[1:]
	}
	s.mu.Unlock()
	s.seen <- seen{header: r.Header.Clone(), body: body, proto: r.Proto}
	for k, v := range s.headers[status] {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "answer %d", status)
}

// drain returns what the receiver saw so far, without waiting.
func (s *script) drain() []seen {
	var out []seen
	for {
		select {
		case r := <-s.seen:
			out = append(out, r)
		default:
			return out
		}
	}
}

type rig struct {
	ob    *memOutbox
	clock *clock
	recv  *script
	s     settings.EventWebhook
	d     *Dispatcher
}

func newRig(t *testing.T, h http.Handler, change func(*settings.EventWebhook)) *rig {
	t.Helper()
	srv, p := startReceiver(t, h)
	recv, _ := h.(*script)
	s := baseSettings(srv.URL + "/events")
	s.Bounces = true
	s.JSON = true
	s.Interval = 5
	s.APIKey = testKey
	if change != nil {
		change(&s)
	}
	if err := s.Validate(false); err != nil {
		t.Fatal(err)
	}
	r := &rig{ob: newMemOutbox(), clock: &clock{t: at}, recv: recv, s: s}
	var mu sync.Mutex
	d, err := New(Options{
		Outbox:            r.ob,
		Settings:          func() settings.EventWebhook { mu.Lock(); defer mu.Unlock(); return r.s },
		ServerComposition: "mail.example.com",
		Version:           "1.2.3",
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:               r.clock.Now,
		Rand:              fixed(0.5),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Use the receiver-trusting poster: the ca_file path is tested in post_test.
	d.poster, d.posterCA = p, s.CAFile
	p.now = r.clock.Now
	r.d = d
	return r
}

func manyEvents(prefix string, typ event.Type, n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{ID: fmt.Sprintf("%s-%04d", prefix, i), Type: typ, Time: at, To: fmt.Sprintf("r%d@example.com", i)}
	}
	return evs
}

func TestDispatcherFormsAndDelivers(t *testing.T) {
	r := newRig(t, newScript(200), nil)
	ctx := context.Background()
	deliveries := manyEvents("d", event.Succeeded, 250)
	bounces := manyEvents("b", event.Bounced, 3)
	blocks := manyEvents("k", event.Registered, 2) // blocks are off
	r.ob.store(deliveries[:120]...)
	r.ob.store(bounces...)
	r.ob.store(blocks...)
	r.ob.store(deliveries[120:]...)

	next, err := r.d.Form(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two full batches of 100 at once; 50 deliveries and 3 bounces wait.
	if ids := r.ob.frozenIDs(); len(ids) != 2 {
		t.Fatalf("%d batches frozen, want 2", len(ids))
	}
	if !next.Equal(at.Add(time.Second)) { // within Poll, before the interval
		t.Errorf("Form wants to run again at %v", next)
	}
	for _, k := range blocks {
		if r.ob.batchOf[k.ID] != "skipped" {
			t.Errorf("blocks event %s not skipped", k.ID)
		}
	}
	// Nothing new, interval not over: nothing happens.
	r.clock.Set(at.Add(4 * time.Second))
	if _, err := r.d.Form(ctx); err != nil || len(r.ob.frozenIDs()) != 2 {
		t.Fatalf("Form before the interval: %v, %d batches", err, len(r.ob.frozenIDs()))
	}
	r.clock.Set(at.Add(5 * time.Second))
	if _, err := r.d.Form(ctx); err != nil {
		t.Fatal(err)
	}
	ids := r.ob.frozenIDs()
	if len(ids) != 4 {
		t.Fatalf("%d batches after the interval, want 4", len(ids))
	}
	for _, want := range [][]event.Event{deliveries[:100], deliveries[100:200], deliveries[200:], bounces} {
		fam := want[0].Type.Family()
		var evIDs []string
		for _, e := range want {
			evIDs = append(evIDs, e.ID)
		}
		b := r.ob.batch(t, BatchID(fam, evIDs))
		ct, body, _ := Encode(r.s, "mail.example.com", fam, want)
		if b.ct != ct || !bytes.Equal(b.body, body) || b.state != StateQueued || !slices.Equal(b.events, evIDs) {
			t.Errorf("batch %s: state %s, bytes as encoded: %v", b.id, b.state, bytes.Equal(b.body, body))
		}
	}

	if _, err := r.d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.recv.drain()
	if len(got) != 4 {
		t.Fatalf("%d posts, want 4", len(got))
	}
	for i, id := range ids {
		b := r.ob.batch(t, id)
		if got[i].header.Get("Webhook-Id") != id || !bytes.Equal(got[i].body, b.body) {
			t.Errorf("post %d is not batch %s as frozen", i, id)
		}
		if b.state != StateSucceeded || len(b.records) != 1 || b.records[0].status != 200 ||
			string(b.records[0].response) != "answer 200" || b.records[0].endpoint != r.s.Endpoint {
			t.Errorf("batch %s: state %s records %+v", id, b.state, b.records)
		}
	}
	if _, ok, _ := r.ob.NextDue(ctx); ok {
		t.Error("a batch is still due")
	}
}

// A temporary failure holds the endpoint until the batch's next attempt,
// which carries the same id and bytes, a new signature and attempt 2.
func TestDispatcherRetriesFrozenBatch(t *testing.T) {
	recv := newScript(503, 200)
	recv.headers[503] = http.Header{"Retry-After": {"60"}}
	r := newRig(t, recv, nil)
	ctx := context.Background()
	r.ob.store(manyEvents("d", event.Queued, 100)...)
	r.ob.store(manyEvents("e", event.Queued, 100)...)
	r.d.Form(ctx)
	ids := r.ob.frozenIDs()

	next, err := r.d.Deliver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !next.Equal(at.Add(time.Minute)) {
		t.Errorf("Deliver wants to run again at %v, want Retry-After's minute", next)
	}
	first := r.recv.drain()
	if len(first) != 1 { // the second batch is not tried against a failing endpoint
		t.Fatalf("%d posts while the endpoint fails, want 1", len(first))
	}
	b := r.ob.batch(t, ids[0])
	if b.state != StateDeferred || !b.next.Equal(at.Add(time.Minute)) || b.records[0].reason != "HTTP 503 Service Unavailable" {
		t.Fatalf("after 503: %+v", b)
	}

	r.clock.Set(at.Add(30 * time.Second))
	if _, err := r.d.Deliver(ctx); err != nil || len(r.recv.drain()) != 0 {
		t.Fatalf("posted during the hold: %v", err)
	}

	r.clock.Set(at.Add(time.Minute))
	if _, err := r.d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	second := r.recv.drain()
	if len(second) != 2 {
		t.Fatalf("%d posts after the hold, want 2", len(second))
	}
	// The other batch was due since its freeze, so it goes first now.
	retry := second[1]
	if retry.header.Get("Webhook-Id") != ids[0] || !bytes.Equal(retry.body, first[0].body) {
		t.Error("the retry is not the frozen batch")
	}
	if a, b := first[0].header.Get("Posthorn-Attempt"), retry.header.Get("Posthorn-Attempt"); a != "1" || b != "2" {
		t.Errorf("attempt headers %s, %s", a, b)
	}
	if err := verifyStandardWebhook(testSecret, retry.header, retry.body, at.Add(time.Minute)); err != nil {
		t.Errorf("retry signature: %v", err)
	}
	if first[0].header.Get("Webhook-Signature") == retry.header.Get("Webhook-Signature") {
		t.Error("the retry was not signed again")
	}
	for _, id := range ids {
		if st := r.ob.batch(t, id).state; st != StateSucceeded {
			t.Errorf("batch %s: %s", id, st)
		}
	}
}

// A permanent failure fails that batch and the next goes on; a batch that
// keeps failing is failed when the retry period ends.
func TestDispatcherFailures(t *testing.T) {
	t.Run("permanent", func(t *testing.T) {
		r := newRig(t, newScript(400, 200), nil)
		ctx := context.Background()
		r.ob.store(manyEvents("d", event.Queued, 200)...)
		r.d.Form(ctx)
		r.d.Deliver(ctx)
		ids := r.ob.frozenIDs()
		if a, b := r.ob.batch(t, ids[0]), r.ob.batch(t, ids[1]); a.state != StateFailed || b.state != StateSucceeded {
			t.Errorf("states %s %s, want failed succeeded", a.state, b.state)
		}
	})
	t.Run("retry period", func(t *testing.T) {
		r := newRig(t, newScript(500), func(s *settings.EventWebhook) { s.RetryPeriod = settings.Duration(time.Hour) })
		ctx := context.Background()
		r.ob.store(manyEvents("d", event.Queued, 100)...)
		r.d.Form(ctx)
		id := r.ob.frozenIDs()[0]
		for range 20 {
			next, ok, _ := r.ob.NextDue(ctx)
			if !ok {
				break
			}
			r.clock.Set(next)
			if _, err := r.d.Deliver(ctx); err != nil {
				t.Fatal(err)
			}
		}
		b := r.ob.batch(t, id)
		// The same 7 attempts as TestRetryHorizon, the last at the hour.
		if b.state != StateFailed || len(b.records) != 7 || len(r.recv.drain()) != 7 ||
			!b.records[6].at.Equal(at.Add(time.Hour)) {
			t.Errorf("state %s after %d attempts, last at %v", b.state, len(b.records), b.records[len(b.records)-1].at)
		}
	})
}

// After a crash, a batch claimed but never recorded is claimed again once
// its lease ends, with the same id and bytes and the next attempt number;
// events that were not frozen form the same batch again.
func TestDispatcherRestart(t *testing.T) {
	r := newRig(t, newScript(200), nil)
	ctx := context.Background()
	r.ob.store(manyEvents("d", event.Queued, 100)...)
	r.ob.store(manyEvents("b", event.Bounced, 5)...)
	r.d.Form(ctx)
	inFlight := r.ob.frozenIDs()[0]
	// The first process claims the batch and dies during the POST.
	r.ob.ClaimDue(ctx, at, at.Add(r.s.TimeoutDuration()+leaseMargin), 1)
	// The open bounces batch dies with it, unfrozen; what would it have been?
	wantBounces := r.d.batcher.Flush()[0].ID

	r2 := newRig(t, r.recv, nil)
	r2.ob = r.ob
	r2.d.o.Outbox = r.ob
	r2.clock.Set(at.Add(10 * time.Second))
	r2.d.Form(ctx)
	if _, err := r2.d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.recv.drain(); len(got) != 0 {
		t.Fatalf("%d posts before the lease ended", len(got))
	}
	r2.clock.Set(at.Add(r.s.TimeoutDuration() + leaseMargin))
	r2.d.Form(ctx)
	if _, err := r2.d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.recv.drain()
	if len(got) != 2 {
		t.Fatalf("%d posts after the lease, want 2", len(got))
	}
	var sawBatch, sawBounces bool
	for _, p := range got {
		switch p.header.Get("Webhook-Id") {
		case inFlight:
			sawBatch = true
			if p.header.Get("Posthorn-Attempt") != "2" || !bytes.Equal(p.body, r.ob.batch(t, inFlight).body) {
				t.Errorf("re-claimed batch: attempt %s", p.header.Get("Posthorn-Attempt"))
			}
		case wantBounces:
			sawBounces = true
		}
	}
	if !sawBatch || !sawBounces {
		t.Errorf("after restart: in-flight batch posted %v, bounces re-formed with the same id %v", sawBatch, sawBounces)
	}
}

func TestDispatcherInvalidSettingsWait(t *testing.T) {
	r := newRig(t, newScript(200), nil)
	ctx := context.Background()
	r.ob.store(manyEvents("d", event.Queued, 100)...)
	r.s.Endpoint = "http://insecure.example/"
	if _, err := r.d.Form(ctx); err == nil {
		t.Error("Form with invalid settings: no error")
	}
	if len(r.ob.frozenIDs()) != 0 {
		t.Error("a batch was formed with invalid settings")
	}
	if _, err := r.d.Deliver(ctx); err == nil {
		t.Error("Deliver with invalid settings: no error")
	}
}

// A store error while freezing loses nothing: the events are read again.
func TestDispatcherFreezeError(t *testing.T) {
	r := newRig(t, newScript(200), nil)
	ctx := context.Background()
	r.ob.store(manyEvents("d", event.Queued, 150)...)
	r.ob.failOn = "Freeze"
	if _, err := r.d.Form(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Form = %v, want the injected error", err)
	}
	r.ob.failOn = ""
	for _, sec := range []time.Duration{5, 10} { // the rest waits for its interval
		r.clock.Set(at.Add(sec * time.Second))
		if _, err := r.d.Form(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, id := range r.ob.frozenIDs() {
		n += len(r.ob.batch(t, id).events)
	}
	if n != 150 {
		t.Errorf("%d events frozen after the error, want all 150", n)
	}
}

// Stopping mid-attempt records it as deferred and due at once.
func TestDispatcherStopMidAttempt(t *testing.T) {
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cancel()
		<-release
	}), nil)
	t.Cleanup(func() { close(release) })
	r.ob.store(manyEvents("d", event.Queued, 100)...)
	r.d.Form(context.Background())
	r.d.Deliver(ctx)
	b := r.ob.batch(t, r.ob.frozenIDs()[0])
	if b.state != StateDeferred || !b.next.Equal(at) || len(b.records) != 1 || b.records[0].reason != "interrupted: the daemon is stopping" {
		t.Errorf("after stop: %+v", b)
	}
}

// Run, with the real clock: events stored and notified reach the receiver.
func TestDispatcherRun(t *testing.T) {
	r := newRig(t, newScript(200), nil)
	r.d.o.Now = time.Now
	r.d.poster.now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.d.Run(ctx) }()
	r.ob.store(manyEvents("d", event.Queued, 100)...)
	r.d.Notify()
	select {
	case got := <-r.recv.seen:
		if n := got.header.Get("Posthorn-Attempt"); n != "1" {
			t.Errorf("attempt %s", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no post within 10 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	// Run returns after the attempt is recorded: succeeded, or deferred
	// if the stop came before the answer.
	r.ob.mu.Lock()
	defer r.ob.mu.Unlock()
	for _, b := range r.ob.batches {
		if len(b.records) != 1 || !b.lease.IsZero() || (b.state != StateSucceeded && b.state != StateDeferred) {
			t.Errorf("batch %s after Run: %s, %d records", b.id, b.state, len(b.records))
		}
	}
}
