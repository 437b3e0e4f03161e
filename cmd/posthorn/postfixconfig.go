package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/posthorn/posthorn/config"
)

const postfixConfigUsage = `usage: posthorn postfix-config [--apply] [--service NAME/TYPE]... [--non-smtpd]
                               [--postfix-dir DIR] [--config FILE]

Prints the main.cf and master.cf settings that connect Postfix to
posthorn's milter roles ([milter] inbound and outbound in the config
file). --apply writes them with postconf -e and postconf -P and runs
postfix reload. --service names the master.cf services that relay
submitted mail and get the outbound role (default submission/inet; repeat
for more, e.g. smtps/inet). --non-smtpd also applies non_smtpd_milters, so
that mail submitted with sendmail(1) is observed. --postfix-dir is the
Postfix configuration directory (postconf -c), by default Postfix's own.
`

// postfixSetting is one line of main.cf ("name") or master.cf
// ("service/type/name").
type postfixSetting struct {
	name, value string
	comment     string // printed above the line
	optional    bool   // printed commented out; applied only on request
}

// postfixSettings computes the Postfix side of the [milter] table.
// queueDir is Postfix's queue_directory: smtpd runs chrooted there
// (Debian's default), so a unix socket must be inside it and is named
// relative to it (MILTER.md §1.4, MILTER_README).
func postfixSettings(mc config.Milter, queueDir string, services []string, nonSMTPD bool) (mainCF, masterCF []postfixSetting, err error) {
	if mc.Inbound == "" && mc.Outbound == "" {
		return nil, nil, errors.New("no milter role is configured: set [milter] inbound and/or outbound in the config file")
	}
	name := func(addr string) (string, error) {
		if !strings.HasPrefix(addr, "unix:") {
			return addr, nil
		}
		path := filepath.Clean(strings.TrimPrefix(addr, "unix:"))
		rel, err := filepath.Rel(queueDir, path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("socket %s is outside Postfix's queue directory %s: smtpd runs chrooted there and cannot reach it; put it under %s (e.g. %s/posthorn/inbound.sock) or use inet:127.0.0.1:PORT",
				path, queueDir, queueDir, queueDir)
		}
		// Relative: Postfix resolves it against the queue directory
		// whether or not smtpd is chrooted (MILTER.md §1.4), while an
		// absolute path is taken as is when it is not.
		return "unix:" + rel, nil
	}
	mainCF = append(mainCF,
		postfixSetting{name: "milter_protocol", value: "6",
			comment: "Milter protocol 6 (the default since Postfix 2.6): the queue ID at DATA, skipping, and no replies where posthorn needs none."},
		postfixSetting{name: "milter_default_action", value: "tempfail",
			comment: "When posthorn is not reachable, every SMTP command after CONNECT is answered 451 4.7.1 and senders retry later:\nnothing is accepted that the domain and spam rules did not see (the per-milter default_action below says the same)."},
	)
	if mc.Inbound != "" {
		in, err := name(mc.Inbound)
		if err != nil {
			return nil, nil, fmt.Errorf("[milter] inbound: %w", err)
		}
		mainCF = append(mainCF, postfixSetting{name: "smtpd_milters",
			value:   fmt.Sprintf("{ %s, default_action=tempfail, command_timeout=30s, content_timeout=300s }", in),
			comment: "The inbound role, on every smtpd (mail received on port 25): allowed domains at RCPT, spam rules and filters at the\nend of the headers, capture. content_timeout leaves room for posthorn's capture_timeout."})
	}
	if mc.Outbound != "" {
		out, err := name(mc.Outbound)
		if err != nil {
			return nil, nil, fmt.Errorf("[milter] outbound: %w", err)
		}
		mainCF = append(mainCF, postfixSetting{name: "posthorn_outbound_milters",
			value: fmt.Sprintf("{ %s, default_action=accept }", out),
			comment: "The outbound role, named once here for the master.cf overrides below. It only observes (header From, Subject, the\n" +
				"metadata header) and never refuses, so an outage must not stop outgoing mail: default_action=accept."})
		mainCF = append(mainCF, postfixSetting{name: "non_smtpd_milters", value: "$posthorn_outbound_milters", optional: !nonSMTPD,
			comment: "Locally submitted mail (sendmail(1), postsuper -r) does not pass smtpd; non_smtpd_milters lets the outbound role see it.\n" +
				"Never put the inbound role here: a non-SMTP filter must not reject or tempfail recipients (MILTER_README), and the\n" +
				"inbound role refuses recipients of domains that are not allowed. (--non-smtpd applies this line.)"})
		for _, svc := range services {
			masterCF = append(masterCF, postfixSetting{name: svc + "/smtpd_milters", value: "$posthorn_outbound_milters",
				comment: "The " + svc + " service relays submitted mail: the outbound role instead of the inbound one."})
		}
	}
	return mainCF, masterCF, nil
}

func printPostfixSettings(w io.Writer, mainCF, masterCF []postfixSetting) {
	fmt.Fprintln(w, "# The Postfix side of posthorn's milter (posthorn postfix-config; --apply writes it).")
	fmt.Fprintln(w, "# posthorn asks Postfix for the macros it needs itself (SETSYMLIST): no milter_*_macros change is needed.")
	fmt.Fprintln(w, "\n# main.cf")
	for _, s := range mainCF {
		printSetting(w, s)
	}
	if len(masterCF) > 0 {
		fmt.Fprintln(w, "\n# master.cf: as -o overrides of these services (postconf -P SERVICE/TYPE/NAME=VALUE)")
		for _, s := range masterCF {
			printSetting(w, s)
		}
	}
}

func printSetting(w io.Writer, s postfixSetting) {
	fmt.Fprintln(w)
	for _, line := range strings.Split(s.comment, "\n") {
		fmt.Fprintln(w, "# "+line)
	}
	prefix := ""
	if s.optional {
		prefix = "#"
	}
	fmt.Fprintf(w, "%s%s = %s\n", prefix, s.name, s.value)
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// runCommand runs a Postfix tool; tests replace it.
var runCommand = func(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

func runPostfixConfig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("postfix-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, postfixConfigUsage) }
	path := configFlag(fs)
	apply := fs.Bool("apply", false, "write the settings with postconf and reload Postfix")
	nonSMTPD := fs.Bool("non-smtpd", false, "also apply non_smtpd_milters (locally submitted mail)")
	dir := fs.String("postfix-dir", "", "Postfix configuration directory (postconf -c)")
	var services multiFlag
	fs.Var(&services, "service", "master.cf service that relays submitted mail, as NAME/TYPE (default submission/inet)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if len(services) == 0 {
		services = multiFlag{"submission/inet"}
	}
	for _, svc := range services {
		if n, t, ok := strings.Cut(svc, "/"); !ok || n == "" || t == "" || strings.ContainsAny(svc, " \t=") {
			fmt.Fprintf(stderr, "posthorn postfix-config: --service %q: want NAME/TYPE such as submission/inet\n", svc)
			return exitConfig
		}
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	pc := []string{}
	if *dir != "" {
		pc = []string{"-c", *dir}
	}
	queueDir := "/var/spool/postfix"
	if out, err := runCommand(ctx, "postconf", append(pc, "-h", "queue_directory")...); err == nil {
		if q := strings.TrimSpace(string(out)); q != "" {
			queueDir = q
		}
	}
	mainCF, masterCF, err := postfixSettings(cfg.Milter, queueDir, services, *nonSMTPD)
	if err != nil {
		fmt.Fprintf(stderr, "posthorn postfix-config: %v\n", err)
		return exitConfig
	}
	if !*apply {
		printPostfixSettings(stdout, mainCF, masterCF)
		return exitOK
	}
	return applyPostfixSettings(ctx, pc, mainCF, masterCF, stdout, stderr)
}

// applyPostfixSettings writes the settings with postconf and reloads a
// running Postfix. A master.cf service that does not exist is reported
// and skipped.
func applyPostfixSettings(ctx context.Context, pc []string, mainCF, masterCF []postfixSetting, stdout, stderr io.Writer) int {
	run := func(args ...string) error {
		out, err := runCommand(ctx, args[0], args[1:]...)
		fmt.Fprintf(stdout, "$ %s\n", strings.Join(args, " "))
		if err != nil {
			return fmt.Errorf("%s: %v: %s", args[0], err, bytes.TrimSpace(out))
		}
		return nil
	}
	mainArgs := append([]string{"postconf"}, pc...)
	mainArgs = append(mainArgs, "-e")
	for _, s := range mainCF {
		if !s.optional {
			mainArgs = append(mainArgs, s.name+"="+s.value)
		}
	}
	if err := run(mainArgs...); err != nil {
		fmt.Fprintf(stderr, "posthorn postfix-config: %v\n", err)
		return exitFail
	}
	code := exitOK
	for _, s := range masterCF {
		svc := s.name[:strings.LastIndexByte(s.name, '/')]
		if out, err := runCommand(ctx, "postconf", append(append([]string{}, pc...), "-M", svc)...); err != nil || len(bytes.TrimSpace(out)) == 0 {
			fmt.Fprintf(stderr, "posthorn postfix-config: master.cf has no service %s: not changed (enable it, or name another with --service)\n", svc)
			code = exitFail
			continue
		}
		if err := run(append(append([]string{"postconf"}, pc...), "-P", s.name+"="+s.value)...); err != nil {
			fmt.Fprintf(stderr, "posthorn postfix-config: %v\n", err)
			return exitFail
		}
	}
	if _, err := runCommand(ctx, "postfix", append(append([]string{}, pc...), "status")...); err != nil {
		fmt.Fprintln(stdout, "Postfix is not running: the settings apply when it starts.")
		return code
	}
	if err := run(append(append([]string{"postfix"}, pc...), "reload")...); err != nil {
		fmt.Fprintf(stderr, "posthorn postfix-config: %v\n", err)
		return exitFail
	}
	return code
}
