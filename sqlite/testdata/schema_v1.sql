-- FROZEN: schema version 1 as released, with a few rows, for upgrade tests.
-- Never edit this file; TestFrozenV1 checks that migrations/0001_init.sql
-- still creates exactly this schema.

-- Schema version 1: delivery events, the log reader's open messages and
-- position, and the outbox the dispatcher drains.
--
-- Conventions for every table:
--   * instants are Unix nanoseconds (UTC) in INTEGER columns, so they sort and
--     compare as numbers; where the zone matters a *_offset column keeps the
--     offset (seconds east of UTC) the time was resolved in;
--   * absent strings are '' rather than NULL, so readers never scan NULLs;
--   * tables are STRICT, so a wrongly typed bind is an error, not a silent
--     conversion.
-- Once released this file never changes: later schema changes are new files
-- (0002_*.sql, ...). testdata/schema_v1.sql is the frozen copy tests compare.

-- One row per delivery event (WIRE.md record).
--
-- id is the stable event id: a hash of the event and its log line, random
-- in order. A unique index on id alone would put each new row on a random
-- leaf page, so a batch of N events would dirty about N pages of that index
-- and write them to the WAL and back at checkpoint; in BenchmarkCommit that
-- made commits 2 to 3 times slower, with 5 times the system time. The id
-- hash covers the event's time, so (time, id) is unique exactly when id is,
-- and its index grows at the end like the log does. That index makes a batch
-- committed again after a crash a no-op and serves reads ordered by time.
-- Rows have a rowid (seq) for other tables to point at.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL CHECK (id <> ''),
    type        TEXT    NOT NULL CHECK (type <> ''),
    time        INTEGER NOT NULL,
    time_offset INTEGER NOT NULL DEFAULT 0,
    host        TEXT    NOT NULL DEFAULT '',
    queue_id    TEXT    NOT NULL DEFAULT '',
    message_id  TEXT    NOT NULL DEFAULT '',
    return_path TEXT    NOT NULL DEFAULT '',
    rcpt_to     TEXT    NOT NULL DEFAULT '',
    orig_to     TEXT    NOT NULL DEFAULT '',
    relay       TEXT    NOT NULL DEFAULT '',
    dsn         TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    delay       TEXT    NOT NULL DEFAULT '',
    class       INTEGER NOT NULL DEFAULT 0,
    source_ip   TEXT    NOT NULL DEFAULT '',
    sender_ip   TEXT    NOT NULL DEFAULT '',
    attempt     INTEGER NOT NULL DEFAULT 0,
    from_hdr    TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL DEFAULT '',
    api_data    TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX events_time ON events (time, id);
CREATE INDEX events_type_time ON events (type, time, id);

-- The log reader's open messages, rewritten with every commit so that a
-- restart resumes mid-message. A row is deleted when Postfix logs "removed":
-- short queue IDs are reused after that.
CREATE TABLE messages (
    host              TEXT    NOT NULL,
    queue_id          TEXT    NOT NULL CHECK (queue_id <> ''),
    message_id        TEXT    NOT NULL DEFAULT '',
    return_path       TEXT    NOT NULL DEFAULT '',
    client_ip         TEXT    NOT NULL DEFAULT '',
    first_seen        INTEGER,
    first_seen_offset INTEGER NOT NULL DEFAULT 0,
    last_seen         INTEGER,
    last_seen_offset  INTEGER NOT NULL DEFAULT 0,
    state             BLOB,
    PRIMARY KEY (host, queue_id)
) STRICT;

-- Where each log source was read up to. dev and inode hold the bits of the
-- unsigned stat values in a signed INTEGER. The byte offset is file_offset
-- because OFFSET is a reserved word in SQL.
CREATE TABLE cursors (
    source      TEXT    NOT NULL PRIMARY KEY CHECK (source <> ''),
    dev         INTEGER NOT NULL DEFAULT 0,
    inode       INTEGER NOT NULL DEFAULT 0,
    file_offset INTEGER NOT NULL DEFAULT 0 CHECK (file_offset >= 0),
    journal     TEXT    NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL
) STRICT;

-- Work for the dispatcher: one row per (webhook, event) to post; event_seq
-- points at the event's row. Workers
-- lease due rows, POST outside any transaction and record the result
-- (ARCHITECTURE.md, "Storage principles").
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    webhook         TEXT    NOT NULL,
    family          TEXT    NOT NULL,
    event_seq       INTEGER REFERENCES events (seq),
    state           TEXT    NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    last_error      TEXT    NOT NULL DEFAULT '',
    batch_id        TEXT,
    created_at      INTEGER NOT NULL
) STRICT;

-- "Is anything due for this webhook?": equality columns first, then the
-- ordering column (DISPATCHER.md §4.1 measured 77x against no index).
CREATE INDEX outbox_due ON outbox (webhook, state, next_attempt_at);
-- Deleting an event checks this foreign key; without the index every
-- delete would scan the outbox.
CREATE INDEX outbox_event ON outbox (event_seq);

-- Sample rows, as version 1 stored them.
INSERT INTO events (seq, id, type, time, time_offset, host, queue_id, message_id, return_path,
    rcpt_to, orig_to, relay, dsn, reason, delay, class, source_ip, sender_ip, attempt,
    from_hdr, subject, api_data, created_at)
VALUES
    (1, '6f1c0e5b2a9d4c3e8f7a6b5c4d3e2f10', 'failed', 1748763000123456789, 7200, 'mx1.example.net',
     '4bX0000001Zq004', '<20250601093000.1@app.example.com>', 'bounces+12345@app.example.com',
     'user1@example.org', '', 'mx.example.org[192.0.2.25]:25', '5.1.1',
     'host mx.example.org[192.0.2.25] said: 550 5.1.1 User unknown', '0.84', 0,
     '198.51.100.7', '192.0.2.25', 1, '', '', '', 1748763001000000000),
    (2, '0a1b2c3d4e5f60718293a4b5c6d7e8f9', 'bounced', 1748763000123456789, 7200, 'mx1.example.net',
     '4bX0000001Zq004', '<20250601093000.1@app.example.com>', 'bounces+12345@app.example.com',
     'user1@example.org', '', 'mx.example.org[192.0.2.25]:25', '5.1.1',
     'host mx.example.org[192.0.2.25] said: 550 5.1.1 User unknown', '0.84', 2,
     '198.51.100.7', '192.0.2.25', 1, '', '', '', 1748763001000000000);
INSERT INTO messages (host, queue_id, message_id, return_path, client_ip, first_seen,
    first_seen_offset, last_seen, last_seen_offset, state)
VALUES ('mx1.example.net', '4bX0000002Zq008', '<20250601093000.2@app.example.com>',
    'bounces+12345@app.example.com', '198.51.100.7', 1748763000000000000, 7200,
    1748763002000000000, 7200, X'7b7d');
INSERT INTO cursors (source, dev, inode, file_offset, journal, updated_at)
VALUES ('file:/var/log/mail.log', 2049, 131, 8192, '', 1748763001000000000);
INSERT INTO outbox (webhook, family, event_seq, state, attempts, next_attempt_at, created_at)
VALUES ('event', 'deliveries', 1, 'pending', 0, 1748763001000000000, 1748763001000000000),
       ('event', 'bounces', 2, 'pending', 0, 1748763001000000000, 1748763001000000000);

PRAGMA user_version = 1;
