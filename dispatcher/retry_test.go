package dispatcher

import (
	"math"
	"testing"
	"time"
)

func fixed(f float64) func() float64 { return func() float64 { return f } }

func TestNextAttempt(t *testing.T) {
	first := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name       string
		attempt    int
		now        time.Time
		period     time.Duration
		retryAfter time.Duration
		rnd        func() float64
		want       time.Time // zero: failed
	}{
		{"no attempt yet: now", 0, first, day, 0, fixed(0.5), first},
		{"after 1: 10 s", 1, first, day, 0, fixed(0.5), first.Add(10 * time.Second)},
		{"after 2: 1 min", 2, first, day, 0, fixed(0.5), first.Add(time.Minute)},
		{"after 3: 5 min", 3, first, day, 0, fixed(0.5), first.Add(5 * time.Minute)},
		{"after 4: 15 min", 4, first, day, 0, fixed(0.5), first.Add(15 * time.Minute)},
		{"after 5: 30 min", 5, first, day, 0, fixed(0.5), first.Add(30 * time.Minute)},
		{"after 6: 1 h", 6, first, day, 0, fixed(0.5), first.Add(time.Hour)},
		{"after 7: 2 h", 7, first, day, 0, fixed(0.5), first.Add(2 * time.Hour)},
		{"after 8: 4 h", 8, first, day, 0, fixed(0.5), first.Add(4 * time.Hour)},
		{"after 9: 6 h", 9, first, day, 0, fixed(0.5), first.Add(6 * time.Hour)},
		{"after 30: still 6 h", 30, first, 10 * day, 0, fixed(0.5), first.Add(6 * time.Hour)},
		{"jitter low end", 2, first, day, 0, fixed(0), first.Add(48 * time.Second)},
		{"jitter high end", 2, first, day, 0, fixed(0.999999999), first.Add(72 * time.Second)},
		{"bad rnd: 1.5", 2, first, day, 0, fixed(1.5), first.Add(time.Minute)},
		{"bad rnd: -1", 2, first, day, 0, fixed(-1), first.Add(time.Minute)},
		{"bad rnd: NaN", 2, first, day, 0, fixed(math.NaN()), first.Add(time.Minute)},
		{"retry-after longer wins", 1, first, day, time.Hour, fixed(0.5), first.Add(time.Hour)},
		{"retry-after shorter loses", 6, first, day, time.Minute, fixed(0.5), first.Add(time.Hour)},
		{"last try at the end of the period", 9, first.Add(20 * time.Hour), day, 0, fixed(0.5), first.Add(day)},
		{"retry-after past the end: at the end", 1, first, 2 * time.Hour, 3 * time.Hour, fixed(0.5), first.Add(2 * time.Hour)},
		{"failed at the end", 12, first.Add(day), day, 0, fixed(0.5), time.Time{}},
		{"failed after the end", 12, first.Add(day + time.Second), day, 0, fixed(0.5), time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := NextAttempt(tc.attempt, first, tc.now, tc.period, tc.retryAfter, tc.rnd)
			if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
				t.Errorf("NextAttempt = %v %v, want %v", got, ok, tc.want)
			}
		})
	}
}

func TestNextAttemptRandomBounds(t *testing.T) {
	first := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for range 1000 {
		got, ok := NextAttempt(3, first, first, 24*time.Hour, 0, nil)
		if d := got.Sub(first); !ok || d < 4*time.Minute || d > 6*time.Minute {
			t.Fatalf("delay %v outside 5 min ±20 %%", d)
		}
	}
}

// TestRetryHorizon counts the attempts an always-failing endpoint gets
// over the retry period (no jitter), as documented on schedule.
func TestRetryHorizon(t *testing.T) {
	first := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		period   time.Duration
		attempts int
	}{
		{time.Hour, 7},       // 0, 10s, 1m10s, 6m10s, 21m10s, 51m10s, 1h
		{24 * time.Hour, 12}, // ... 7h51m, 13h51m, 19h51m, 24h
		{72 * time.Hour, 20},
		{240 * time.Hour, 48},
	} {
		now, n := first, 1
		var times []time.Duration
		for {
			times = append(times, now.Sub(first))
			next, ok := NextAttempt(n, first, now, tc.period, 0, fixed(0.5))
			if !ok {
				break
			}
			if !next.After(now) {
				t.Fatalf("period %v: attempt %d not after the previous one", tc.period, n+1)
			}
			now, n = next, n+1
		}
		if n != tc.attempts || times[len(times)-1] != tc.period {
			t.Errorf("period %v: %d attempts, last at %v; want %d, last at the period's end\n%v",
				tc.period, n, times[len(times)-1], tc.attempts, times)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 14, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", time.Second, true},
		{"86401", 24 * time.Hour, true},
		{"18446744073709551615", 24 * time.Hour, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"Sat, 14 Mar 2026 05:02:00 GMT", 2 * time.Minute, true},    // IMF-fixdate
		{"Saturday, 14-Mar-26 05:02:00 GMT", 2 * time.Minute, true}, // RFC 850
		{"Sat Mar 14 05:02:00 2026", 2 * time.Minute, true},         // asctime
		{"Sat, 14 Mar 2026 04:00:00 GMT", time.Second, true},        // past
		{"Sat, 21 Mar 2026 05:00:00 GMT", 24 * time.Hour, true},     // a week
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDecide(t *testing.T) {
	first := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		res       Result
		attempt   int
		now       time.Time
		wantState string
		wantNext  time.Time
	}{
		{"success", Result{Outcome: Success}, 1, first, StateSucceeded, time.Time{}},
		{"permanent", Result{Outcome: Permanent}, 1, first, StateFailed, time.Time{}},
		{"retry", Result{Outcome: Retry}, 1, first, StateDeferred, first.Add(10 * time.Second)},
		{"retry with retry-after", Result{Outcome: Retry, RetryAfter: time.Hour}, 1, first, StateDeferred, first.Add(time.Hour)},
		{"retry at the end", Result{Outcome: Retry}, 12, first.Add(24 * time.Hour), StateFailed, time.Time{}},
	}
	for _, tc := range tests {
		state, next := Decide(tc.res, tc.attempt, first, tc.now, 24*time.Hour, fixed(0.5))
		if state != tc.wantState || !next.Equal(tc.wantNext) {
			t.Errorf("%s: Decide = %s %v, want %s %v", tc.name, state, next, tc.wantState, tc.wantNext)
		}
	}
}
