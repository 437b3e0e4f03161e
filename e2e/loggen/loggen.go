// Package loggen makes large maillogs for tests and benchmarks by replaying
// a real Postfix log many times over, with fresh queue IDs and advancing
// time, so that every copy is a distinct set of messages to the correlator.
package loggen

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/posthorn/posthorn/logtail"
)

// stampLayout is the prefix of syslog and postlogd (maillog_file) lines.
const stampLayout = "Jan _2 15:04:05"

// Template is a parsed log ready to replay.
type Template struct {
	lines []tline
	span  time.Duration // from the first to the last stamp, plus a second
	ids   []string      // queue IDs seen, longest first (so replacement never hits a prefix)
}

type tline struct {
	at   time.Time // year-less stamp read in year 2001 (not a leap year... any fixed year works)
	rest string    // the line after its stamp
}

// New reads a template log. Every line must start with a syslog stamp
// ("Nov  7 10:00:00" or "Nov 07 10:00:00").
func New(text string) (*Template, error) {
	t := &Template{}
	seen := map[string]bool{}
	for i, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if len(l) < len(stampLayout) {
			return nil, fmt.Errorf("template line %d: too short for a syslog stamp", i+1)
		}
		at, err := time.Parse(stampLayout, strings.Replace(l[:len(stampLayout)], " 0", "  ", 1))
		if err != nil {
			return nil, fmt.Errorf("template line %d: %w", i+1, err)
		}
		t.lines = append(t.lines, tline{at: at, rest: l[len(stampLayout):]})
		if rec, err := logtail.Parse(l); err == nil {
			for _, id := range []string{rec.QueueID, rec.HandOff, rec.NewQueue} {
				if id != "" && !seen[id] {
					seen[id] = true
					t.ids = append(t.ids, id)
				}
			}
		}
	}
	if len(t.lines) == 0 {
		return nil, fmt.Errorf("template: no lines")
	}
	first, last := t.lines[0].at, t.lines[0].at
	for _, l := range t.lines {
		if l.at.Before(first) {
			first = l.at
		}
		if l.at.After(last) {
			last = l.at
		}
	}
	t.span = last.Sub(first) + time.Second
	// Longest first: an ID that is a prefix of another must not be replaced inside it.
	for i := range t.ids {
		for j := i + 1; j < len(t.ids); j++ {
			if len(t.ids[j]) > len(t.ids[i]) {
				t.ids[i], t.ids[j] = t.ids[j], t.ids[i]
			}
		}
	}
	return t, nil
}

// Lines is the number of lines in one copy of the template.
func (t *Template) Lines() int { return len(t.lines) }

// Write writes lines of copies of the template until n lines are written.
// Copy k is shifted k spans later and its queue IDs are replaced by fresh
// ones of the same kind (short hex IDs by hex, long IDs by long-ID letters).
func (t *Template) Write(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	repl := make([]string, 0, 2*len(t.ids))
	var seq uint64
	for k := 0; n > 0; k++ {
		repl = repl[:0]
		for _, id := range t.ids {
			seq++
			repl = append(repl, id, freshID(id, seq))
		}
		r := strings.NewReplacer(repl...)
		shift := time.Duration(k) * t.span
		for _, l := range t.lines {
			if n == 0 {
				break
			}
			bw.WriteString(l.at.Add(shift).Format(stampLayout))
			r.WriteString(bw, l.rest)
			bw.WriteByte('\n')
			n--
		}
	}
	return bw.Flush()
}

// freshID makes a queue ID that cannot collide with the template's own
// (they are never 12 hex digits starting with F0, nor contain "zZ").
func freshID(like string, seq uint64) string {
	if strings.ContainsRune(like, 'z') {
		return fmt.Sprintf("4ph%07XzZ%X", seq&0xfffffff, seq)
	}
	return fmt.Sprintf("F0%010X", seq)
}
