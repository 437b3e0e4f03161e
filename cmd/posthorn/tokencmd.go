package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
	"github.com/posthorn/posthorn/ui"
)

// The token command is registered from this file, after main.go's init
// has set the table (see usercmd.go).
func init() {
	commands = append(commands, command{"token", "API tokens for /api/v1/blocks (add|revoke NAME, list)", runToken})
}

const tokenUsage = `usage:
  posthorn token add NAME [--config FILE]
  posthorn token revoke NAME [--config FILE]
  posthorn token list [--config FILE]

add prints a new token for the suppression-list API (/api/v1/blocks on the
web console's listener) on standard output. It is shown this once: only its
SHA-256 is stored. A lost token cannot be shown again; revoke it and add
another. A revoked token is refused with 403, and its name may be given to
a new token.
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	path := configFlag(fs)
	// Flags may come before or after the action and its operands.
	pos, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return exitConfig
	}
	action := pos[0]
	wantArgs := 2
	switch action {
	case "add", "revoke":
	case "list":
		wantArgs = 1
	default:
		fmt.Fprintf(stderr, "posthorn token: unknown action %q\n\n%s", action, tokenUsage)
		return exitConfig
	}
	if len(pos) != wantArgs {
		fmt.Fprintf(stderr, "posthorn token %s: want %d argument(s), got %d\n\n%s", action, wantArgs-1, len(pos)-1, tokenUsage)
		return exitConfig
	}
	name := ""
	if wantArgs == 2 {
		name = pos[1]
		if err := ui.CheckTokenName(name); err != nil {
			fmt.Fprintf(stderr, "posthorn token %s: %v\n", action, err)
			return exitConfig
		}
	}
	cfg, store, err := openStore(*path)
	if err != nil {
		return report(stderr, "posthorn token", err)
	}
	defer store.Close()
	// The suppression list's clock, which tests set (POSTHORN_TEST_CLOCK).
	clk, err := newClock()
	if err != nil {
		fmt.Fprintf(stderr, "posthorn token %s: %v\n", action, err)
		return exitFail
	}
	defer clk.Stop()

	switch action {
	case "add":
		token, hash := ui.NewAPIToken()
		if err := store.AddAPIToken(ctx, name, hash, clk.Now()); err != nil {
			return report(stderr, "posthorn token", store.Explain(err))
		}
		// The token alone on standard output, so that
		// TOKEN=$(posthorn token add NAME) works; the rest on stderr.
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "token %s added; it is shown only this once: keep it in a secret store\n", name)
		tokenNotes(ctx, cfg, store, stderr)
	case "revoke":
		if err := store.RevokeAPIToken(ctx, name, clk.Now()); err != nil {
			return report(stderr, "posthorn token", store.Explain(err))
		}
		fmt.Fprintf(stdout, "token %s revoked\n", name)
	case "list":
		tokens, err := store.APITokens(ctx)
		if err != nil {
			return report(stderr, "posthorn token", store.Explain(err))
		}
		loc := cfg.UI.Location()
		show := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.In(loc).Format("2006-01-02 15:04")
		}
		w := bufio.NewWriter(stdout)
		row := func(name, created, used, revoked string) {
			fmt.Fprintf(w, "%-24s %-16s %-16s %s\n", name, created, used, revoked)
		}
		row("NAME", "CREATED", "LAST USED", "REVOKED")
		for _, t := range tokens {
			row(t.Name, show(t.Created), show(t.Used), show(t.Revoked))
		}
		if err := w.Flush(); err != nil {
			return exitFail
		}
	}
	return exitOK
}

// tokenNotes says when the API the token is for may not be reachable: it
// is served by the web console, which needs a listen address, and starts
// only if a user or a live token exists when serve starts.
func tokenNotes(ctx context.Context, cfg *config.Config, store *sqlite.Store, w io.Writer) {
	if cfg.UI.Listen == "" {
		fmt.Fprintln(w, "note: the API is served by the web console, which is off ([ui] listen is empty)")
		return
	}
	if users, err := store.Users(ctx); err == nil && len(users) == 0 {
		fmt.Fprintln(w, "note: no console user exists: if posthorn serve was started before this token, restart it to serve the API (systemctl restart posthorn)")
	}
}
