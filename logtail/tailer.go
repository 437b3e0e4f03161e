package logtail

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

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
	// Overlong counts lines longer than the source's limit: only their
	// head was kept and parsed. Postfix never writes such a line, so they
	// come from another program or a broken collector.
	Overlong int64
	// LogLoss counts the logger's own reports of messages it dropped
	// (rsyslog's imjournal and imuxsock rate limits, journald's
	// "Suppressed N messages"): outcomes may be missing around them.
	LogLoss int64
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
	// Linger, when set, is how long a batch of fewer than BatchLines
	// lines waits for more before it is committed. A live log arrives a
	// few lines at a time, and a commit per line burst would be a write
	// transaction per few lines, competing with the milter's captures
	// for the store's one writer; a catch-up fills its batches at once
	// and never waits.
	Linger time.Duration
	Log    *slog.Logger

	sum Summary // owned by Run's goroutine

	// pub is sum as of the last batch: metrics read it from another
	// goroutine while Run counts without a lock per line.
	mu  sync.Mutex
	pub Summary
}

// Summary returns the counts as of the last batch read. It is safe to call
// while Run runs.
func (t *Tailer) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.pub
	s.Examples = append([]string(nil), t.pub.Examples...)
	return s
}

// publish makes the counts so far visible to Summary.
func (t *Tailer) publish() {
	t.mu.Lock()
	t.pub = t.sum
	t.pub.Examples = append(t.pub.Examples[:0:0], t.sum.Examples...)
	t.mu.Unlock()
}

// linger adds to buf the lines that arrive within t.Linger, up to max in
// all. It takes what is there now, waits out the linger and takes what has
// come meanwhile: a live log is written a line at a time, and reading at
// each write (a wake-up, a read, a stat) cost more than the lines' parsing.
// The end of the wait is not an error; the source's end or ctx's is.
func (t *Tailer) linger(ctx context.Context, buf []Line, max int) ([]Line, error) {
	buf, err := t.available(ctx, buf, max)
	if err != nil || len(buf) >= max {
		return buf, err
	}
	wait := time.NewTimer(t.Linger)
	defer wait.Stop()
	select {
	case <-ctx.Done():
		buf, _ = t.available(ctx, buf, max)
		return buf, ctx.Err()
	case <-wait.C:
	}
	return t.available(ctx, buf, max)
}

// available adds to buf the lines the source has now, up to max in all,
// without waiting for more. Its error is the source's or ctx's.
func (t *Tailer) available(ctx context.Context, buf []Line, max int) ([]Line, error) {
	now, cancel := context.WithCancel(ctx)
	cancel() // an ended context: Read returns what there is and does not wait
	for len(buf) < max {
		n := len(buf)
		var err error
		buf, err = t.Source.Read(now, buf, max-len(buf))
		if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() == nil) {
			return buf, err
		}
		if len(buf) == n {
			break
		}
	}
	return buf, ctx.Err()
}

// Run reads until the source ends (nil) or ctx is done (ctx.Err(), after
// committing what was read).
//
// Parsing a batch and committing the one before overlap: the sink commits
// in a goroutine of its own while the next lines are parsed. Batches are
// committed one at a time and in order, and each carries the correlator
// state as of its last line, so a crash at any moment leaves the store at
// the end of some batch.
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
	// A batch read is committed even when shutdown has begun: the lines
	// are processed, and committing them saves reading them again.
	cctx := context.WithoutCancel(ctx)
	batches := make(chan event.Batch, 1)
	done := make(chan error, 1)
	go func() {
		var err error
		for b := range batches {
			if err == nil {
				err = t.Sink.Commit(cctx, b)
			}
		}
		done <- err
	}()
	// finish waits for the commits in flight; their error comes first.
	finish := func(err error) error {
		close(batches)
		if cerr := <-done; cerr != nil {
			return cerr
		}
		return err
	}
	var buf []Line
	size := 0 // events of the last batch: the next one is sized for as many
	for {
		var err error
		buf, err = t.Source.Read(ctx, buf[:0], max)
		if err == nil && t.Linger > 0 && len(buf) < max {
			buf, err = t.linger(ctx, buf, max)
		}
		if len(buf) > 0 {
			// A new slice each batch: the last one is the committer's now.
			events := make([]event.Event, 0, size)
			cut, loss := 0, t.sum.LogLoss
			for i := range buf {
				if buf[i].Cut {
					cut++
				}
				events = t.line(buf[i].Text, events, log)
			}
			if cut > 0 {
				// Once per batch: a flood of such lines is one message, not one each.
				t.sum.Overlong += int64(cut)
				head := firstCut(buf)
				log.Warn("over-long log lines: only their head was read", "lines", cut, "max_bytes", len(head),
					"first", clip(head, 120), "total", t.sum.Overlong)
			}
			if n := t.sum.LogLoss - loss; n > 0 {
				log.Warn("the system logger reported dropping messages: some delivery outcomes may be missing",
					"reports", n, "total", t.sum.LogLoss)
			}
			t.publish()
			size = len(events)
			b := event.Batch{Events: events, Cursor: buf[len(buf)-1].Cursor}
			b.Upsert, b.Close = t.Correlator.Flush()
			select {
			case batches <- b:
			case cerr := <-done:
				// The committer stopped on an error; report it.
				done <- cerr
				return finish(nil)
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return finish(nil)
		case ctx.Err() != nil:
			return finish(ctx.Err())
		case err != nil:
			return finish(err)
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
			if isLogLoss(rec.Program, text) {
				t.sum.LogLoss++
			}
		}
		return events
	}
	t.sum.Postfix++
	at := t.Resolver.Resolve(rec.Stamp)
	return append(events, t.Correlator.Feed(&rec, at, text)...)
}

// isLogLoss recognises a system logger's report that it dropped messages
// (POSTFIX-LOGS pitfall 2): rsyslog's "imjournal: begin to drop messages",
// "imjournal: N messages lost due to rate-limit", "imuxsock lost N messages
// from pid P due to rate-limiting" (tag rsyslogd-2177), "rsyslogd[internal_messages]:
// N messages lost", and journald's "Suppressed N messages from ...". Only
// other programs' lines are looked at, so Postfix lines pay nothing.
func isLogLoss(prog, line string) bool {
	switch {
	case strings.HasPrefix(prog, "rsyslogd") || prog == "imjournal" || prog == "imuxsock":
		return strings.Contains(line, "begin to drop messages") ||
			(strings.Contains(line, " messages lost") || strings.Contains(line, " lost ")) && strings.Contains(line, " messages")
	case prog == "journal" || prog == "systemd-journald":
		return strings.Contains(line, "Suppressed ") && strings.Contains(line, " messages")
	}
	return false
}

func firstCut(buf []Line) string {
	for i := range buf {
		if buf[i].Cut {
			return buf[i].Text
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
