// Package outboxtest holds the contract tests of dispatcher.Outbox and Mem,
// an in-memory Outbox that follows the contract written on the interface.
// The dispatcher's tests run the suite against Mem, the store's against a
// real SQLite file, so both behave the same.
package outboxtest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/posthorn/posthorn/dispatcher"
	"github.com/posthorn/posthorn/event"
)

// ErrInjected is what a method made to fail returns.
var ErrInjected = errors.New("injected failure")

// Mem is an in-memory dispatcher.Outbox. Event positions are their index
// in Events plus one.
type Mem struct {
	mu       sync.Mutex
	events   []event.Event
	progress map[string]int64
	batches  map[string]*memBatch
	replays  int64
	// FailOn names a method that returns ErrInjected.
	FailOn string
}

type memBatch struct {
	f               dispatcher.Formed
	ct              string
	body            []byte
	state           string
	attempts, round int
	next            time.Time
	since           time.Time // start of the retry period
	lease           time.Time
	reason          string
	records         []dispatcher.Attempt
}

// NewMem returns an empty Mem.
func NewMem() *Mem {
	return &Mem{progress: map[string]int64{}, batches: map[string]*memBatch{}}
}

var _ dispatcher.Outbox = (*Mem)(nil)

func (m *Mem) fail(method string) error {
	if m.FailOn == method {
		return ErrInjected
	}
	return nil
}

// Store stores events as the log reader does.
func (m *Mem) Store(evs ...event.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, evs...)
}

func (m *Mem) Progress(context.Context) (map[string]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("Progress"); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for k, v := range m.progress {
		out[k] = v
	}
	return out, nil
}

func (m *Mem) Unformed(_ context.Context, after int64, limit int) ([]dispatcher.Pending, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("Unformed"); err != nil {
		return nil, err
	}
	var out []dispatcher.Pending
	for i := max(after, 0); i < int64(len(m.events)) && len(out) < limit; i++ {
		e := m.events[i]
		out = append(out, dispatcher.Pending{Seq: i + 1, ID: e.ID, Type: e.Type, Time: e.Time})
	}
	return out, nil
}

func (m *Mem) LastSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.events)), nil
}

func (m *Mem) Form(_ context.Context, batches []dispatcher.Formed, progress map[string]int64, due time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("Form"); err != nil {
		return err
	}
	for _, f := range batches {
		if _, ok := m.batches[f.ID]; ok {
			continue
		}
		m.batches[f.ID] = &memBatch{f: f, state: dispatcher.StateQueued, next: due, since: due}
	}
	for fam, v := range progress {
		m.progress[fam] = max(m.progress[fam], v)
	}
	return nil
}

// due lists the batches that could be claimed at now, in claim order.
func (m *Mem) due(now time.Time) []*memBatch {
	var out []*memBatch
	for _, b := range m.batches {
		if pending(b.state) && !b.next.After(now) && !b.lease.After(now) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *memBatch) int {
		return cmp.Compare(a.f.First, b.f.First)
	})
	return out
}

func pending(state string) bool {
	return state == dispatcher.StateQueued || state == dispatcher.StateDeferred
}

func (m *Mem) ClaimDue(_ context.Context, now, leaseUntil time.Time, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, b := range m.due(now) {
		if len(ids) == limit {
			break
		}
		b.lease = leaseUntil
		b.attempts++
		b.round++
		ids = append(ids, b.f.ID)
	}
	return ids, nil
}

func (m *Mem) NextClaim(_ context.Context, now time.Time) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("NextClaim"); err != nil {
		return "", false, err
	}
	if due := m.due(now); len(due) > 0 {
		return due[0].f.ID, true, nil
	}
	return "", false, nil
}

func (m *Mem) Frozen(_ context.Context, id string) (dispatcher.Frozen, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[id]
	if !ok {
		return dispatcher.Frozen{}, fmt.Errorf("no batch %s", id)
	}
	return dispatcher.Frozen{Family: b.f.Family, Events: b.f.Events, ContentType: b.ct, Body: bytes.Clone(b.body),
		Attempt: b.attempts, Round: b.round, PeriodStart: b.since}, nil
}

func (m *Mem) BatchEvents(_ context.Context, id string) ([]event.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[id]
	if !ok {
		return nil, fmt.Errorf("no batch %s", id)
	}
	var out []event.Event
	for seq := b.f.First; seq <= b.f.Last; seq++ {
		if e := m.events[seq-1]; e.Type.Family() == b.f.Family {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *Mem) FreezeBody(_ context.Context, id, ct string, body []byte) (string, []byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[id]
	if !ok {
		return "", nil, fmt.Errorf("no batch %s", id)
	}
	if b.body == nil {
		b.ct, b.body = ct, bytes.Clone(body)
	}
	return b.ct, bytes.Clone(b.body), nil
}

func (m *Mem) Record(_ context.Context, a dispatcher.Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[a.BatchID]
	if !ok {
		return fmt.Errorf("no batch %s", a.BatchID)
	}
	a.Response = bytes.Clone(a.Response)
	b.records = append(b.records, a)
	b.state, b.next, b.lease, b.reason = a.State, a.Next, time.Time{}, a.Reason
	return nil
}

func (m *Mem) NextDue(context.Context) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var at time.Time
	ok := false
	for _, b := range m.batches {
		if !pending(b.state) {
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

func (m *Mem) ReleaseLeases(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.batches {
		if !b.lease.IsZero() {
			b.lease = time.Time{}
			n++
		}
	}
	return n, nil
}

func (m *Mem) RetryNow(_ context.Context, now time.Time) (int, error) {
	if err := m.fail("RetryNow"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.batches {
		if b.state == dispatcher.StateDeferred && b.next.After(now) {
			b.next = now
			n++
		}
	}
	return n, nil
}

func (m *Mem) PendingEvents(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, b := range m.batches {
		if pending(b.state) {
			n += int64(b.f.Events)
		}
	}
	return n, nil
}

func (m *Mem) FailOldest(_ context.Context, n int64, now time.Time, reason string) (int, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var list []*memBatch
	for _, b := range m.batches {
		if pending(b.state) && !b.lease.After(now) {
			list = append(list, b)
		}
	}
	slices.SortFunc(list, func(a, b *memBatch) int { return cmp.Compare(a.f.First, b.f.First) })
	var batches int
	var events int64
	for _, b := range list {
		if events >= n {
			break
		}
		b.state, b.next, b.reason = dispatcher.StateFailed, time.Time{}, reason
		batches++
		events += int64(b.f.Events)
	}
	return batches, events, nil
}

func (m *Mem) Expire(_ context.Context, now time.Time, period time.Duration, final bool, reason func(int) string) (int, int64, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail("Expire"); err != nil {
		return 0, 0, time.Time{}, err
	}
	var batches int
	var events int64
	var next time.Time
	for _, b := range m.batches {
		if !pending(b.state) {
			continue
		}
		end := b.since.Add(period)
		if end.After(now) {
			if next.IsZero() || end.Before(next) {
				next = end
			}
			continue
		}
		if b.lease.After(now) || (final && !b.next.Before(end)) {
			continue
		}
		b.state, b.next, b.reason = dispatcher.StateFailed, time.Time{}, reason(b.round)
		batches++
		events += int64(b.f.Events)
	}
	return batches, events, next, nil
}

func (m *Mem) Replays(context.Context) (int64, error) {
	if err := m.fail("Replays"); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replays, nil
}

// Requeue re-queues the failed batches as posthorn replay does
// (sqlite.Store.Requeue): due at now, their retry schedule and period
// starting again.
func (m *Mem) Requeue(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.batches {
		if b.state == dispatcher.StateFailed {
			b.state, b.next, b.since, b.round, b.reason = dispatcher.StateQueued, now, now, 0, "replayed"
			n++
		}
	}
	if n > 0 {
		m.replays++
	}
	return n
}

// Inspect describes a batch for the suite.
func (m *Mem) Inspect(id string) (Batch, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.batches[id]
	if !ok {
		return Batch{}, false
	}
	out := Batch{
		ID: id, Family: b.f.Family, State: b.state, ContentType: b.ct, Body: bytes.Clone(b.body),
		Attempts: b.attempts, Next: b.next, Leased: !b.lease.IsZero(), Reason: b.reason,
		Records: slices.Clone(b.records), Host: b.f.Host, First: b.f.First,
	}
	for seq := b.f.First; seq <= b.f.Last; seq++ {
		if e := m.events[seq-1]; e.Type.Family() == b.f.Family {
			out.Events = append(out.Events, e.ID)
		}
	}
	return out, true
}

// IDs lists every batch id.
func (m *Mem) IDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id := range m.batches {
		out = append(out, id)
	}
	return out
}
