package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// demoMaxGap bounds the pause between two replayed lines, so that a sample
// with an idle stretch does not look stuck.
const demoMaxGap = 3 * time.Second

// runDemo shows Posthorn at work without Postfix and without any setup
// (issue 6): the bundled sample maillog is written line by line, at the
// pace Postfix wrote it, into a log file that serve's own pipeline follows
// into a temporary store, and every event is printed as it is committed.
// The Event Webhook posts to a receiver built into the demo (HTTPS with a
// certificate made at start and trusted through ca_file), which prints
// each post; the web console runs with a user whose password is made for
// the run and printed.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	speed := fs.Float64("speed", 1, "replay speed: 1 is the pace of the sample's time stamps, 10 ten times faster, 0 no pauses")
	dir := fs.String("dir", "", "keep the demo's files (posthorn.toml, maillog, posthorn.db) in this directory instead of a temporary one")
	exit := fs.Bool("exit", false, "exit once the whole sample is stored, instead of running until interrupted")
	listen := fs.String("listen", demoListen, "the web console's address; when its port is taken, the next free one is used")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *speed < 0 {
		fmt.Fprintf(stderr, "posthorn demo: --speed must not be negative, got %v\n", *speed)
		return exitConfig
	}
	d := &demo{
		out:    stdout,
		log:    newLogger(config.Log{Format: config.FormatText, Level: "warn"}, stderr),
		lines:  strings.SplitAfter(strings.TrimSuffix(sample, "\n")+"\n", "\n"),
		pace:   pacer(*speed),
		exit:   *exit,
		listen: *listen,
	}
	d.lines = d.lines[:len(d.lines)-1] // SplitAfter leaves "" after the last newline
	if err := d.run(ctx, *dir); err != nil {
		fmt.Fprintf(stderr, "posthorn demo: %v\n", err)
		return exitFail
	}
	return exitOK
}

// demo is one run of `posthorn demo`.
type demo struct {
	out   io.Writer
	log   *slog.Logger
	lines []string // each with its newline
	// pace waits before writing a line that was logged gap after the one
	// before; it returns ctx's error if ctx ends first.
	pace   func(ctx context.Context, gap time.Duration) error
	exit   bool
	listen string // the console's address, as asked

	mu     sync.Mutex // held while writing to out
	events int        // events printed so far
}

// demoListen is where the demo's console listens unless that port is
// taken; it is the [ui] listen default of a real installation too.
const demoListen = "127.0.0.1:8025"

// demoUser is the console user the demo creates, with a password made for
// the run and printed.
const demoUser = "admin"

func (d *demo) run(ctx context.Context, dir string) error {
	kept := dir != ""
	if !kept {
		tmp, err := os.MkdirTemp("", "posthorn-demo-")
		if err != nil {
			return fmt.Errorf("create demo directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if _, err := os.Stat(filepath.Join(dir, "posthorn.db")); err == nil {
		return fmt.Errorf("%s already holds a demo's database: remove it or name another --dir", dir)
	}
	listen, err := freeListen(d.listen)
	if err != nil {
		return err
	}
	cfg, err := writeDemoFiles(dir, listen)
	if err != nil {
		return err
	}
	recv, err := startDemoReceiver(dir, d.out, &d.mu)
	if err != nil {
		return err
	}
	defer recv.Close()
	password := rand.Text()
	if err := setUpDemoStore(ctx, cfg.Store.Path, recv, password); err != nil {
		return err
	}
	var total int64
	for _, l := range d.lines {
		total += int64(len(l))
	}
	fmt.Fprintf(d.out, "posthorn demo: replaying %d lines of a real Postfix 3.7 maillog into %s\n\n", len(d.lines), cfg.Maillog.Path)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan struct{})
	stored := make(chan struct{}) // closed once the last line is committed
	var storedOnce sync.Once
	hooks := daemon{
		onReady: func() { close(ready) },
		observe: func(b event.Batch) {
			d.print(b.Events)
			if b.Cursor.Offset >= total {
				storedOnce.Do(func() { close(stored) })
			}
		},
	}
	served := make(chan error, 1)
	go func() { served <- serve(sctx, cfg, d.log, hooks) }()
	// wait returns nil once ch is closed, or why it never will be.
	wait := func(ch <-chan struct{}, what string) error {
		select {
		case <-ch:
			return nil
		case err := <-served:
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("%s: the pipeline ended: %w", what, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	finish := func(err error) error {
		stop()
		if serr := <-served; err == nil {
			err = serr
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = nil // interrupted: a normal end of the demo
		}
		return err
	}

	if err := wait(ready, "start"); err != nil {
		return finish(err)
	}
	d.mu.Lock()
	fmt.Fprintf(d.out, "Event Webhook: posts to %s, a receiver built into the demo that prints what it gets\n"+
		"               (its self-signed certificate is trusted through ca_file %s)\n", recv.URL, recv.CAFile)
	fmt.Fprintf(d.out, "Web console:   http://%s/  user %s  password %s  (for this run only)\n\n", listen, demoUser, password)
	d.mu.Unlock()
	if err := d.replay(ctx, cfg.Maillog.Path); err != nil {
		return finish(err)
	}
	if err := wait(stored, "store the sample"); err != nil {
		return finish(err)
	}
	d.mu.Lock()
	n := d.events
	d.mu.Unlock()
	fmt.Fprintf(d.out, "\n%d events from %d log lines, stored in %s", n, len(d.lines), cfg.Store.Path)
	if !kept {
		fmt.Fprint(d.out, " (removed at exit; --dir keeps it)")
	}
	fmt.Fprintln(d.out)
	if !d.exit {
		fmt.Fprintln(d.out, "posthorn demo: the whole sample is stored; press Ctrl-C to stop")
		<-ctx.Done()
	}
	return finish(nil)
}

// writeDemoFiles writes the demo's config file and an empty maillog into
// dir and returns the loaded config: the same file serve would read.
func writeDemoFiles(dir, listen string) (*config.Config, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create demo directory: %w", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("create demo directory: %w", err)
	}
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o640); err != nil {
		return nil, fmt.Errorf("create demo maillog: %w", err)
	}
	text := fmt.Sprintf(`# posthorn demo: serve --config this file follows the demo's maillog.
hostname = "demo.posthorn.test"

[store]
path = %q
# The sample's events keep the date it was written: keep them however old.
retention = "0"

[maillog]
path = %q
start = "begin"
# The year the bundled sample was written (its stamps carry none).
year = %d

[ui]
listen = %q

# Recipients that bounce as unknown users go on the suppression list (the
# console's Blocks screen), to take effect at the next daily execution time.
[blocks.auto_register]
unknown_user = 1
`, filepath.Join(dir, "posthorn.db"), maillog, sampleWritten.Year(), listen)
	path := filepath.Join(dir, "posthorn.toml")
	if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
		return nil, fmt.Errorf("write demo config: %w", err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return cfg, nil
}

// replay appends the sample to the maillog one line at a time, pausing as
// the time stamps say, as Postfix itself would have written it.
func (d *demo) replay(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	var prev time.Time
	for _, line := range d.lines {
		if t, ok := lineTime(line); ok {
			if !prev.IsZero() {
				if err := d.pace(ctx, min(t.Sub(prev), demoMaxGap)); err != nil {
					return err
				}
			}
			prev = t
		}
		if _, err := f.WriteString(line); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	return nil
}

// lineTime reads the time stamp of a maillog line: traditional syslog
// ("Nov 27 10:04:24", RFC 3164) or RFC 3339 (rsyslog's high-precision
// format and Postfix's maillog_file). The year and zone do not matter for
// the gap between two lines.
func lineTime(line string) (time.Time, bool) {
	if len(line) >= len(time.Stamp) {
		if t, err := time.Parse(time.Stamp, line[:len(time.Stamp)]); err == nil {
			return t, true
		}
	}
	first, _, _ := strings.Cut(line, " ")
	t, err := time.Parse(time.RFC3339Nano, first)
	return t, err == nil
}

// pacer returns the pause function for a replay speed: gaps divided by
// speed, or none at all for speed 0.
func pacer(speed float64) func(context.Context, time.Duration) error {
	return func(ctx context.Context, gap time.Duration) error {
		if speed == 0 || gap <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(time.Duration(float64(gap) / speed))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// print writes one line per event, as it is committed.
func (d *demo) print(evs []event.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range evs {
		d.events++
		detail := e.Reason
		switch e.Type {
		case event.Queued:
			detail = "from <" + e.ReturnPath + ">"
		case event.Bounced:
			detail = fmt.Sprintf("class %d (%s): %s", e.Class, e.Class.Word(), e.Reason)
		}
		fmt.Fprintf(d.out, "%s  %-9s  %-24s  %-11s  %s\n",
			e.Time.Format("15:04:05"), e.Type, e.To, e.QueueID, clipText(detail, 60))
	}
}

// clipText shortens s to at most n runes for a one-line display.
func clipText(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// freeListen returns addr if it can be listened on, else the first of the
// next 20 ports that can: a second demo, or a real posthorn on 8025, must
// not stop the demo. Port 0 picks any free port. Another process may take
// the port before the console opens it; the demo then says so and ends.
func freeListen(addr string) (string, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", fmt.Errorf("--listen %q: bad port", addr)
	}
	var first error
	for i := 0; i < 20 && port+i <= 65535; i++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port+i)))
		if err == nil {
			got := ln.Addr().String()
			ln.Close()
			return got, nil
		}
		if first == nil {
			first = err
		}
		if port == 0 {
			break
		}
	}
	return "", fmt.Errorf("web console: no free port from %s on: %w", addr, first)
}

// setUpDemoStore prepares the demo's new store as a user would with
// posthorn user add and the Event Webhook settings screen: the console
// user, and the Event Webhook posting deliveries and bounces as JSON to
// the receiver every second.
func setUpDemoStore(ctx context.Context, path string, recv *demoReceiver, password string) error {
	store, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	hash, err := ui.HashPassword(password, ui.DefaultPasswordParams)
	if err != nil {
		return fmt.Errorf("demo user: %w", err)
	}
	if err := store.AddUser(ctx, demoUser, hash); err != nil {
		return fmt.Errorf("demo user: %w", err)
	}
	s := settings.Default()
	s.Endpoint = recv.URL
	s.Deliveries, s.Bounces, s.JSON = true, true, true
	s.Interval = settings.MinInterval
	s.CAFile = recv.CAFile
	s.SigningSecret = recv.Secret
	if err := store.SaveEventWebhookSettings(ctx, s); err != nil {
		return fmt.Errorf("demo event webhook: %w", err)
	}
	return nil
}
