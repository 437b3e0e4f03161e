-- Schema version 9: the Event Webhook's retry period counts from when a
-- batch was formed, batches go out in event order, and serve learns of a
-- replay made by another process. Conventions as in 0001_init.sql.

-- retry_since is when the batch's retry period began: when it was formed,
-- or when it was last replayed. Counting from the first attempt let a
-- batch that waited days behind a dead endpoint start its period late, so
-- an outage longer than the period failed nothing. A batch of an older
-- version keeps the start it had: its first attempt when it was made one,
-- else when it was formed.
ALTER TABLE webhook_batches ADD COLUMN retry_since INTEGER NOT NULL DEFAULT 0;
UPDATE webhook_batches SET retry_since = CASE
    WHEN first_attempt_at IS NOT NULL THEN first_attempt_at
    WHEN retry_from > 0 THEN updated_at
    ELSE created_at END;
-- The pending batch whose period ends first, to fail it then.
CREATE INDEX webhook_batches_period ON webhook_batches (retry_since)
    WHERE state IN ('queued', 'deferred');

-- How many times `posthorn replay` (or the console) re-queued batches.
-- serve looks at it while the endpoint is held, so that a replay made by
-- another process is tried within a second rather than after the hold.
CREATE TABLE webhook_replays (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    replays INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO webhook_replays (id, replays) VALUES (1, 0);
