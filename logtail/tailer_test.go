package logtail

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

// batchSink records the cursor offset of each commit.
type batchSink struct {
	mu        sync.Mutex
	offsets   []int64
	committed chan struct{}
}

func (b *batchSink) Commit(_ context.Context, batch event.Batch) error {
	b.mu.Lock()
	b.offsets = append(b.offsets, batch.Cursor.Offset)
	b.mu.Unlock()
	if b.committed != nil {
		b.committed <- struct{}{}
	}
	return nil
}

func (b *batchSink) got() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.offsets)
}

// TestTailerLingerFillsBatches: lines that come one per read are gathered
// into full batches, and the source's end commits the rest at once, not
// after the linger.
func TestTailerLingerFillsBatches(t *testing.T) {
	lines := make([]string, 10)
	for i := range lines {
		lines[i] = "x" // not Postfix's: counted and skipped
	}
	sink := &batchSink{}
	tl := &Tailer{Source: &sliceSource{lines: lines, per: 1}, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0),
		Correlator: NewCorrelator(CorrelatorOptions{}), BatchLines: 4, Linger: time.Hour}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sink.got(); !slices.Equal(got, []int64{8, 16, 20}) {
		t.Errorf("commits at offsets %v, want batches of 4, 4 and 2 lines", got)
	}
}

// trickleSource gives one line, then blocks until its context ends, as a
// live log with nothing more written does; blocked says it is waiting.
type trickleSource struct {
	sent    bool
	blocked chan struct{}
}

func (s *trickleSource) Read(ctx context.Context, buf []Line, max int) ([]Line, error) {
	if !s.sent {
		s.sent = true
		return append(buf, Line{Text: "x", Cursor: event.Cursor{Source: "test", Offset: 2}}), nil
	}
	s.blocked <- struct{}{}
	<-ctx.Done()
	return buf, ctx.Err()
}

func (s *trickleSource) Close() error { return nil }

// TestTailerLingerEnds: when no more lines come, the batch is committed
// once the linger is over and reading goes on; stopping while lingering
// commits what was read.
func TestTailerLingerEnds(t *testing.T) {
	for _, stopWhileLingering := range []bool{false, true} {
		src := &trickleSource{blocked: make(chan struct{}, 1)}
		sink := &batchSink{committed: make(chan struct{}, 1)}
		linger := time.Millisecond
		if stopWhileLingering {
			linger = time.Hour
		}
		tl := &Tailer{Source: src, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0),
			Correlator: NewCorrelator(CorrelatorOptions{}), Linger: linger}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- tl.Run(ctx) }()
		<-src.blocked // lingering for a second line
		if !stopWhileLingering {
			<-sink.committed // the linger ended and the line was committed
			<-src.blocked    // and the tailer reads on
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("stop while lingering %v: Run = %v, want context.Canceled", stopWhileLingering, err)
		}
		if got := sink.got(); !slices.Equal(got, []int64{2}) {
			t.Errorf("stop while lingering %v: commits at %v, want the one line", stopWhileLingering, got)
		}
	}
}
