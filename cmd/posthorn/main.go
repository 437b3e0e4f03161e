// Command posthorn is a sidecar for Postfix: it follows the maillog and
// turns it into per-recipient delivery events for webhooks. This package is
// the only place that wires the components together (ARCHITECTURE.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	commands = []command{
		{"serve", "run the daemon: follow the maillog, post the webhooks, run the milter and the console", runServe},
		{"parse", "print the delivery events of maillog text (files or stdin)", runParse},
		{"check-config", "validate the config file and the database and mail log it names", runCheckConfig},
		{"demo", "replay a bundled Postfix maillog through the pipeline; no Postfix or setup needed", runDemo},
		{"help", "help on a command; help config: the config file; help man: man page", runHelp},
		{"version", "print the version", func(_ context.Context, _ []string, out, _ io.Writer) int {
			fmt.Fprintln(out, "posthorn", version)
			return exitOK
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || (args[0] == "help" && len(args) == 1) {
		usage(stderr)
		if len(args) == 0 {
			return exitConfig
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "posthorn: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitConfig
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: posthorn COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'posthorn COMMAND -h' for the flags of a command.")
}

// errUsage marks an error already reported by the flag package.
var errUsage = errors.New("usage")
