-- Schema version 4: the web console's users, sessions and failed logins.
-- Conventions as in 0001_init.sql (Unix nanoseconds, '' for absent
-- strings, STRICT tables).

-- People who may log in to the console (`posthorn user add NAME`). The
-- password is kept only as a self-describing hash string such as
-- "$argon2id$v=19$m=65536,t=3,p=4$salt$hash", so that its parameters can be
-- raised later without a migration.
CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY CHECK (name <> ''),
    password_hash TEXT    NOT NULL CHECK (password_hash <> ''),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Logged-in browsers. id is the SHA-256 (hex) of the random cookie value, so
-- that someone who can read the database file or a backup cannot act as a
-- logged-in user. Deleting a user, or changing the password, ends the
-- user's sessions (the CASCADE, and SetUserPassword).
CREATE TABLE sessions (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 64),
    user_name  TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
) STRICT;

-- Ending a user's sessions, and the foreign-key check when a user is
-- deleted, look sessions up by user.
CREATE INDEX sessions_user ON sessions (user_name);

-- Failed logins, one row per failure and key ("addr:" + client address or
-- "user:" + user name), counted over the last minute to refuse the 11th.
-- Kept in the database rather than in memory so a restart does not reset
-- the count; rows older than an hour are pruned as new ones are added.
CREATE TABLE login_failures (
    key TEXT    NOT NULL CHECK (key <> ''),
    at  INTEGER NOT NULL
) STRICT;

CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- The console's inbound log screen searches by status and period, newest
-- first (issue 5: 100 ms with a million rows): each status is read from
-- its own range of this index.
CREATE INDEX inbound_log_status ON inbound_log (status, received, id);
