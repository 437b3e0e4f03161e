package dispatcher

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
)

// seq numbers the events the tests make, as the store would.
var seq int64

func ev(id string, typ event.Type) Pending {
	seq++
	return Pending{Seq: seq, ID: id, Type: typ, Time: at.Add(time.Duration(seq) * time.Second)}
}

func pend(e event.Event) Pending {
	seq++
	return Pending{Seq: seq, ID: e.ID, Type: e.Type, Time: e.Time}
}

func ids(b Batch) []string { return b.IDs }

func mustAdd(t *testing.T, b *Batcher, now time.Time, e Pending) (Batch, bool) {
	t.Helper()
	got, closed, err := b.Add(now, e)
	if err != nil {
		t.Fatal(err)
	}
	return got, closed
}

func TestBatcherClosesAtMaxEvents(t *testing.T) {
	t0 := at
	b := NewBatcher(3, 10*time.Second)
	for i, id := range []string{"a", "b"} {
		if _, closed := mustAdd(t, b, t0.Add(time.Duration(i)*time.Second), ev(id, event.Queued)); closed {
			t.Fatalf("closed after %d events", i+1)
		}
	}
	got, closed := mustAdd(t, b, t0.Add(2*time.Second), ev("c", event.Succeeded))
	if !closed || !slices.Equal(ids(got), []string{"a", "b", "c"}) || got.Family != settings.Deliveries || !got.Opened.Equal(t0) {
		t.Fatalf("batch %+v closed=%v", got, closed)
	}
	if got.ID != BatchID(settings.Deliveries, []string{"a", "b", "c"}) {
		t.Errorf("id %s", got.ID)
	}
	if b.Len() != 0 {
		t.Errorf("Len %d after closing", b.Len())
	}
	if _, ok := b.Next(); ok {
		t.Error("Next reports an open batch")
	}
}

// The interval counts from the first event of the batch, not the latest.
func TestBatcherClosesAtInterval(t *testing.T) {
	t0 := at
	b := NewBatcher(100, 10*time.Second)
	mustAdd(t, b, t0, ev("a", event.Queued))
	mustAdd(t, b, t0.Add(9*time.Second), ev("b", event.Queued))
	if next, ok := b.Next(); !ok || !next.Equal(t0.Add(10*time.Second)) {
		t.Errorf("Next = %v %v", next, ok)
	}
	if due := b.Due(t0.Add(10*time.Second - time.Nanosecond)); len(due) != 0 {
		t.Fatalf("due early: %v", due)
	}
	due := b.Due(t0.Add(10 * time.Second))
	if len(due) != 1 || !slices.Equal(ids(due[0]), []string{"a", "b"}) {
		t.Fatalf("Due = %+v", due)
	}
	// The next event opens a new batch with its own interval.
	mustAdd(t, b, t0.Add(11*time.Second), ev("c", event.Queued))
	if next, _ := b.Next(); !next.Equal(t0.Add(21 * time.Second)) {
		t.Errorf("Next = %v", next)
	}
}

func TestBatcherFamilies(t *testing.T) {
	t0 := at
	b := NewBatcher(100, time.Second)
	// Added in an order that differs from the order Due returns them in.
	mustAdd(t, b, t0, ev("r1", event.Registered))
	mustAdd(t, b, t0, ev("b1", event.Bounced))
	mustAdd(t, b, t0, ev("d1", event.Failed))
	mustAdd(t, b, t0, ev("b2", event.Bounced))
	due := b.Due(t0.Add(time.Second))
	var got []string
	for _, bt := range due {
		got = append(got, bt.Family+":"+strings.Join(ids(bt), ","))
	}
	want := []string{"deliveries:d1", "bounces:b1,b2", "blocks:r1"}
	if !slices.Equal(got, want) {
		t.Errorf("Due = %v, want %v", got, want)
	}
}

func TestBatcherDuplicatesAndErrors(t *testing.T) {
	b := NewBatcher(100, time.Second)
	a := ev("a", event.Queued)
	mustAdd(t, b, at, a)
	mustAdd(t, b, at, a) // read from the store again: ignored
	if b.Len() != 1 {
		t.Errorf("Len %d, want 1", b.Len())
	}
	if _, _, err := b.Add(at, ev("x", "opened")); err == nil || err.Error() != `batch event x: unknown type "opened"` {
		t.Errorf("unknown type: %v", err)
	}
	if _, _, err := b.Add(at, ev("", event.Queued)); err == nil || err.Error() != "batch queued event: no id" {
		t.Errorf("no id: %v", err)
	}
	// A batch's range and times follow its events.
	mustAdd(t, b, at, ev("b", event.Queued))
	got := b.Flush()
	if len(got) != 1 || got[0].First != a.Seq || got[0].Last != a.Seq+3 || !got[0].FirstTime.Equal(a.Time) ||
		!got[0].LastTime.Equal(a.Time.Add(3*time.Second)) || got[0].Len() != 2 {
		t.Errorf("Flush = %+v", got)
	}
	// Reset forgets the open batches: their events are read again.
	mustAdd(t, b, at, a)
	b.Reset()
	if b.Len() != 0 || b.Open(settings.Deliveries) {
		t.Error("Reset kept an open batch")
	}
}

func TestBatcherSetLimitsAndFlush(t *testing.T) {
	b := NewBatcher(100, time.Minute)
	for i := range 5 {
		mustAdd(t, b, at, ev(fmt.Sprint("e", i), event.Queued))
	}
	mustAdd(t, b, at, ev("x", event.Bounced))
	b.SetLimits(5, time.Minute)
	due := b.Due(at) // full under the new limit, though the interval has not passed
	if len(due) != 1 || due[0].Len() != 5 {
		t.Fatalf("Due after SetLimits = %+v", due)
	}
	rest := b.Flush()
	if len(rest) != 1 || rest[0].Family != settings.Bounces || b.Len() != 0 {
		t.Errorf("Flush = %+v, Len %d", rest, b.Len())
	}
	if len(b.Flush()) != 0 {
		t.Error("second Flush not empty")
	}
}

func TestBatchID(t *testing.T) {
	a := BatchID(settings.Deliveries, []string{"e1", "e2", "e3"})
	if got := BatchID(settings.Deliveries, []string{"e3", "e1", "e2"}); got != a {
		t.Errorf("order changed the id: %s != %s", got, a)
	}
	for name, other := range map[string]string{
		"family":     BatchID(settings.Bounces, []string{"e1", "e2", "e3"}),
		"membership": BatchID(settings.Deliveries, []string{"e1", "e2"}),
		"boundaries": BatchID(settings.Deliveries, []string{"e1e", "2", "e3"}),
	} {
		if other == a {
			t.Errorf("another %s gave the same id %s", name, a)
		}
	}
	in := []string{"e3", "e1"}
	BatchID(settings.Deliveries, in)
	if !slices.Equal(in, []string{"e3", "e1"}) {
		t.Error("BatchID sorted its argument")
	}
	if !strings.HasPrefix(a, "batch_") || len(a) != len("batch_")+32 || strings.ContainsAny(a, ". ") {
		t.Errorf("id %q: want batch_ and 32 hex digits", a)
	}
}

// After a crash the dispatcher reads the stored, unfrozen events again and
// forms the batch anew: same events, same id, same bytes.
func TestBatchSurvivesRestart(t *testing.T) {
	stored := fixtures[settings.Deliveries]
	s := goldenSettings(combo{2, true})

	form := func(order []int) (string, []byte) {
		b := NewBatcher(len(stored), time.Hour)
		var got Batch
		var closed bool
		for _, i := range order {
			got, closed = mustAdd(t, b, at, pend(stored[i]))
		}
		if !closed {
			t.Fatal("not closed")
		}
		var evs []event.Event
		for _, id := range got.IDs {
			for _, e := range stored {
				if e.ID == id {
					evs = append(evs, e)
				}
			}
		}
		_, body, err := Encode(s, "mail.example.com", got.Family, evs)
		if err != nil {
			t.Fatal(err)
		}
		return got.ID, body
	}
	id1, body1 := form([]int{0, 1, 2, 3})
	id2, body2 := form([]int{0, 1, 2, 3})
	if id1 != id2 || string(body1) != string(body2) {
		t.Errorf("formed again: id %s/%s, bodies equal %v", id1, id2, string(body1) == string(body2))
	}
	// Read back in another order, the id holds; the body follows the
	// order, which is why the body is frozen and stored at the first
	// attempt instead of being encoded again.
	id3, _ := form([]int{3, 2, 1, 0})
	if id3 != id1 {
		t.Errorf("another order gave id %s, want %s", id3, id1)
	}
}
