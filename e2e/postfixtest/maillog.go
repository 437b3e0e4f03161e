package postfixtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// follower reads a growing log file line by line. Postfix's postlogd only
// appends, so an offset is enough; a trailing partial line is held back until
// its newline arrives.
type follower struct {
	path    string
	f       *os.File
	partial []byte
	buf     []byte
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

// next returns the complete lines appended since the previous call.
func (fl *follower) next() ([]string, error) {
	if fl.f == nil {
		f, err := os.Open(fl.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // postlogd creates it on the first record
		}
		if err != nil {
			return nil, fmt.Errorf("open maillog: %w", err)
		}
		fl.f = f
	}
	if fl.buf == nil {
		fl.buf = make([]byte, 64<<10)
	}
	var lines []string
	for {
		n, err := fl.f.Read(fl.buf)
		data := fl.buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				fl.partial = append(fl.partial, data...)
				break
			}
			line := append(fl.partial, data[:i]...)
			lines = append(lines, string(line))
			fl.partial = fl.partial[:0]
			data = data[i+1:]
		}
		if err == io.EOF || n == 0 {
			return lines, nil
		}
		if err != nil {
			return lines, fmt.Errorf("read maillog: %w", err)
		}
	}
}

// waitLine returns the first line of the log, from its beginning, for which
// pred is true, following the file as it grows until ctx ends. Scanning from
// the beginning means a line written before the call is never missed.
func waitLine(ctx context.Context, path string, pred func(string) bool) (string, error) {
	fl := &follower{path: path}
	defer fl.close()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		lines, err := fl.next()
		if err != nil {
			return "", err
		}
		for _, l := range lines {
			if pred(l) {
				return l, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for maillog line: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// readLines returns the complete lines of the log now.
func readLines(path string) ([]string, error) {
	fl := &follower{path: path}
	defer fl.close()
	return fl.next()
}

// Contains returns a predicate for WaitLog that is true for a line holding
// every one of subs.
func Contains(subs ...string) func(string) bool {
	return func(line string) bool {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				return false
			}
		}
		return true
	}
}

// Delivery matches a delivery agent's per-recipient line for queueID and
// recipient with the given status ("sent", "bounced", "deferred", ...):
// "QID: to=<rcpt>, ... status=S (...)" (POSTFIX-LOGS.md 3).
func Delivery(queueID, rcpt, status string) func(string) bool {
	return Contains(" "+queueID+": to=<"+rcpt+">,", " status="+status+" ")
}

// Removed matches qmgr's "QID: removed", the end of a queue file's life.
func Removed(queueID string) func(string) bool {
	return func(line string) bool { return strings.HasSuffix(line, " "+queueID+": removed") }
}

// Expired matches qmgr's message-level "QID: from=<s>, status=expired,
// returned to sender".
func Expired(queueID string) func(string) bool {
	return Contains(" "+queueID+": from=<", " status=expired, returned to sender")
}
