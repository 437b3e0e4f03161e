package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/posthorn/posthorn/blocks"
	"github.com/posthorn/posthorn/sqlite"
)

// blocksCommand is registered by serve.go's init: this file's name sorts
// before main.go, whose init sets the command table (see usercmd.go).
var blocksCommand = command{"blocks", "the suppression list: add|del|cancel ADDRESS..., list, import FILE, export [FILE]", runBlocks}

const blocksUsage = `usage:
  posthorn blocks add ADDRESS... [--now | --at "YYYY-MM-DD HH:MM"] [--reason R] [--watch DAYS]
  posthorn blocks del ADDRESS...
  posthorn blocks cancel ADDRESS...
  posthorn blocks list [--address TEXT] [--since DATE] [--until DATE] [--removed] [--limit N]
  posthorn blocks import FILE [--now | --at ...] [--reason R] [--watch DAYS]
  posthorn blocks export [FILE] [--removed]
Every action takes --config FILE, --zone ZONE and --exec-time HH:MM.

add registers at the next daily execution time ([blocks] exec_time, default
00:00, in [blocks] timezone, default the Event Webhook's; --exec-time and
--zone override them), at a given time with --at, or at once with --now;
each registration posts a "registered" blocks record. del lifts a
registered address ("deleted" record); cancel drops a registration that has
not taken effect. R is manual (default), unsubscribe or a bounce class
(1-9, 99). --watch lifts the entry automatically DAYS days after it takes
effect (default [blocks] watch_days; 0 never). import reads a CSV (or one address per line) whose first
column is the address and optional second the reason; "-" is standard input.
export writes CSV to FILE or standard output.
`

// blockOpts are the flags every action shares.
type blockOpts struct {
	zone, execTime, at, reason, address, since, until string
	now, removed                                      bool
	watch, limit                                      int
}

func runBlocks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o blockOpts
	fs := flag.NewFlagSet("blocks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, blocksUsage) }
	cfgPath := configFlag(fs)
	fs.StringVar(&o.zone, "zone", "", "IANA time zone of times and the execution time (default: [blocks] timezone)")
	fs.StringVar(&o.execTime, "exec-time", "", "daily execution time of scheduled registrations, HH:MM (default: [blocks] exec_time)")
	fs.StringVar(&o.at, "at", "", `register at this time, "YYYY-MM-DD HH:MM" in the zone`)
	fs.BoolVar(&o.now, "now", false, "register at once")
	fs.StringVar(&o.reason, "reason", "manual", "manual, unsubscribe or a bounce class")
	fs.IntVar(&o.watch, "watch", -1, "lift automatically this many days after it takes effect (0: never; default: [blocks] watch_days)")
	fs.StringVar(&o.address, "address", "", "list: only addresses containing this text")
	fs.StringVar(&o.since, "since", "", "list: created on or after this date (YYYY-MM-DD [HH:MM])")
	fs.StringVar(&o.until, "until", "", "list: created before this date")
	fs.BoolVar(&o.removed, "removed", false, "list, export: include deleted and cancelled entries")
	fs.IntVar(&o.limit, "limit", 100, "list: at most this many (0: all)")
	// Flags may come before or after the action and its operands.
	pos, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, blocksUsage)
		return exitConfig
	}
	action, operands := pos[0], pos[1:]
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "posthorn blocks %s: %s\n", action, fmt.Sprintf(format, a...))
		return exitConfig
	}
	switch action {
	case "add", "del", "cancel":
		if len(operands) == 0 {
			return fail("no address given")
		}
	case "import":
		if len(operands) != 1 {
			return fail("want one FILE (- for standard input)")
		}
	case "export":
		if len(operands) > 1 {
			return fail("want at most one FILE")
		}
	case "list":
		if len(operands) > 0 {
			return fail("unexpected argument %q", operands[0])
		}
	default:
		fmt.Fprintf(stderr, "posthorn blocks: unknown action %q\n\n%s", action, blocksUsage)
		return exitConfig
	}
	if o.now && o.at != "" {
		return fail("--now and --at exclude each other")
	}
	if o.watch < -1 {
		return fail("--watch %d: want 0 or more days", o.watch)
	}
	reason, err := blocks.ParseReason(o.reason)
	if err != nil {
		return fail("%v", err)
	}
	cfg, store, err := openStore(*cfgPath)
	if err != nil {
		return report(stderr, "posthorn blocks", err)
	}
	defer store.Close()
	clk, err := newClock()
	if err != nil {
		return fail("%v", err)
	}
	defer clk.Stop()
	svc := newBlockService(cfg, store, clk, nil)
	svc.zone, svc.execTime = o.zone, o.execTime
	sched, err := svc.schedule(ctx)
	if err != nil {
		return fail("%v", err)
	}
	b := blockCLI{ctx: ctx, svc: svc, loc: sched.Loc, o: o, reason: reason, stdout: stdout, stderr: stderr, store: store}
	switch action {
	case "add":
		return b.add(operands)
	case "del", "cancel":
		return b.remove(action, operands)
	case "list":
		return b.list()
	case "import":
		return b.importFile(operands[0])
	}
	out := stdout
	if len(operands) == 1 && operands[0] != "-" {
		f, err := os.OpenFile(operands[0], os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		out = f
	}
	return b.export(out)
}

type blockCLI struct {
	ctx            context.Context
	svc            *blockService
	loc            *time.Location
	o              blockOpts
	reason         blocks.Reason
	stdout, stderr io.Writer
	store          *sqlite.Store // for Explain
}

// when is when a new registration takes effect, from --now and --at.
func (b blockCLI) when() (blockWhen, error) {
	if b.o.at == "" {
		return blockWhen{Now: b.o.now}, nil
	}
	t, err := parseLocalTime(b.o.at, b.loc)
	if err != nil {
		return blockWhen{}, fmt.Errorf("--at: %w", err)
	}
	return blockWhen{At: t}, nil
}

// parseLocalTime reads "YYYY-MM-DD HH:MM", "YYYY-MM-DD HH:MM:SS" or
// "YYYY-MM-DD" (midnight) in loc.
func parseLocalTime(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q: want YYYY-MM-DD [HH:MM]", s)
}

func (b blockCLI) add(addrs []string) int {
	failed := false
	for _, a := range addrs {
		msg, err := b.addOne(a, b.reason)
		if err != nil {
			fmt.Fprintf(b.stderr, "posthorn blocks add: %v\n", err)
			failed = true
			continue
		}
		fmt.Fprintln(b.stdout, msg)
	}
	if failed {
		return exitFail
	}
	return exitOK
}

// addOne adds one address and says what became of it.
func (b blockCLI) addOne(addr string, reason blocks.Reason) (string, error) {
	when, err := b.when()
	if err != nil {
		return "", err
	}
	entry, err := b.svc.Add(b.ctx, addr, reason, when, b.o.watch)
	if err != nil {
		return "", err
	}
	if entry.Status() == "registered" {
		return entry.Address + ": registered", nil
	}
	return entry.Address + ": scheduled for " + b.show(entry.Scheduled), nil
}

func (b blockCLI) remove(action string, addrs []string) int {
	failed := false
	for _, a := range addrs {
		var entry sqlite.Block
		var err error
		if action == "del" {
			entry, err = b.svc.Delete(b.ctx, a)
		} else {
			entry, err = b.svc.Cancel(b.ctx, a)
		}
		if err != nil {
			fmt.Fprintf(b.stderr, "posthorn blocks %s: %v\n", action, err)
			failed = true
			continue
		}
		word := map[string]string{"del": "deleted", "cancel": "cancelled"}[action]
		fmt.Fprintf(b.stdout, "%s: %s\n", entry.Address, word)
	}
	if failed {
		return exitFail
	}
	return exitOK
}

// show formats an instant in the zone; "" for the zero time.
func (b blockCLI) show(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(b.loc).Format("2006-01-02 15:04:05")
}

func (b blockCLI) list() int {
	q := sqlite.BlockQuery{Address: b.o.address, Removed: b.o.removed, Limit: b.o.limit}
	var err error
	if b.o.since != "" {
		if q.Since, err = parseLocalTime(b.o.since, b.loc); err != nil {
			fmt.Fprintf(b.stderr, "posthorn blocks list: --since: %v\n", err)
			return exitConfig
		}
	}
	if b.o.until != "" {
		if q.Until, err = parseLocalTime(b.o.until, b.loc); err != nil {
			fmt.Fprintf(b.stderr, "posthorn blocks list: --until: %v\n", err)
			return exitConfig
		}
	}
	if b.o.limit < 0 {
		fmt.Fprintf(b.stderr, "posthorn blocks list: --limit %d: want 0 or more\n", b.o.limit)
		return exitConfig
	}
	entries, err := b.svc.List(b.ctx, q)
	if err != nil {
		return report(b.stderr, "posthorn blocks list", b.store.Explain(err))
	}
	w := bufio.NewWriter(b.stdout)
	fmt.Fprintf(w, "%-40s %-10s %-11s %-19s %-19s\n", "ADDRESS", "REASON", "STATUS", "EFFECTIVE", "REMOVED/EXPIRES")
	for _, e := range entries {
		end := b.show(e.Removed)
		if end == "" {
			end = b.show(e.Expires)
		}
		fmt.Fprintf(w, "%-40s %-10s %-11s %-19s %-19s\n", e.Address, e.Reason, e.Status(), b.show(e.Scheduled), end)
	}
	if err := w.Flush(); err != nil {
		return exitFail
	}
	if q.Limit > 0 && len(entries) == q.Limit {
		// On stderr, so that the listing itself stays a clean table.
		fmt.Fprintf(b.stderr, "posthorn blocks list: the newest %d shown; --limit 0 shows all\n", q.Limit)
	}
	return exitOK
}

// blockCSVHeader is the export's header, which import skips.
var blockCSVHeader = []string{"address", "reason", "status", "occurrences", "created", "effective", "expires", "removed"}

func (b blockCLI) export(out io.Writer) int {
	entries, err := b.svc.List(b.ctx, sqlite.BlockQuery{Removed: b.o.removed})
	if err != nil {
		return report(b.stderr, "posthorn blocks export", b.store.Explain(err))
	}
	w := csv.NewWriter(out)
	_ = w.Write(blockCSVHeader)
	for _, e := range entries {
		_ = w.Write([]string{e.Address, e.Reason, e.Status(), strconv.Itoa(e.Occurrences),
			b.show(e.Created), b.show(e.Scheduled), b.show(e.Expires), b.show(e.Removed)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		fmt.Fprintf(b.stderr, "posthorn blocks export: %v\n", err)
		return exitFail
	}
	return exitOK
}

// unformula undoes the console's CSV export guard: a cell that a
// spreadsheet would run as a formula (= + - @ first) is written with a
// leading apostrophe, which is not part of the address.
func unformula(cell string) string {
	if len(cell) > 1 && cell[0] == '\'' && strings.ContainsRune("=+-@", rune(cell[1])) {
		return cell[1:]
	}
	return cell
}

// importFile adds every address of a CSV; an address already on the list
// is counted, not an error, so an import can be run again.
func (b blockCLI) importFile(name string) int {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(b.stderr, "posthorn blocks import: %v\n", err)
			return exitConfig
		}
		defer f.Close()
		in = f
	}
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	var added, present, bad int
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Fprintf(b.stderr, "posthorn blocks import: %s: %v\n", name, err)
			return exitFail
		}
		if len(rec) == 0 || strings.TrimSpace(rec[0]) == "" || (line == 1 && strings.EqualFold(rec[0], "address")) {
			continue
		}
		reason := b.reason
		if len(rec) > 1 && strings.TrimSpace(rec[1]) != "" {
			if reason, err = blocks.ParseReason(strings.TrimSpace(rec[1])); err != nil {
				fmt.Fprintf(b.stderr, "posthorn blocks import: %s:%d: %v\n", name, line, err)
				bad++
				continue
			}
		}
		_, err = b.addOne(unformula(strings.TrimSpace(rec[0])), reason)
		switch {
		case errors.Is(err, sqlite.ErrBlockExists):
			present++
		case err != nil:
			fmt.Fprintf(b.stderr, "posthorn blocks import: %s:%d: %v\n", name, line, err)
			bad++
		default:
			added++
		}
	}
	fmt.Fprintf(b.stdout, "imported %d, already listed %d, refused %d\n", added, present, bad)
	if bad > 0 {
		return exitFail
	}
	return exitOK
}
