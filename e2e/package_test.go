package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posthorn/posthorn/e2e/postfixtest"
	"github.com/posthorn/posthorn/event"
)

var update = flag.Bool("update", false, "rewrite generated files (packaging/posthorn.toml)")

// TestVersionScript checks packaging/version.sh: git describe output in,
// a version valid for dpkg and rpm out, ordered as the commits are.
func TestVersionScript(t *testing.T) {
	for _, tc := range []struct{ describe, commits, want string }{
		{"v1.2.0", "", "1.2.0"},
		{"v1.2.0-rc.1", "", "1.2.0~rc.1"},
		{"v1.2.0-3-gabc1234", "", "1.2.0+3.gabc1234"},
		{"v1.2.0-rc.1-3-gabc1234", "", "1.2.0~rc.1+3.gabc1234"},
		{"v1.2.0-dirty", "", "1.2.0+dirty"},
		{"v1.2.0-3-gabc1234-dirty", "", "1.2.0+3.gabc1234.dirty"},
		{"abc1234", "42", "0.0.0+42.gabc1234"},
		{"abc1234-dirty", "42", "0.0.0+42.gabc1234.dirty"},
		{"1.0", "", "1.0"},
		{"release-one", "", ""}, // not a version: refused
	} {
		t.Run(tc.describe, func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := exec.Command("sh", "../packaging/version.sh", tc.describe, tc.commits)
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			if tc.want == "" {
				if err == nil || !strings.Contains(errb.String(), "tags must look like v1.2.3") {
					t.Errorf("version.sh %s = %q, %v; want a refusal", tc.describe, out.String(), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("version.sh %s: %v: %s", tc.describe, err, errb.String())
			}
			if got := strings.TrimSpace(out.String()); got != tc.want {
				t.Errorf("version.sh %s = %q, want %q", tc.describe, got, tc.want)
			}
		})
	}

	// Each version must sort after the one before, for dpkg and for rpm.
	ordered := []string{"0.0.0+41.gaaaaaaa", "0.0.0+42.gabc1234", "0.1.0~rc.1", "0.1.0~rc.1+2.gbbbbbbb",
		"0.1.0", "0.1.0+1.gccccccc", "0.1.0+12.gddddddd", "0.2.0"}
	for i := 1; i < len(ordered); i++ {
		a, b := ordered[i-1], ordered[i]
		if dpkg, err := exec.LookPath("dpkg"); err == nil {
			if err := exec.Command(dpkg, "--compare-versions", a+"-1", "lt", b+"-1").Run(); err != nil {
				t.Errorf("dpkg: %s is not older than %s", a, b)
			}
		}
		if rpm, err := exec.LookPath("rpm"); err == nil {
			out, err := exec.Command(rpm, "--eval", fmt.Sprintf(`%%{lua: print(rpm.vercmp("%s", "%s"))}`, a, b)).Output()
			if err != nil {
				t.Fatalf("rpm --eval: %v", err)
			}
			if strings.TrimSpace(string(out)) != "-1" {
				t.Errorf("rpm: %s is not older than %s (vercmp %s)", a, b, out)
			}
		}
	}
}

// The packaged config is config/posthorn.toml.example with a note on top
// and the log source Debian 12 has by default (the journal: no rsyslog is
// installed). It is generated, so that a key added to the config package
// reaches the package too.
const (
	packagedNote = `#
# This is the file installed by the posthorn package. It is a configuration
# file of the package: an upgrade never overwrites your changes. After
# editing it, run "posthorn check-config", then "systemctl restart posthorn"
# ("systemctl reload posthorn" applies log.level without a restart). The
# full reference: "posthorn help config" or "man posthorn".
`
	exampleJournald  = "#journald = false\n"
	packagedJournald = `#
# Set by the package: Debian 12 without rsyslog, and Postfix without
# maillog_file, log only to the journal, which the posthorn user reads
# through its membership of group adm. To follow a file instead (rsyslog's
# /var/log/mail.log, or Postfix's maillog_file), remove this line and set
# path above.
journald = true
`
)

func packagedConfig(t *testing.T) string {
	t.Helper()
	example := readFile(t, "../config/posthorn.toml.example")
	title, rest, ok := strings.Cut(example, "\n")
	if !ok || strings.Count(rest, exampleJournald) != 1 {
		t.Fatalf("config/posthorn.toml.example: want a title line and one %q line; update packagedConfig", strings.TrimSpace(exampleJournald))
	}
	return title + "\n" + packagedNote + strings.Replace(rest, exampleJournald, packagedJournald, 1)
}

func TestPackagedConfig(t *testing.T) {
	const path = "../packaging/posthorn.toml"
	want := packagedConfig(t)
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := readFile(t, path); got != want {
		t.Errorf("%s is not config/posthorn.toml.example with the package's changes: go test ./e2e -run %s -update", path, t.Name())
	}
	// The file alone: its store directory and the journal are the
	// installed system's, not this machine's.
	out, err := exec.Command(posthorn, "check-config", "--config-only", "--config", path).CombinedOutput()
	if err != nil {
		t.Errorf("posthorn check-config --config-only %s: %v\n%s", path, err, out)
	}
}

// requirePackageTest guards the tests that install packages on this
// machine: they run only when asked (make package-test), and need root.
func requirePackageTest(t *testing.T) {
	t.Helper()
	if os.Getenv("POSTHORN_PACKAGE_TEST") != "1" {
		t.Skip("installs and purges the posthorn package on this machine: run make package-test (POSTHORN_PACKAGE_TEST=1) on a throw-away machine or in CI")
	}
	if os.Geteuid() != 0 {
		t.Fatal("POSTHORN_PACKAGE_TEST=1 needs root: the test installs the package")
	}
}

// distFile returns the one file in ../dist matching pattern.
func distFile(t *testing.T, pattern, target string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join("..", "dist", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 {
		t.Fatalf("want one dist/%s, found %d: run make %s", pattern, len(m), target)
	}
	abs, err := filepath.Abs(m[0])
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// The files of both packages, with their modes; the .deb also lists the
// directories it creates, and the licence sits where each distribution
// wants it.
var (
	packageFiles = []string{
		"-rw-r--r-- /etc/posthorn/posthorn.toml",
		"-rwxr-xr-x /usr/bin/posthorn",
		"-rw-r--r-- /usr/lib/systemd/system/posthorn.service",
		"-rw-r--r-- /usr/lib/sysusers.d/posthorn.conf",
		"-rw-r--r-- /usr/lib/tmpfiles.d/posthorn.conf",
		"-rw-r--r-- /usr/share/doc/posthorn/README.md",
		"-rw-r--r-- /usr/share/man/man1/posthorn.1.gz",
	}
	debOnly = []string{"-rw-r--r-- /usr/share/doc/posthorn/copyright"}
	rpmOnly = []string{"drwxr-xr-x /etc/posthorn", "-rw-r--r-- /usr/share/licenses/posthorn/LICENSE"}
)

// TestPackageRPM inspects the .rpm without installing it (the CI machine is
// Debian): its files, its config file, its scriptlets and its dependencies.
func TestPackageRPM(t *testing.T) {
	requirePackageTest(t)
	rpmFile := distFile(t, "posthorn-*.rpm", "rpm")
	rpm := func(args ...string) string {
		out, err := exec.Command("rpm", append(args, rpmFile)...).CombinedOutput()
		if err != nil {
			t.Fatalf("rpm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(rpm("-qlpv")), "\n") {
		f := strings.Fields(l)
		files = append(files, f[0]+" "+f[len(f)-1])
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(packageFiles), rpmOnly...)))
	if slices.Sort(files); !slices.Equal(files, want) {
		t.Errorf("rpm -qlpv:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.TrimSpace(rpm("-qpc")); got != "/etc/posthorn/posthorn.toml" {
		t.Errorf("config files = %q", got)
	}
	// File flags: c is %config, n is noreplace.
	if got := rpm("-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]"); !strings.Contains(got, "cn /etc/posthorn/posthorn.toml") {
		t.Errorf("posthorn.toml is not %%config(noreplace):\n%s", got)
	}
	scripts := rpm("-qp", "--scripts")
	for _, s := range []struct{ header, file string }{
		{"postinstall scriptlet", "postinst"},
		{"preuninstall scriptlet", "prerm"},
		{"postuninstall scriptlet", "postrm"},
	} {
		body := strings.TrimSpace(readFile(t, filepath.Join("..", "packaging", "scripts", "rpm", s.file)))
		if !strings.Contains(scripts, s.header) || !strings.Contains(scripts, body) {
			t.Errorf("rpm -qp --scripts lacks the %s of packaging/scripts/rpm/%s:\n%s", s.header, s.file, scripts)
		}
	}
	reqs := rpm("-qp", "--requires")
	if !strings.Contains(reqs, "glibc >= 2.") {
		t.Errorf("requires lack glibc >= 2.x:\n%s", reqs)
	}
}

// TestPackageDeb installs the .deb on this machine as an administrator
// would, runs the unit's ExecStart the way systemd would (CI has no
// running systemd) against a real Postfix, checks the events arrive, then
// upgrades in place, removes and purges, checking what each step keeps.
func TestPackageDeb(t *testing.T) {
	requirePackageTest(t)
	deb := distFile(t, "posthorn_*.deb", "deb")
	if err := exec.Command("dpkg", "-s", "posthorn").Run(); err == nil {
		t.Fatal("the posthorn package is already installed here; this test would replace and purge it")
	}

	// What the archive holds.
	out := mustRun(t, "dpkg-deb", "-c", deb)
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if f[0][0] == '-' {
			files = append(files, f[0]+" "+strings.TrimPrefix(f[len(f)-1], "."))
		}
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(packageFiles), debOnly...)))
	if slices.Sort(files); !slices.Equal(files, want) {
		t.Errorf("dpkg-deb -c files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	apt(t, "install", deb)
	t.Cleanup(func() {
		if exec.Command("dpkg", "-s", "posthorn").Run() == nil {
			apt(t, "purge", "posthorn")
		}
	})
	installed := strings.Fields(mustRun(t, "dpkg", "-L", "posthorn"))

	// Installed state: the user, its groups, the directories, the conffile,
	// the enabled unit.
	u, err := user.Lookup("posthorn")
	if err != nil {
		t.Fatalf("user posthorn: %v", err)
	}
	if u.HomeDir != "/var/lib/posthorn" {
		t.Errorf("home of posthorn = %s", u.HomeDir)
	}
	groups := strings.Fields(mustRun(t, "id", "-nG", "posthorn"))
	if !slices.Contains(groups, "adm") || !slices.Contains(groups, "posthorn") {
		t.Errorf("posthorn's groups = %q, want posthorn and adm", groups)
	}
	for _, d := range []string{"/var/lib/posthorn", "/run/posthorn"} {
		checkOwner(t, d, "posthorn", "posthorn", os.ModeDir|0o750)
	}
	if got := mustRun(t, "dpkg-query", "-W", "-f=${Conffiles}", "posthorn"); !strings.Contains(got, "/etc/posthorn/posthorn.toml ") {
		t.Errorf("conffiles = %q", got)
	}
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/posthorn.service"); err != nil {
		t.Errorf("unit not enabled: %v", err)
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		args := []string{"verify", "posthorn.service"}
		if _, err := exec.LookPath("man"); err != nil {
			args = []string{"verify", "--man=no", "posthorn.service"}
		}
		if out, err := exec.Command(sa, args...).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify of the installed unit: %v\n%s", err, out)
		}
	}

	// A real Postfix whose log only group adm may read: the service gets
	// at it through its supplementary group, or not at all.
	pf := postfixtest.Start(t, postfixtest.Options{})
	adm, err := user.LookupGroup("adm")
	if err != nil {
		t.Fatal(err)
	}
	admGID, _ := strconv.Atoi(adm.Gid)
	if err := os.Chown(pf.MaillogPath(), 0, admGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pf.MaillogPath(), 0o640); err != nil {
		t.Fatal(err)
	}

	// The administrator points the installed config at that log.
	const conf = "/etc/posthorn/posthorn.toml"
	cfg := readFile(t, conf)
	edited := strings.Replace(cfg, "\njournald = true\n", fmt.Sprintf("\npath = %q\nstart = \"begin\"\n", pf.MaillogPath()), 1)
	if edited == cfg {
		t.Fatalf("%s has no journald = true line to replace", conf)
	}
	if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "/usr/bin/posthorn", "check-config")

	svc := startUnit(t, "/usr/lib/systemd/system/posthorn.service")
	if got := svc.notify.next(t, svc.done, "READY=1"); !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("first notification = %q", got)
	}
	ok, bounce := "user@"+postfixtest.DomainOK, "user@"+postfixtest.DomainRcpt5xx
	pf.Send(t, "sender@"+postfixtest.LocalDomain, []string{ok, bounce})
	const db = "/var/lib/posthorn/posthorn.db"
	var evs []event.Event
	svc.waitFor(t, "the events of both recipients", func() bool {
		evs = storedEvents(t, db)
		return countType(evs, ok, event.Succeeded) == 1 && countType(evs, bounce, event.Bounced) == 1
	})
	if got := countType(evs, ok, event.Queued) + countType(evs, bounce, event.Queued); got != 2 {
		t.Errorf("queued events = %d, want 2", got)
	}
	// UMask=0027 and the user: the database is the service's alone.
	checkOwner(t, db, "posthorn", "posthorn", 0o640)

	if err := svc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := svc.notify.next(t, svc.done, "RELOADING=1"); got != "RELOADING=1" {
		t.Errorf("after SIGHUP: %q", got)
	}
	if got := svc.notify.next(t, svc.done, "READY=1"); !strings.HasPrefix(got, "READY=1") {
		t.Errorf("after the reload: %q", got)
	}
	svc.stop(t)

	// An upgrade (here: the same version again) keeps the edited config
	// and the database.
	apt(t, "install", "--reinstall", deb)
	if readFile(t, conf) != edited {
		t.Errorf("the reinstall replaced the administrator's %s", conf)
	}
	checkOwner(t, db, "posthorn", "posthorn", 0o640)

	// remove: the program goes, the config and the database stay.
	apt(t, "remove", "posthorn")
	for _, p := range []string{"/usr/bin/posthorn", "/usr/lib/systemd/system/posthorn.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left after remove", p)
		}
	}
	for _, p := range []string{conf, db} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("remove deleted %s: %v", p, err)
		}
	}

	// purge: nothing of the package is left but the user and its group
	// (Debian policy 9.2: IDs may still own files elsewhere).
	apt(t, "purge", "posthorn")
	left := []string{
		"/etc/posthorn", "/var/lib/posthorn", "/run/posthorn", "/usr/share/doc/posthorn",
		"/etc/systemd/system/posthorn.service",
		"/etc/systemd/system/multi-user.target.wants/posthorn.service",
		"/var/lib/systemd/deb-systemd-helper-enabled/posthorn.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/posthorn.service",
		"/var/lib/systemd/deb-systemd-helper-masked/posthorn.service",
	}
	for _, p := range installed {
		if strings.Contains(p, "posthorn") {
			left = append(left, p)
		}
	}
	for _, p := range left {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after purge", p)
		}
	}
	if _, err := user.Lookup("posthorn"); err != nil {
		t.Errorf("purge removed the posthorn user, which policy keeps: %v", err)
	}
}

// service is the unit's ExecStart running as systemd would start it.
type service struct {
	cmd    *exec.Cmd
	done   chan error
	log    *os.File
	notify *notifySocket
}

// startUnit runs the unit's ExecStart with what systemd gives a service:
// User=, Group=, the user's groups plus SupplementaryGroups=, UMask=, the
// working directory /, a clean environment (PATH, HOME, USER, LOGNAME,
// SHELL, Environment=) and NOTIFY_SOCKET. The sandbox settings are left
// out: they need systemd, and TestUnitVerify checks them.
func startUnit(t *testing.T, unitFile string) *service {
	t.Helper()
	unit := readUnit(t, unitFile)
	one := func(key string) string {
		v := unit[key]
		if len(v) != 1 {
			t.Fatalf("%s: want one %s=, got %q", unitFile, key, v)
		}
		return v[0]
	}
	u, err := user.Lookup(one("User"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(one("Group"))
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(g.Gid, 10, 32)
	gids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range strings.Fields(strings.Join(unit["SupplementaryGroups"], " ")) {
		sg, err := user.LookupGroup(name)
		if err != nil {
			t.Fatal(err)
		}
		gids = append(gids, sg.Gid)
	}
	var groups []uint32
	for _, s := range gids {
		n, _ := strconv.ParseUint(s, 10, 32)
		groups = append(groups, uint32(n))
	}
	argv := strings.Fields(one("ExecStart"))
	sock := listenNotifySocket(t)
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username, "SHELL=/usr/sbin/nologin",
		"NOTIFY_SOCKET=" + sock.name,
	}
	env = append(env, unit["Environment"]...)
	// sh sets the umask, then becomes the service (exec keeps the PID, so
	// signals reach posthorn itself, as with systemd's MAINPID).
	cmd := exec.Command("/bin/sh", append([]string{"-c", "umask " + one("UMask") + ` && exec "$0" "$@"`}, argv...)...)
	cmd.Env, cmd.Dir = env, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
	logf, err := os.Create(filepath.Join(t.TempDir(), "service.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &service{cmd: cmd, done: make(chan error, 1), log: logf, notify: sock}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("service log:\n%s", readFile(t, logf.Name()))
		}
		logf.Close()
	})
	return s
}

// waitFor polls cond (a state of the store, not a time) until it holds.
func (s *service) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case err := <-s.done:
			s.done <- err
			t.Fatalf("the service exited (%v) while waiting for %s", err, what)
		case <-tick.C:
		}
	}
}

// stop is systemctl stop: SIGTERM, STOPPING=1, exit status 0.
func (s *service) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := s.notify.next(t, s.done, "STOPPING=1"); got != "STOPPING=1" {
		t.Errorf("after SIGTERM: %q", got)
	}
	if err := <-s.done; err != nil {
		t.Errorf("the service exited with %v", err)
	}
	s.done <- nil
}

func countType(evs []event.Event, rcpt string, typ event.Type) int {
	n := 0
	for _, e := range evs {
		if e.To == rcpt && e.Type == typ {
			n++
		}
	}
	return n
}

func checkOwner(t *testing.T, path, owner, group string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(st.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(st.Gid)))
	if u == nil || g == nil || u.Username != owner || g.Name != group || fi.Mode()&(os.ModeDir|os.ModePerm) != mode {
		t.Errorf("%s: %v uid %d gid %d, want %v %s:%s", path, fi.Mode(), st.Uid, st.Gid, mode, owner, group)
	}
}

// apt runs apt-get as an administrator would, without questions.
func apt(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("apt-get", append([]string{"-y", "-q", "--no-install-recommends"}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
	} else {
		t.Logf("apt-get %s:\n%s", strings.Join(args, " "), lastLines(string(out), 12))
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
