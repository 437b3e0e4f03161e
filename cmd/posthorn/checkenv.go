package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/posthorn/posthorn/config"
	"github.com/posthorn/posthorn/sqlite"
)

// envReport is what check-config found outside the config file: problems
// that make serve fail, and warnings about what serve will wait for.
type envReport struct {
	problems, warnings []string
}

func (r *envReport) problem(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}

func (r *envReport) warn(format string, a ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf(format, a...))
}

// journalProbeTimeout bounds the one journalctl run of check-config.
const journalProbeTimeout = 10 * time.Second

// checkEnvironment checks, as the user running it, what serve needs beyond
// a valid file: the store's directory and database, and the mail log. Each
// line names the key and the file and says what to do.
func checkEnvironment(ctx context.Context, cfg *config.Config, journalctl string) envReport {
	var r envReport
	if _, err := sqlite.Check(ctx, cfg.Store.Path); err != nil {
		r.problem("store.path: %v", err)
	}
	m := cfg.Maillog
	if m.Journald {
		checkJournal(ctx, &r, journalctl)
	} else {
		checkMaillog(&r, m.Path)
	}
	return r
}

// checkMaillog wants a regular file this user may read. A missing file is
// only a warning: Postfix (or syslog) may not have written it yet, and serve
// waits for it.
func checkMaillog(r *envReport, path string) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.warn("maillog.path: %s does not exist yet; serve waits for it and reads it from its start (is it the file Postfix or syslog writes?)", path)
		return
	case err != nil:
		r.problem("maillog.path: %v: let the user posthorn runs as read it", err)
		return
	case fi.IsDir():
		r.problem("maillog.path: %s is a directory: set the mail log file Postfix or syslog writes, such as /var/log/mail.log", path)
		return
	case !fi.Mode().IsRegular():
		r.problem("maillog.path: %s is not a regular file (%s): set the mail log file Postfix or syslog writes", path, fi.Mode().Type())
		return
	}
	// Stat showed a regular file, so opening it cannot block as a FIFO's
	// open would.
	f, err := os.Open(path)
	if err != nil {
		r.problem("maillog.path: %v: let the user posthorn runs as read it (Debian: group adm)", err)
		return
	}
	f.Close()
}

// checkJournal wants a journalctl that runs.
func checkJournal(ctx context.Context, r *envReport, journalctl string) {
	bin, err := exec.LookPath(journalctl)
	if err != nil {
		r.problem("maillog.journald: %v: install journalctl (systemd), or set maillog.path to a log file", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, journalProbeTimeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--quiet", "--no-pager", "--lines=0")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + msg
		}
		r.problem("maillog.journald: %s --lines=0 failed: %v%s: the user posthorn runs as must read the journal (group adm or systemd-journal)", bin, err, msg)
	}
}
