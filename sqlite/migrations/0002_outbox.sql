-- Reserved for the Event Webhook issue (batches, attempts, outbox).
-- Until that issue fills it in, this version changes nothing.
SELECT 1;
