package logtail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/event"
)

// Start says where a source begins when it has no usable cursor.
type Start string

const (
	// StartEnd reads only what is written from now on (the default): a
	// first start does not post events for old mail.
	StartEnd Start = "end"
	// StartBegin reads everything the file or the journal still holds.
	StartBegin Start = "begin"
)

func (s Start) check() (Start, error) {
	switch s {
	case "":
		return StartEnd, nil
	case StartEnd, StartBegin:
		return s, nil
	}
	return "", fmt.Errorf("check start: %q is neither %q nor %q", string(s), StartBegin, StartEnd)
}

// DefaultPoll is how often a followed file is looked at when no change
// notification arrives.
const DefaultPoll = 250 * time.Millisecond

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("read log: source closed")

// FileOptions tune a FileSource. The zero value is ready to use.
type FileOptions struct {
	// Start applies when the cursor is empty or belongs to another source.
	Start Start
	// MaxLine bounds one line (default DefaultMaxLine); of a longer line
	// only the first MaxLine bytes come, marked Line.Cut.
	MaxLine int
	// Poll is how often the file is checked without a notification
	// (default DefaultPoll; negative: never, only Wake drives the source).
	Poll time.Duration
	// Wake, when set, replaces inotify notifications: every receive makes
	// a blocked Read look at the file again. Tests use it to drive the
	// follower without timing.
	Wake <-chan struct{}
	// Logger gets rotation and truncation notices (default: discarded).
	Logger *slog.Logger
}

// FileSource follows one log file by name across rename rotation and
// copytruncate, and resumes exactly at a committed cursor, also when the
// file was rotated while Posthorn was stopped.
//
// Rotation rule: when the path names another file than the open one, the
// open descriptor is read to its end before the new file is opened. The
// switch waits until the new file is non-empty: until then the writer
// (postlogd, rsyslog) may still be appending to the old file, because
// `postfix logrotate` and logrotate's create mode rename first and make
// the writer reopen later. Once the writer has written to the new file it
// no longer writes to the old one, so one more read to the old file's end
// sees all of it. A partial last line of the old file comes out as a line
// of its own then: nothing will ever complete it.
//
// copytruncate is detected by size (the file is shorter than what was read)
// and reading restarts at 0. Lines written between the copy and the
// truncation, and lines written after it before the size passes the old
// offset again, are beyond any reader's reach; rotate by rename.
type FileSource struct {
	path   string // cleaned
	source string // "file:" + path
	poll   time.Duration
	log    *slog.Logger
	wake   <-chan struct{}
	note   *notifier

	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	isClosed bool
	f        *os.File // nil until the path exists
	name     string   // the name f was opened under, for messages
	id       fileID
	sp       lineSplitter
	rotating bool   // path names a newer non-empty file: finish f, then switch
	lastWarn string // last repeated problem logged, so a poll loop logs it once
}

// NewFileSource opens path and positions it from start (a cursor this
// source produced earlier) or, without one, from opts.Start. A missing file
// is not an error: the source waits for it and reads it from the start.
func NewFileSource(path string, start event.Cursor, opts FileOptions) (*FileSource, error) {
	if path == "" {
		return nil, errors.New("follow log: no path")
	}
	st, err := opts.Start.check()
	if err != nil {
		return nil, err
	}
	s := &FileSource{
		path:   filepath.Clean(path),
		poll:   opts.Poll,
		log:    opts.Logger,
		wake:   opts.Wake,
		closed: make(chan struct{}),
		sp:     newLineSplitter(opts.MaxLine),
	}
	s.source = "file:" + s.path
	if s.poll == 0 {
		s.poll = DefaultPoll
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.begin(start, st); err != nil {
		return nil, err
	}
	if s.wake == nil {
		w := make(chan struct{}, 1)
		s.wake = w
		s.note = startNotifier(s.path, w, s.log)
	}
	return s, nil
}

// begin resolves the starting position.
func (s *FileSource) begin(c event.Cursor, st Start) error {
	f, fi, err := openRegular(s.path)
	if err != nil {
		return err
	}
	if f == nil {
		// Once, not at every poll: a Postfix that has not logged yet is
		// normal; a wrong path is not, and would otherwise go unnoticed.
		// openLate says when the file appears.
		s.log.Warn("log file does not exist yet; waiting for it (is maillog.path the file Postfix or syslog writes?)", "path", s.path)
	}
	if s.ownCursor(c) {
		cid := fileID{dev: c.Dev, ino: c.Inode}
		if f != nil && identity(fi) == cid {
			off := c.Offset
			if fi.Size() < off {
				s.log.Warn("log file is shorter than the cursor: truncated while stopped (copytruncate?); reading it from the start",
					"path", s.path, "offset", off, "size", fi.Size())
				return s.use(f, fi, s.path, 0)
			}
			if s.plausible(f, off) {
				return s.use(f, fi, s.path, off)
			}
			s.log.Warn("log file has the cursor's inode but no line end at its offset: the inode was reused by a new file",
				"path", s.path, "offset", off)
		}
		// The path names another file: it was rotated while we were
		// stopped. The rest of the old file comes first.
		if old, ofi, name := s.findRotated(cid, c.Offset); old != nil {
			off := c.Offset
			if ofi.Size() < off {
				s.log.Warn("rotated log file is shorter than the cursor; reading it from the start",
					"path", name, "offset", off, "size", ofi.Size())
				off = 0
			}
			s.log.Info("log was rotated while stopped; finishing the rotated file first", "path", name, "offset", off)
			if f != nil {
				f.Close()
			}
			return s.use(old, ofi, name, off)
		}
		s.log.Warn("log was rotated while stopped and the rotated file was not found uncompressed beside it; lines written to it after the cursor are lost",
			"path", s.path, "dev", c.Dev, "inode", c.Inode, "offset", c.Offset)
		if f == nil {
			return nil
		}
		return s.use(f, fi, s.path, 0)
	}
	if c.Source != "" {
		s.log.Warn("ignoring a cursor of another source", "cursor", c.Source, "source", s.source, "start", string(st))
	}
	if f == nil {
		return nil // everything in it will be new when it appears
	}
	if st == StartBegin {
		return s.use(f, fi, s.path, 0)
	}
	// The end may fall inside a line the writer has not finished: start
	// at that line, which is completed from now on, so that every cursor
	// stays at a line end.
	return s.use(f, fi, s.path, s.lastLineStart(f, fi.Size()))
}

// lastLineStart is the offset just after the last newline before end,
// looking back at most MaxLine bytes (beyond that, end itself).
func (s *FileSource) lastLineStart(f *os.File, end int64) int64 {
	n := min(end, int64(s.sp.max))
	b := make([]byte, n)
	if _, err := f.ReadAt(b, end-n); err != nil {
		return end
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return end - n + int64(i) + 1
	}
	if n == end {
		return 0
	}
	return end
}

// plausible reports whether off can be a cursor this source handed out in
// f: the byte before it is a newline, or no newline is in the MaxLine
// bytes before it (a piece of a cut line). Inode numbers are reused once a
// file is deleted: after rotation and compression a cursor's (dev, inode)
// can name a new, unrelated file, and this check tells most of those
// apart. A cursor at 0 needs no check.
func (s *FileSource) plausible(f *os.File, off int64) bool {
	if off == 0 {
		return true
	}
	var b [1]byte
	if _, err := f.ReadAt(b[:], off-1); err != nil {
		return false
	}
	if b[0] == '\n' {
		return true
	}
	n := min(off, int64(s.sp.max))
	back := make([]byte, n)
	if _, err := f.ReadAt(back, off-n); err != nil {
		return false
	}
	return n == int64(s.sp.max) && bytes.IndexByte(back, '\n') < 0
}

// ownCursor reports whether c was produced by a source following this
// path and names a file.
func (s *FileSource) ownCursor(c event.Cursor) bool {
	p, ok := strings.CutPrefix(c.Source, "file:")
	if !ok || p == "" || filepath.Clean(p) != s.path {
		return false
	}
	return c.Dev != 0 || c.Inode != 0
}

func (s *FileSource) use(f *os.File, fi os.FileInfo, name string, off int64) error {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("seek log: %w", err)
	}
	s.f, s.name, s.id = f, name, identity(fi)
	s.sp.reset(off)
	return nil
}

// openRegular opens a log file; a missing file is (nil, nil, nil). It
// looks before opening because opening a FIFO blocks until a writer comes.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	if err := checkRegular(path, fi); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	if fi, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	if err := checkRegular(path, fi); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func checkRegular(path string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		return fmt.Errorf("open log %s: is a directory", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("open log %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	return nil
}

// compressedSuffixes name rotated files that are no longer plain text.
// Compression writes a new file, so the cursor's inode is not among them.
var compressedSuffixes = []string{".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".lz", ".Z", ".zip", ".br"}

// rotatedName reports whether name looks like a rotated copy of base:
// base, then ".", "-" or "_", then anything (mail.log.1, maillog-20261127,
// postfix.log.20261127-010000 from maillog_file_rotate_suffix), not
// compressed.
func rotatedName(base, name string) bool {
	rest, ok := strings.CutPrefix(name, base)
	if !ok || len(rest) < 2 || !strings.ContainsRune(".-_", rune(rest[0])) {
		return false
	}
	for _, suf := range compressedSuffixes {
		if strings.HasSuffix(rest, suf) {
			return false
		}
	}
	return true
}

// findRotated looks for the file with identity id among the rotated
// siblings of the path, with a line end at off.
func (s *FileSource) findRotated(id fileID, off int64) (*os.File, os.FileInfo, string) {
	dir, base := filepath.Dir(s.path), filepath.Base(s.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("cannot list the log directory to find the rotated file", "dir", dir, "err", err)
		return nil, nil, ""
	}
	for _, e := range ents {
		if !rotatedName(base, e.Name()) {
			continue
		}
		name := filepath.Join(dir, e.Name())
		fi, err := os.Stat(name)
		if err != nil || identity(fi) != id {
			continue
		}
		f, fi, err := openRegular(name)
		if err != nil || f == nil {
			continue
		}
		// A cursor at the very end of a rotated file may follow a last
		// line that had no newline; there is nothing left to read anyway.
		if identity(fi) != id || (fi.Size() > off && !s.plausible(f, off)) {
			f.Close() // renamed again since the stat, or a reused inode
			continue
		}
		return f, fi, name
	}
	return nil, nil, ""
}

// Read implements Source. It returns the lines available now; with none it
// waits for a wake-up or the poll timer. When ctx is already done it still
// returns what is available without waiting, then ctx.Err().
func (s *FileSource) Read(ctx context.Context, buf []Line, max int) ([]Line, error) {
	if max < 1 {
		max = 1
	}
	n0 := len(buf)
	limit := n0 + max
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.isClosed {
			s.mu.Unlock()
			return buf, ErrClosed
		}
		var err error
		buf, err = s.step(buf, limit)
		s.mu.Unlock()
		if err != nil || len(buf) > n0 {
			return buf, err
		}
		if err := ctx.Err(); err != nil {
			return buf, err
		}
		if s.note != nil {
			s.note.arm() // wake this wait at the next change
		}
		var tick <-chan time.Time
		if s.poll > 0 {
			if timer == nil {
				timer = time.NewTimer(s.poll)
			} else {
				timer.Reset(s.poll)
			}
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return buf, ctx.Err()
		case <-s.closed:
			return buf, ErrClosed
		case <-s.wake:
		case <-tick:
		}
	}
}

// step does the work that needs no waiting: read what is there, and at
// the end of the open file look for truncation and rotation.
func (s *FileSource) step(buf []Line, limit int) ([]Line, error) {
	if s.f == nil && !s.openLate() {
		return buf, nil
	}
	for len(buf) < limit {
		if text, cut, ok := s.sp.next(); ok {
			buf = append(buf, s.line(text, cut))
			continue
		}
		n, err := s.sp.fill(s.f)
		if n > 0 {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return buf, fmt.Errorf("read log: %w", err)
		}
		more, err := s.atEOF(&buf)
		if err != nil || !more {
			return buf, err
		}
	}
	return buf, nil
}

// openLate opens the path once it exists, from its start.
func (s *FileSource) openLate() bool {
	f, fi, err := openRegular(s.path)
	if err != nil {
		s.warnOnce("cannot open the log file; will retry", err)
		return false
	}
	if f == nil {
		return false
	}
	if err := s.use(f, fi, s.path, 0); err != nil {
		s.warnOnce("cannot open the log file; will retry", err)
		return false
	}
	s.lastWarn = ""
	s.log.Info("log file appeared", "path", s.path)
	return true
}

// atEOF is called when the open file has nothing more to read. It returns
// true when reading should go on (after a truncation or a switch).
func (s *FileSource) atEOF(buf *[]Line) (bool, error) {
	fi, err := s.f.Stat()
	if err != nil {
		return false, fmt.Errorf("stat log: %w", err)
	}
	if pos := s.sp.readPos(); fi.Size() < pos {
		s.log.Warn("log file truncated (copytruncate?); reading it again from the start",
			"path", s.name, "offset", pos, "size", fi.Size(), "partial_bytes_dropped", s.sp.held())
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			return false, fmt.Errorf("seek log: %w", err)
		}
		s.sp.reset(0)
		return true, nil
	}
	if !s.rotating {
		pfi, err := os.Stat(s.path)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				s.warnOnce("cannot stat the log path; staying on the open file", err)
			}
			return false, nil
		}
		if identity(pfi) == s.id || pfi.Size() == 0 {
			return false, nil
		}
		// Read the old file once more: what the writer appended before
		// moving to the new file is there by now.
		s.rotating = true
		return true, nil
	}
	nf, nfi, err := openRegular(s.path)
	if err != nil {
		s.warnOnce("cannot open the new log file; staying on the old one", err)
		return false, nil
	}
	s.rotating = false
	if nf == nil {
		return false, nil // gone again; look next time
	}
	if identity(nfi) == s.id {
		nf.Close()
		return false, nil
	}
	if text, cut, ok := s.sp.rest(); ok {
		*buf = append(*buf, s.line(text, cut))
	}
	s.log.Info("log file rotated; following the new file", "path", s.path, "old", s.name, "old_offset", s.sp.off)
	s.f.Close()
	s.lastWarn = ""
	if err := s.use(nf, nfi, s.path, 0); err != nil {
		s.f = nil
		return false, err
	}
	return true, nil
}

func (s *FileSource) warnOnce(msg string, err error) {
	if e := err.Error(); e != s.lastWarn {
		s.lastWarn = e
		s.log.Warn(msg, "path", s.path, "err", err)
	}
}

func (s *FileSource) line(text string, cut bool) Line {
	return Line{Text: text, Cut: cut, Cursor: s.cursor()}
}

func (s *FileSource) cursor() event.Cursor {
	return event.Cursor{Source: s.source, Dev: s.id.dev, Inode: s.id.ino, Offset: s.sp.off}
}

// Cursor is the position just after the last line handed out (or the
// starting position before the first). Committing it before any line has
// come makes a restart with StartEnd resume here rather than at the then
// end of the file. It is the zero Cursor while the file does not exist.
func (s *FileSource) Cursor() event.Cursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return event.Cursor{}
	}
	return s.cursor()
}

// Close stops following and makes a blocked Read return ErrClosed.
func (s *FileSource) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.note != nil {
			s.note.stop()
		}
		s.mu.Lock()
		s.isClosed = true
		if s.f != nil {
			err = s.f.Close()
			s.f = nil
		}
		s.mu.Unlock()
	})
	return err
}
