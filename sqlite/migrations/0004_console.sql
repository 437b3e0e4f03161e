-- Reserved for the web UI issue (users, sessions).
-- Until that issue fills it in, this version changes nothing.
SELECT 1;
