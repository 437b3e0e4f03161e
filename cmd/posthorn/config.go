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

func runCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := configFlag(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if _, err := config.Load(*path); err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return exitOK
}
