package logtail

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/posthorn/posthorn/event"
)

// update rewrites the golden files of every test in the package.
var update = flag.Bool("update", false, "rewrite golden files")

// sliceSource serves fixed lines, a few per Read, as a pure test double of
// a log file.
type sliceSource struct {
	lines []string
	per   int
	off   int64
	i     int
}

func (s *sliceSource) Read(_ context.Context, buf []Line, max int) ([]Line, error) {
	if s.i >= len(s.lines) {
		return buf, io.EOF
	}
	n := min(s.per, max, len(s.lines)-s.i)
	for _, l := range s.lines[s.i : s.i+n] {
		s.off += int64(len(l)) + 1
		buf = append(buf, Line{Text: l, Cursor: event.Cursor{Source: "test", Offset: s.off}})
	}
	s.i += n
	return buf, nil
}

func (s *sliceSource) Close() error { return nil }

// memSink keeps what a store would: the events, and the open messages.
type memSink struct {
	events []event.Event
	open   map[event.MessageKey]event.Message
}

func (m *memSink) Commit(_ context.Context, b event.Batch) error {
	m.events = append(m.events, b.Events...)
	if m.open == nil {
		m.open = map[event.MessageKey]event.Message{}
	}
	for _, msg := range b.Upsert {
		m.open[msg.MessageKey] = msg
	}
	for _, k := range b.Close {
		delete(m.open, k)
	}
	return nil
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// The year of the golden inputs: their year-less stamps read as if the log
// was last written on 2027-01-01 (newyear.log spans the turn of the year).
var goldenRef = time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)

func runGolden(t *testing.T, lines []string, per int, opts CorrelatorOptions) ([]event.Event, Summary, Stats) {
	t.Helper()
	events, sum, st, _ := runGoldenOpen(t, lines, per, opts)
	return events, sum, st
}

// runGoldenOpen is runGolden that also says how many messages are still
// open at the end: a golden that ends with every message removed must
// leave none (no phantom state).
func runGoldenOpen(t *testing.T, lines []string, per int, opts CorrelatorOptions) ([]event.Event, Summary, Stats, int) {
	t.Helper()
	sink := &memSink{}
	corr := NewCorrelator(opts)
	tl := &Tailer{Source: &sliceSource{lines: lines, per: per}, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0), Correlator: corr}
	if err := tl.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sink.events, tl.Summary(), corr.Stats(), corr.Open()
}

func TestCorrelateGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/correlate/*.log")
	inputs = append(inputs, glob(t, "testdata/real/*.log")...)
	if len(inputs) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			events, sum, st, open := runGoldenOpen(t, readLines(t, in), 3, CorrelatorOptions{})
			var got bytes.Buffer
			for i := range events {
				got.Write(events[i].AppendJSON(nil))
				got.WriteByte('\n')
			}
			fmt.Fprintf(&got, "# lines=%d postfix=%d not-postfix=%d not-understood=%d rejects=%d unknown=%d verify=%d notifications=%d log-loss=%d open=%d\n",
				sum.Lines, sum.Postfix, sum.NotPostfix, sum.NotUnderstood, st.Rejects, st.Unknown, st.Verify, st.Notified, sum.LogLoss, open)
			for _, ex := range sum.Examples {
				fmt.Fprintf(&got, "# not understood: %q\n", ex)
			}
			checkGoldenFile(t, strings.TrimSuffix(in, ".log")+".golden", got.Bytes())
		})
	}
}

// TestCorrelateEndOfInput: posthorn parse settles the "sent" lines still
// held when its input ends (SettleHeld): a loopback relay's queue ID never
// seen is a delivery (succeeded), one seen is a hand-off and stays so. The
// golden has the events of the input, then those the end released.
func TestCorrelateEndOfInput(t *testing.T) {
	for _, in := range glob(t, "testdata/end/*.log") {
		t.Run(filepath.Base(in), func(t *testing.T) {
			sink := &memSink{}
			corr := NewCorrelator(CorrelatorOptions{})
			tl := &Tailer{Source: &sliceSource{lines: readLines(t, in), per: 3}, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0), Correlator: corr}
			if err := tl.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			for i := range sink.events {
				got.Write(sink.events[i].AppendJSON(nil))
				got.WriteByte('\n')
			}
			got.WriteString("# end of input\n")
			for _, ev := range corr.SettleHeld() {
				got.Write(ev.AppendJSON(nil))
				got.WriteByte('\n')
			}
			if again := corr.SettleHeld(); len(again) != 0 {
				t.Errorf("a second SettleHeld released %d more", len(again))
			}
			st := corr.Stats()
			fmt.Fprintf(&got, "# succeeded=%d open=%d\n", st.Events[event.Succeeded], corr.Open())
			checkGoldenFile(t, strings.TrimSuffix(in, ".log")+".golden", got.Bytes())
		})
	}
}

func glob(t *testing.T, pattern string) []string {
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Batching must not change the result: one line per commit or all at once.
func TestCorrelateBatchIndependent(t *testing.T) {
	for _, in := range glob(t, "testdata/correlate/*.log") {
		lines := readLines(t, in)
		a, _, _ := runGolden(t, lines, 1, CorrelatorOptions{})
		b, _, _ := runGolden(t, lines, 1000, CorrelatorOptions{})
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s: batch size changes events:\n%s", in, diff)
		}
	}
}

// A restart restores the open messages the store kept and must produce
// exactly what an uninterrupted run does, whatever line it stopped after.
func TestCorrelateRestartEverywhere(t *testing.T) {
	for _, in := range append(glob(t, "testdata/correlate/*.log"), glob(t, "testdata/real/*.log")...) {
		lines := readLines(t, in)
		want, _, _ := runGolden(t, lines, 1, CorrelatorOptions{})
		for cut := 1; cut < len(lines); cut++ {
			got := resumeAt(t, lines, cut)
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Fatalf("%s: restart after line %d changes events (-want +got):\n%s", in, cut, diff)
			}
		}
	}
}

// resumeAt runs lines[:cut], persists what a store would, and continues
// with a fresh correlator restored from it.
func resumeAt(t *testing.T, lines []string, cut int) []event.Event {
	t.Helper()
	sink := &memSink{}
	c1 := NewCorrelator(CorrelatorOptions{Persist: true})
	t1 := &Tailer{Source: &sliceSource{lines: lines[:cut], per: 1}, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0), Correlator: c1}
	if err := t1.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var msgs []event.Message
	for _, m := range sink.open {
		msgs = append(msgs, m)
	}
	c2 := NewCorrelator(CorrelatorOptions{Persist: true})
	if err := c2.Restore(msgs); err != nil {
		t.Fatal(err)
	}
	t2 := &Tailer{Source: &sliceSource{lines: lines[cut:], per: 1}, Sink: sink, Resolver: NewResolver(time.UTC, goldenRef, 0), Correlator: c2}
	if err := t2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return sink.events
}

func TestCorrelateBoundedMemory(t *testing.T) {
	// Messages that never see "removed" must not accumulate.
	corr := NewCorrelator(CorrelatorOptions{MessageTTL: time.Hour})
	start := time.Date(2026, 11, 7, 0, 0, 0, 0, time.UTC)
	for i := range 100000 {
		at := start.Add(time.Duration(i) * time.Second)
		rec := Record{Kind: KindClient, Host: "mx", QueueID: fmt.Sprintf("%X", 0x100000+i), ClientIP: "192.0.2.1"}
		corr.Feed(&rec, at, "")
	}
	if n := corr.Open(); n > 3700 {
		t.Errorf("%d messages open after 100000 s of log with a 1 h TTL", n)
	}
}

func TestNotificationID(t *testing.T) {
	for _, c := range []struct {
		mid, qid string
		want     bool
	}{
		{"<20100831195657.E2550122504@XXXX.com>", "E2550122504", true},
		{"<20100831195657.E2550122504@XXXX.com>", "E255", false},
		{"<m1@client.example.org>", "E2550122504", false},
		{"", "X", false},
		{"<4jbVH85NkFz1SJ6T@mx.posthorn.test>", "4jbVH85NkFz1SJ6T", true},
		{"<4jbVH85NkFz1SJ6T@mx.posthorn.test>", "4jbVH85NkFz1SJ6", false},
		{"<x4jbVH85NkFz1SJ6T@mx.posthorn.test>", "4jbVH85NkFz1SJ6T", false},
	} {
		if got := isNotificationID(c.mid, c.qid); got != c.want {
			t.Errorf("isNotificationID(%q, %q) = %v", c.mid, c.qid, got)
		}
	}
}

func TestResolverYear(t *testing.T) {
	ref := time.Date(2027, 1, 2, 12, 0, 0, 0, time.UTC)
	r := NewResolver(time.UTC, ref, 0)
	steps := []struct {
		s    Stamp
		want string
	}{
		{Stamp{Month: 12, Day: 31, Hour: 23, Min: 59, Sec: 58}, "2026-12-31T23:59:58Z"},
		{Stamp{Month: 1, Day: 1, Hour: 0, Min: 0, Sec: 1}, "2027-01-01T00:00:01Z"},
		{Stamp{Month: 12, Day: 31, Hour: 23, Min: 59, Sec: 59}, "2026-12-31T23:59:59Z"}, // late line
		{Stamp{Month: 1, Day: 2, Hour: 0, Min: 0, Sec: 0}, "2027-01-02T00:00:00Z"},
		{Stamp{Year: 2025, Month: 3, Day: 4, Hour: 5, Offset: 9 * 3600, HasOffset: true}, "2025-03-04T05:00:00+09:00"},
		{Stamp{Year: 2025, Month: 3, Day: 4, Hour: 5}, "2025-03-04T05:00:00Z"},
		{Stamp{Abs: time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)}, "2025-03-04T05:00:00Z"},
	}
	for i, s := range steps {
		if got := r.Resolve(s.s).Format(time.RFC3339); got != s.want {
			t.Errorf("step %d: got %s, want %s", i, got, s.want)
		}
	}
	// Fixed year and a log read long after it was written.
	r = NewResolver(time.UTC, ref, 2020)
	if got := r.Resolve(Stamp{Month: 6, Day: 1}).Year(); got != 2020 {
		t.Errorf("fixed year: got %d", got)
	}
}

// The indexes beside the open messages (held hand-offs, shared
// Message-IDs) empty when the messages are gone: nothing accumulates.
func TestCorrelateIndexesEmpty(t *testing.T) {
	for _, in := range []string{"testdata/correlate/filterrace.log", "testdata/correlate/tunnel.log", "testdata/correlate/latefilter.log", "testdata/correlate/handoff.log"} {
		corr := NewCorrelator(CorrelatorOptions{MessageTTL: time.Hour})
		var last time.Time
		for _, l := range readLines(t, in) {
			rec, err := Parse(l)
			if err != nil {
				continue
			}
			last = NewResolver(time.UTC, goldenRef, 0).Resolve(rec.Stamp)
			corr.Feed(&rec, last, l)
		}
		later := Record{Kind: KindRemoved, Host: "other", QueueID: "ABCDEF12345"}
		corr.Feed(&later, last.Add(2*time.Hour), "")
		if len(corr.open) != 0 || len(corr.awaiting) != 0 || len(corr.sharedMID) != 0 {
			t.Errorf("%s: %d open, %d awaiting, %d shared Message-IDs after all are gone", in, len(corr.open), len(corr.awaiting), len(corr.sharedMID))
		}
	}
}
