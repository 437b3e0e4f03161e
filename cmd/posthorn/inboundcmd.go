package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/zipaes"
)

const logInboundUsage = `usage:
  posthorn log inbound [--since T] [--until T] [--status S[,S...]] [--limit N] [--config FILE]
  posthorn log inbound ... --csv
  posthorn log inbound ... --zip FILE --password-file F

Prints the inbound log: one row per received message, recipient and
filter, with its time, status (queued, deferred, succeeded, failed,
denied), header From, recipient, host, Message-ID, filter and reason.
--since and --until select by time as for "log events". --csv writes the
columns received,status,from,to,hostName,messageId,filterName,reason (UTF-8,
LF) to standard output; --zip writes the same CSV as inbound-log.csv inside
a ZIP encrypted with AES-256 (WinZip AE-2; 7-Zip, WinZip and the file
managers of Windows and macOS open it), with the password read from the
first line of --password-file (- for standard input).
`

// inboundCSVHeader is WIRE.md §5's column list of the inbound log.
var inboundCSVHeader = []string{"received", "status", "from", "to", "hostName", "messageId", "filterName", "reason"}

func runLogInbound(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("log inbound", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, logInboundUsage) }
	path := configFlag(fs)
	since := fs.String("since", "", "only rows at or after this time")
	until := fs.String("until", "", "only rows before this time")
	status := fs.String("status", "", "only these statuses, comma-separated: queued, deferred, succeeded, failed, denied")
	limit := fs.Int("limit", 0, "at most this many rows (0: all)")
	asCSV := fs.Bool("csv", false, "write CSV to standard output")
	zipFile := fs.String("zip", "", "write the CSV into this AES-256 encrypted ZIP file")
	pwFile := fs.String("password-file", "", "file whose first line is the ZIP password (- for standard input)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	q, err := inboundQuery(*since, *until, *status, time.Now())
	if err == nil && *limit < 0 {
		err = errors.New("--limit must not be negative")
	}
	if err == nil && *zipFile != "" && *asCSV {
		err = errors.New("--csv and --zip cannot be combined")
	}
	if err == nil && (*zipFile == "") != (*pwFile == "") {
		err = errors.New("--zip and --password-file go together")
	}
	if err != nil {
		fmt.Fprintf(stderr, "posthorn log inbound: %v\n", err)
		return exitConfig
	}
	q.Limit = *limit
	password := ""
	if *zipFile != "" {
		if password, err = readZipPassword(*pwFile); err != nil {
			fmt.Fprintf(stderr, "posthorn log inbound: %v\n", err)
			return exitConfig
		}
	}
	_, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn log inbound", err)
	}
	defer store.Close()

	switch {
	case *zipFile != "":
		err = writeInboundZip(ctx, store, q, *zipFile, password, stdout)
		if err == nil && *zipFile != "-" {
			fmt.Fprintf(stderr, "wrote %s\n", *zipFile)
		}
	case *asCSV:
		err = writeInboundCSV(ctx, store, q, stdout)
	default:
		err = writeInboundTable(ctx, store, q, stdout)
	}
	if err != nil {
		return report(stderr, "posthorn log inbound", store.Explain(err))
	}
	return exitOK
}

func inboundQuery(since, until, status string, now time.Time) (event.InboundQuery, error) {
	var q event.InboundQuery
	var err error
	if q.Since, q.Until, err = parsePeriod(since, until, now); err != nil {
		return q, err
	}
	if status != "" {
		for _, st := range strings.Split(status, ",") {
			s := event.InboundStatus(strings.TrimSpace(st))
			if !s.Valid() {
				return q, fmt.Errorf("--status: unknown status %q: want queued, deferred, succeeded, failed or denied", st)
			}
			q.Statuses = append(q.Statuses, s)
		}
	}
	return q, nil
}

// readZipPassword reads the first line of a file (or of standard input).
func readZipPassword(file string) (string, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, 4096))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("read --password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", errors.New("read --password-file: the first line is empty")
	}
	return line, nil
}

// writeInboundCSV streams the rows as WIRE.md §5's CSV: UTF-8 (invalid
// bytes replaced) with LF line ends, which encoding/csv writes.
func writeInboundCSV(ctx context.Context, store *sqlite.Store, q event.InboundQuery, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(inboundCSVHeader); err != nil {
		return err
	}
	err := store.EachInboundLog(ctx, q, func(e *event.InboundLogEntry) error {
		return cw.Write([]string{received(e.Time), string(e.Status), event.ValidUTF8(e.From), event.ValidUTF8(e.To), event.ValidUTF8(e.Host),
			event.ValidUTF8(e.MessageID), event.ValidUTF8(e.Filter), event.ValidUTF8(e.Reason)})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// writeInboundZip writes the CSV into an encrypted ZIP, beside the target
// first and renamed into place, so that a failed export leaves no partial
// file; the archive is created with mode 0600.
func writeInboundZip(ctx context.Context, store *sqlite.Store, q event.InboundQuery, file, password string, stdout io.Writer) error {
	fill := func(w io.Writer) error { return writeInboundCSV(ctx, store, q, w) }
	if file == "-" {
		return zipaes.Write(stdout, "inbound-log.csv", password, time.Now(), fill)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".posthorn-log-*.zip")
	if err != nil {
		return err
	}
	err = zipaes.Write(tmp, "inbound-log.csv", password, time.Now(), fill)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func writeInboundTable(ctx context.Context, store *sqlite.Store, q event.InboundQuery, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSTATUS\tFROM\tTO\tHOST\tMESSAGE-ID\tFILTER\tREASON")
	err := store.EachInboundLog(ctx, q, func(e *event.InboundLogEntry) error {
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", received(e.Time), e.Status, oneLine(e.From, 60),
			oneLine(e.To, 60), e.Host, oneLine(e.MessageID, 60), oneLine(e.Filter, 40), oneLine(e.Reason, 100))
		return err
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}

// inboundDoc is the inbound: section of the settings YAML document.
type inboundDoc struct {
	Inbound *settings.Inbound `yaml:"inbound"`
}

// inboundSection returns the YAML of the saved inbound settings as a
// top-level inbound: map, to follow the event_webhook: map in an export.
func inboundSection(ctx context.Context, store *sqlite.Store) ([]byte, error) {
	// Unsaved settings export as the empty defaults they are, so that an
	// export imports back to an identical export.
	s, _, err := store.InboundSettings(ctx)
	if err != nil {
		return nil, err
	}
	if s.Domains == nil {
		s.Domains = []string{}
	}
	if s.Filters == nil {
		s.Filters = []settings.InboundFilter{}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(inboundDoc{Inbound: &s}); err != nil {
		return nil, fmt.Errorf("export inbound settings: %w", err)
	}
	enc.Close()
	return b.Bytes(), nil
}
