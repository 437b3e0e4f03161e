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

// Pending is a stored event that belongs to no batch yet, with what
// forming a batch needs of it: the full event is read again only when the
// batch is first attempted. Like the types of Outbox, an alias of an
// unnamed struct type, which the store declares too.
type Pending = struct {
	Seq  int64 // the store's position: rising in the order events were stored
	ID   string
	Type event.Type
	Time time.Time
}

// Batch is a closed batch: the events of one family stored at positions
// First to Last, in that order. A family's batches never overlap and never
// leave a gap between them (the dispatcher skips a switched-off family's
// events only while it has no open batch), so the range alone names the
// members: the store links a batch to its events by it.
type Batch struct {
	ID     string // BatchID of the events: stable across restarts
	Family string // deliveries, bounces or blocks
	First  int64  // Seq of its first event
	Last   int64  // Seq of its last event
	IDs    []string
	// Earliest and latest event time, for the log's "received" and
	// replay's time range.
	FirstTime, LastTime time.Time
	Opened              time.Time // when its first event was added
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.IDs) }

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
	open      map[string]*Batch // family → its open batch
}

// NewBatcher returns an empty Batcher. Limits below 1 count as 1.
func NewBatcher(maxEvents int, interval time.Duration) *Batcher {
	b := &Batcher{open: map[string]*Batch{}}
	b.SetLimits(maxEvents, interval)
	return b
}

// SetLimits changes max events and interval after a settings change. Open
// batches are measured against the new limits from the next Add or Due.
func (b *Batcher) SetLimits(maxEvents int, interval time.Duration) {
	b.maxEvents, b.interval = max(maxEvents, 1), max(interval, 0)
}

// Add puts e into its family's open batch, opening one at now if there is
// none. When that makes the batch full it is closed and returned. Events
// must come in Seq order; one at or before the open batch's last Seq was
// seen already (the caller read the store again) and is ignored.
func (b *Batcher) Add(now time.Time, e Pending) (Batch, bool, error) {
	if !e.Type.Valid() {
		return Batch{}, false, fmt.Errorf("batch event %s: unknown type %q", e.ID, e.Type)
	}
	if e.ID == "" {
		return Batch{}, false, fmt.Errorf("batch %s event: no id", e.Type)
	}
	fam := e.Type.Family()
	ob := b.open[fam]
	if ob == nil {
		ob = &Batch{Family: fam, Opened: now, First: e.Seq, FirstTime: e.Time, LastTime: e.Time}
		b.open[fam] = ob
	} else if e.Seq <= ob.Last {
		return Batch{}, false, nil
	}
	ob.Last = e.Seq
	ob.IDs = append(ob.IDs, e.ID)
	if e.Time.Before(ob.FirstTime) {
		ob.FirstTime = e.Time
	}
	if e.Time.After(ob.LastTime) {
		ob.LastTime = e.Time
	}
	if len(ob.IDs) >= b.maxEvents {
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
		if ob != nil && (len(ob.IDs) >= b.maxEvents || !now.Before(ob.Opened.Add(b.interval))) {
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

// Open reports whether the family has an open batch.
func (b *Batcher) Open(family string) bool { return b.open[family] != nil }

// Close closes the family's open batch, if any, before its time: when the
// family is switched off, the events it already holds are still posted.
func (b *Batcher) Close(family string) (Batch, bool) {
	if b.open[family] == nil {
		return Batch{}, false
	}
	return b.close(family), true
}

// Flush closes and returns every open batch.
func (b *Batcher) Flush() []Batch {
	var out []Batch
	for _, fam := range families {
		if b.open[fam] != nil {
			out = append(out, b.close(fam))
		}
	}
	return out
}

// Reset drops every open batch: their events are read from the store again.
func (b *Batcher) Reset() { clear(b.open) }

// Len is the number of events in open batches.
func (b *Batcher) Len() int {
	n := 0
	for _, ob := range b.open {
		n += len(ob.IDs)
	}
	return n
}

func (b *Batcher) close(fam string) Batch {
	ob := b.open[fam]
	delete(b.open, fam)
	ob.ID = BatchID(fam, ob.IDs)
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
