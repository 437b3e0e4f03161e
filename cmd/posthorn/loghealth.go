package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
)

// A log with no Postfix line after this many lines is likely the wrong
// file (maillog.path = /etc/shadow, a binary file, another program's log).
const noPostfixAfter = 1000

// notUnderstoodEvery bounds how often serve logs the count of Postfix lines
// the parser could not read, after it has logged the first few of them
// (logtail.MaxExamples) one by one: a Postfix version that logs something
// new logs it on every message.
const notUnderstoodEvery = time.Minute

// logHealth turns the log reader's counts into the warnings an
// administrator needs and would otherwise not see: a followed file with no
// Postfix line, and Postfix lines not understood (which the reader logs
// only at debug level). check runs after each batch; the counts are the
// reader's own (logtail.Summary), so this only decides what to say.
type logHealth struct {
	log     *slog.Logger
	source  string // what is followed, for the messages
	summary func() logtail.Summary
	now     func() time.Time

	mu         sync.Mutex
	noPostfix  bool      // warned that there is no Postfix line
	examples   int       // Summary.Examples logged one by one
	reported   int64     // not-understood lines logged so far
	lastReport time.Time // of the last count
}

func newLogHealth(log *slog.Logger, source string, summary func() logtail.Summary, now func() time.Time) *logHealth {
	return &logHealth{log: log, source: source, summary: summary, now: now}
}

func (h *logHealth) check() {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.summary()
	if !h.noPostfix && s.Postfix == 0 && s.Lines >= noPostfixAfter {
		h.noPostfix = true
		h.log.Warn(fmt.Sprintf("no Postfix line in the first %d lines of %s: is this the maillog?", s.Lines, h.source),
			"not_postfix", s.NotPostfix)
	}
	// The first few one by one, with the parser's reason: enough to
	// report the line format.
	for ; h.examples < len(s.Examples); h.examples++ {
		h.log.Warn("Postfix line not understood; its events are missing", "line", s.Examples[h.examples])
		h.reported++
	}
	if n := s.NotUnderstood - h.reported; n > 0 {
		now := h.now()
		if h.lastReport.IsZero() || now.Sub(h.lastReport) >= notUnderstoodEvery {
			h.log.Warn("more Postfix lines not understood; their events are missing (posthorn parse on the log shows them)",
				"lines", n, "total", s.NotUnderstood)
			h.reported, h.lastReport = s.NotUnderstood, now
		}
	}
}

// healthSink runs a logHealth check after each batch the reader commits.
type healthSink struct {
	logtail.Sink
	h *logHealth
}

func (s healthSink) Commit(ctx context.Context, b event.Batch) error {
	err := s.Sink.Commit(ctx, b)
	s.h.check()
	return err
}
