-- Schema version 5: the suppression list ("Blocks", issue 7). Conventions
-- as in 0001_init.sql, except that the optional instants below are NULL
-- when absent: "not yet" is a state the partial indexes select on.

-- One row per suppression: requested (created_at), taking effect at
-- scheduled_at (the daily execution time, or at once), registered when it
-- did (registered_at, with its `registered` event), lifted by the watch
-- period (expires_at) or by `blocks del` (removed_at, with a `deleted`
-- event), or cancelled before it took effect (removed_at, cancelled = 1, no
-- event). Rows are kept after removal: they are the list's history, which
-- `blocks list --removed` and the export show.
--
-- address is normalised (blocks.Normalize): domain in lower case, local
-- part as given. reason is "manual", "unsubscribe" or a bounce class
-- number (WIRE.md §2 blocks records).
CREATE TABLE blocks (
    id            INTEGER PRIMARY KEY,
    address       TEXT    NOT NULL CHECK (address <> ''),
    reason        TEXT    NOT NULL CHECK (reason <> ''),
    occurrences   INTEGER NOT NULL DEFAULT 0 CHECK (occurrences >= 0),
    created_at    INTEGER NOT NULL,
    scheduled_at  INTEGER NOT NULL,
    registered_at INTEGER,
    expires_at    INTEGER,
    removed_at    INTEGER,
    cancelled     INTEGER NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1)),
    CHECK (registered_at IS NULL OR registered_at >= scheduled_at),
    CHECK (cancelled = 0 OR (removed_at IS NOT NULL AND registered_at IS NULL))
) STRICT;

-- At most one live entry (scheduled or registered) per address; this index
-- is also the lookup the milter's RCPT decision makes.
CREATE UNIQUE INDEX blocks_live ON blocks (address) WHERE removed_at IS NULL;

-- The scheduler's two questions: which scheduled entries are due, which
-- registered entries' watch periods have ended.
CREATE INDEX blocks_due ON blocks (scheduled_at)
    WHERE registered_at IS NULL AND removed_at IS NULL;
CREATE INDEX blocks_expiry ON blocks (expires_at)
    WHERE expires_at IS NOT NULL AND registered_at IS NOT NULL AND removed_at IS NULL;

-- The list screen and `blocks list` page newest first by creation.
CREATE INDEX blocks_created ON blocks (created_at, id);
