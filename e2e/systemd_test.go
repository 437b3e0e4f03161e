package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitPath is the unit file as committed.
const unitPath = "../systemd/posthorn.service"

// maxExposure is the highest "systemd-analyze security" exposure level the
// unit may have (0 is fully locked down, 10 is unprotected; systemd rates
// up to 2.0 "OK"). Posthorn needs the network and the mail log, which
// costs about 1.4 (1.3 without the milter's chown).
const maxExposure = 2.0

// requireSystemdAnalyze returns the path of systemd-analyze, or skips the
// test where it is missing (fails it under CI=true: .ci/setup installs it).
func requireSystemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("systemd-analyze not found (Debian package systemd; CI is set, so this fails)")
	}
	t.Skipf("systemd-analyze not found: install the Debian package systemd to check the unit")
	return ""
}

var exposureRE = regexp.MustCompile(`(?m)^→ Overall exposure level for posthorn\.service: ([0-9.]+)`)

// TestUnitSecurity scores the unit's sandbox. --offline=true reads only the
// file, so no running systemd is needed (systemd ≥ 250).
func TestUnitSecurity(t *testing.T) {
	sa := requireSystemdAnalyze(t)
	out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", unitPath).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	level, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure level %.1f", level)
	if level > maxExposure {
		t.Errorf("exposure level %.1f > %.1f; the settings not set:\n%s", level, maxExposure, grepLines(out, "✗"))
	}
}

// TestUnitVerify runs systemd-analyze verify, which checks the syntax of
// every setting, that the commands exist and are executable, and that the
// units named in dependencies can be loaded. Without a running systemd it
// loads units from the file system. ExecStart names /usr/bin/posthorn,
// which exists only once the package is installed, so the file checked is
// a copy pointing at the binary under test (the installed unit is checked
// as is by TestPackageDeb). --man=no: the man page is not installed either.
func TestUnitVerify(t *testing.T) {
	sa := requireSystemdAnalyze(t)
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "\nExecStart=/usr/bin/posthorn ") {
		t.Fatal("ExecStart no longer runs /usr/bin/posthorn: update this test and nfpm.yaml together")
	}
	unit := filepath.Join(t.TempDir(), "posthorn.service")
	copyUnit := strings.ReplaceAll(string(data), "/usr/bin/posthorn ", posthorn+" ")
	if err := os.WriteFile(unit, []byte(copyUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitSettings pins the settings the package and the daemon rely on,
// which systemd-analyze would accept in any form.
func TestUnitSettings(t *testing.T) {
	u := readUnit(t, unitPath)
	for key, want := range map[string]string{
		"Type":                     "notify",
		"NotifyAccess":             "main",
		"User":                     "posthorn",
		"Group":                    "posthorn",
		"SupplementaryGroups":      "adm",
		"ExecStart":                "/usr/bin/posthorn serve --config /etc/posthorn/posthorn.toml",
		"ExecReload":               "/bin/kill -HUP $MAINPID",
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
		"UMask":                    "0027",
		"ProtectSystem":            "strict",
		"ReadWritePaths":           "/var/lib/posthorn /run/posthorn",
		"CapabilityBoundingSet":    "",
		"RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6",
		"SystemCallFilter":         "@system-service",
	} {
		if got, ok := u[key]; !ok || got[0] != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome",
		"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
		"RestrictNamespaces", "LockPersonality", "MemoryDenyWriteExecute"} {
		if got := u[key]; len(got) != 1 || got[0] != "yes" {
			t.Errorf("%s = %q, want yes", key, got)
		}
	}
}

// readUnit returns the [Service] settings of a unit file: key → values in
// file order (a key may repeat). Continuation lines are not used in ours.
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: not a setting: %q", path, line)
			}
			u[k] = append(u[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func grepLines(out []byte, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// notifySocket plays systemd's notification socket for one test, on an
// abstract address so that any user may send to it.
type notifySocket struct {
	name string
	conn *net.UnixConn
}

func listenNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	name := fmt.Sprintf("@posthorn-e2e-notify-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{name: name, conn: conn}
}

// next returns the next notification. done is the daemon's exit: a daemon
// that dies instead of notifying fails the test at once.
func (s *notifySocket) next(t *testing.T, done chan error, what string) string {
	t.Helper()
	type msg struct {
		s   string
		err error
	}
	got := make(chan msg, 1)
	go func() {
		s.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		buf := make([]byte, 4096)
		n, err := s.conn.Read(buf)
		got <- msg{string(buf[:n]), err}
	}()
	select {
	case m := <-got:
		if m.err != nil {
			t.Fatalf("waiting for %s: %v", what, m.err)
		}
		return m.s
	case err := <-done:
		done <- err
		t.Fatalf("posthorn exited (%v) while waiting for %s", err, what)
	}
	return ""
}

// TestServeNotifies runs serve as a Type=notify service would run: READY=1
// once it follows the log, RELOADING=1 then READY=1 around a SIGHUP (and
// it keeps running), STOPPING=1 and exit status 0 on SIGTERM.
func TestServeNotifies(t *testing.T) {
	dir := testDir(t)
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, maillog, "")
	sock := listenNotifySocket(t)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(posthorn, "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock.name)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})

	if got := sock.next(t, done, "READY=1"); !strings.HasPrefix(got, "READY=1\nSTATUS=following the maillog") {
		t.Fatalf("first notification = %q", got)
	}
	// The level change is applied at the first reload; the second finds nothing new.
	if err := os.WriteFile(cfg, []byte(strings.Replace(readFile(t, cfg), `level = "debug"`, `level = "info"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second SIGHUP must work as the first did
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if got := sock.next(t, done, "RELOADING=1"); got != "RELOADING=1" {
			t.Fatalf("after SIGHUP: %q", got)
		}
		if got := sock.next(t, done, "READY=1 after the reload"); !strings.HasPrefix(got, "READY=1\n") {
			t.Fatalf("after the reload: %q", got)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := sock.next(t, done, "STOPPING=1"); got != "STOPPING=1" {
		t.Fatalf("after SIGTERM: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve exited with %v; log:\n%s", err, readFile(t, logf.Name()))
	}
	log := readFile(t, logf.Name())
	for _, want := range []string{"reload: configuration applied", "applied=[log.level]", "reload: configuration unchanged"} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, log)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
