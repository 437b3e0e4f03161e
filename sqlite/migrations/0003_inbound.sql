-- Schema version 3: the Inbound Webhook (WIRE.md §3–5): messages the milter
-- captured, with their parsed content and attachments; one POST per message
-- and matching filter; the inbound log; and what the outbound milter role
-- observed per queue ID for the Event Webhook.
-- Conventions as in 0001_init.sql (Unix nanoseconds, '' for absent
-- strings, STRICT tables).

-- One row per captured message, as WIRE.md §3 posts it. headers and
-- problems are JSON arrays. The row (with its attachments and posts) is
-- deleted once every post of it has succeeded or failed: the inbound log
-- keeps what the log shows, the content is not kept longer than needed.
CREATE TABLE inbound_messages (
    id            INTEGER PRIMARY KEY,
    host          TEXT    NOT NULL DEFAULT '',
    queue_id      TEXT    NOT NULL DEFAULT '',
    received      INTEGER NOT NULL,
    client_addr   TEXT    NOT NULL DEFAULT '',
    envelope_from TEXT    NOT NULL DEFAULT '',
    header_from   TEXT    NOT NULL DEFAULT '',
    subject       TEXT    NOT NULL DEFAULT '',
    message_id    TEXT    NOT NULL DEFAULT '',
    size          INTEGER NOT NULL DEFAULT 0,
    headers       TEXT    NOT NULL DEFAULT '[]',
    text_body     TEXT    NOT NULL DEFAULT '',
    html_body     TEXT    NOT NULL DEFAULT '',
    attachments   INTEGER NOT NULL DEFAULT 0,
    problems      TEXT    NOT NULL DEFAULT '[]',
    created_at    INTEGER NOT NULL
) STRICT;

-- The attachments of a message, in order (idx from 1, the N of the
-- attachmentN form field).
CREATE TABLE inbound_attachments (
    message      INTEGER NOT NULL REFERENCES inbound_messages (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL CHECK (idx > 0),
    filename     TEXT    NOT NULL DEFAULT '',
    content_type TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL CHECK (size >= 0),
    PRIMARY KEY (message, idx)
) STRICT;

-- Attachment bytes in chunks of at most 256 KiB, so that neither writing a
-- 40 MB attachment nor reading it back binds it in memory whole (the
-- SQLite driver has no incremental blob I/O).
CREATE TABLE inbound_chunks (
    id      INTEGER PRIMARY KEY,
    message INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    FOREIGN KEY (message, idx) REFERENCES inbound_attachments (message, idx) ON DELETE CASCADE
) STRICT;
CREATE UNIQUE INDEX inbound_chunks_part ON inbound_chunks (message, idx, seq);

-- One row per message and matching filter: one POST (WIRE.md §3), retried
-- every retry_interval until created_at + retry_period. recipients is the
-- envelope-to value (comma-separated); webhook_id is the stable
-- webhook-id of every attempt.
CREATE TABLE inbound_posts (
    id              INTEGER PRIMARY KEY,
    message         INTEGER NOT NULL REFERENCES inbound_messages (id) ON DELETE CASCADE,
    filter          TEXT    NOT NULL CHECK (filter <> ''),
    recipients      TEXT    NOT NULL,
    webhook_id      TEXT    NOT NULL CHECK (webhook_id <> ''),
    state           TEXT    NOT NULL CHECK (state IN ('queued', 'deferred', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_reason     TEXT    NOT NULL DEFAULT '',
    last_response   BLOB    NOT NULL DEFAULT x'',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
-- "What is due?": pending posts only, in due order.
CREATE INDEX inbound_posts_due ON inbound_posts (next_attempt_at, id)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX inbound_posts_message ON inbound_posts (message);
-- A failing filter's posts whose retry period is over, failed in one go.
CREATE INDEX inbound_posts_filter ON inbound_posts (filter, created_at)
    WHERE state IN ('queued', 'deferred');

-- The inbound log (WIRE.md §5): one row per message, recipient and filter,
-- or per refused recipient (filter ''). post links a row to its POST while
-- that exists, so the row follows the post's state.
CREATE TABLE inbound_log (
    id              INTEGER PRIMARY KEY,
    received        INTEGER NOT NULL,
    received_offset INTEGER NOT NULL DEFAULT 0,
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'succeeded', 'deferred', 'failed', 'denied')),
    header_from     TEXT    NOT NULL DEFAULT '',
    rcpt            TEXT    NOT NULL DEFAULT '',
    host            TEXT    NOT NULL DEFAULT '',
    message_id      TEXT    NOT NULL DEFAULT '',
    queue_id        TEXT    NOT NULL DEFAULT '',
    filter          TEXT    NOT NULL DEFAULT '',
    reason          TEXT    NOT NULL DEFAULT '',
    post            INTEGER REFERENCES inbound_posts (id) ON DELETE SET NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX inbound_log_received ON inbound_log (received, id);
CREATE INDEX inbound_log_post ON inbound_log (post) WHERE post IS NOT NULL;

-- What the outbound milter role saw per queue ID (WIRE.md §2: from,
-- subject, apiData). recipients is a JSON array. Rows are pruned by age.
CREATE TABLE observations (
    host          TEXT    NOT NULL,
    queue_id      TEXT    NOT NULL CHECK (queue_id <> ''),
    seen_at       INTEGER NOT NULL,
    envelope_from TEXT    NOT NULL DEFAULT '',
    recipients    TEXT    NOT NULL DEFAULT '[]',
    header_from   TEXT    NOT NULL DEFAULT '',
    subject       TEXT    NOT NULL DEFAULT '',
    message_id    TEXT    NOT NULL DEFAULT '',
    api_data      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (host, queue_id)
) STRICT;
CREATE INDEX observations_seen ON observations (seen_at);
-- The Event Webhook looks observations up by the queue ID of a log line,
-- whose host (the syslog host field, often the first label only) need not
-- be the name the milter recorded.
CREATE INDEX observations_queue_id ON observations (queue_id);
