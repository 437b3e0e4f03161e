package dispatcher

import (
	"context"
	"time"

	"github.com/posthorn/posthorn/event"
)

// Outbox is what the dispatcher needs from the store (sqlite.Store
// implements it). Its methods use only builtins, time and event types so
// that the store need not import this package (ARCHITECTURE.md, import
// rule 2). All methods must be safe for concurrent use: batches are formed
// and delivered by two goroutines.
//
// The store keeps, per batch (one row of the Event Webhook log, WIRE.md §5):
//
//	batch_id          TEXT PRIMARY KEY  BatchID of its events: "batch_" + 32 hex
//	family            TEXT              deliveries | bounces | blocks
//	content_type      TEXT
//	body              BLOB              the frozen bytes, posted unchanged on every attempt
//	state             TEXT              queued | deferred | succeeded | failed
//	attempts          INTEGER           attempts claimed so far (the number in Posthorn-Attempt)
//	first_attempt_at  INTEGER NULL      set by the first claim; the retry period counts from it
//	next_attempt_at   INTEGER NULL      when queued or deferred: when it is due
//	lease_until       INTEGER NULL      set while an attempt is in flight
//	last_status, last_reason, endpoint  of the newest attempt, for the log screen
//
// plus, per event and webhook, its batch_id (NULL until frozen; a marker
// for skipped events), and one row per attempt (batch_id, attempt, time, endpoint,
// state, HTTP status, reason, first 512 bytes of the answer), which is
// the detail the log screen shows. Index (state, next_attempt_at). Times
// are stored in UTC.
//
// Why the body is stored, not encoded again: a batch must be the same bytes
// on every attempt (receivers deduplicate on webhook-id, and the settings
// — version, zone, api_key — may change in between). Events that were
// stored but not frozen when the process died are simply read again by
// Unbatched and formed into batches anew: they were never posted, so a
// different membership does no harm, and the same membership gets the same
// id. A batch frozen before a crash is claimed again once its lease runs
// out, with the same id and body and the next attempt number.
type Outbox interface {
	// Unbatched returns up to limit stored events of the family that
	// belong to no batch and were not skipped, in the order they were
	// stored, starting after the position `after` ("" means from the
	// oldest), and the position after the last event returned. Positions
	// are the store's own opaque strings (an outbox row id, say). The
	// dispatcher passes back the last position it got, so it reads each
	// event once while it runs, and everything unfrozen again after a
	// restart.
	Unbatched(ctx context.Context, family string, after string, limit int) (evs []event.Event, next string, err error)

	// Skip marks events as never to be posted: their family was switched
	// off when they were read, so switching it on later does not post the
	// backlog. Events are passed whole so the store can find them by its
	// (time, id) key.
	Skip(ctx context.Context, evs []event.Event) error

	// Freeze stores a closed batch and assigns its events to it, in one
	// transaction, with state queued, attempts 0 and next_attempt_at due.
	// Freezing a batch_id that exists already changes nothing and returns
	// nil.
	Freeze(ctx context.Context, batchID, family string, evs []event.Event, contentType string, body []byte, due time.Time) error

	// ClaimDue leases, in one short transaction, up to limit batches in
	// state queued or deferred whose next_attempt_at is at or before now
	// and whose lease is unset or ended before now, oldest next_attempt_at
	// first (then batch_id). For each it sets lease_until, adds one to
	// attempts, and sets first_attempt_at to now if unset. It returns their
	// ids. Counting the attempt at the claim keeps attempt numbers rising
	// even when the process dies mid-attempt.
	ClaimDue(ctx context.Context, now, leaseUntil time.Time, limit int) ([]string, error)

	// Frozen returns a batch's stored body, its attempt number (as counted
	// by ClaimDue) and the time of its first attempt.
	Frozen(ctx context.Context, batchID string) (contentType string, body []byte, attempt int, firstAttempt time.Time, err error)

	// Record stores the end of one attempt in one transaction: an attempt
	// row (attempt, at, endpoint, state, status, reason, response), and on
	// the batch: state, next_attempt_at (next, zero unless deferred),
	// last_status, last_reason, endpoint, and lease_until cleared. status
	// is 0 when there was no HTTP answer; response is at most 512 bytes and
	// need not be UTF-8.
	Record(ctx context.Context, batchID string, attempt int, at time.Time, endpoint string, state string, status int, reason string, response []byte, next time.Time) error

	// NextDue returns the earliest next_attempt_at of a queued or deferred
	// batch (taking an unexpired lease into account: a leased batch is due
	// at lease_until at the earliest); ok is false when there is none.
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)
}
