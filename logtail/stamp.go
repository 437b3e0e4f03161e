package logtail

import (
	"time"
)

// Resolver turns log Stamps into times. Syslog (RFC 3164) and postlogd
// stamps carry neither year nor zone, so it keeps the year it inferred and
// rolls it over at New Year (POSTFIX-LOGS.md pitfall 4: "year = now" puts
// Dec 31 lines read in January into the future).
type Resolver struct {
	loc   *time.Location
	ref   time.Time // when the newest line was written (file mtime or now)
	year  int       // inferred year of year-less stamps; 0 until the first one
	last  time.Time // newest year-less time resolved so far
	zones map[int]*time.Location
}

// rollover is how far a year-less stamp may run backwards before we take it
// for the next year. Half a year separates "a line slightly out of order"
// from "Dec 31 → Jan 1" with a wide margin either way.
const rollover = 183 * 24 * time.Hour

// NewResolver returns a Resolver that reads zone-less stamps in loc (nil
// means time.Local). ref is the time the log was last written; the first
// year-less stamp gets ref's year unless that would put it more than a day
// after ref. year, if not zero, fixes the year of the first stamp instead.
func NewResolver(loc *time.Location, ref time.Time, year int) *Resolver {
	if loc == nil {
		loc = time.Local
	}
	return &Resolver{loc: loc, ref: ref, year: year, zones: map[int]*time.Location{}}
}

// Location is the zone in which stamps without an offset are read.
func (r *Resolver) Location() *time.Location { return r.loc }

// State returns what a restarted reader needs to continue the year
// inference: the newest year-less time seen.
func (r *Resolver) State() time.Time { return r.last }

// Restore continues from a State saved earlier.
func (r *Resolver) Restore(last time.Time) {
	if last.IsZero() {
		return
	}
	r.last = last.In(r.loc)
	r.year = r.last.Year()
}

// Resolve returns the time s stands for.
func (r *Resolver) Resolve(s Stamp) time.Time {
	if !s.Abs.IsZero() {
		return s.Abs.In(r.loc)
	}
	if s.Year != 0 {
		loc := r.loc
		if s.HasOffset {
			loc = r.zone(s.Offset)
		}
		return time.Date(s.Year, s.Month, s.Day, s.Hour, s.Min, s.Sec, s.Nsec, loc)
	}
	if s.Month == 0 {
		return time.Time{}
	}
	if r.year == 0 {
		ref := r.ref
		if ref.IsZero() {
			ref = time.Now()
		}
		r.year = ref.In(r.loc).Year()
		if r.date(r.year, s).After(ref.Add(24 * time.Hour)) {
			r.year--
		}
	}
	t := r.date(r.year, s)
	if !r.last.IsZero() {
		switch {
		case t.Before(r.last.Add(-rollover)):
			r.year++
			t = r.date(r.year, s)
		case t.After(r.last.Add(rollover)):
			// A late line from the old year after we rolled over.
			return r.date(r.year-1, s)
		}
	}
	if t.After(r.last) {
		r.last = t
	}
	return t
}

func (r *Resolver) date(year int, s Stamp) time.Time {
	return time.Date(year, s.Month, s.Day, s.Hour, s.Min, s.Sec, s.Nsec, r.loc)
}

// zone caches fixed zones by offset: time.FixedZone allocates, and a log
// has one or two offsets.
func (r *Resolver) zone(off int) *time.Location {
	if z, ok := r.zones[off]; ok {
		return z
	}
	z := time.FixedZone("", off)
	if off == 0 {
		z = time.UTC
	}
	r.zones[off] = z
	return z
}
