package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in the file as a string: Go syntax
// ("90s", "1h30m") or whole days, alone or in front of Go syntax ("7d",
// "1d12h"). Days are 24 hours; log time has no daylight-saving gaps to
// respect.
type Duration time.Duration

const day = 24 * time.Hour

// maxDays is the most days a time.Duration can hold.
const maxDays = int64(1<<63-1) / int64(day)

// ParseDuration parses the file syntax of a Duration.
func ParseDuration(s string) (Duration, error) {
	rest := s
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || s[:i][0] == '+' {
			return 0, durationError(s)
		}
		if n > maxDays {
			return 0, fmt.Errorf("invalid duration %q: too long", s)
		}
		days, rest = n, s[i+1:]
		if rest == "" {
			return Duration(time.Duration(days) * day), nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || (days > 0 && d < 0) {
		return 0, durationError(s)
	}
	total := time.Duration(days)*day + d
	if total < d { // overflowed
		return 0, fmt.Errorf("invalid duration %q: too long", s)
	}
	return Duration(total), nil
}

func durationError(s string) error {
	return fmt.Errorf(`invalid duration %q: want a number with a unit, such as "90s", "168h" or "7d"`, s)
}

// UnmarshalText implements encoding.TextUnmarshaler, which the TOML decoder
// calls for string values.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		return errors.New(`invalid duration "": want a number with a unit, such as "90s", "168h" or "7d"`)
	}
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText implements encoding.TextMarshaler with the syntax String
// returns.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}

// String formats d so that ParseDuration reads it back: whole days as "7d",
// anything else in Go syntax without zero units ("90m" becomes "1h30m",
// not "1h30m0s").
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	s := td.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
