package blocks

import (
	"errors"
	"fmt"
	"time"
)

// Schedule is the daily execution time at which scheduled registrations
// take effect, as the hosted service does it: a wall-clock time of day in a
// zone (default 00:00). The zero value is 00:00 UTC.
type Schedule struct {
	Hour, Minute int
	Loc          *time.Location // nil: UTC
}

// ParseSchedule reads an execution time "HH:MM" (24-hour clock) in loc.
func ParseSchedule(hhmm string, loc *time.Location) (Schedule, error) {
	t, err := time.Parse("15:04", hhmm)
	if err != nil || len(hhmm) != 5 {
		return Schedule{}, fmt.Errorf("parse execution time %q: want HH:MM, 00:00 to 23:59", hhmm)
	}
	if loc == nil {
		return Schedule{}, errors.New("parse execution time: no time zone")
	}
	return Schedule{Hour: t.Hour(), Minute: t.Minute(), Loc: loc}, nil
}

// String is "HH:MM zone".
func (s Schedule) String() string {
	return fmt.Sprintf("%02d:%02d %s", s.Hour, s.Minute, s.loc())
}

func (s Schedule) loc() *time.Location {
	if s.Loc == nil {
		return time.UTC
	}
	return s.Loc
}

// Next returns the first execution instant strictly after now. A
// scheduler that fired at T therefore finds the following day's T, and a
// registration requested exactly at the execution time waits a day: "at
// the next execution time" is never the past.
func (s Schedule) Next(now time.Time) time.Time {
	loc := s.loc()
	local := now.In(loc)
	y, m, d := local.Date()
	for i := 0; i < 3; i++ { // today, tomorrow; a third day only if a zone skipped a whole day
		t := s.on(y, m, d+i)
		if t.After(now) {
			return t
		}
	}
	return s.on(y, m, d+3)
}

// NextAtOrAfter is Next, but returns t itself when t is an execution
// instant.
func (s Schedule) NextAtOrAfter(t time.Time) time.Time {
	return s.Next(t.Add(-time.Nanosecond))
}

// on returns the execution instant of one calendar day in the zone. Go's
// time.Date leaves the choice open when the wall-clock time does not exist
// or exists twice; the rules here are fixed:
//   - a time skipped by a forward change (02:30 on a spring-forward night)
//     fires at the end of the gap, the first instant after it, so a
//     registration is neither dropped nor moved a day;
//   - a time that occurs twice (01:30 on a fall-back night) fires at its
//     first occurrence, once.
func (s Schedule) on(y int, m time.Month, d int) time.Time {
	loc := s.loc()
	// The wall-clock time as if it were UTC; an instant with offset o
	// shows it when instant = wall - o.
	wall := time.Date(y, m, d, s.Hour, s.Minute, 0, 0, time.UTC)
	var best time.Time
	for _, probe := range []time.Duration{-36 * time.Hour, 0, 36 * time.Hour} {
		_, off := wall.Add(probe).In(loc).Zone()
		c := wall.Add(-time.Duration(off) * time.Second)
		if shows(c.In(loc), wall) && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	if !best.IsZero() {
		return best
	}
	// In a gap: with the offset before the change the instant lies after
	// the change, in the new zone period, which starts at the gap's end.
	_, off := wall.Add(-36 * time.Hour).In(loc).Zone()
	c := wall.Add(-time.Duration(off) * time.Second).In(loc)
	if start, _ := c.ZoneBounds(); !start.IsZero() && !start.After(c) {
		return start
	}
	return c
}

// shows reports whether t's wall clock in its location is wall's, to the
// minute.
func shows(t, wall time.Time) bool {
	y, m, d := t.Date()
	wy, wm, wd := wall.Date()
	return y == wy && m == wm && d == wd && t.Hour() == wall.Hour() && t.Minute() == wall.Minute()
}

// WatchExpiry is when an entry that took effect at registered is lifted by
// a watch period of days: at the first execution time at least that many
// calendar days (in the schedule's zone) later. Calendar days, not 24-hour
// periods, so a DST change in between does not move the lift by an hour.
// days ≤ 0 means no watch period: the zero time.
func (s Schedule) WatchExpiry(registered time.Time, days int) time.Time {
	if days <= 0 {
		return time.Time{}
	}
	return s.NextAtOrAfter(registered.In(s.loc()).AddDate(0, 0, days))
}
