-- Schema version 10: the console finds the post that carried an event
-- (the event log's detail and CSV endpoint column). A family's batches
-- cover seq ranges that do not overlap, so the first batch of the family
-- ending at or after the event's seq is the one: a seek of this index.
CREATE INDEX webhook_batches_family_seq ON webhook_batches (family, last_seq);
