-- Schema version 2: the Event Webhook's batches, attempts and progress, and
-- the webhook settings.
--
-- The events table is itself the outbox: an event waits to be posted from
-- the moment the log reader's transaction stores it, and nothing more is
-- written per event (one outbox row per event halved the log reader's
-- throughput). The per-event outbox table of version 1 was never used.
DROP INDEX outbox_due;
DROP INDEX outbox_event;
DROP TABLE outbox;

-- How far batches are formed, per family: every event of the family with
-- seq <= formed_seq is in a batch, or was skipped because the family was
-- switched off when it was read.
CREATE TABLE webhook_progress (
    family     TEXT    NOT NULL PRIMARY KEY CHECK (family IN ('deliveries', 'bounces', 'blocks')),
    formed_seq INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Events stored before this version existed are not posted.
INSERT INTO webhook_progress (family, formed_seq)
    SELECT f.family, (SELECT coalesce(max(seq), 0) FROM events)
    FROM (SELECT 'deliveries' AS family UNION ALL SELECT 'bounces' UNION ALL SELECT 'blocks') AS f;

-- One row per batch: one POST, and one row of the Event Webhook log
-- (WIRE.md §5). Its events are those of its family with seq from first_seq
-- to last_seq: a family's batches never overlap and leave no gap, so the
-- range is the link to the events.
--
-- body is NULL until the first attempt freezes it; from then on every
-- attempt sends it unchanged. attempts counts claims (an attempt that died
-- with its process counts too); retry_from is attempts at the last replay,
-- so the retry schedule and period start again. Times: Unix nanoseconds.
CREATE TABLE webhook_batches (
    batch_id         TEXT    NOT NULL PRIMARY KEY CHECK (batch_id <> ''),
    family           TEXT    NOT NULL CHECK (family IN ('deliveries', 'bounces', 'blocks')),
    first_seq        INTEGER NOT NULL,
    last_seq         INTEGER NOT NULL CHECK (last_seq >= first_seq),
    events           INTEGER NOT NULL CHECK (events > 0),
    first_time       INTEGER NOT NULL,
    last_time        INTEGER NOT NULL,
    host             TEXT    NOT NULL DEFAULT '',
    endpoint         TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'deferred', 'succeeded', 'failed')),
    content_type     TEXT    NOT NULL DEFAULT '',
    body             BLOB,
    attempts         INTEGER NOT NULL DEFAULT 0,
    retry_from       INTEGER NOT NULL DEFAULT 0,
    first_attempt_at INTEGER,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    last_status      INTEGER NOT NULL DEFAULT 0,
    last_reason      TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- "What is due?" walks this in claim order and stops at the first batch
-- not leased; only pending batches are in it, so a long history of
-- delivered batches costs nothing here.
CREATE INDEX webhook_batches_due ON webhook_batches (next_attempt_at, batch_id)
    WHERE state IN ('queued', 'deferred');
-- The few batches in flight, for when a leased batch is due again.
CREATE INDEX webhook_batches_leased ON webhook_batches (lease_until)
    WHERE lease_until IS NOT NULL;
-- Oldest pending first, and their event count, for max_pending.
CREATE INDEX webhook_batches_pending ON webhook_batches (first_seq, events)
    WHERE state IN ('queued', 'deferred');
-- The log screen and replay select by event time.
CREATE INDEX webhook_batches_time ON webhook_batches (first_time);
-- ... and by status within a period, in page order.
CREATE INDEX webhook_batches_state_time ON webhook_batches (state, first_time, batch_id);

-- One row per attempt, the detail of a log row.
CREATE TABLE webhook_attempts (
    batch_id        TEXT    NOT NULL REFERENCES webhook_batches (batch_id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    host            TEXT    NOT NULL DEFAULT '',
    endpoint        TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN ('deferred', 'succeeded', 'failed')),
    status          INTEGER NOT NULL DEFAULT 0,
    reason          TEXT    NOT NULL DEFAULT '',
    response        BLOB    NOT NULL DEFAULT x'',
    next_attempt_at INTEGER,
    PRIMARY KEY (batch_id, attempt)
) STRICT;

-- Webhook settings, one row per kind (event_webhook, ...), the value as
-- JSON. Validated by the settings package before it is written.
CREATE TABLE settings (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
