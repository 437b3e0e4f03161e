package settings

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as text: Go syntax ("36h", "90m"),
// whole days alone or in front of Go syntax ("3d", "1d12h") — the syntax of
// the daemon's config file, so the two read alike — or a bare number of
// seconds. A day is 24 hours.
type Duration time.Duration

const day = 24 * time.Hour

// ParseDuration parses the text form of a Duration.
func ParseDuration(s string) (Duration, error) {
	bad := fmt.Errorf(`parse duration %q: want a number with a unit, such as "90m", "36h" or "3d"`, s)
	if s == "" {
		return 0, bad
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1e9 { // far from overflow; no setting is decades long
			return 0, bad
		}
		return Duration(time.Duration(n) * time.Second), nil
	}
	var days int64
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		// The bound keeps the multiplication below far from overflow; no
		// setting needs more than a few days.
		if err != nil || n < 0 || n > 100000 || strings.HasPrefix(s, "+") {
			return 0, bad
		}
		days, rest = n, s[i+1:]
		if rest == "" {
			return Duration(time.Duration(days) * day), nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || d < 0 {
		return 0, bad
	}
	return Duration(time.Duration(days)*day + d), nil
}

// String writes whole days as "Nd", whole hours as "Nh", and anything else
// in Go syntax, so an exported setting reads as it was typed.
func (d Duration) String() string {
	v := time.Duration(d)
	switch {
	case v > 0 && v%day == 0:
		return strconv.FormatInt(int64(v/day), 10) + "d"
	case v > 0 && v%time.Hour == 0:
		return strconv.FormatInt(int64(v/time.Hour), 10) + "h"
	}
	return v.String()
}

// MarshalText implements encoding.TextMarshaler (YAML and JSON use it).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
