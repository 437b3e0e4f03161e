-- Schema version 7: bounce mail (DSNs) matched to the message it returns,
-- and the bounce counts behind automatic registration (issue 7).
-- Conventions as in 0001_init.sql.

-- A DSN names the message it returns by its Message-ID, a VERP bounce
-- address names the recipient. This table finds the deliveries (succeeded)
-- and bounces (bounced) of a message by the first, and of a recipient by
-- the second: one row per such event whose return path is a bounce
-- address (the only mail whose DSNs come back to Posthorn), and per
-- bounced event stored from a DSN. It is not an index on events: such an
-- index would cost every commit of the log reader a write on a random page
-- per event, because Message-IDs arrive in random order, also where no
-- bounce address is configured; here the rows are only written for mail
-- that can bounce back. message_id is '' for mail without one; rcpt is the
-- recipient as the sender addressed it, in lower case. seq is the event's
-- rowid in events.
CREATE TABLE bounce_lookup (
    message_id TEXT    NOT NULL,
    rcpt       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (message_id, seq)
) STRICT, WITHOUT ROWID;
-- A VERP bounce is only believed for a recipient Posthorn saw mail
-- delivered to: anyone can send mail to a bounce address.
CREATE INDEX bounce_lookup_rcpt ON bounce_lookup (rcpt, seq);

-- Each bounced event adds one to its recipient's count for its class
-- (classes 10 and 11, the list's own refusals, are not counted), in the
-- transaction that stores the event. address is the recipient as the
-- suppression list holds addresses (blocks.Normalize). count is the number
-- of bounces since the address was last registered automatically for this
-- class: a registration puts it into the entry's occurrences and sets it
-- back to 0.
CREATE TABLE bounce_counts (
    address TEXT    NOT NULL CHECK (address <> ''),
    class   INTEGER NOT NULL CHECK (class > 0),
    count   INTEGER NOT NULL CHECK (count >= 0),
    last_at INTEGER NOT NULL,
    PRIMARY KEY (address, class)
) STRICT, WITHOUT ROWID;

-- One row per bounce message read by the inbound milter role. id is the
-- DSN's own identity (its Message-ID, or a digest of its body when it has
-- none): a DSN delivered again, because the sending MTA retried after a
-- lost answer or a crash here, finds its row and changes nothing.
-- message_id is the original message's, as the DSN named it ('' when it
-- did not). outcome is 'recorded' (bounced events stored), 'known' (every
-- recipient's bounce was already stored) or 'unmatched' (no delivery of
-- the original to its recipients is stored). pending holds, for a day, a
-- DSN (as JSON) with a recipient that could not be matched yet although it
-- names the original's Message-ID: the log reader may not have stored the
-- delivery yet when a quick bounce arrives, and storing it matches the DSN
-- then (bounces.go).
CREATE TABLE dsns (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    received_at INTEGER NOT NULL,
    message_id  TEXT    NOT NULL DEFAULT '',
    outcome     TEXT    NOT NULL CHECK (outcome IN ('recorded', 'known', 'unmatched')),
    pending     TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX dsns_pending ON dsns (message_id) WHERE pending IS NOT NULL;
