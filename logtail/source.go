package logtail

import (
	"context"

	"github.com/posthorn/posthorn/event"
)

// Line is one log line, without its line ending, and the cursor just after it.
type Line struct {
	Text string
	// Cut: the line was longer than the source's limit (DefaultMaxLine);
	// Text is its head and the rest was skipped.
	Cut    bool
	Cursor event.Cursor
}

// Source yields log lines. Read appends to buf the lines that are available
// now, at most max of them, blocking until there is at least one or ctx is
// done; when ctx is done already, it returns what is available without
// waiting (possibly nothing) and ctx.Err(). It returns io.EOF once the input
// has ended (a source that follows a live log never ends). Lines come whole:
// a partial last line is held back until its newline arrives.
type Source interface {
	Read(ctx context.Context, buf []Line, max int) ([]Line, error)
	Close() error
}
