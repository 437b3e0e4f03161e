package logtail

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
)

// JournalOptions tune a JournalSource. The zero value follows mail-facility
// messages from now on.
type JournalOptions struct {
	// Journalctl is the program to run (default "journalctl", looked up in
	// PATH).
	Journalctl string
	// Start applies without a cursor: StartEnd asks for no old entries
	// (--lines=0), StartBegin for all stored ones (--no-tail).
	Start Start
	// Since, when set and there is no cursor, asks for the entries from
	// that time on instead of Start.
	Since time.Time
	// Units (-u) and Identifiers (-t, e.g. "postfix/smtp") filter the
	// journal. Matches are FIELD=VALUE terms (journalctl(1) "MATCHES").
	// With none of the three, the match is SYSLOG_FACILITY=2, mail
	// (RFC 5424 §6.2.1 facility codes), which is how Postfix logs.
	Units       []string
	Identifiers []string
	Matches     []string
	// MaxLine bounds one JSON record (default DefaultMaxLine). A longer
	// record cannot be cut without breaking its JSON, so it is skipped
	// with a warning.
	MaxLine int
	// MinBackoff and MaxBackoff bound the wait before journalctl is
	// restarted after it exits (defaults 1 s and 30 s, doubling).
	MinBackoff, MaxBackoff time.Duration
	// MaxFailures is how many runs in a row may end without one record
	// before Read reports the failure (default 5): a bad match or a
	// missing permission fails the same way every time.
	MaxFailures int
	// Logger gets restarts and skipped records (default: discarded).
	Logger *slog.Logger
}

// JournalSource follows the systemd journal through `journalctl --follow
// --output=json` and yields each JSON record unchanged as Line.Text, with
// Cursor.Journal set to the record's __CURSOR. Running journalctl keeps
// Posthorn free of cgo and libsystemd (MILTER.md §5.2). journalctl is
// restarted with backoff when it exits, after the last record read, and is
// killed on Close.
type JournalSource struct {
	opts  JournalOptions
	bin   string
	log   *slog.Logger
	lines chan Line
	stop  context.CancelFunc
	done  chan struct{}

	mu  sync.Mutex
	err error // why the supervisor gave up; set before lines is closed

	last string // __CURSOR of the last record read; supervisor goroutine only
}

// NewJournalSource starts journalctl after start.Journal when it is set,
// else from opts.Start / opts.Since.
func NewJournalSource(start event.Cursor, opts JournalOptions) (*JournalSource, error) {
	st, err := opts.Start.check()
	if err != nil {
		return nil, err
	}
	opts.Start = st
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = 5
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = DefaultMaxLine
	}
	j := &JournalSource{
		opts:  opts,
		bin:   opts.Journalctl,
		log:   opts.Logger,
		lines: make(chan Line, 256),
		done:  make(chan struct{}),
		last:  start.Journal,
	}
	if j.bin == "" {
		j.bin = "journalctl"
	}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if start.Source != "" && start.Source != "journald" {
		j.log.Warn("ignoring a cursor of another source", "cursor", start.Source, "source", "journald")
		j.last = ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	j.stop = cancel
	go j.supervise(ctx)
	return j, nil
}

// journalArgs builds journalctl's arguments for a run that resumes after
// cursor (or starts per the options when cursor is "").
func journalArgs(o JournalOptions, cursor string) []string {
	// --all: without it json output replaces fields over 4096 bytes with
	// null (journalctl(1), --output=json).
	args := []string{"--follow", "--output=json", "--all"}
	switch {
	case cursor != "":
		args = append(args, "--after-cursor="+cursor)
	case !o.Since.IsZero():
		// systemd.time(7): "@" and seconds since the epoch.
		args = append(args, "--since=@"+strconv.FormatInt(o.Since.Unix(), 10), "--no-tail")
	case o.Start == StartBegin:
		args = append(args, "--no-tail")
	default:
		args = append(args, "--lines=0")
	}
	for _, u := range o.Units {
		args = append(args, "--unit="+u)
	}
	for _, t := range o.Identifiers {
		args = append(args, "--identifier="+t)
	}
	args = append(args, o.Matches...)
	if len(o.Units)+len(o.Identifiers)+len(o.Matches) == 0 {
		args = append(args, "SYSLOG_FACILITY=2")
	}
	return args
}

func (j *JournalSource) supervise(ctx context.Context) {
	defer close(j.done)
	defer close(j.lines)
	failures := 0
	for {
		n, err := j.run(ctx)
		if ctx.Err() != nil {
			return
		}
		var se startError
		if errors.As(err, &se) {
			j.fail(err) // no such program: retrying will not help
			return
		}
		if n > 0 {
			failures = 0
		} else {
			failures++
		}
		if failures >= j.opts.MaxFailures {
			j.fail(fmt.Errorf("follow journal: %d runs in a row without a record, giving up: %w", failures, err))
			return
		}
		wait := j.opts.MinBackoff << failures
		if wait > j.opts.MaxBackoff || wait <= 0 {
			wait = j.opts.MaxBackoff
		}
		j.log.Warn("journalctl exited; restarting", "err", err, "records", n, "after_cursor", j.last, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (j *JournalSource) fail(err error) {
	j.mu.Lock()
	j.err = err
	j.mu.Unlock()
}

type startError struct{ error }

func (e startError) Unwrap() error { return e.error }

// run runs journalctl once, passing its records on until it exits, and
// returns how many it passed and why it ended, with the end of its stderr.
func (j *JournalSource) run(ctx context.Context) (int, error) {
	cmd := exec.CommandContext(ctx, j.bin, journalArgs(j.opts, j.last)...)
	setProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, startError{fmt.Errorf("start journalctl: %w", err)}
	}
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, startError{fmt.Errorf("start journalctl: %w", err)}
	}
	n, rerr := j.records(ctx, stdout)
	if rerr != nil {
		// Stop the child so that Wait does not hang on a full pipe.
		killProcessGroup(cmd)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return n, ctx.Err()
	}
	msg := strings.TrimSpace(stderr.String())
	switch {
	case rerr != nil:
		err = fmt.Errorf("read journalctl output: %w", rerr)
	case werr != nil:
		err = fmt.Errorf("journalctl exited: %w", werr)
	default:
		err = errors.New("journalctl exited")
	}
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	return n, err
}

// records reads one JSON record per line and hands each on.
func (j *JournalSource) records(ctx context.Context, stdout io.Reader) (int, error) {
	br := bufio.NewReaderSize(stdout, readChunk)
	var (
		n    int
		long []byte // a record longer than the reader's buffer, so far
		skip bool   // the current record is over MaxLine
	)
	for {
		frag, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skip {
				if len(long)+len(frag) > j.opts.MaxLine {
					j.log.Warn("journal record too long; skipped", "max", j.opts.MaxLine, "after_cursor", j.last)
					skip, long = true, nil
				} else {
					long = append(long, frag...)
				}
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil // a record cut by the child's exit is not a record
			}
			return n, err
		}
		rec := frag
		if long != nil {
			rec = append(long, frag...)
		}
		drop := skip || len(rec)-1 > j.opts.MaxLine
		if len(rec)-1 > j.opts.MaxLine && !skip {
			j.log.Warn("journal record too long; skipped", "max", j.opts.MaxLine, "after_cursor", j.last)
		}
		long, skip = nil, false
		if drop {
			continue
		}
		rec = bytes.TrimRight(rec, "\r\n")
		if len(rec) == 0 {
			continue
		}
		c := journalCursor(rec)
		if c == "" {
			j.log.Warn("journal record without __CURSOR; passed on with the previous cursor", "after_cursor", j.last)
		} else {
			j.last = c
		}
		l := Line{Text: string(rec), Cursor: event.Cursor{Source: "journald", Journal: j.last}}
		select {
		case j.lines <- l:
			n++
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// journalCursor returns the __CURSOR of one JSON record. journalctl writes
// it as a plain string early in the record, so a search finds it without
// decoding the whole record; anything unusual takes the full decoder.
func journalCursor(rec []byte) string {
	const key = `"__CURSOR":"`
	if i := bytes.Index(rec, []byte(key)); i >= 0 {
		v := rec[i+len(key):]
		if e := bytes.IndexByte(v, '"'); e >= 0 && bytes.IndexByte(v[:e], '\\') < 0 {
			return string(v[:e])
		}
	}
	var r struct {
		Cursor string `json:"__CURSOR"`
	}
	if json.Unmarshal(rec, &r) != nil {
		return ""
	}
	return r.Cursor
}

// Read implements Source. A journal never ends; Read returns an error only
// when journalctl cannot be run or keeps failing (see MaxFailures), with
// its stderr in the message.
func (j *JournalSource) Read(ctx context.Context, buf []Line, max int) ([]Line, error) {
	if max < 1 {
		max = 1
	}
	select {
	case l, ok := <-j.lines:
		if !ok {
			return buf, j.failure()
		}
		buf = append(buf, l)
	default:
		if err := ctx.Err(); err != nil {
			return buf, err
		}
		select {
		case l, ok := <-j.lines:
			if !ok {
				return buf, j.failure()
			}
			buf = append(buf, l)
		case <-ctx.Done():
			return buf, ctx.Err()
		}
	}
	for i := 1; i < max; i++ {
		select {
		case l, ok := <-j.lines:
			if !ok {
				return buf, nil // the failure comes with the next Read
			}
			buf = append(buf, l)
		default:
			return buf, nil
		}
	}
	return buf, nil
}

func (j *JournalSource) failure() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		return ErrClosed
	}
	return j.err
}

// Close kills journalctl and waits for it (at most a few seconds).
func (j *JournalSource) Close() error {
	j.stop()
	<-j.done
	return nil
}

// tailBuffer keeps the last bytes written to it: the end of a child's
// stderr is where the reason for its exit is.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBufferMax = 2048

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailBufferMax {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailBufferMax:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// JournalEnd returns the cursor of the journal's newest entry, by running
// `journalctl --lines=1 --output=json` once; ok is false when the journal
// has no entry this user may read. A first run with StartEnd stores it at
// once and then follows from it (--after-cursor), so that a crash before
// the first mail line cannot move the start past the lines written in
// between, as --lines=0 on the next start would. The entry need not match
// the source's filters: a cursor names a place in the journal, and
// --after-cursor with filters reads the matching entries after it
// (journalctl(1)).
func JournalEnd(ctx context.Context, journalctl string) (cur event.Cursor, ok bool, err error) {
	if journalctl == "" {
		journalctl = "journalctl"
	}
	cmd := exec.CommandContext(ctx, journalctl, "--quiet", "--no-pager", "--lines=1", "--output=json")
	setProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	var stderr tailBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return event.Cursor{}, false, fmt.Errorf("read the end of the journal: %s: %w", journalctl, err)
	}
	// One record is asked for; should there be more, the last is newest.
	var last string
	for _, rec := range bytes.Split(out, []byte("\n")) {
		if rec = bytes.TrimSpace(rec); len(rec) > 0 {
			if c := journalCursor(rec); c != "" {
				last = c
			}
		}
	}
	if last == "" {
		return event.Cursor{}, false, nil
	}
	return event.Cursor{Source: "journald", Journal: last}, true, nil
}
