// Package postfixtest runs a private Postfix instance for end-to-end tests.
//
// Start builds a throw-away Postfix in a temp directory: its own main.cf and
// master.cf, queue, data directory and maillog (written by postlogd), an smtpd
// on a loopback port, and smtp-sink(1) peers that play remote servers with a
// fixed behaviour per test domain (see the Domain constants). The system
// Postfix in /etc/postfix and /var/spool/postfix is neither read nor needed.
// Timers are short (DefaultQueueLifetime) so deferral, retry and expiry all
// happen inside one test.
//
// Running Postfix needs root and the postfix, swaks and smtp-sink binaries
// (Debian: postfix, swaks). When they are missing Start skips the test, unless
// the CI environment variable is set, in which case it fails it: a CI run must
// never pass by skipping the end-to-end tests.
package postfixtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options adjust the generated instance. The zero value is a working
// instance with short queue IDs.
type Options struct {
	// LongQueueIDs sets enable_long_queue_ids = yes (Postfix >= 2.9).
	LongQueueIDs bool
	// QueueLifetime is maximal_queue_lifetime and bounce_queue_lifetime;
	// zero means DefaultQueueLifetime. Postfix counts in whole seconds.
	QueueLifetime time.Duration
	// MainCF lines "name = value" override the generated parameter of the
	// same name, or are appended (e.g. "smtpd_milters = inet:127.0.0.1:9000").
	MainCF []string
	// MasterCF lines are appended to the generated master.cf verbatim
	// (e.g. a content-filter re-injection smtpd).
	MasterCF []string
	// Transports adds transport_maps entries: domain → nexthop, e.g.
	// "filter.test" → "smtp:[127.0.0.1]:10025".
	Transports map[string]string
	// Aliases are local aliases: name → comma-separated targets, e.g.
	// "forward" → "someone@ok.test" makes forward@local.test forward.
	Aliases map[string]string
}

// Instance is one running private Postfix with its sinks.
type Instance struct {
	l    layout
	bins binaries

	wd     *watchdog
	master *proc

	mu       sync.Mutex
	sinks    map[string]*sink
	sinkGen  int
	reserved []*portReservation

	// checkOutput is what "postfix check" printed (warnings), for the log.
	checkOutput string

	closeOnce sync.Once
	closeErr  error
}

// binaries are the programs the harness runs.
type binaries struct {
	postfix, postconf, postqueue, sendmail, master, smtpSink, swaks string
}

func lookBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	// A non-root PATH often lacks the sbin directories.
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not installed or not in PATH", name)
}

func findBinaries() (binaries, error) {
	var b binaries
	var errs []error
	for _, x := range []struct {
		dst  *string
		name string
	}{
		{&b.postfix, "postfix"}, {&b.postconf, "postconf"}, {&b.postqueue, "postqueue"},
		{&b.sendmail, "sendmail"},
		{&b.smtpSink, "smtp-sink"}, {&b.swaks, "swaks"},
	} {
		p, err := lookBinary(x.name)
		*x.dst = p
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return b, err
	}
	// The compiled-in default (-d), so a missing or broken
	// /etc/postfix/main.cf does not matter.
	out, err := exec.Command(b.postconf, "-d", "-h", "daemon_directory").Output()
	if err != nil {
		return b, fmt.Errorf("run postconf -d daemon_directory: %w", err)
	}
	b.master = filepath.Join(strings.TrimSpace(string(out)), "master")
	if _, err := os.Stat(b.master); err != nil {
		return b, fmt.Errorf("find postfix master: %w", err)
	}
	return b, nil
}

// Available reports why a private instance cannot run here, or nil.
func Available() error {
	if !supported {
		return errors.New("private postfix instances need linux")
	}
	if os.Geteuid() != 0 {
		return errors.New("private postfix instances need root (the master daemon switches users)")
	}
	if _, err := findBinaries(); err != nil {
		return err
	}
	for _, name := range []string{"postfix", "nobody"} {
		if _, err := user.Lookup(name); err != nil {
			return fmt.Errorf("look up user %s: %w", name, err)
		}
	}
	if _, err := user.LookupGroup("postdrop"); err != nil {
		return fmt.Errorf("look up group postdrop: %w", err)
	}
	return nil
}

// inCI reports whether the CI environment variable asks for strictness.
func inCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	if v == "" {
		return false
	}
	if b, err := strconv.ParseBool(v); err == nil {
		return b
	}
	return true // CI=yes, CI=github, ...: set means set
}

// Start launches an instance for t and stops it in t.Cleanup. It skips t
// when Postfix cannot run here, and fails it instead when CI is set.
func Start(t testing.TB, o Options) *Instance {
	t.Helper()
	Require(t)
	i, err := Launch(o)
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	if i.checkOutput != "" {
		t.Logf("postfixtest: postfix check said:\n%s", i.checkOutput)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if lines, err := readLines(i.MaillogPath()); err == nil {
				t.Logf("postfixtest: maillog of the failed test (%d lines):\n%s", len(lines), strings.Join(lines, "\n"))
			}
		}
		if err := i.Close(); err != nil {
			t.Errorf("postfixtest: %v", err)
		}
	})
	return i
}

// Require skips t when a private Postfix cannot run here, or fails it when
// the CI environment variable is set.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if inCI() {
			t.Fatalf("postfixtest: %v (CI is set, so this is a failure, not a skip)", err)
		}
		t.Skipf("postfixtest: %v; install the Debian packages postfix and swaks and run as root (CI=true turns this skip into a failure)", err)
	}
}

// keepDir reports whether POSTFIXTEST_KEEP asks to keep instance directories
// for debugging.
func keepDir() bool { return os.Getenv("POSTFIXTEST_KEEP") != "" }

// Launch starts an instance without a testing.TB; the caller must Close it.
// On error everything started so far is stopped again; the Instance returned
// with an error (possibly nil) is already closed and only tells where its
// directory was.
func Launch(o Options) (_ *Instance, err error) {
	if !supported {
		return nil, errors.New("launch postfix: private postfix instances need linux")
	}
	for _, line := range o.MainCF {
		if _, err := parseSetting(line); err != nil {
			return nil, err
		}
	}
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "postfixtest-")
	if err != nil {
		return nil, fmt.Errorf("create instance dir: %w", err)
	}
	i := &Instance{bins: bins, sinks: map[string]*sink{}}
	i.l = layout{dir: dir, sinkPorts: map[string]int{}}
	if i.wd, err = startWatchdog(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer func() {
		if err != nil {
			if cerr := i.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	// MkdirTemp makes 0700; Postfix daemons that dropped to the postfix
	// user and local(8) running as the recipient must traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return i, fmt.Errorf("chmod instance dir: %w", err)
	}

	if i.l.smtpdPort, err = i.reserve(); err != nil {
		return i, err
	}
	for _, s := range sinkSpecs {
		if i.l.sinkPorts[s.domain], err = i.reserve(); err != nil {
			return i, err
		}
	}
	if i.l.sinkPorts[DomainDead], err = i.reserve(); err != nil {
		return i, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range sinkSpecs {
		if err := i.startSink(ctx, s.domain, s.args); err != nil {
			return i, err
		}
	}
	if err := i.writeFiles(o); err != nil {
		return i, err
	}
	// "postfix check" runs postfix-script check-fatal, which creates the
	// queue subdirectories with the ownership Postfix wants (post-install
	// create-missing); no separate set-permissions step is needed.
	out, err := exec.Command(bins.postfix, "-c", i.l.confDir(), "check").CombinedOutput()
	i.checkOutput = strings.TrimSpace(string(out))
	if err != nil {
		return i, fmt.Errorf("run postfix check: %w: %s", err, i.checkOutput)
	}
	if err := i.startMaster(ctx); err != nil {
		return i, err
	}
	return i, nil
}

func (i *Instance) reserve() (int, error) {
	r, err := reservePort()
	if err != nil {
		return 0, err
	}
	i.mu.Lock()
	i.reserved = append(i.reserved, r)
	i.mu.Unlock()
	return r.port, nil
}

func (i *Instance) startSink(ctx context.Context, domain string, args []string) error {
	i.mu.Lock()
	i.sinkGen++
	gen := i.sinkGen
	i.mu.Unlock()
	s, err := startSink(ctx, i.bins.smtpSink, domain, i.l.sinkPorts[domain], args, gen, i.wd.watch)
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.sinks[domain] = s
	i.mu.Unlock()
	return nil
}

func (i *Instance) writeFiles(o Options) error {
	files, err := configFiles(i.l, o)
	if err != nil {
		return err
	}
	if err := os.Mkdir(i.l.confDir(), 0o755); err != nil {
		return fmt.Errorf("create config dir: %w", err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(i.l.confDir(), name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := os.Mkdir(i.l.queueDir(), 0o755); err != nil {
		return fmt.Errorf("create queue dir: %w", err)
	}
	// postfix-script warns "not owned by postfix" for data_directory
	// otherwise; master keeps master.lock there.
	if err := os.Mkdir(i.l.dataDir(), 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("look up user postfix: %w", err)
	}
	uid, err := strconv.Atoi(pf.Uid)
	if err != nil {
		return fmt.Errorf("parse uid of postfix: %w", err)
	}
	if err := os.Chown(i.l.dataDir(), uid, -1); err != nil {
		return fmt.Errorf("chown data dir: %w", err)
	}
	// local(8) writes a mailbox as the recipient, like /var/mail (sticky,
	// world-writable) but private to this instance.
	if err := os.Mkdir(i.l.mailDir(), 0o755); err != nil {
		return fmt.Errorf("create mail spool: %w", err)
	}
	if err := os.Chmod(i.l.mailDir(), 0o1777); err != nil {
		return fmt.Errorf("chmod mail spool: %w", err)
	}
	return nil
}

// startMaster runs master(8) directly, as "postfix start-fg" would, so this
// package owns the process: its exit is seen at once (for example a fatal
// configuration error), and the watchdog stops it if the test binary dies.
// Ready means the master logged "daemon started", which it does after binding
// every listener.
func (i *Instance) startMaster(ctx context.Context) error {
	p, err := startProc("postfix master", i.bins.master, "-c", i.l.confDir())
	if err != nil {
		return err
	}
	i.master = p
	// The master makes itself a session and process group leader
	// (master(8)); its daemons are in that group.
	i.wd.watch(p.pid())
	i.wd.watch(-p.pid())
	want := fmt.Sprintf(" postfix/master[%d]: daemon started", p.pid())
	err = waitFor(ctx, "postfix master to start", func() (bool, error) {
		if p.exited() {
			// The master reports a fatal error this early (a listener it
			// cannot bind, say) through syslog, because postlogd is not
			// running yet, so the maillog may not explain it.
			return false, fmt.Errorf("%w before it logged \"daemon started\" (early fatal errors go to syslog, not to maillog_file); maillog:\n%s", p.exitError(), i.logTail(20))
		}
		lines, err := readLines(i.l.maillog())
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }), nil
	})
	if err != nil {
		return fmt.Errorf("start postfix: %w", err)
	}
	return nil
}

func (i *Instance) logTail(n int) string {
	lines, err := readLines(i.l.maillog())
	if err != nil {
		return err.Error()
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close stops Postfix and the sinks, releases the ports and removes the
// instance directory (kept if POSTFIXTEST_KEEP is set). It is idempotent.
func (i *Instance) Close() error {
	i.closeOnce.Do(func() { i.closeErr = i.close() })
	return i.closeErr
}

func (i *Instance) close() error {
	var errs []error
	if i.wd != nil {
		i.wd.disarm()
	}
	if i.master != nil {
		pgid := i.master.pid()
		// SIGTERM is what "postfix stop" sends; the master passes it on
		// to its process group and exits (master(8)).
		if err := i.master.stop(syscall.SIGTERM, 10*time.Second); err != nil {
			errs = append(errs, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := waitFor(ctx, "postfix daemons to exit", func() (bool, error) {
			return len(groupMembers(pgid)) == 0, nil
		})
		cancel()
		if err != nil {
			killGroup(pgid, syscall.SIGKILL)
			errs = append(errs, fmt.Errorf("stop postfix: daemons %v outlived the master, killed", groupMembers(pgid)))
		}
	}
	i.mu.Lock()
	sinks := slices.Collect(maps.Values(i.sinks))
	reserved := i.reserved
	i.sinks, i.reserved = map[string]*sink{}, nil
	i.mu.Unlock()
	for _, s := range sinks {
		if err := s.proc.stop(syscall.SIGTERM, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range reserved {
		r.release()
	}
	if i.l.dir != "" && !keepDir() {
		if err := os.RemoveAll(i.l.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove instance dir: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close postfix instance: %w", err)
	}
	return nil
}

// Dir is the instance's root directory.
func (i *Instance) Dir() string { return i.l.dir }

// ConfigDir is the instance's config_directory (for "postfix -c").
func (i *Instance) ConfigDir() string { return i.l.confDir() }

// QueueDir is the instance's queue_directory.
func (i *Instance) QueueDir() string { return i.l.queueDir() }

// MaillogPath is the instance's maillog_file.
func (i *Instance) MaillogPath() string { return i.l.maillog() }

// SMTPAddr is the host:port of the instance's smtpd.
func (i *Instance) SMTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(i.l.smtpdPort))
}

// SinkAddr is the host:port a test domain is routed to ("" if unknown).
func (i *Instance) SinkAddr(domain string) string {
	p, ok := i.l.sinkPorts[domain]
	if !ok {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// Heal replaces the sink of a domain (DomainFlaky, or any sink domain) by one
// that accepts everything, on the same port. Mail deferred to it is then
// delivered at the next retry; call Flush to retry at once.
func (i *Instance) Heal(t testing.TB, domain string) {
	t.Helper()
	i.mu.Lock()
	old, ok := i.sinks[domain]
	i.mu.Unlock()
	if !ok {
		t.Fatalf("postfixtest: heal %s: no sink for that domain", domain)
	}
	if err := old.proc.stop(syscall.SIGTERM, 5*time.Second); err != nil {
		t.Fatalf("postfixtest: heal %s: %v", domain, err)
	}
	i.wd.forget(old.proc.pid())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := i.startSink(ctx, domain, nil); err != nil {
		t.Fatalf("postfixtest: heal %s: %v", domain, err)
	}
}

// Flush asks Postfix to retry all deferred mail now ("postqueue -f").
func (i *Instance) Flush(t testing.TB) {
	t.Helper()
	out, err := exec.Command(i.bins.postqueue, "-c", i.l.confDir(), "-f").CombinedOutput()
	if err != nil {
		t.Fatalf("postfixtest: run postqueue -f: %v: %s", err, out)
	}
}

// Postconf returns the value of a main.cf parameter as the instance sees it
// ("postconf -h", defaults included).
func (i *Instance) Postconf(t testing.TB, name string) string {
	t.Helper()
	out, err := exec.Command(i.bins.postconf, "-c", i.l.confDir(), "-h", name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("postfixtest: run postconf %s: %v: %s", name, err, ee.Stderr)
		}
		t.Fatalf("postfixtest: run postconf %s: %v", name, err)
	}
	return strings.TrimRight(string(out), "\n")
}

// Lines returns the maillog as it is now.
func (i *Instance) Lines(t testing.TB) []string {
	t.Helper()
	lines, err := readLines(i.l.maillog())
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	return lines
}

// WaitLog blocks until a maillog line satisfies pred and returns it. Every
// line since the instance started is considered, so the order of calls does
// not matter. When ctx ends first the test fails with the log's tail.
func (i *Instance) WaitLog(t testing.TB, ctx context.Context, pred func(line string) bool) string {
	t.Helper()
	line, err := waitLine(ctx, i.l.maillog(), pred)
	if err != nil {
		t.Fatalf("postfixtest: %v; last maillog lines:\n%s", err, i.logTail(30))
	}
	return line
}

// queueDirs are the queues a message lives in until "removed" (QSHAPE_README).
var queueDirs = []string{"maildrop", "incoming", "active", "deferred", "hold"}

// queuedFiles counts queue files; deferred and defer are hashed into
// subdirectories (hash_queue_names), so the walk is recursive.
func (i *Instance) queuedFiles() (int, error) {
	n := 0
	for _, q := range queueDirs {
		err := filepath.WalkDir(filepath.Join(i.l.queueDir(), q), func(_ string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a file moved between queues while we looked
			}
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				n++
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("count queue files: %w", err)
		}
	}
	return n, nil
}

// WaitQueueEmpty blocks until no message is left in any queue, including
// hold. When ctx ends first the test fails.
func (i *Instance) WaitQueueEmpty(t testing.TB, ctx context.Context) {
	t.Helper()
	err := waitFor(ctx, "empty mail queue", func() (bool, error) {
		n, err := i.queuedFiles()
		return n == 0, err
	})
	if err != nil {
		t.Fatalf("postfixtest: %v; last maillog lines:\n%s", err, i.logTail(30))
	}
}
