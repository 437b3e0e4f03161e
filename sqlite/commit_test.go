package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
)

// sameInstantAndOffset compares times by instant and zone offset, which is
// what the store keeps; zone names are not kept.
var sameInstantAndOffset = cmp.Comparer(func(a, b time.Time) bool {
	_, oa := a.Zone()
	_, ob := b.Zone()
	return a.Equal(b) && oa == ob && a.IsZero() == b.IsZero()
})

func allEvents(t *testing.T, s *Store) []event.Event {
	t.Helper()
	got, err := s.Events(context.Background(), event.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCommitRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	in := genEvents(0, 12)
	// Every field set, in one event at least.
	in[3].OrigTo = "alias@example.org"
	in[3].From = `"Shop" <shop@app.example.com>`
	in[3].Subject = "Ihre Bestellung – Nr. 4711"
	in[3].APIData = `{"campaign":"june"}`
	in[3].Size = 48213
	in[5].Class = event.ClassOther
	if err := s.Commit(ctx, event.Batch{Events: in}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, allEvents(t, s), sameInstantAndOffset); diff != "" {
		t.Errorf("events read back differ (-in +out):\n%s", diff)
	}
}

func TestTimeKeepsOffset(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	base := time.Date(2025, 3, 9, 6, 59, 59, 123456789, time.UTC)
	zones := []*time.Location{
		time.UTC,
		time.FixedZone("CEST", 2*3600),
		time.FixedZone("", -(5*3600 + 30*60)),
		time.FixedZone("", 14*3600),
		ny, // 01:59:59 EST here; DST starts a second later
	}
	var in []event.Event
	for i, z := range zones {
		e := genEvents(i, 1)[0]
		e.Time = base.Add(time.Duration(i) * time.Second).In(z)
		in = append(in, e)
	}
	if err := s.Commit(ctx, event.Batch{Events: in}); err != nil {
		t.Fatal(err)
	}
	got := allEvents(t, s)
	if len(got) != len(in) {
		t.Fatalf("%d events read back, want %d", len(got), len(in))
	}
	for i := range in {
		_, wantOff := in[i].Time.Zone()
		_, gotOff := got[i].Time.Zone()
		if !got[i].Time.Equal(in[i].Time) || gotOff != wantOff {
			t.Errorf("event %d: time %s (offset %d), want %s (offset %d)",
				i, got[i].Time.Format(time.RFC3339Nano), gotOff, in[i].Time.Format(time.RFC3339Nano), wantOff)
		}
		// The wall clock reads the same, which is what a person sees.
		if g, w := got[i].Time.Format(time.RFC3339Nano), in[i].Time.Format(time.RFC3339Nano); g != w {
			t.Errorf("event %d: formats as %s, want %s", i, g, w)
		}
	}
	if got[0].Time.Location() != time.UTC {
		t.Errorf("offset 0 came back in %v, want UTC", got[0].Time.Location())
	}
}

func TestCommitIdempotent(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	b := event.Batch{
		Events: genEvents(0, 300),
		Upsert: genMessages(0, 300),
		Cursor: event.Cursor{Source: "file:/var/log/mail.log", Dev: 1, Inode: 2, Offset: 4096},
	}
	for i := 0; i < 2; i++ {
		if err := s.Commit(ctx, b); err != nil {
			t.Fatalf("commit %d: %v", i+1, err)
		}
	}
	// A crash between commits means the reader sends a batch that overlaps
	// the stored one: the overlap is ignored, the rest added.
	b.Events = genEvents(200, 200)
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(genEvents(0, 400), allEvents(t, s), sameInstantAndOffset); diff != "" {
		t.Errorf("events after committing twice differ (-want +got):\n%s", diff)
	}
	counts, err := s.CountEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	if total != 400 {
		t.Errorf("CountEvents total = %d, want 400 (%v)", total, counts)
	}
}

func TestCountEvents(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	got, err := s.CountEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("empty store: CountEvents = %v", got)
	}
	if err := s.Commit(ctx, event.Batch{Events: genEvents(0, 12)}); err != nil {
		t.Fatal(err)
	}
	got, err = s.CountEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[event.Type]int64{event.Queued: 2, event.Succeeded: 4, event.Deferred: 2, event.Failed: 2, event.Bounced: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CountEvents (-want +got):\n%s", diff)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	if c, ok, err := s.Cursor(ctx, "file:/var/log/mail.log"); err != nil || ok {
		t.Fatalf("empty store: Cursor = %+v, %v, %v; want none", c, ok, err)
	}
	cursors := []event.Cursor{
		// dev and inode with the top bit set must survive signed storage.
		{Source: "file:/var/log/mail.log", Dev: math.MaxUint64, Inode: 1 << 63, Offset: 1 << 40},
		{Source: "file:/var/log/mail.log", Dev: 2049, Inode: 131, Offset: 0},
		{Source: "journald", Journal: "s=739ad463348b4ceca5a9e69c95a3c93f;i=4ece7;b=6c7c6013a8cc4b8ba9dfa1c5f8efa9b3;m=1c2a9d0;t=5d1f3a8c1d2c1;x=5c6c4b1d7e0a2b3c"},
	}
	for _, c := range cursors {
		if err := s.Commit(ctx, event.Batch{Cursor: c}); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Cursor(ctx, c.Source)
		if err != nil || !ok {
			t.Fatalf("Cursor(%s) = %v, %v", c.Source, ok, err)
		}
		if got != c {
			t.Errorf("Cursor(%s) = %+v, want %+v", c.Source, got, c)
		}
	}
	// An empty Source stores no cursor and changes none.
	if err := s.Commit(ctx, event.Batch{Events: genEvents(0, 1)}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Cursor(ctx, cursors[1].Source); got != cursors[1] {
		t.Errorf("after a batch without cursor: %+v, want %+v", got, cursors[1])
	}
}

func TestOpenMessagesRoundTrip(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	msgs := genMessages(0, 12) // three messages
	msgs[1].FirstSeen, msgs[1].LastSeen = time.Time{}, time.Time{}
	msgs[2].State = nil
	msgs[2].MessageKey.Host = ""
	if err := s.Commit(ctx, event.Batch{Upsert: msgs}); err != nil {
		t.Fatal(err)
	}
	check := func(step string, want []event.Message) {
		t.Helper()
		got, err := s.OpenMessages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, sameInstantAndOffset); diff != "" {
			t.Errorf("%s: open messages (-want +got):\n%s", step, diff)
		}
	}
	// Ordered by host, then queue ID.
	check("insert", []event.Message{msgs[2], msgs[0], msgs[1]})

	upd := msgs[0]
	upd.LastSeen = upd.LastSeen.Add(time.Minute)
	upd.State = []byte("new state")
	upd.ReturnPath = ""
	if err := s.Commit(ctx, event.Batch{Upsert: []event.Message{upd}}); err != nil {
		t.Fatal(err)
	}
	check("update", []event.Message{msgs[2], upd, msgs[1]})

	// msgs[1]'s queue ID closes and a new message reuses it in the same batch:
	// the new one stays open. msgs[2] just closes.
	reused := msgs[1]
	reused.MessageID = "<other@example.com>"
	reused.FirstSeen = testStart.Add(time.Hour)
	if err := s.Commit(ctx, event.Batch{
		Upsert: []event.Message{reused},
		Close:  []event.MessageKey{msgs[1].MessageKey, msgs[2].MessageKey},
	}); err != nil {
		t.Fatal(err)
	}
	check("close and reuse", []event.Message{upd, reused})

	// Closing a message that is not open is not an error.
	if err := s.Commit(ctx, event.Batch{Close: []event.MessageKey{{Host: "x", QueueID: "NOPE"}}}); err != nil {
		t.Fatal(err)
	}
	check("close unknown", []event.Message{upd, reused})
}

// TestCommitAtomic makes a batch fail at different points and checks that
// nothing of it remains.
func TestCommitAtomic(t *testing.T) {
	const source = "file:/var/log/mail.log"
	before := event.Batch{
		Events: genEvents(0, 50),
		Upsert: genMessages(0, 50),
		Cursor: event.Cursor{Source: source, Dev: 1, Inode: 2, Offset: 100},
	}
	// next changes every table: new events, closes, upserts, cursor.
	next := func() event.Batch {
		var closeKeys []event.MessageKey
		for _, m := range genMessages(0, 20) {
			closeKeys = append(closeKeys, m.MessageKey)
		}
		upd := genMessages(40, 30)
		upd[0].State = []byte("changed")
		return event.Batch{
			Events: genEvents(50, 50),
			Close:  closeKeys,
			Upsert: upd,
			Cursor: event.Cursor{Source: source, Dev: 1, Inode: 2, Offset: 200},
		}
	}
	cases := []struct {
		name   string
		batch  func() event.Batch
		cancel string // stage after which the context is cancelled
		want   string // in the error
	}{
		{"constraint violated by the last upsert", func() event.Batch {
			b := next()
			b.Upsert = append(b.Upsert, event.Message{MessageKey: event.MessageKey{Host: "mx1"}})
			return b
		}, "", "CHECK constraint failed"},
		{"unknown event type", func() event.Batch {
			b := next()
			b.Events[49].Type = "opened"
			return b
		}, "", `unknown type "opened"`},
		{"empty event id", func() event.Batch {
			b := next()
			b.Events[49].ID = ""
			return b
		}, "", "CHECK constraint failed"},
		{"time out of range", func() event.Batch {
			b := next()
			b.Events[49].Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
			return b
		}, "", "cannot be stored"},
		{"message time out of range", func() event.Batch {
			b := next()
			b.Upsert[3].LastSeen = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)
			return b
		}, "", "cannot be stored"},
		{"negative offset", func() event.Batch {
			b := next()
			b.Cursor.Offset = -1
			return b
		}, "", "CHECK constraint failed"},
		{"cancelled after the events", next, "events", "context canceled"},
		{"cancelled after the cursor, before COMMIT", next, "cursor", "context canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openTest(t, Options{})
			bg := context.Background()
			if err := s.Commit(bg, before); err != nil {
				t.Fatal(err)
			}
			snap := snapshot(t, s, source)

			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			if c.cancel != "" {
				s.afterStage = func(stage string) {
					if stage == c.cancel {
						cancel()
					}
				}
			}
			err := s.Commit(ctx, c.batch())
			s.afterStage = nil
			if err == nil {
				t.Fatal("Commit succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "commit batch: ") {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if diff := cmp.Diff(snap, snapshot(t, s, source), sameInstantAndOffset); diff != "" {
				t.Errorf("a failed batch left changes (-before +after):\n%s", diff)
			}
			// The store is still usable.
			if err := s.Commit(bg, next()); err != nil {
				t.Errorf("commit after the failure: %v", err)
			}
		})
	}
}

type storeState struct {
	Events   []event.Event
	Messages []event.Message
	Cursor   event.Cursor
}

func snapshot(t *testing.T, s *Store, source string) storeState {
	t.Helper()
	ctx := context.Background()
	var st storeState
	var err error
	if st.Events, err = s.Events(ctx, event.Query{}); err != nil {
		t.Fatal(err)
	}
	if st.Messages, err = s.OpenMessages(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Cursor, _, err = s.Cursor(ctx, source); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEventsQuery(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	all := genEvents(0, 60)
	// Two events at the same instant: the id orders them.
	all[11].Time = all[10].Time
	if err := s.Commit(ctx, event.Batch{Events: all}); err != nil {
		t.Fatal(err)
	}
	all = allEvents(t, s) // in store order
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if b.Time.Before(a.Time) || (b.Time.Equal(a.Time) && b.ID <= a.ID) {
			t.Fatalf("events %d and %d out of (time, id) order", i-1, i)
		}
	}
	filter := func(keep func(e event.Event) bool) []event.Event {
		var out []event.Event
		for _, e := range all {
			if keep(e) {
				out = append(out, e)
			}
		}
		return out
	}
	since, until := all[10].Time, all[40].Time
	cases := []struct {
		name string
		q    event.Query
		want []event.Event
	}{
		{"since", event.Query{Since: since}, filter(func(e event.Event) bool { return !e.Time.Before(since) })},
		{"until", event.Query{Until: until}, filter(func(e event.Event) bool { return e.Time.Before(until) })},
		{"since and until in another zone", event.Query{Since: since.UTC(), Until: until.In(time.FixedZone("", -7*3600))},
			filter(func(e event.Event) bool { return !e.Time.Before(since) && e.Time.Before(until) })},
		{"types", event.Query{Types: []event.Type{event.Failed, event.Bounced}},
			filter(func(e event.Event) bool { return e.Type == event.Failed || e.Type == event.Bounced })},
		{"limit", event.Query{Limit: 7}, all[:7]},
		{"after", event.Query{AfterTime: all[10].Time, AfterID: all[10].ID}, all[11:]},
		{"far future", event.Query{Since: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"far past", event.Query{Until: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Events(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got, sameInstantAndOffset); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// Paging through deferred and failed events, 4 at a time, yields each
	// exactly once.
	q := event.Query{Types: []event.Type{event.Deferred, event.Failed}, Limit: 4}
	var paged []event.Event
	for pages := 0; ; pages++ {
		if pages > len(all) {
			t.Fatal("paging does not end")
		}
		page, err := s.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		last := page[len(page)-1]
		q.AfterTime, q.AfterID = last.Time, last.ID
	}
	want := filter(func(e event.Event) bool { return e.Type == event.Deferred || e.Type == event.Failed })
	if diff := cmp.Diff(want, paged, sameInstantAndOffset); diff != "" {
		t.Errorf("paged (-want +got):\n%s", diff)
	}

	if _, err := s.Events(ctx, event.Query{Limit: -1}); err == nil {
		t.Error("a negative limit was accepted")
	}
}

// TestWriteDurable checks that a durable write runs with synchronous=FULL,
// also after a failed one, and that the next write that is not durable
// runs with NORMAL: the writer stays at FULL between the two (setSync).
func TestWriteDurable(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	syncInTx := func(durable bool, fail error) string {
		var mode string
		err := s.write(ctx, durable, func(tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
				return err
			}
			return fail
		})
		if !errors.Is(err, fail) {
			t.Fatalf("write: %v, want %v", err, fail)
		}
		return mode
	}
	boom := errors.New("boom")
	for _, c := range []struct {
		durable bool
		fail    error
		want    string
	}{
		{false, nil, "1"}, {true, nil, "2"}, {true, nil, "2"}, {false, nil, "1"}, {true, boom, "2"},
		{false, boom, "1"}, {false, nil, "1"}, {true, nil, "2"},
	} {
		if got := syncInTx(c.durable, c.fail); got != c.want {
			t.Errorf("durable=%v fail=%v: synchronous in the transaction = %s, want %s", c.durable, c.fail, got, c.want)
		}
		if got := pragma(t, s.w, "synchronous"); got != c.want {
			t.Errorf("durable=%v fail=%v: synchronous after = %s, want %s", c.durable, c.fail, got, c.want)
		}
	}
}

// TestConcurrentReaders runs readers beside a committing writer (run it
// with -race). Every reader must see whole batches only.
func TestConcurrentReaders(t *testing.T) {
	s := openTest(t, Options{Readers: 3})
	ctx := context.Background()
	const batches, perBatch, readers = 60, 25, 3
	done := make(chan struct{})
	var wg, started sync.WaitGroup
	errs := make(chan error, readers)
	read := func(last *int64) error {
		counts, err := s.CountEvents(ctx)
		if err != nil {
			return err
		}
		var n int64
		for _, c := range counts {
			n += c
		}
		if n%perBatch != 0 || n < *last {
			return fmt.Errorf("reader saw %d events after %d: not whole batches", n, *last)
		}
		*last = n
		if _, err := s.Events(ctx, event.Query{Types: []event.Type{event.Failed}, Limit: 10}); err != nil {
			return err
		}
		_, _, err = s.Cursor(ctx, "file:/var/log/mail.log")
		return err
	}
	for r := 0; r < readers; r++ {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			err := read(&last)
			started.Done()
			for err == nil {
				select {
				case <-done:
					return
				default:
				}
				err = read(&last)
			}
			errs <- err
		}()
	}
	// The writer starts once every reader is reading.
	started.Wait()
	for i := 0; i < batches; i++ {
		err := s.Commit(ctx, event.Batch{
			Events: genEvents(i*perBatch, perBatch),
			Upsert: genMessages(i*perBatch, perBatch),
			Cursor: event.Cursor{Source: "file:/var/log/mail.log", Offset: int64(i + 1)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(allEvents(t, s)); got != batches*perBatch {
		t.Errorf("%d events stored, want %d", got, batches*perBatch)
	}
}
