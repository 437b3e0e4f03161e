-- Schema version 6: API tokens for /api/v1/blocks (`posthorn token add
-- NAME`). Conventions as in 0005_blocks.sql: optional instants are NULL
-- when absent.

-- hash is the SHA-256 (hex) of the whole token, which is shown once when it
-- is made and never stored: someone who reads the database file or a backup
-- cannot call the API. A revoked token keeps its row (revoked_at set), so
-- that a client still using it is told 403 "revoked" rather than 401
-- "unknown", and `posthorn token list` shows when it was revoked; a new
-- token may then take the name (the partial index below).
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL CHECK (name <> ''),
    hash       TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64),
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT;

-- One live token per name: `posthorn token revoke NAME` must say which.
CREATE UNIQUE INDEX api_tokens_live ON api_tokens (name) WHERE revoked_at IS NULL;
