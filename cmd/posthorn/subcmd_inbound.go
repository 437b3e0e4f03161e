package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/posthorn/posthorn/config"
)

// The Inbound Webhook's commands. "log" and "settings" belong to the Event
// Webhook's files; the inbound log (log inbound) and the inbound: section
// of the settings document are added here by wrapping those commands, so
// that each webhook keeps its own code. This file's name sorts after
// theirs, so its init runs after theirs registered the commands (init
// functions run in file-name order); wrapCommand also works the other way
// round.
func init() {
	wrapCommand("log", "print the Event Webhook log (log events) or the inbound log (log inbound)", wrapLog)
	wrapCommand("settings", "export or import the webhook settings as YAML (export|import FILE)", wrapSettings)
	commands = append(commands, command{"postfix-config", "print (or --apply) the Postfix settings for the milter", runPostfixConfig})
}

type runFunc = func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// wrapCommand replaces the command named name by wrap of it; prev is nil
// when no such command is registered (yet).
func wrapCommand(name, summary string, wrap func(prev runFunc) runFunc) {
	for i := range commands {
		if commands[i].name == name {
			commands[i].run = wrap(commands[i].run)
			commands[i].summary = summary
			return
		}
	}
	commands = append(commands, command{name, summary, wrap(nil)})
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

func wrapLog(prev runFunc) runFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		if len(args) > 0 && args[0] == "inbound" {
			return runLogInbound(ctx, args[1:], stdout, stderr)
		}
		code := exitConfig
		if prev != nil {
			code = prev(ctx, args, stdout, stderr)
		}
		if len(args) == 0 || isHelp(args[0]) {
			// The events usage was printed; add the inbound one.
			fmt.Fprint(stderr, "\n"+logInboundUsage)
		}
		return code
	}
}

func wrapSettings(prev runFunc) runFunc {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		fs := flag.NewFlagSet("settings", flag.ContinueOnError)
		fs.SetOutput(io.Discard) // on any problem prev runs and reports it
		path := configFlag(fs)
		verb, file, _, ok := subcommand(fs, args, "", "export", "import")
		if !ok || file == "" || prev == nil {
			if prev == nil {
				fmt.Fprintln(stderr, "posthorn settings: the Event Webhook's settings command is missing from this build")
				return exitFail
			}
			code := prev(ctx, args, stdout, stderr)
			if len(args) == 0 || isHelp(args[0]) {
				fmt.Fprint(stderr, "\n"+settingsInboundUsage)
			}
			return code
		}
		if verb == "export" {
			return exportAllSettings(ctx, prev, *path, file, stdout, stderr)
		}
		return importAllSettings(ctx, prev, *path, file, stdout, stderr)
	}
}

const settingsInboundUsage = `The document may also hold a top-level map inbound: (the Inbound Webhook)
with the keys domains (a list), log_denied, and filters, a list of maps
with the keys name, endpoint, conditions (a list of maps with header and
pattern), json, basic_user, basic_password, api_key, api_key_bearer,
signing_secret, ca_file, retry_interval, retry_period, timeout and
disabled. Import replaces the saved inbound settings when the map is
there and leaves them alone when it is not.
`

// exportAllSettings writes the Event Webhook's export followed by the
// inbound: section.
func exportAllSettings(ctx context.Context, prev runFunc, cfgPath, file string, stdout, stderr io.Writer) int {
	var doc bytes.Buffer
	if code := prev(ctx, []string{"export", "-", "--config", cfgPath}, &doc, stderr); code != exitOK {
		return code
	}
	_, store, err := openStore(cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	defer store.Close()
	in, err := inboundSection(ctx, store)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	doc.Write(in)
	return writeSettingsFile(file, doc.Bytes(), stdout, stderr)
}

// importAllSettings validates the inbound: section, lets the Event
// Webhook import the rest, and then saves the inbound settings: an invalid
// document changes nothing.
func importAllSettings(ctx context.Context, prev runFunc, cfgPath, file string, stdout, stderr io.Writer) int {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(stdin, maxSettingsFile+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err == nil && len(data) > maxSettingsFile {
		err = fmt.Errorf("larger than %d bytes", maxSettingsFile)
	}
	if err != nil {
		fmt.Fprintf(stderr, "import settings %s: %v\n", file, err)
		return exitConfig
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	in, rest, err := splitInbound(data, cfg.AllowInsecureHTTP)
	if err != nil {
		fmt.Fprintf(stderr, "import settings %s: %v\n", file, err)
		return exitConfig
	}
	if rest != nil {
		tmp, err := os.CreateTemp("", "posthorn-settings-*.yaml") // 0600: it may hold secrets
		if err == nil {
			_, err = tmp.Write(rest)
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			defer os.Remove(tmp.Name())
		}
		if err != nil {
			fmt.Fprintf(stderr, "import settings %s: %v\n", file, err)
			return exitFail
		}
		if code := prev(ctx, []string{"import", tmp.Name(), "--config", cfgPath}, stdout, stderr); code != exitOK {
			return code
		}
	}
	if in == nil {
		return exitOK
	}
	_, store, err := openStore(cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	defer store.Close()
	if err := store.SaveInboundSettings(ctx, *in, cfg.AllowInsecureHTTP); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "imported %s\n", in)
	return exitOK
}
