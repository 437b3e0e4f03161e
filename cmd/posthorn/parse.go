package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/logtail"
)

// sample is a maillog written by a real Postfix 3.7 (see
// logtail/testdata/real), bundled so a newcomer can see Posthorn's output
// without a mail server.
//
//go:embed sample.log
var sample string

func runParse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "jsonl", "output format: jsonl or csv")
	tz := fs.String("tz", "", "IANA time zone of log timestamps without an offset (default: local)")
	year := fs.Int("year", 0, "year of the first year-less timestamp (default: inferred from the file's modification time)")
	useSample := fs.Bool("sample", false, "parse the bundled sample maillog instead of files")
	notifications := fs.Bool("notifications", false, "also report deliveries of Postfix's own bounce notifications")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: posthorn parse [--format jsonl|csv] [--tz ZONE] [--year YYYY] [FILE...]\n\n"+
			"Reads maillog text (stdin when no FILE is given; .gz files too) and prints one\n"+
			"delivery event per line. A summary goes to stderr.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if os.Getenv("GOGC") == "" {
		// parse is a batch job whose live heap is small (the messages
		// still open, a batch of lines): collecting a quarter as often
		// costs about 15 MB and saves about a fifth of its CPU time.
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	if *format != "jsonl" && *format != "csv" {
		fmt.Fprintf(stderr, "posthorn parse: --format: must be jsonl or csv, got %q\n", *format)
		return exitConfig
	}
	loc := time.Local
	if *tz != "" {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			fmt.Fprintf(stderr, "posthorn parse: --tz: unknown time zone %q\n", *tz)
			return exitConfig
		}
		loc = l
	}
	if *year != 0 && (*year < 1970 || *year > 9999) {
		fmt.Fprintf(stderr, "posthorn parse: --year: must be between 1970 and 9999, got %d\n", *year)
		return exitConfig
	}

	out := bufio.NewWriterSize(stdout, 256<<10)
	sink := &printSink{w: out}
	if *format == "csv" {
		sink.csv = csv.NewWriter(out)
		sink.csv.UseCRLF = false
		sink.csv.Write(csvHeader)
	}
	corr := logtail.NewCorrelator(logtail.CorrelatorOptions{ReportNotifications: *notifications})
	var (
		res   *logtail.Resolver
		total logtail.Summary
		read  int
	)
	inputs := fs.Args()
	if *useSample {
		inputs = []string{sampleName}
	} else if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	for _, name := range inputs {
		src, mtime, err := openInput(name)
		if err != nil {
			fmt.Fprintf(stderr, "posthorn parse: %v\n", err)
			continue
		}
		if res == nil {
			res = logtail.NewResolver(loc, mtime, *year)
		}
		t := &logtail.Tailer{Source: src, Sink: sink, Resolver: res, Correlator: corr}
		err = t.Run(ctx)
		src.Close()
		sum := t.Summary()
		total = addSummary(total, sum)
		// An input counts as read unless it failed before its first line:
		// a truncated archive whose head was read is a partial read, an
		// unreadable file or a broken gzip header is nothing.
		if err == nil || sum.Lines > 0 {
			read++
		}
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(stderr, "posthorn parse: %s: interrupted\n", displayName(name))
				break
			}
			// The source's errors name the file already.
			fmt.Fprintf(stderr, "posthorn parse: %v\n", err)
		}
	}
	// A "sent" to a loopback relay whose queue ID the input never showed
	// waits in the correlator for the original's removal; the input has
	// ended, so it is a delivery (README, posthorn parse).
	if evs := corr.SettleHeld(); len(evs) > 0 {
		_ = sink.Commit(ctx, event.Batch{Events: evs}) // write errors show at out.Flush
	}
	if sink.csv != nil {
		sink.csv.Flush()
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "posthorn parse: write: %v\n", err)
		return exitFail
	}
	printSummary(stderr, total, corr)
	if read == 0 {
		return exitFail
	}
	return exitOK
}

const sampleName = "(bundled sample)"

// sampleWritten is when sample.log was captured: the year of its stamps.
var sampleWritten = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

func addSummary(a, b logtail.Summary) logtail.Summary {
	a.Lines += b.Lines
	a.Postfix += b.Postfix
	a.NotPostfix += b.NotPostfix
	a.NotUnderstood += b.NotUnderstood
	a.Overlong += b.Overlong
	a.LogLoss += b.LogLoss
	for _, ex := range b.Examples {
		if len(a.Examples) < logtail.MaxExamples {
			a.Examples = append(a.Examples, ex)
		}
	}
	return a
}

var eventOrder = []event.Type{event.Queued, event.Succeeded, event.Deferred, event.Failed, event.Bounced}

func printSummary(w io.Writer, s logtail.Summary, corr *logtail.Correlator) {
	st := corr.Stats()
	fmt.Fprintf(w, "lines read: %d\nPostfix lines recognised: %d\n", s.Lines, s.Postfix)
	var parts []string
	for _, t := range eventOrder {
		parts = append(parts, fmt.Sprintf("%s %d", t, st.Events[t]))
	}
	fmt.Fprintf(w, "events: %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "Postfix lines not understood: %d\n", s.NotUnderstood)
	for _, ex := range s.Examples {
		// Quoted: a log line may hold terminal escapes.
		fmt.Fprintf(w, "  %s\n", strconv.Quote(ex))
	}
	fmt.Fprintf(w, "non-Postfix lines skipped: %d\n", s.NotPostfix)
	fmt.Fprintf(w, "SMTP-time and cleanup rejects (not deliveries): %d\n", st.Rejects)
	if s.Overlong > 0 {
		fmt.Fprintf(w, "warning: over-long lines (only their first %d bytes read; Postfix writes at most 2000): %d\n", logtail.DefaultMaxLine, s.Overlong)
	}
	if s.LogLoss > 0 {
		fmt.Fprintf(w, "warning: the system logger reported dropping messages (%d reports): some delivery outcomes may be missing\n", s.LogLoss)
	}
	if st.Unknown > 0 {
		fmt.Fprintf(w, "recipients with outcome unknown (message removed or lost without a final status): %d\n", st.Unknown)
	}
	if n := corr.Open(); n > 0 {
		fmt.Fprintf(w, "messages still open at end of input: %d\n", n)
	}
	switch {
	case s.Lines > 0 && s.Postfix == 0 && s.NotUnderstood > 0:
		fmt.Fprintln(w, "warning: no Postfix line was understood: the log looks like Postfix's, but in a form\n"+
			"  this version does not read (see the examples above)")
	case s.Lines > 0 && s.Postfix == 0:
		fmt.Fprintln(w, "warning: no Postfix line found: this is not a Postfix log (expected lines such as\n"+
			"  \"Nov  7 10:00:00 mx postfix/smtp[123]: 4A1B2C3D4E: to=<...>, ..., status=sent (...)\")")
	}
}

var csvHeader = []string{"id", "event", "time", "host", "queueId", "messageId", "returnPath", "to", "origTo", "relay", "dsn", "reason", "delay", "class", "size", "sourceIp"}

// printSink writes events as JSON lines or CSV rows.
type printSink struct {
	w   *bufio.Writer
	csv *csv.Writer
	buf []byte
	row []string
}

func (p *printSink) Commit(_ context.Context, b event.Batch) error {
	for i := range b.Events {
		ev := &b.Events[i]
		if p.csv != nil {
			class := ""
			if ev.Class != event.ClassNone {
				class = strconv.Itoa(int(ev.Class))
			}
			size := ""
			if ev.Size != 0 {
				size = strconv.FormatInt(ev.Size, 10)
			}
			p.row = append(p.row[:0], ev.ID, string(ev.Type), ev.Time.Format(time.RFC3339Nano), ev.Host, ev.QueueID,
				ev.MessageID, ev.ReturnPath, ev.To, ev.OrigTo, ev.Relay, ev.DSN, ev.Reason, ev.Delay, class, size, ev.SourceIP)
			for i, f := range p.row {
				// As in the JSON output: invalid UTF-8 (a log line is
				// bytes) becomes U+FFFD, so spreadsheets get valid text.
				p.row[i] = event.ValidUTF8(f)
			}
			if err := p.csv.Write(p.row); err != nil {
				return err
			}
			continue
		}
		p.buf = append(ev.AppendJSON(p.buf[:0]), '\n')
		if _, err := p.w.Write(p.buf); err != nil {
			return err
		}
	}
	return nil
}

// openInput opens one input of `posthorn parse` and says when it was last
// written, which anchors the year of year-less time stamps.
func openInput(name string) (logtail.Source, time.Time, error) {
	if name == sampleName {
		src, err := logtail.NewReaderSource([]string{logtail.Stdin}, logtail.ReaderOptions{Stdin: strings.NewReader(sample)})
		return src, sampleWritten, err
	}
	mtime := time.Now()
	if name != logtail.Stdin {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("read log: %w", err)
		}
		mtime = fi.ModTime()
	}
	src, err := logtail.NewReaderSource([]string{name}, logtail.ReaderOptions{})
	return src, mtime, err
}
