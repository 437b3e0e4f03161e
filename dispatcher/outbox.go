package dispatcher

import (
	"context"
	"time"

	"github.com/posthorn/posthorn/event"
)

// Outbox is what the dispatcher needs from the store (sqlite.Store
// implements it; outboxtest.Mem is the in-memory reference). Its methods
// use only builtins, time, event and the plain structs below, so that the
// store need not import this package (ARCHITECTURE.md, import rule 2).
// All methods must be safe for concurrent use: batches are formed and
// delivered by two goroutines.
//
// The stored events are themselves the outbox: an event is waiting to be
// posted from the moment the log reader's transaction stores it, and
// nothing is written per event on its way. The store keeps
//
//   - per family, how far batches were formed: every event of the family
//     at or before that position is in a batch, or was skipped because the
//     family was switched off;
//   - per batch (one row of the Event Webhook log, WIRE.md §5): batch_id,
//     family, the range of positions of its events, how many, the
//     earliest and latest event time, host name, endpoint, state (queued,
//     deferred, succeeded, failed), attempts, first_attempt_at, the start
//     of its retry period, next_attempt_at, lease_until, last HTTP status
//     and reason, and the content type and body, empty until the first
//     attempt freezes them;
//   - one row per attempt: batch_id, attempt, time, host name, endpoint,
//     state, HTTP status, reason, the first 512 bytes of the answer.
//
// Why the body is frozen at the first attempt and then stored: every
// attempt must send the same bytes (receivers deduplicate on webhook-id,
// and the settings — version, zone, api_key — may change between
// attempts), while a batch that was never attempted — say, thousands
// queued behind a dead endpoint — costs only its row.
type Outbox interface {
	// Progress returns, per family, the position up to which batches are
	// formed (0: none yet).
	Progress(ctx context.Context) (map[string]int64, error)

	// Unformed returns up to limit stored events of any family positioned
	// after `after`, in the order they were stored.
	Unformed(ctx context.Context, after int64, limit int) ([]Pending, error)

	// LastSeq returns the position of the newest stored event (0: none).
	LastSeq(ctx context.Context) (int64, error)

	// Form stores closed batches — state queued, attempts 0, due at
	// `due`, their retry period starting at `due` — and raises the
	// families' progress to the given positions, in one transaction. A
	// batch_id that exists already is left as it is; progress never goes
	// back.
	Form(ctx context.Context, batches []Formed, progress map[string]int64, due time.Time) error

	// ClaimDue leases, in one short transaction, up to limit batches in
	// state queued or deferred whose next_attempt_at is at or before now
	// and whose lease is unset or ended before now, in event order (by the
	// position of their first event), so that a receiver gets a
	// recipient's queued before its succeeded, and the probe of a held
	// endpoint is the oldest batch waiting. For each it sets lease_until,
	// adds one to attempts, and sets first_attempt_at to now if unset. It
	// returns their ids. Counting the attempt at the claim keeps attempt
	// numbers rising even when the process dies mid-attempt.
	ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]string, error)

	// NextClaim returns the batch ClaimDue(now, …, 1) would claim, without
	// claiming it; ok is false when none is due. The dispatcher makes that
	// batch's body while the attempt before it is in flight.
	NextClaim(ctx context.Context, now time.Time) (id string, ok bool, err error)

	// Frozen returns what an attempt at a batch needs.
	Frozen(ctx context.Context, batchID string) (Frozen, error)

	// BatchEvents returns a batch's events in the order they were stored.
	BatchEvents(ctx context.Context, batchID string) ([]event.Event, error)

	// FreezeBody stores a batch's body at its first attempt unless one is
	// stored already, and returns the stored one: whatever happens later,
	// that is what every attempt sends.
	FreezeBody(ctx context.Context, batchID, contentType string, body []byte) (string, []byte, error)

	// Record stores the end of one attempt in one transaction: the attempt
	// row, and on the batch its state, next_attempt_at (a.Next; zero
	// unless deferred), last status and reason, endpoint, and lease_until
	// cleared. a.Response is at most 512 bytes and need not be UTF-8.
	Record(ctx context.Context, a Attempt) error

	// NextDue returns the earliest next_attempt_at of a queued or deferred
	// batch (taking an unexpired lease into account: a leased batch is due
	// at lease_until at the earliest); ok is false when there is none.
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)

	// RetryNow makes the deferred batches due at now, when someone acted
	// on the endpoint's failure (new settings, a replay): the batch that
	// failed first then goes first again, instead of waiting hours for its
	// backoff while the batches formed after it are posted.
	RetryNow(ctx context.Context, now time.Time) (int, error)

	// ReleaseLeases clears every lease. The daemon calls it at start: one
	// daemon runs per store, so a lease it finds was held by a process
	// that died mid-attempt, and that batch is due again at once rather
	// than when its lease would have run out.
	ReleaseLeases(ctx context.Context) (int, error)

	// PendingEvents returns how many events queued and deferred batches
	// hold.
	PendingEvents(ctx context.Context) (int64, error)

	// FailOldest marks the oldest queued or deferred batches (by position)
	// that are not leased at now as failed with reason, until at least n
	// events are failed or none is left; it returns how many batches and
	// events it failed.
	FailOldest(ctx context.Context, n int64, now time.Time, reason string) (batches int, events int64, err error)

	// Expire marks as failed the queued and deferred batches, not leased
	// at now, whose retry period — `period` from when the batch was formed
	// or last replayed — ended at or before now, each with reason(round),
	// round being its attempts since it was formed or replayed. With
	// final set, a batch whose next attempt is at or after the end of its
	// period is spared: that is its last attempt, due now. It returns how
	// many batches and events it failed, and when the next period of a
	// pending batch ends (zero: no batch pending).
	Expire(ctx context.Context, now time.Time, period time.Duration, final bool, reason func(round int) string) (batches int, events int64, next time.Time, err error)

	// Replays returns a count that rises whenever batches are re-queued
	// (`posthorn replay`, by this process or another).
	Replays(ctx context.Context) (int64, error)
}

// The types below are aliases of unnamed struct types, so that the store
// can declare the very same types without importing this package (an
// interface method matches only with identical types).

// Formed is a closed batch as the store keeps it.
type Formed = struct {
	ID        string
	Family    string
	First     int64 // positions of its first and last event; its members
	Last      int64 // are the family's events in between
	Events    int
	FirstTime time.Time // earliest and latest event time
	LastTime  time.Time
	Host      string // this server's host name, for the log
	Endpoint  string // the endpoint when formed, for the log until an attempt
}

// Frozen is what an attempt at a batch starts from.
type Frozen = struct {
	Family      string
	Events      int
	ContentType string
	Body        []byte // nil until the first attempt freezes it
	// Attempt is the number of this attempt as counted by ClaimDue, sent
	// as Posthorn-Attempt; Round counts only the attempts since the batch
	// was last replayed, for the retry schedule.
	Attempt, Round int
	// PeriodStart is when the batch was formed, or last replayed: its
	// retry period counts from then, not from its first attempt, so that
	// a batch that waited behind a dead endpoint does not start its
	// period late.
	PeriodStart time.Time
}

// Attempt is the end of one attempt, as Record stores it.
type Attempt = struct {
	BatchID  string
	Attempt  int
	At       time.Time
	Host     string
	Endpoint string
	State    string
	Status   int // 0 without an HTTP answer
	Reason   string
	Response []byte    // at most KeptResponse bytes
	Next     time.Time // deferred: when the next attempt is due
}

// FromBatch describes a closed batch for Form.
func FromBatch(b Batch, host, endpoint string) Formed {
	return Formed{
		ID: b.ID, Family: b.Family, First: b.First, Last: b.Last, Events: b.Len(),
		FirstTime: b.FirstTime, LastTime: b.LastTime, Host: host, Endpoint: endpoint,
	}
}
