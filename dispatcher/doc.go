// Package dispatcher delivers the Event Webhook: it forms batches from the
// events the log reader stored, freezes each batch's body, and POSTs it to
// the configured endpoint with retries (WIRE.md §1–§2).
//
// The life of a batch:
//
//	stored events ──Unbatched──► Batcher ──closes──► Encode ──Freeze──► outbox row (queued)
//	                              (per family: max_events                      │
//	                               or interval since the first event)          ▼
//	       ┌──────────────────────── Record (deferred, next attempt) ◄── ClaimDue + Post
//	       └─► ClaimDue again when due ...            Record (succeeded | failed)
//
// A batch's id (BatchID) comes from its event ids and its body is stored
// when it is frozen, so every attempt — after a crash too — sends the same
// webhook-id and the same bytes, signed afresh. Ingest never waits for the
// dispatcher: the log reader writes to the store and at most calls Notify,
// which does not block. One attempt is in flight at a time; after a
// temporary failure the endpoint is left alone until that batch's next
// attempt (NextAttempt has the schedule), so a dead endpoint gets one probe
// per step of the schedule, not one per batch.
//
// The package imports only the standard library, event and settings; the
// store is reached through the Outbox interface.
package dispatcher
