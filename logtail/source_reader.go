package logtail

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/posthorn/posthorn/event"
)

// Stdin is the input name that means standard input.
const Stdin = "-"

// ReaderOptions tune a ReaderSource.
type ReaderOptions struct {
	// MaxLine bounds one line (default DefaultMaxLine); of a longer line
	// only the first MaxLine bytes come, marked Line.Cut.
	MaxLine int
	// Stdin is what the input "-" reads (default os.Stdin).
	Stdin io.Reader
}

// ReaderSource reads files and standard input once, to their end, for
// `posthorn parse`: rotated logs, archives, a pipe. Gzip input is
// recognised by its magic bytes (RFC 1952 §2.3.1: 0x1f 0x8b), so
// mail.log.2.gz and a renamed or piped archive both work. Offsets of gzip
// input count decompressed bytes.
type ReaderSource struct {
	inputs []string
	stdin  io.Reader
	max    int
	next   int // index of the next input to open
	cur    *readerInput
	err    error // sticky: the source stops at the first failure
}

type readerInput struct {
	name   string
	source string
	id     fileID
	file   *os.File // nil for stdin
	r      io.Reader
	gzip   bool
	sp     lineSplitter
}

var (
	errGzipHeader    = errors.New("not a gzip file or truncated: its gzip header cannot be read")
	errGzipTruncated = errors.New("gzip data truncated: the lines up to the cut were read")
)

// NewReaderSource checks the inputs (no paths: standard input) so that a
// typo fails before anything is read; they are opened one after another.
func NewReaderSource(paths []string, opts ReaderOptions) (*ReaderSource, error) {
	if len(paths) == 0 {
		paths = []string{Stdin}
	}
	for _, p := range paths {
		if p == Stdin {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("read log %s: is a directory", p)
		}
	}
	s := &ReaderSource{inputs: paths, stdin: opts.Stdin, max: opts.MaxLine}
	if s.stdin == nil {
		s.stdin = os.Stdin
	}
	return s, nil
}

// Read implements Source: it returns io.EOF after the last line of the
// last input, possibly together with lines. A file that ends without a
// newline still yields its last line. The context is checked between
// reads; a read from a pipe that blocks is not interrupted.
func (s *ReaderSource) Read(ctx context.Context, buf []Line, max int) ([]Line, error) {
	if max < 1 {
		max = 1
	}
	limit := len(buf) + max
	for len(buf) < limit {
		if s.err != nil {
			return buf, s.err
		}
		if err := ctx.Err(); err != nil {
			return buf, err
		}
		if s.cur == nil {
			if s.next >= len(s.inputs) {
				return buf, io.EOF
			}
			in, err := s.open(s.inputs[s.next])
			s.next++
			if err != nil {
				s.err = err
				return buf, err
			}
			s.cur = in
		}
		in := s.cur
		if text, cut, ok := in.sp.next(); ok {
			buf = append(buf, in.line(text, cut))
			continue
		}
		n, err := in.sp.fill(in.r)
		switch {
		case n > 0 || err == nil:
		case errors.Is(err, io.EOF):
			if text, cut, ok := in.sp.rest(); ok {
				buf = append(buf, in.line(text, cut))
			}
			s.closeCur()
		default:
			if in.gzip && errors.Is(err, io.ErrUnexpectedEOF) {
				err = errGzipTruncated
			}
			s.err = fmt.Errorf("read log %s: %w", in.name, err)
			s.closeCur()
		}
	}
	return buf, nil
}

func (s *ReaderSource) open(name string) (*readerInput, error) {
	in := &readerInput{name: name, sp: newLineSplitter(s.max)}
	var r io.Reader
	if name == Stdin {
		in.name, in.source, r = "standard input", "stdin", s.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read log: %w", err)
		}
		if fi.IsDir() { // replaced since NewReaderSource looked
			f.Close()
			return nil, fmt.Errorf("read log %s: is a directory", name)
		}
		in.file, in.id, in.source, r = f, identity(fi), "file:"+filepath.Clean(name), f
	}
	br := bufio.NewReaderSize(r, readChunk)
	in.r = br
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		in.close()
		return nil, fmt.Errorf("read log %s: %w", in.name, err)
	}
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			in.close()
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, gzip.ErrHeader) {
				// The magic bytes promised gzip; "unexpected EOF" would
				// not tell the reader which file part is wrong.
				err = errGzipHeader
			}
			return nil, fmt.Errorf("read log %s: %w", in.name, err)
		}
		in.r, in.gzip = zr, true
	}
	return in, nil
}

func (s *ReaderSource) closeCur() {
	if s.cur != nil {
		s.cur.close()
		s.cur = nil
	}
}

func (in *readerInput) close() {
	if in.file != nil {
		in.file.Close()
	}
}

func (in *readerInput) line(text string, cut bool) Line {
	return Line{Text: text, Cut: cut, Cursor: event.Cursor{Source: in.source, Dev: in.id.dev, Inode: in.id.ino, Offset: in.sp.off}}
}

// Close releases the open file; Read returns ErrClosed afterwards.
func (s *ReaderSource) Close() error {
	s.closeCur()
	s.err = ErrClosed
	return nil
}
