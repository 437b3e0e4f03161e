-- Reserved for the Inbound Webhook issue (captured mail, filters, inbound log, observations).
-- Until that issue fills it in, this version changes nothing.
SELECT 1;
