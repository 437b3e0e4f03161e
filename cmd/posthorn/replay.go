package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/posthorn/posthorn/sqlite"
)

const replayUsage = `usage:
  posthorn replay --since T [--until T] [--status S[,S...]] [--config FILE]

Queues the Event Webhook batches with any event in the period again (a
batch whose events straddle --since or --until is in it), to be posted as
soon as posthorn serve gets to them. A replayed batch keeps
its batch id (webhook-id) and its bytes, so its events keep their ids;
attempt numbers go on rising, and the retry schedule and period start
again. --status chooses which batches (default: succeeded,failed; batches
still queued or deferred are posted anyway). Times as in posthorn log.
`

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, replayUsage) }
	path := configFlag(fs)
	since := fs.String("since", "", "batches with events at or after this time (required)")
	until := fs.String("until", "", "batches with events before this time")
	status := fs.String("status", "succeeded,failed", "only batches in these statuses, comma-separated")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *since == "" {
		fmt.Fprint(stderr, "posthorn replay: --since is required\n\n"+replayUsage)
		return exitConfig
	}
	now := time.Now()
	q, err := logQuery(*since, *until, *status, now)
	if err != nil {
		fmt.Fprintf(stderr, "posthorn replay: %v\n", err)
		return exitConfig
	}
	_, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn replay", err)
	}
	defer store.Close()
	batches, events, err := store.Requeue(ctx, q, now)
	if err != nil {
		return report(stderr, "posthorn replay", store.Explain(err))
	}
	fmt.Fprintf(stdout, "re-queued %d batches (%d events) with events %s; posthorn serve posts them within seconds\n",
		batches, events, period(q))
	return exitOK
}

func period(q sqlite.WebhookLogQuery) string {
	switch {
	case q.Until.IsZero():
		return "since " + received(q.Since)
	default:
		return "from " + received(q.Since) + " to " + received(q.Until)
	}
}
