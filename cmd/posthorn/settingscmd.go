package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/settings"
	"github.com/posthorn/posthorn/sqlite"
)

// The Event Webhook commands are registered from the files that implement
// them, after main.go's init has set the table (init functions run in
// file-name order); TestWebhookCommands checks they are there.
func init() {
	commands = append(commands,
		command{"settings", "export or import the webhook settings as YAML (export|import FILE)", runSettings},
		command{"log", "print the Event Webhook log (log events)", runLog},
		command{"replay", "post the events of a period again (--since T)", runReplay},
		command{"test-webhook", "post one sample batch and print the endpoint's answer", runTestWebhook},
	)
}

const settingsUsage = `usage:
  posthorn settings export FILE [--config FILE]
  posthorn settings import FILE [--config FILE]

FILE is a YAML document (- for standard output or input) with a top-level
map event_webhook: (the Event Webhook) whose keys are endpoint, bounces,
deliveries, blocks, version, timezone, json, basic_user, basic_password,
api_key, api_key_bearer, interval, max_events, timeout, retry_period,
signing_secret and ca_file. A key left out takes its default. An empty
endpoint with bounces, deliveries and blocks all false is the Event
Webhook turned off, which is what a new installation exports.

The document may also hold a top-level map inbound: (the Inbound Webhook)
with the keys domains (a list), log_denied, and filters, a list of maps
with the keys name, endpoint, conditions (a list of maps with header and
pattern), json, basic_user, basic_password, api_key, api_key_bearer,
signing_secret, ca_file, retry_interval, retry_period, timeout and
disabled; a filter's key left out takes its default.

Import replaces the saved settings of each map the document holds and
leaves a webhook whose map is missing alone. It is all or nothing: every
field is checked first, and any problem (an unknown key, a value of the
wrong kind or out of its range) is reported as FILE:LINE: field: what is
allowed, with nothing saved. A plain http:// endpoint (only with
allow_insecure_http in the config) is saved with a warning. The export
holds the secrets: it is written with mode 0600. A running posthorn serve
applies imported settings within a few seconds.
`

// openStore loads the config file and opens its store.
func openStore(path string) (*config.Config, *sqlite.Store, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, configError{err}
	}
	store, err := sqlite.Open(cfg.Store.Path, sqlite.Options{})
	if err != nil {
		return nil, nil, err
	}
	return cfg, store, nil
}

// subcommand parses "VERB ARG [flags]" (flags may come before or after
// ARG) and returns the verb and its one argument.
func subcommand(fs *flag.FlagSet, args []string, usage string, verbs ...string) (verb, arg string, code int, ok bool) {
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	if len(args) == 0 {
		fmt.Fprint(fs.Output(), usage)
		return "", "", exitConfig, false
	}
	verb = args[0]
	known := false
	for _, v := range verbs {
		known = known || v == verb
	}
	if !known {
		if verb == "-h" || verb == "--help" || verb == "help" {
			fmt.Fprint(fs.Output(), usage)
			return "", "", exitOK, false
		}
		fmt.Fprintf(fs.Output(), "posthorn %s: unknown subcommand %q\n\n%s", fs.Name(), verb, usage)
		return "", "", exitConfig, false
	}
	rest := args[1:]
	if len(rest) > 0 && (len(rest[0]) == 0 || rest[0][0] != '-' || rest[0] == "-") {
		arg, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", "", exitOK, false
		}
		return "", "", exitConfig, false
	}
	if fs.NArg() > 0 && arg == "" {
		arg = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "posthorn %s %s: unexpected argument %q\n", fs.Name(), verb, fs.Arg(0))
		return "", "", exitConfig, false
	}
	return verb, arg, 0, true
}

func runSettings(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("settings", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	verb, file, code, ok := subcommand(fs, args, settingsUsage, "export", "import")
	if !ok {
		return code
	}
	if file == "" {
		fmt.Fprintf(stderr, "posthorn settings %s: FILE is required (- for standard %s)\n", verb, map[string]string{"export": "output", "import": "input"}[verb])
		return exitConfig
	}
	cfg, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn settings "+verb, err)
	}
	defer store.Close()
	if verb == "export" {
		return exportSettings(ctx, store, file, stdout, stderr)
	}
	return importSettings(ctx, cfg, store, file, stdin, stdout, stderr)
}

// stdin is where "import -" reads; tests replace it.
var stdin io.Reader = os.Stdin

// exportDoc is the event_webhook: map of an export.
type exportDoc struct {
	EventWebhook *settings.EventWebhook `yaml:"event_webhook"`
}

// exportSettings writes both webhooks' settings. Settings never saved
// export as the defaults they are, with nothing that says so, so that the
// export of a new installation imports back to the same export.
func exportSettings(ctx context.Context, store *sqlite.Store, file string, stdout, stderr io.Writer) int {
	s, _, err := store.EventWebhookSettings(ctx)
	if err != nil {
		return report(stderr, "posthorn settings export", store.Explain(err))
	}
	var b bytes.Buffer
	b.WriteString("# Posthorn webhook settings (posthorn settings import FILE). This file holds\n# secrets: keep it private.\n")
	if s.Endpoint == "" {
		b.WriteString("# No endpoint: the Event Webhook is off.\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(exportDoc{EventWebhook: &s}); err != nil {
		fmt.Fprintf(stderr, "export settings: %v\n", err)
		return exitFail
	}
	enc.Close()
	in, err := inboundSection(ctx, store)
	if err != nil {
		return report(stderr, "posthorn settings export", store.Explain(err))
	}
	b.Write(in)
	return writeSettingsFile(file, b.Bytes(), stdout, stderr)
}

// writeSettingsFile writes an export to file, or to stdout for "-". The
// file is written beside the target and renamed, so an existing file is
// replaced whole, with mode 0600 from the start: it holds secrets.
func writeSettingsFile(file string, data []byte, stdout, stderr io.Writer) int {
	if file == "-" {
		stdout.Write(data)
		return exitOK
	}
	tmp, err := os.CreateTemp(dirOf(file), ".posthorn-settings-*")
	if err == nil {
		_, err = tmp.Write(data)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), file)
		}
		if err != nil {
			os.Remove(tmp.Name())
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "export settings: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "exported the webhook settings to %s\n", file)
	return exitOK
}

func dirOf(file string) string {
	for i := len(file) - 1; i >= 0; i-- {
		if file[i] == '/' {
			return file[:i+1]
		}
	}
	return "."
}

// maxSettingsFile bounds what import reads: real files are a few hundred
// bytes.
const maxSettingsFile = 64 << 10

func importSettings(ctx context.Context, cfg *config.Config, store *sqlite.Store, file string, in io.Reader, stdout, stderr io.Writer) int {
	var data []byte
	var err error
	name := file
	if file == "-" {
		name = "standard input"
		data, err = io.ReadAll(io.LimitReader(in, maxSettingsFile+1))
	} else {
		var f *os.File
		if f, err = os.Open(file); err == nil {
			data, err = io.ReadAll(io.LimitReader(f, maxSettingsFile+1))
			f.Close()
		}
	}
	if err == nil && len(data) > maxSettingsFile {
		err = fmt.Errorf("larger than %d bytes", maxSettingsFile)
	}
	if err != nil {
		fmt.Fprintf(stderr, "import settings %s: %v\n", name, err)
		return exitConfig
	}
	doc, probs := parseSettingsDoc(data, cfg.AllowInsecureHTTP)
	if probs != nil {
		fmt.Fprint(stderr, probs.Format(name))
		fmt.Fprintf(stderr, "posthorn settings import: nothing imported (%d %s)\n", len(probs), plural(len(probs), "problem", "problems"))
		return exitConfig
	}
	// Both maps in one transaction: a failure saves neither.
	if err := store.SaveSettings(ctx, doc.EventWebhook, doc.Inbound, cfg.AllowInsecureHTTP); err != nil {
		return report(stderr, "posthorn settings import: nothing imported", store.Explain(err))
	}
	for _, f := range settings.PlainHTTPFields(doc.EventWebhook, doc.Inbound) {
		fmt.Fprintf(stderr, "warning: %s:%d: %s is a plain http:// URL: posts and their credentials cross the network unencrypted (allow_insecure_http is for local development only)\n",
			name, doc.lines[f], f)
	}
	if doc.EventWebhook != nil {
		fmt.Fprintf(stdout, "imported %s\n", doc.EventWebhook)
	}
	if doc.Inbound != nil {
		fmt.Fprintf(stdout, "imported %s\n", doc.Inbound)
	}
	return exitOK
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// parseTime reads a --since or --until value: RFC 3339, a date and time
// in the local zone ("2026-03-14 09:30", seconds optional, or a date
// alone), or a duration before now ("90m", "36h", "2d").
func parseTime(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		var t time.Time
		var err error
		if layout == time.RFC3339Nano {
			t, err = time.Parse(layout, s)
		} else {
			t, err = time.ParseInLocation(layout, s, time.Local)
		}
		if err == nil {
			return t, nil
		}
	}
	if d, err := settings.ParseDuration(s); err == nil {
		return now.Add(-time.Duration(d)), nil
	}
	return time.Time{}, fmt.Errorf("parse time %q: want RFC 3339, \"2006-01-02 15:04[:05]\", a date, or a duration before now such as \"2h\" or \"3d\"", s)
}
