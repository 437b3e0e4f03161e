package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/posthorn/posthorn/config"
)

// configFlag adds the --config flag every command that reads the config
// file or the store takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", config.DefaultPath, "config file")
}

// parseFlags parses args and reports whether the command should go on;
// code is the exit code when it should not.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitConfig, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "posthorn %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitConfig, false
	}
	return 0, true
}

// parseInterleaved parses args whose flags may come before, between or
// after the positional arguments (an action and its operands), which it
// returns; ok is false when the command should stop with code.
func parseInterleaved(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitConfig, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

const checkConfigUsage = `usage: posthorn check-config [--config FILE] [--config-only]

Checks the config file, then what posthorn serve needs beyond it, as the
user running the check: the directory of store.path exists and is writable;
the database, if there is one, is readable and writable, is a SQLite
database, passes SQLite's quick check and has no schema newer than this
binary's; the mail log (maillog.path) is a regular file this user may read,
or journalctl runs (maillog.journald). A mail log that does not exist yet is
a warning: Postfix may not have written it. Run it as the service's user to
check that user's access: sudo -u posthorn posthorn check-config.

Every problem is one line naming the key and the file. The database is only
read (it may be checked while posthorn serve runs), and no file is created.
Exit status: 0 when serve can start, 2 otherwise.

Flags:
`

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, checkConfigUsage)
		fs.PrintDefaults()
	}
	path := configFlag(fs)
	configOnly := fs.Bool("config-only", false, "check the file alone, not the database and the mail log it names (a file prepared for another machine)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if cfg.AllowInsecureHTTP {
		fmt.Fprintln(stderr, insecureHTTPWarning)
	}
	if !*configOnly {
		r := checkEnvironment(ctx, cfg, journalctl)
		for _, w := range r.warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		for _, p := range r.problems {
			fmt.Fprintln(stderr, p)
		}
		if len(r.problems) > 0 {
			fmt.Fprintf(stderr, "%s: the file is valid, but posthorn serve cannot start (%d problem(s) above)\n", *path, len(r.problems))
			return exitConfig
		}
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return exitOK
}

// insecureHTTPWarning is what check-config prints and serve logs when the
// config allows plain http:// endpoints.
const insecureHTTPWarning = "warning: allow_insecure_http = true: webhook endpoints may be plain http://, whose posts and credentials cross the network unencrypted; for local development only"
