package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

const logUsage = `usage:
  posthorn log events [--since T] [--until T] [--status S[,S...]] [--csv] [--limit N] [--config FILE]
  posthorn log events --batch ID [--config FILE]

Prints the Event Webhook log: one row per batch (one POST), with the time
of its first event, status (queued, deferred, succeeded, failed), the HTTP
code of the last attempt, host name, endpoint URL and, for deferred and
failed batches, the reason (WIRE.md: a reason belongs to those two
statuses only). --since and --until select the batches with any event in
the period: RFC 3339, "2006-01-02 15:04[:05]" or a date in the local zone,
or a duration before now ("2h", "3d"). --csv writes the columns
received,status,hostName,endpointUrl,reason (UTF-8, LF). Endpoint URLs are
shown without their query and user information, where tokens are kept.
--batch shows one batch with every attempt (HTTP code, reason, the first
512 bytes of the answer) and its events.
`

func runLog(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	since := fs.String("since", "", "only batches with events at or after this time")
	until := fs.String("until", "", "only batches with events before this time")
	status := fs.String("status", "", "only these statuses, comma-separated: queued, deferred, succeeded, failed")
	asCSV := fs.Bool("csv", false, "write CSV: received,status,hostName,endpointUrl,reason")
	limit := fs.Int("limit", 0, "at most this many rows (0: all)")
	batch := fs.String("batch", "", "show one batch with its attempts and events")
	_, _, code, ok := subcommand(fs, args, logUsage, "events")
	if !ok {
		return code
	}
	q, err := logQuery(*since, *until, *status, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "posthorn log events: %v\n", err)
		return exitConfig
	}
	if *limit < 0 {
		fmt.Fprintln(stderr, "posthorn log events: --limit must not be negative")
		return exitConfig
	}
	q.Limit = *limit
	_, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn log events", err)
	}
	defer store.Close()
	if *batch != "" {
		return showBatch(ctx, store, *batch, stdout, stderr)
	}
	rows, err := store.WebhookLog(ctx, q)
	if err != nil {
		return report(stderr, "posthorn log events", store.Explain(err))
	}
	if *asCSV {
		err = writeLogCSV(stdout, rows)
	} else {
		err = writeLogTable(stdout, rows)
	}
	if err != nil {
		fmt.Fprintf(stderr, "posthorn log events: %v\n", err)
		return exitFail
	}
	return exitOK
}

// parsePeriod reads --since and --until (either may be empty) and checks
// that the period is not empty.
func parsePeriod(since, until string, now time.Time) (from, to time.Time, err error) {
	if since != "" {
		if from, err = parseTime(since, now); err != nil {
			return from, to, fmt.Errorf("--since: %w", err)
		}
	}
	if until != "" {
		if to, err = parseTime(until, now); err != nil {
			return from, to, fmt.Errorf("--until: %w", err)
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return from, to, fmt.Errorf("--until %s is not after --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	return from, to, nil
}

// logQuery builds the selection of log and replay from their flags.
func logQuery(since, until, status string, now time.Time) (sqlite.WebhookLogQuery, error) {
	var q sqlite.WebhookLogQuery
	var err error
	if q.Since, q.Until, err = parsePeriod(since, until, now); err != nil {
		return q, err
	}
	if status != "" {
		for _, st := range strings.Split(status, ",") {
			st = strings.TrimSpace(st)
			switch st {
			case sqlite.StateQueued, sqlite.StateDeferred, sqlite.StateSucceeded, sqlite.StateFailed:
				q.States = append(q.States, st)
			default:
				return q, fmt.Errorf("--status: unknown status %q: want queued, deferred, succeeded or failed", st)
			}
		}
	}
	return q, nil
}

// received is the CSV's and the table's time: RFC 3339 in the local zone.
func received(t time.Time) string { return t.Local().Format(time.RFC3339) }

// logReason is the reason a log row shows: WIRE.md §5 defines it for
// deferred and failed rows only ("error reason for deferred and failed"),
// so a succeeded row does not repeat its HTTP status there and a queued one
// (new or replayed) has none; the HTTP code has its own column in the
// table, and every attempt's reason is in the batch's detail.
func logReason(state, reason string) string {
	if state == sqlite.StateDeferred || state == sqlite.StateFailed {
		return reason
	}
	return ""
}

// writeLogCSV writes WIRE.md §5's columns. encoding/csv ends records with
// LF; reasons come from Postfix and receivers, so invalid UTF-8 is
// replaced to keep the file UTF-8.
func writeLogCSV(w io.Writer, rows []sqlite.WebhookBatch) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"received", "status", "hostName", "endpointUrl", "reason"}); err != nil {
		return err
	}
	for _, b := range rows {
		if err := cw.Write([]string{received(b.Received), b.State, event.ValidUTF8(b.Host), settings.LogEndpoint(b.Endpoint), event.ValidUTF8(logReason(b.State, b.Reason))}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeLogTable(w io.Writer, rows []sqlite.WebhookBatch) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSTATUS\tCODE\tTYPE\tEVENTS\tATTEMPTS\tHOST\tENDPOINT\tREASON\tBATCH")
	for _, b := range rows {
		code := "-"
		if b.LastStatus != 0 {
			code = strconv.Itoa(b.LastStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", received(b.Received), b.State, code, b.Family, b.Events,
			b.Attempts, oneLine(b.Host, 60), settings.LogEndpoint(b.Endpoint), oneLine(logReason(b.State, b.Reason), 100), b.ID)
	}
	return tw.Flush()
}

// oneLine keeps a table row on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(event.ValidUTF8(s)), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

func showBatch(ctx context.Context, store *sqlite.Store, id string, stdout, stderr io.Writer) int {
	b, attempts, ok, err := store.WebhookBatchByID(ctx, id)
	if err != nil {
		return report(stderr, "posthorn log events", store.Explain(err))
	}
	if !ok {
		fmt.Fprintf(stderr, "posthorn log events: no batch %s\n", id)
		return exitFail
	}
	fmt.Fprintf(stdout, "batch     %s\ntype      %s, %d events (%s to %s)\nstatus    %s\n", b.ID, b.Family, b.Events,
		received(b.Received), received(b.LastEvent), b.State)
	if !b.NextAttempt.IsZero() {
		fmt.Fprintf(stdout, "next      %s\n", received(b.NextAttempt))
	}
	if r := logReason(b.State, b.Reason); r != "" {
		fmt.Fprintf(stdout, "reason    %s\n", r)
	} else if b.State == sqlite.StateQueued && b.Reason == "replayed" {
		fmt.Fprintln(stdout, "replayed  queued again by posthorn replay")
	}
	fmt.Fprintf(stdout, "host      %s\nendpoint  %s\nattempts  %d\n", b.Host, settings.LogEndpoint(b.Endpoint), b.Attempts)
	if b.Body != nil {
		fmt.Fprintf(stdout, "body      %s, %d bytes, frozen at the first attempt\n", b.ContentType, len(b.Body))
	}
	for _, a := range attempts {
		fmt.Fprintf(stdout, "\nattempt %d at %s from %s to %s\n  %s, HTTP %d: %s\n", a.Attempt, received(a.At), a.Host, settings.LogEndpoint(a.Endpoint), a.State, a.Status, a.Reason)
		if len(a.Response) > 0 {
			fmt.Fprintf(stdout, "  answer: %q\n", a.Response)
		}
	}
	evs, err := store.BatchEvents(ctx, id)
	if err != nil {
		return report(stderr, "posthorn log events", store.Explain(err))
	}
	fmt.Fprintln(stdout, "\nevents:")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, e := range evs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Format(time.RFC3339), e.Type, e.Recipient(), e.MessageID)
	}
	tw.Flush()
	return exitOK
}
