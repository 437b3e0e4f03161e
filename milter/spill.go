package milter

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spill holds bytes in memory up to a limit and in a temporary file beyond
// it, so a large message or attachment never sits in memory whole. It is
// written once, then read any number of times from the start, then closed.
type spill struct {
	dir   string
	limit int
	mem   []byte
	f     *os.File
	n     int64
}

func newSpill(dir string, limit int) *spill { return &spill{dir: dir, limit: limit} }

// Write appends p, moving to a file when the memory limit would be passed.
func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && len(s.mem)+len(p) <= s.limit {
		s.mem = append(s.mem, p...)
		s.n += int64(len(p))
		return len(p), nil
	}
	if s.f == nil {
		// os.CreateTemp makes the file 0600: it holds someone's mail.
		f, err := os.CreateTemp(s.dir, "posthorn-spill-")
		if err != nil {
			return 0, fmt.Errorf("create spill file: %w", err)
		}
		// Unlinked at once: the data lives as long as the descriptor, and
		// a crash leaves nothing behind.
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return 0, fmt.Errorf("create spill file: %w", err)
		}
		if _, err := f.Write(s.mem); err != nil {
			f.Close()
			return 0, fmt.Errorf("write spill file: %w", err)
		}
		s.f, s.mem = f, nil
	}
	n, err := s.f.Write(p)
	s.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write spill file: %w", err)
	}
	return n, nil
}

// Len is the number of bytes written.
func (s *spill) Len() int64 { return s.n }

// Reader reads everything written, from the start. Readers are independent.
func (s *spill) Reader() io.Reader {
	if s.f == nil {
		return bytes.NewReader(s.mem)
	}
	return io.NewSectionReader(s.f, 0, s.n)
}

// Close releases the memory or the file.
func (s *spill) Close() error {
	s.mem = nil
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}
