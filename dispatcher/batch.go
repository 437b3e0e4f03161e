package dispatcher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// Batch is a closed batch: events of one family that go in one POST.
type Batch struct {
	ID     string // BatchID of the events: stable across restarts
	Family string // deliveries, bounces or blocks
	Events []event.Event
	Opened time.Time // when its first event was added
}

// families in the order Due and Flush return batches, so the order of
// POSTs does not depend on map iteration.
var families = [...]string{settings.Deliveries, settings.Bounces, settings.Blocks}

// Batcher collects events into one open batch per family and closes a batch
// when it holds maxEvents events or interval has passed since its first
// event, whichever comes first (WIRE.md §2). It does no I/O and reads no
// clock: the caller passes the time, so tests drive it with a fake clock.
// Not safe for concurrent use.
type Batcher struct {
	maxEvents int
	interval  time.Duration
	open      map[string]*Batch   // family → its open batch
	ids       map[string]struct{} // event ids in open batches
}

// NewBatcher returns an empty Batcher. Limits below 1 count as 1.
func NewBatcher(maxEvents int, interval time.Duration) *Batcher {
	b := &Batcher{open: map[string]*Batch{}, ids: map[string]struct{}{}}
	b.SetLimits(maxEvents, interval)
	return b
}

// SetLimits changes max events and interval after a settings change. Open
// batches are measured against the new limits from the next Add or Due.
func (b *Batcher) SetLimits(maxEvents int, interval time.Duration) {
	b.maxEvents, b.interval = max(maxEvents, 1), max(interval, 0)
}

// Add puts e into its family's open batch, opening one at now if there is
// none. When that makes the batch full it is closed and returned. An event
// whose id is already in an open batch is ignored, so the caller may offer
// the same stored events again after a restart or an overlapping read.
func (b *Batcher) Add(now time.Time, e event.Event) (Batch, bool, error) {
	if !e.Type.Valid() {
		return Batch{}, false, fmt.Errorf("batch event %s: unknown type %q", e.ID, e.Type)
	}
	if e.ID == "" {
		return Batch{}, false, fmt.Errorf("batch %s event: no id", e.Type)
	}
	if _, dup := b.ids[e.ID]; dup {
		return Batch{}, false, nil
	}
	fam := e.Type.Family()
	ob := b.open[fam]
	if ob == nil {
		ob = &Batch{Family: fam, Opened: now}
		b.open[fam] = ob
	}
	ob.Events = append(ob.Events, e)
	b.ids[e.ID] = struct{}{}
	if len(ob.Events) >= b.maxEvents {
		return b.close(fam), true, nil
	}
	return Batch{}, false, nil
}

// Due closes and returns the batches that are full or whose interval has
// passed at now.
func (b *Batcher) Due(now time.Time) []Batch {
	var out []Batch
	for _, fam := range families {
		ob := b.open[fam]
		if ob != nil && (len(ob.Events) >= b.maxEvents || !now.Before(ob.Opened.Add(b.interval))) {
			out = append(out, b.close(fam))
		}
	}
	return out
}

// Next returns when the earliest open batch falls due; ok is false when no
// batch is open.
func (b *Batcher) Next() (at time.Time, ok bool) {
	for _, ob := range b.open {
		if due := ob.Opened.Add(b.interval); !ok || due.Before(at) {
			at, ok = due, true
		}
	}
	return at, ok
}

// Flush closes and returns every open batch, at shutdown or before the
// settings change the payload.
func (b *Batcher) Flush() []Batch {
	var out []Batch
	for _, fam := range families {
		if b.open[fam] != nil {
			out = append(out, b.close(fam))
		}
	}
	return out
}

// Len is the number of events in open batches.
func (b *Batcher) Len() int { return len(b.ids) }

func (b *Batcher) close(fam string) Batch {
	ob := b.open[fam]
	delete(b.open, fam)
	ids := make([]string, len(ob.Events))
	for i := range ob.Events {
		ids[i] = ob.Events[i].ID
		delete(b.ids, ids[i])
	}
	ob.ID = BatchID(fam, ids)
	return *ob
}

// BatchID names a batch after its family and the set of its event ids: the
// same events give the same id whatever their order, so a batch formed
// again after a crash, from the same stored events, keeps its id — and a
// receiver that deduplicates on webhook-id deduplicates it. The id has no
// '.', which Standard Webhooks forbids (it is part of the signed content).
func BatchID(family string, eventIDs []string) string {
	sorted := slices.Clone(eventIDs)
	slices.Sort(sorted)
	h := sha256.New()
	h.Write([]byte(family))
	for _, id := range sorted {
		h.Write([]byte{0}) // ids never hold NUL: this keeps "a"+"bc" from equalling "ab"+"c"
		h.Write([]byte(id))
	}
	return "batch_" + hex.EncodeToString(h.Sum(nil)[:16])
}
