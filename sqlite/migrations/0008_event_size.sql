-- Schema version 8: the message size on every delivery event (issue 2:
-- "attach the message-level facts (message-id, envelope sender, size,
-- client) to every recipient event"). Conventions as in 0001_init.sql.

-- qmgr's size= in bytes, from the message's first "(queue active)" line
-- (the original's, for a content filter's or alias's new message); 0 when
-- the log did not show it, and for events stored before this version.
ALTER TABLE events ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
