// Package dispatcher delivers the Event Webhook: it forms batches from the
// events the log reader stored, freezes each batch's body at its first
// attempt, and POSTs it to the configured endpoint with retries (WIRE.md
// §1–§2).
//
// The life of a batch:
//
//	stored events ──Unformed──► Batcher ──closes──► Form: batch row (queued),
//	(the outbox)                (per family: max_events     family progress
//	                             or interval since the            │
//	                             first event)                     ▼
//	     ┌────────── Record (deferred, next attempt) ◄── ClaimDue, FreezeBody at
//	     └─► ClaimDue again when due ...                 the first attempt, Post
//	                                                     Record (succeeded | failed)
//
// A batch's id (BatchID) comes from its event ids, and its body is frozen
// and stored at its first attempt, so every attempt — after a crash too —
// sends the same webhook-id and the same bytes, signed afresh. Events that
// were stored but not formed into a batch when the process died are read
// again from the family's progress and formed anew: they were never
// posted, so a different membership does no harm.
//
// Ingest never waits for the dispatcher: the log reader writes events to
// the store, which is all it takes for them to be in the outbox, and at
// most calls Notify, which does not block. One attempt is in flight at a
// time, and batches go out in the order of their events; after a temporary
// failure the endpoint is left alone until that batch's next attempt
// (NextAttempt has the schedule), so a dead endpoint gets one probe per
// step of the schedule, not one per batch, and each probe is the oldest
// batch waiting. A batch's retry period counts from when it was formed:
// one whose period ends while the endpoint is held off is failed without
// another attempt, and can be replayed. New settings or a replay lift the
// hold.
//
// The package imports only the standard library, event and settings; the
// store is reached through the Outbox interface, whose contract tests live
// in outboxtest.
package dispatcher
