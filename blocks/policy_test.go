package blocks

import (
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
)

func TestNormalize(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"User.Name@Example.COM", "User.Name@example.com", ""},
		{"  <Taro@MAIL.Example.JP.>  ", "Taro@mail.example.jp", ""},
		{`"a@b"@Example.org`, `"a@b"@example.org`, ""},
		{"x+tag@xn--Bcher-kva.Example", "x+tag@xn--bcher-kva.example", ""},
		{"", "", "empty"},
		{"<>", "", "empty"},
		{"nobody", "", "no @"},
		{"@example.org", "", "empty local part"},
		{"user@", "", "empty domain"},
		{"a@b@example.org", "", "more than one @"},
		{"a b@example.org", "", "not allowed"},
		{"a@example..org", "", "empty label"},
		{"a@.example.org", "", "empty label"},
		{strings.Repeat("x", 65) + "@example.org", "", "local part longer"},
		{"a@" + strings.Repeat("x", 256), "", "domain longer"},
		{strings.Repeat("x", 64) + "@" + strings.Repeat("y", 190) + ".org", "", "longer than 254"},
		{"a\xff@example.org", "", "not UTF-8"},
		{"a,b@example.org", "", "not allowed"},
	}
	for _, c := range cases {
		got, err := Normalize(c.in)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("Normalize(%q): %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("Normalize(%q) = %q, %v; want error with %q", c.in, got, err, c.err)
		case got != c.want:
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("zone %s not installed: %v", name, err)
	}
	return loc
}

func TestScheduleNext(t *testing.T) {
	tokyo := zone(t, "Asia/Tokyo")
	ny := zone(t, "America/New_York")
	berlin := zone(t, "Europe/Berlin")
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name string
		s    Schedule
		now  time.Time
		want time.Time
	}{
		{"default midnight Tokyo, before", Schedule{Loc: tokyo}, at(tokyo, "2026-11-27 23:59:59"), at(tokyo, "2026-11-28 00:00:00")},
		// 15:00 UTC is 00:00 in Tokyo: the zone, not UTC, decides the day.
		{"zone decides the day", Schedule{Loc: tokyo}, at(time.UTC, "2026-11-27 14:30:00"), at(time.UTC, "2026-11-27 15:00:00")},
		{"exactly at the time waits a day", Schedule{Loc: tokyo}, at(tokyo, "2026-11-28 00:00:00"), at(tokyo, "2026-11-29 00:00:00")},
		{"later today", Schedule{Hour: 9, Minute: 30, Loc: tokyo}, at(tokyo, "2026-11-27 09:29:00"), at(tokyo, "2026-11-27 09:30:00")},
		{"nil zone is UTC", Schedule{Hour: 1}, at(time.UTC, "2026-11-27 02:00:00"), at(time.UTC, "2026-11-28 01:00:00")},
		{"month end", Schedule{Loc: berlin}, at(berlin, "2026-12-31 12:00:00"), at(berlin, "2027-01-01 00:00:00")},
		// New York springs forward on 2026-03-08: 02:00 EST becomes 03:00
		// EDT, 02:30 does not exist and fires at the gap's end.
		{"spring forward gap", Schedule{Hour: 2, Minute: 30, Loc: ny}, at(ny, "2026-03-07 12:00:00"), at(time.UTC, "2026-03-08 07:00:00")},
		{"day after the gap", Schedule{Hour: 2, Minute: 30, Loc: ny}, at(time.UTC, "2026-03-08 07:00:00"), at(ny, "2026-03-09 02:30:00")},
		// ... and falls back on 2026-11-01: 01:30 happens twice, the
		// first (EDT, 05:30 UTC) fires, the second does not.
		{"fall back first occurrence", Schedule{Hour: 1, Minute: 30, Loc: ny}, at(ny, "2026-10-31 12:00:00"), at(time.UTC, "2026-11-01 05:30:00")},
		{"fall back not twice", Schedule{Hour: 1, Minute: 30, Loc: ny}, at(time.UTC, "2026-11-01 05:30:00"), at(ny, "2026-11-02 01:30:00")},
		// Midnight across Berlin's change (2026-03-29 at 02:00) is 23 hours.
		{"short day", Schedule{Loc: berlin}, at(berlin, "2026-03-29 00:00:00"), at(berlin, "2026-03-30 00:00:00")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.s.Next(c.now)
			if !got.Equal(c.want) {
				t.Errorf("Next(%v) = %v, want %v", c.now, got, c.want.In(c.s.loc()))
			}
			if !got.After(c.now) {
				t.Errorf("Next(%v) = %v is not after now", c.now, got)
			}
		})
	}
	if d := (Schedule{Loc: berlin}).Next(at(berlin, "2026-03-29 00:00:00")).Sub(at(berlin, "2026-03-29 00:00:00")); d != 23*time.Hour {
		t.Errorf("short day lasts %v, want 23h", d)
	}
}

func TestParseSchedule(t *testing.T) {
	tokyo := zone(t, "Asia/Tokyo")
	s, err := ParseSchedule("04:05", tokyo)
	if err != nil || s.Hour != 4 || s.Minute != 5 || s.String() != "04:05 Asia/Tokyo" {
		t.Errorf("ParseSchedule(04:05) = %v, %v", s, err)
	}
	for _, bad := range []string{"", "4:05", "24:00", "12:60", "noon", "12:00:00"} {
		if _, err := ParseSchedule(bad, tokyo); err == nil {
			t.Errorf("ParseSchedule(%q): no error", bad)
		}
	}
	if _, err := ParseSchedule("00:00", nil); err == nil {
		t.Error("ParseSchedule without zone: no error")
	}
}

func TestWatchExpiry(t *testing.T) {
	tokyo := zone(t, "Asia/Tokyo")
	berlin := zone(t, "Europe/Berlin")
	at := func(loc *time.Location, s string) time.Time {
		v, _ := time.ParseInLocation("2006-01-02 15:04", s, loc)
		return v
	}
	cases := []struct {
		name       string
		s          Schedule
		registered time.Time
		days       int
		want       time.Time
	}{
		{"off", Schedule{Loc: tokyo}, at(tokyo, "2026-11-28 00:00"), 0, time.Time{}},
		{"negative is off", Schedule{Loc: tokyo}, at(tokyo, "2026-11-28 00:00"), -1, time.Time{}},
		{"scheduled registration: N days later at the time", Schedule{Loc: tokyo}, at(tokyo, "2026-11-28 00:00"), 30, at(tokyo, "2026-12-28 00:00")},
		{"immediate registration: next execution after N days", Schedule{Loc: tokyo}, at(tokyo, "2026-11-27 13:05"), 1, at(tokyo, "2026-11-29 00:00")},
		// Across Berlin's fall-back change: calendar days, not 24 h periods.
		{"across DST", Schedule{Loc: berlin}, at(berlin, "2026-10-20 00:00"), 14, at(berlin, "2026-11-03 00:00")},
	}
	for _, c := range cases {
		if got := c.s.WatchExpiry(c.registered, c.days); !got.Equal(c.want) {
			t.Errorf("%s: WatchExpiry = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRules(t *testing.T) {
	r := DefaultRules()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for c := range r {
		if r.Register(c, 100) {
			t.Errorf("class %d registers by default", c)
		}
	}
	if r[event.ClassUnknownUser].After != 1 || r[event.ClassOverCapacity].After != 3 {
		t.Errorf("default counts: %+v", r)
	}
	r[event.ClassUnknownUser] = Rule{Class: event.ClassUnknownUser, Enabled: true, After: 1}
	r[event.ClassOverCapacity] = Rule{Class: event.ClassOverCapacity, Enabled: true, After: 3}
	cases := []struct {
		c    event.Class
		n    int
		want bool
	}{
		{event.ClassUnknownUser, 1, true},
		{event.ClassUnknownUser, 0, false},
		{event.ClassOverCapacity, 2, false},
		{event.ClassOverCapacity, 3, true},
		{event.ClassOverCapacity, 4, true}, // a threshold lowered below the count
		{event.ClassPolicy, 10, false},     // not enabled
		{event.ClassBlocked, 10, false},    // no rule: never
	}
	for _, c := range cases {
		if got := r.Register(c.c, c.n); got != c.want {
			t.Errorf("Register(%d, %d) = %v, want %v", c.c, c.n, got, c.want)
		}
	}
	for name, bad := range map[string]Rules{
		"blocked class": {event.ClassBlocked: {Class: event.ClassBlocked, After: 1}},
		"zero count":    {event.ClassPolicy: {Class: event.ClassPolicy, After: 0}},
		"misfiled":      {event.ClassPolicy: {Class: event.ClassOther, After: 1}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
}

func TestParseReason(t *testing.T) {
	for _, ok := range []string{"manual", "unsubscribe", "2", "99"} {
		if r, err := ParseReason(ok); err != nil || string(r) != ok {
			t.Errorf("ParseReason(%q) = %q, %v", ok, r, err)
		}
	}
	for _, bad := range []string{"", "10", "Manual", "0", "x"} {
		if _, err := ParseReason(bad); err == nil {
			t.Errorf("ParseReason(%q): no error", bad)
		}
	}
	if ClassReason(event.ClassUnknownUser) != "2" {
		t.Error("ClassReason(2)")
	}
}
