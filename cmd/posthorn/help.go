package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/posthorn/posthorn/config"
)

// runHelp prints help on a topic. The configuration reference and the man
// page are generated from config.Doc() and the command table, so they say
// what this binary accepts; the README's "Configuration reference" is the
// Markdown form of the same text (kept in step by a test).
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	topic, rest := args[0], args[1:]
	switch topic {
	case "config":
		fs := flag.NewFlagSet("help config", flag.ContinueOnError)
		fs.SetOutput(stderr)
		format := fs.String("format", "text", "text, or markdown (the README section)")
		if code, ok := parseFlags(fs, rest); !ok {
			return code
		}
		switch *format {
		case "text":
			return writeOut(stdout, stderr, func(w io.Writer) { configReferenceText(w, config.Doc()) })
		case "markdown":
			return writeOut(stdout, stderr, func(w io.Writer) { configReferenceMarkdown(w, config.Doc()) })
		}
		fmt.Fprintf(stderr, "posthorn help config: unknown format %q (want text or markdown)\n", *format)
		return exitConfig
	case "man":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "posthorn help man: unexpected argument %q\n", rest[0])
			return exitConfig
		}
		return writeOut(stdout, stderr, func(w io.Writer) { manPage(w, commands, config.Doc()) })
	}
	for _, c := range commands {
		if c.name == topic && c.name != "help" {
			// Every command parses its flags first; -h prints them.
			return c.run(ctx, []string{"-h"}, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "posthorn help: unknown topic %q (want config, man or a command)\n", topic)
	return exitConfig
}

// writeOut runs gen on a buffered stdout and reports a failed write (a
// closed pipe, a full disk) as a failure.
func writeOut(stdout, stderr io.Writer, gen func(io.Writer)) int {
	w := bufio.NewWriter(stdout)
	gen(w)
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "posthorn help: write output: %v\n", err)
		return exitFail
	}
	return exitOK
}

// reloadApplies says which keys a running daemon applies on SIGHUP; the
// rest need a restart (signals.go).
const reloadApplies = `log.level takes effect at once; other changes are logged and need a restart.`

// configIntro is the text in front of the keys, shared by every format.
func configIntro() []string {
	return []string{
		fmt.Sprintf("posthorn reads its settings from a TOML file, by default %s "+
			"(every command that reads it or the database takes --config FILE to choose another). Every key is optional: "+
			"a missing key takes the default shown. Check a file with \"posthorn check-config\", which also checks "+
			"the database and the mail log it names (--config-only: the file alone); "+
			"errors name the key and the line, and serve exits with status 2 on them.", config.DefaultPath),
		`Durations are strings in Go syntax ("90s", "1h30m") or whole days, alone or in front of Go syntax ("7d", "1d12h").`,
		`"posthorn serve" re-reads the file on SIGHUP (systemctl reload posthorn): ` + reloadApplies,
	}
}

// fieldName is a key's name inside its table ("start" for "maillog.start").
func fieldName(f config.Field) string {
	if i := strings.LastIndexByte(f.Key, '.'); i >= 0 {
		return f.Key[i+1:]
	}
	return f.Key
}

func configReferenceText(w io.Writer, fields []config.Field) {
	fmt.Fprintf(w, "CONFIGURATION FILE (%s)\n\n", config.DefaultPath)
	for _, p := range configIntro() {
		fmt.Fprintln(w, wrap(p, 76, ""))
		fmt.Fprintln(w)
	}
	for _, f := range fields {
		if f.Type == "table" {
			fmt.Fprintf(w, "[%s]\n%s\n\n", f.Key, wrap(f.Doc, 76, "    "))
			continue
		}
		indent := "    "
		if strings.Contains(f.Key, ".") {
			indent = "      "
			fmt.Fprint(w, "  ")
		}
		fmt.Fprintf(w, "%s = %s  (%s)\n%s\n\n", fieldName(f), f.Default, f.Type, wrap(f.Doc, 76, indent))
	}
}

func configReferenceMarkdown(w io.Writer, fields []config.Field) {
	for _, p := range configIntro() {
		fmt.Fprintf(w, "%s\n\n", mdEscape(p))
	}
	top := true
	for _, f := range fields {
		if f.Type == "table" {
			fmt.Fprintf(w, "#### `[%s]`\n\n%s\n\n", f.Key, mdEscape(f.Doc))
			continue
		}
		if top && !strings.Contains(f.Key, ".") {
			fmt.Fprint(w, "#### Top level (before any table)\n\n")
			top = false
		}
		fmt.Fprintf(w, "- `%s = %s` (%s): %s\n\n", fieldName(f), f.Default, f.Type, mdEscape(f.Doc))
	}
}

// mdEscape keeps documentation text literal in Markdown: no HTML, no
// emphasis.
var mdEscape = strings.NewReplacer(`<`, `&lt;`, `*`, `\*`, "`", "\\`").Replace

// wrap folds text into lines of at most width bytes (longer words stay
// whole), each prefixed by indent.
func wrap(text string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if line != indent && len(line)+1+len(word) > width {
			b.WriteString(line)
			b.WriteByte('\n')
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}

// manPage writes posthorn(1) in man(7) roff.
func manPage(w io.Writer, commands []command, fields []config.Field) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p(`.TH POSTHORN 1 "" "posthorn %s" "Posthorn manual"`, roff(version))
	// Left-aligned without hyphenation: keys and paths stay whole.
	p(".nh")
	p(".ad l")
	p(".SH NAME")
	p(`posthorn \- Postfix delivery events to webhooks`)
	p(".SH SYNOPSIS")
	p(".B posthorn")
	p(".I command")
	p(".RI [ flags ]")
	p(".SH DESCRIPTION")
	p("%s", roff("posthorn is a sidecar for an existing Postfix installation. It follows the Postfix "+
		"mail log (a file or the systemd journal), works out what happened to every recipient of every "+
		"message, and keeps the resulting delivery events in an SQLite database, from which they are "+
		"posted to webhook endpoints."))
	p(".SH COMMANDS")
	for _, c := range commands {
		p(".TP")
		p(".B %s", roff(c.name))
		p("%s", roff(c.summary))
	}
	p(".PP")
	p("%s", roff("Run \"posthorn help COMMAND\" for the flags of a command."))
	p(".SH CONFIGURATION")
	for _, para := range configIntro() {
		p("%s", roff(para))
		p(".PP")
	}
	for _, f := range fields {
		if f.Type == "table" {
			p(".SS [%s]", roff(f.Key))
			p("%s", roff(f.Doc))
			continue
		}
		p(".TP")
		// Inline font escapes, not .B: the default's quotes would be
		// read as macro argument delimiters.
		p(`\fB%s\fR`, roff(fieldName(f)+" = "+f.Default))
		p("(%s) %s", roff(f.Type), roff(f.Doc))
	}
	p(".SH SIGNALS")
	p(".TP")
	p(".B SIGTERM, SIGINT")
	p("%s", roff("Stop after committing the log lines already read."))
	p(".TP")
	p(".B SIGHUP")
	p("%s", roff("Re-read the configuration file: "+reloadApplies))
	p(".SH ENVIRONMENT")
	p(".TP")
	p(".B NOTIFY_SOCKET")
	p("%s", roff("Set by systemd for a Type=notify service: serve reports READY=1 there once the store "+
		"is migrated and the mail log is open, RELOADING=1 and READY=1 around a reload, and STOPPING=1."))
	p(".SH EXIT STATUS")
	p("%s", roff("0 on success; 2 when an administrator must act first: a usage or configuration error, "+
		"or a database that cannot be used as it is (damaged, not a database, a newer schema, a missing directory), "+
		"which the unit's RestartPreventExitStatus=2 keeps systemd from restarting in a loop; "+
		"1 on any other failure, which may pass (an endpoint down, a busy database, another serve holding the database)."))
	p(".SH FILES")
	for _, f := range [][2]string{
		{config.DefaultPath, "the configuration file"},
		{"/var/lib/posthorn/posthorn.db", "the database (with its -wal and -shm files)"},
		{"/var/lib/posthorn/posthorn.db.lock", "locked by posthorn serve while it runs, so that a second serve refuses to start"},
		{"/usr/lib/systemd/system/posthorn.service", "the systemd unit"},
	} {
		p(".TP")
		p(".I %s", roff(f[0]))
		p("%s", roff(f[1]))
	}
	p(".SH SEE ALSO")
	p(`.BR postfix (1),`)
	p(`.BR postconf (5),`)
	p(`.BR journalctl (1),`)
	p(`.BR systemd.service (5)`)
}

// roff escapes text for a man(7) text line: backslashes, hyphens (which
// roff would otherwise print as typographic hyphens, so options could not
// be copied) and a leading control character.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, `-`, `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
