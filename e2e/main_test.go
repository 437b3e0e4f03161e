// Package e2e runs Posthorn as a user does: the built binary against real
// files, a real SQLite store and a private Postfix instance.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posthorn/posthorn/event"
	"github.com/posthorn/posthorn/sqlite"
)

// posthorn is the binary under test, built once by TestMain.
var posthorn string

// cleanups run after all tests and benchmarks, for what outlives one of
// them (the benchmark log shared by several benchmarks).
var cleanups []func()

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "posthorn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	posthorn = filepath.Join(dir, "posthorn")
	build := exec.Command("go", "build", "-o", posthorn, "../cmd/posthorn")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build posthorn:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeConfig writes a posthorn.toml for a maillog file and a store in dir.
func writeConfig(t *testing.T, dir, maillog string, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "posthorn.toml")
	// retention "0": the logs replayed here carry fixed dates, which the
	// pruner would otherwise start deleting a minute into a long test.
	cfg := fmt.Sprintf(`hostname = "e2e"
[store]
path = %q
retention = "0"
[maillog]
path = %q
start = "begin"
%s
[log]
level = "debug"
`, filepath.Join(dir, "posthorn.db"), maillog, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemon is a running `posthorn serve`.
type daemon struct {
	cmd      *exec.Cmd
	done     chan error
	log      *os.File
	logStart int64 // size of the shared serve.log when this run began
}

// started reports whether this run has logged that it follows the
// maillog, which it does after its signal handlers are in place.
func (d *daemon) started() bool {
	data, err := os.ReadFile(d.log.Name())
	if err != nil || int64(len(data)) < d.logStart {
		return false
	}
	return strings.Contains(string(data[d.logStart:]), `msg="following maillog"`)
}

func startServe(t *testing.T, cfgPath string) *daemon {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(cfgPath), "serve.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	cmd := exec.Command(posthorn, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, done: make(chan error, 1), log: logf, logStart: logStart}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-d.done
		}
		logf.Close()
	})
	return d
}

func (d *daemon) kill(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-d.done
}

// stop sends SIGTERM and returns how long the daemon took to exit.
func (d *daemon) stop(t *testing.T) (time.Duration, error) {
	t.Helper()
	// A signal that arrives before serve has installed its handlers
	// kills it like any program; wait until this run has logged that it
	// started (or has exited) so the stop tests serve's own shutdown.
	deadline := time.Now().Add(30 * time.Second)
	for !d.started() && time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			deadline = time.Time{} // it exited: nothing to wait for
		case <-time.After(20 * time.Millisecond):
		}
	}
	start := time.Now()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		return time.Since(start), err
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		return time.Since(start), fmt.Errorf("serve did not stop within 10 s of SIGTERM")
	}
}

// waitFor polls cond until it holds or the deadline passes. It waits for a
// state of the system under test (a cursor, a row count), never for time.
func waitFor(t *testing.T, d *daemon, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; serve's log ends:\n%s", what, tail(d.log.Name(), 15))
		case err := <-d.done:
			d.done <- err
			t.Fatalf("serve exited (%v) while waiting for %s; see %s", err, what, d.log.Name())
		case <-tick.C:
		}
	}
}

// storeCursor reads the committed cursor of a file source.
func storeCursor(t *testing.T, db, source string) (event.Cursor, bool) {
	t.Helper()
	if _, err := os.Stat(db); err != nil {
		return event.Cursor{}, false
	}
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	c, ok, err := st.Cursor(context.Background(), source)
	if err != nil {
		t.Fatalf("read cursor: %v", err)
	}
	return c, ok
}

func storedEvents(t *testing.T, db string) []event.Event {
	t.Helper()
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	evs, err := st.Events(context.Background(), event.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testDir is t.TempDir, or a directory that is kept for inspection when
// POSTHORN_E2E_KEEP is set.
func testDir(t *testing.T) string {
	if os.Getenv("POSTHORN_E2E_KEEP") == "" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "posthorn-"+t.Name()+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keeping %s", dir)
	return dir
}
