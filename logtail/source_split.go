package logtail

import (
	"bytes"
	"io"
)

// DefaultMaxLine bounds the bytes a source keeps of one line. Postfix
// itself never writes more than 2000 bytes per record (MSG_SYSLOG_RECLEN
// in msg_syslog.c, MSG_LOGGER_RECLEN for postlogd), so anything longer is
// not Postfix as written: its head is kept (Line.Cut) and the rest is
// skipped rather than buffered without bound. The limit is far above
// 2000 because a journald JSON record spells the same text out with
// escapes and a dozen more fields.
const DefaultMaxLine = 1 << 20

// readChunk is how much a source asks the kernel for at a time.
const readChunk = 64 << 10

// lineSplitter turns a byte stream into lines while counting the bytes it
// has handed out, so that every line can carry the offset just after it.
// It holds at most max+readChunk bytes, whatever the input.
type lineSplitter struct {
	buf  []byte // buf[r:w] is read but not yet handed out
	r, w int
	off  int64 // stream offset of buf[r]: the bytes handed out or dropped so far
	max  int
	// head is the first max bytes of an over-long line whose end has not
	// been read yet; skipping is set while the rest is being dropped.
	// The head is handed out once the line's newline arrives, so that
	// its offset is a line end like every other line's: a restart never
	// resumes inside the line and takes its tail for a line.
	head     string
	skipping bool
}

func newLineSplitter(max int) lineSplitter {
	if max <= 0 {
		max = DefaultMaxLine
	}
	return lineSplitter{max: max}
}

// reset forgets the held bytes and restarts the count at off.
func (s *lineSplitter) reset(off int64) {
	s.r, s.w, s.off = 0, 0, off
	s.head, s.skipping = "", false
}

// held is the number of bytes read but not yet handed out.
func (s *lineSplitter) held() int { return s.w - s.r }

// readPos is the stream offset just after the last byte read.
func (s *lineSplitter) readPos() int64 { return s.off + int64(s.held()) }

// fill reads once from rd. Callers extract with next until it reports
// nothing before filling again; that keeps the held bytes at or below max,
// so there is always room to read.
func (s *lineSplitter) fill(rd io.Reader) (int, error) {
	if s.r > 0 {
		n := copy(s.buf, s.buf[s.r:s.w])
		s.r, s.w = 0, n
	}
	if s.w == len(s.buf) {
		size := 2 * len(s.buf)
		if size < readChunk {
			size = readChunk
		}
		if size > s.max+readChunk {
			size = s.max + readChunk
		}
		nb := make([]byte, size)
		copy(nb, s.buf[:s.w])
		s.buf = nb
	}
	n, err := rd.Read(s.buf[s.w:])
	s.w += n
	return n, err
}

// next returns the next whole line without its "\n" (or "\r\n"). A line
// longer than max comes as its first max bytes with cut set, once its end
// has been read; the rest of it is dropped. A line of exactly max bytes
// comes whole.
func (s *lineSplitter) next() (text string, cut, ok bool) {
	data := s.buf[s.r:s.w]
	if s.skipping {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.drop(len(data))
			return "", false, false
		}
		s.drop(i + 1)
		text, s.head, s.skipping = s.head, "", false
		return text, true, true
	}
	scan := data
	if len(scan) > s.max+1 {
		scan = scan[:s.max+1]
	}
	if i := bytes.IndexByte(scan, '\n'); i >= 0 {
		line := data[:i]
		if i > 0 && line[i-1] == '\r' {
			line = line[:i-1]
		}
		text := string(line)
		s.drop(i + 1)
		return text, false, true
	}
	if len(data) > s.max {
		s.head, s.skipping = string(data[:s.max]), true
		s.drop(s.max)
		return s.next()
	}
	return "", false, false
}

// rest hands out the held bytes as a final line: the input has ended
// without a newline after them.
func (s *lineSplitter) rest() (text string, cut, ok bool) {
	if s.skipping {
		s.drop(s.held())
		text, s.head, s.skipping = s.head, "", false
		return text, true, true
	}
	if s.held() == 0 {
		return "", false, false
	}
	line := s.buf[s.r:s.w]
	if line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	text = string(line)
	s.drop(s.held())
	return text, false, true
}

func (s *lineSplitter) drop(n int) {
	s.r += n
	s.off += int64(n)
	if s.r == s.w {
		s.r, s.w = 0, 0
	}
}
