package logtail

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/posthorn/posthorn/event"
)

// Sink receives what the tailer derives from each run of lines. A store
// commits the batch in one transaction; `posthorn parse` prints it.
type Sink interface {
	Commit(ctx context.Context, b event.Batch) error
}

// Summary counts the lines a Tailer read.
type Summary struct {
	Lines         int64    // lines read
	Postfix       int64    // Postfix lines recognised
	NotPostfix    int64    // other programs' lines, blank lines: skipped
	NotUnderstood int64    // Postfix lines the parser could not read
	Examples      []string // up to MaxExamples of those, with the reason
}

// MaxExamples bounds Summary.Examples.
const MaxExamples = 5

// Tailer runs lines from a Source through the parser and the correlator
// into a Sink, one batch per Source.Read.
type Tailer struct {
	Source     Source
	Sink       Sink
	Resolver   *Resolver
	Correlator *Correlator
	// BatchLines bounds the lines per batch (default 5000): larger batches
	// amortise the commit, smaller ones bound the work a crash repeats.
	BatchLines int
	Log        *slog.Logger

	sum Summary
}

// Summary returns the counts so far.
func (t *Tailer) Summary() Summary { return t.sum }

// Run reads until the source ends (nil) or ctx is done (ctx.Err(), after
// committing what was read).
func (t *Tailer) Run(ctx context.Context) error {
	max := t.BatchLines
	if max <= 0 {
		max = 5000
	}
	log := t.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if t.Resolver == nil {
		t.Resolver = NewResolver(nil, t.Correlator.Newest(), 0)
	}
	if n := t.Correlator.Newest(); !n.IsZero() {
		t.Resolver.Restore(n)
	}
	var (
		buf    []Line
		events []event.Event
	)
	for {
		var err error
		buf, err = t.Source.Read(ctx, buf[:0], max)
		if len(buf) > 0 {
			events = events[:0]
			for i := range buf {
				events = t.line(buf[i].Text, events, log)
			}
			b := event.Batch{Events: events, Cursor: buf[len(buf)-1].Cursor}
			b.Upsert, b.Close = t.Correlator.Flush()
			// A batch read is committed even when shutdown has begun: the
			// lines are processed, and committing them saves reading them
			// again.
			if cerr := t.Sink.Commit(context.WithoutCancel(ctx), b); cerr != nil {
				return cerr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return err
		}
	}
}

func (t *Tailer) line(text string, events []event.Event, log *slog.Logger) []event.Event {
	t.sum.Lines++
	rec, err := Parse(text)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			t.sum.NotUnderstood++
			if len(t.sum.Examples) < MaxExamples {
				t.sum.Examples = append(t.sum.Examples, pe.Reason+": "+clip(text, 300))
			}
			log.Debug("postfix line not understood", "reason", pe.Reason, "line", clip(text, 300))
		} else {
			t.sum.NotPostfix++
		}
		return events
	}
	t.sum.Postfix++
	at := t.Resolver.Resolve(rec.Stamp)
	return append(events, t.Correlator.Feed(&rec, at, text)...)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
