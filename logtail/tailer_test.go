package logtail

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
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

// Over-long lines and the system logger's drop reports are counted and
// warned about once per batch, not once per line.
func TestTailerWarnsOverlongAndLogLoss(t *testing.T) {
	long := "Nov  7 10:00:00 mx postfix/smtp[3]: 5B2C3D4E5F: to=<c@c.example>, relay=none, dsn=5.0.0, status=bounced (" + strings.Repeat("x", 500) + ")"
	text := long + "\n" + long + "\n" +
		"Nov  7 10:00:01 mx rsyslogd: imjournal: 143847 messages lost due to rate-limit\n" +
		"Nov  7 10:00:01 mx systemd-journald[250]: Suppressed 7124 messages from postfix.service\n" +
		"Nov  7 10:00:02 mx rsyslogd: imjournal: journal files changed, reloading...\n"
	src, err := NewReaderSource([]string{Stdin}, ReaderOptions{MaxLine: 200, Stdin: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	sink := &memSink{}
	tl := &Tailer{Source: src, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0), Correlator: NewCorrelator(CorrelatorOptions{}),
		Log: slog.New(slog.NewTextHandler(&logged, nil))}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := tl.Summary()
	if sum.Lines != 5 || sum.Overlong != 2 || sum.LogLoss != 2 || sum.Postfix != 2 {
		t.Errorf("summary %+v", sum)
	}
	out := logged.String()
	if n := strings.Count(out, "over-long log lines"); n != 1 || !strings.Contains(out, "lines=2") {
		t.Errorf("%d over-long warnings:\n%s", n, out)
	}
	if n := strings.Count(out, "dropping messages"); n != 1 || !strings.Contains(out, "reports=2") {
		t.Errorf("%d log-loss warnings:\n%s", n, out)
	}
	// Each cut line's head is a bounce with its reason cut short.
	if len(sink.events) != 5 || len(sink.events[1].Reason) != 200-len(long[:strings.IndexByte(long, '(')+1]) {
		t.Errorf("%d events, reason %d bytes", len(sink.events), len(sink.events[1].Reason))
	}
}
