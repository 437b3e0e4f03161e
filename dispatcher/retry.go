package dispatcher

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The retry schedule of an event batch (DISPATCHER.md §8.3), measured from
// the attempt that just failed:
//
//	attempt  1  immediately, when the batch closes
//	attempt  2  10 s after attempt 1
//	attempt  3   1 min after attempt 2
//	attempt  4   5 min
//	attempt  5  15 min
//	attempt  6  30 min
//	attempt  7   1 h
//	attempt  8   2 h
//	attempt  9   4 h
//	attempt 10+  every 6 h
//
// Each delay is multiplied by a random factor in [0.8, 1.2], so that batches
// that failed together do not come back together. A Retry-After longer than
// the delay wins. The retry period counts from when the batch was formed
// (or replayed): its last attempt is made when the period ends, and a batch
// that fails then is failed. With the default period of 1 day, a batch
// attempted as soon as it is formed gets 12 attempts: at 0 s, 10 s,
// 1 min 10 s, 6 min 10 s, 21 min 10 s, 51 min 10 s, 1 h 51 min, 3 h 51 min,
// 7 h 51 min, 13 h 51 min, 19 h 51 min and 24 h (without jitter). A batch
// that waited behind a failing endpoint gets fewer, and one whose period
// ends while the endpoint is held off is failed without another attempt
// (Dispatcher.Deliver).
var schedule = [...]time.Duration{
	10 * time.Second,
	time.Minute,
	5 * time.Minute,
	15 * time.Minute,
	30 * time.Minute,
	time.Hour,
	2 * time.Hour,
	4 * time.Hour,
	6 * time.Hour, // and every 6 h from then on
}

// Jitter bounds: Svix's ±20 % (DISPATCHER.md §2.1).
const (
	jitterLow  = 0.8
	jitterSpan = 0.4
)

// NextAttempt returns when to make the next attempt after `attempt`
// attempts were made (0: none yet, which means now), the retry period
// starting at since, the latest attempt failing at now; ok is false when
// the retry period is over and the batch is failed. retryAfter is the receiver's
// Retry-After (0: none). rnd returns a number in [0, 1); nil means
// math/rand.
func NextAttempt(attempt int, since, now time.Time, retryPeriod time.Duration, retryAfter time.Duration, rnd func() float64) (time.Time, bool) {
	if attempt <= 0 {
		return now, true
	}
	deadline := since.Add(retryPeriod)
	if !now.Before(deadline) {
		return time.Time{}, false
	}
	base := schedule[min(attempt, len(schedule))-1]
	if rnd == nil {
		rnd = rand.Float64
	}
	f := rnd()
	if !(f >= 0 && f < 1) { // also catches NaN
		f = 0.5
	}
	// Whole milliseconds: float rounding noise has no place in a stored time.
	delay := time.Duration(float64(base) * (jitterLow + jitterSpan*f)).Round(time.Millisecond)
	if retryAfter > delay {
		delay = retryAfter
	}
	next := now.Add(delay)
	if next.After(deadline) {
		// One last try when the period ends, rather than giving up early by
		// up to a whole step of the schedule.
		next = deadline
	}
	return next, true
}

// Retry-After bounds (Kit's, DISPATCHER.md §1): a receiver cannot make us
// spin, nor park a batch for days.
const (
	minRetryAfter = time.Second
	maxRetryAfter = 24 * time.Hour
)

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3): delay in
// seconds, or an HTTP-date, which is relative to now. ok is false for an
// absent or malformed value.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		if n > uint64(maxRetryAfter/time.Second) {
			n = uint64(maxRetryAfter / time.Second)
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, minRetryAfter), maxRetryAfter), true
}

// Batch states: the status column of the Event Webhook log (WIRE.md §5).
const (
	StateQueued    = "queued"    // formed, not attempted yet
	StateSucceeded = "succeeded" // a 2xx answer
	StateDeferred  = "deferred"  // a temporary failure; another attempt is due
	StateFailed    = "failed"    // a permanent failure, or the retry period is over
)

// Decide turns the result of attempt number `attempt` (1-based) into the
// batch's new state and, when deferred, the time of the next attempt; the
// retry period started at since.
func Decide(res Result, attempt int, since, now time.Time, retryPeriod time.Duration, rnd func() float64) (state string, next time.Time) {
	switch res.Outcome {
	case Success:
		return StateSucceeded, time.Time{}
	case Retry:
		if next, ok := NextAttempt(attempt, since, now, retryPeriod, res.RetryAfter, rnd); ok {
			return StateDeferred, next
		}
	}
	return StateFailed, time.Time{}
}
