package main

import (
	"context"
	"fmt"
	"io"
)

// The Inbound Webhook's commands. "log" belongs to the Event Webhook's
// files; the inbound log (log inbound) is added here by wrapping that
// command, so that each webhook keeps its own code. This file's name sorts
// after theirs, so its init runs after theirs registered the commands
// (init functions run in file-name order); wrapCommand also works the
// other way round. (The settings document's two maps are read together,
// settingsdoc.go, so that an import is checked and saved as one.)
func init() {
	wrapCommand("log", "print the Event Webhook log (log events) or the inbound log (log inbound)", wrapLog)
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
