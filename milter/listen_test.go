package milter

import (
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]string{
		"inet:127.0.0.1:10030": "tcp 127.0.0.1:10030",
		"inet:localhost:8891":  "tcp localhost:8891",
		"inet:[::1]:10031":     "tcp [::1]:10031",
		"unix:/run/p/m.sock":   "unix /run/p/m.sock",
		"unix:/run//p/../m.s":  "unix /run/m.s",
		"inet:10030@127.0.0.1": `parse milter address "inet:10030@127.0.0.1": Postfix writes inet:HOST:PORT, not Sendmail's inet:PORT@HOST`,
		"inet:127.0.0.1":       `parse milter address "inet:127.0.0.1": want "inet:HOST:PORT": address 127.0.0.1: missing port in address`,
		"inet:127.0.0.1:0":     `parse milter address "inet:127.0.0.1:0": port must be 1 to 65535`,
		"inet::10030":          `parse milter address "inet::10030": no host (use 127.0.0.1 for the local Postfix)`,
		"unix:m.sock":          `parse milter address "unix:m.sock": the socket path must be absolute`,
		"local:/x":             `parse milter address "local:/x": unknown type "local": want "inet:HOST:PORT" or "unix:PATH"`,
		"127.0.0.1":            `parse milter address "127.0.0.1": want "inet:HOST:PORT" or "unix:PATH"`,
	} {
		a, err := ParseAddress(in)
		got := a.Network + " " + a.Addr
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("ParseAddress(%q) = %s, want %s", in, got, want)
		}
		if err == nil && strings.HasPrefix(in, "inet:1") && a.String() != in {
			t.Errorf("String() = %s, want %s", a, in)
		}
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "milter.sock")
	group := ""
	if g, err := user.LookupGroupId("0"); err == nil {
		group = g.Name
	}
	ln, err := Listen(Address{Network: "unix", Addr: path}, SocketOptions{Mode: 0o660, Group: group})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v", fi.Mode())
	}
	if group != "" && fi.Sys().(*syscall.Stat_t).Gid != 0 {
		t.Errorf("socket group %d", fi.Sys().(*syscall.Stat_t).Gid)
	}
	// A live socket is not taken over.
	if _, err := Listen(Address{Network: "unix", Addr: path}, SocketOptions{}); err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Errorf("second Listen = %v", err)
	}
	ln.Close()

	// A stale socket (a crashed run) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen(Address{Network: "unix", Addr: path}, SocketOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()

	// Any other file is left alone.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := Listen(Address{Network: "unix", Addr: file}, SocketOptions{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen on a file = %v", err)
	}
	if _, err := Listen(Address{Network: "unix", Addr: filepath.Join(dir, "s2")}, SocketOptions{Group: "no-such-group-posthorn"}); err == nil ||
		!strings.Contains(err.Error(), `look up socket group "no-such-group-posthorn"`) {
		t.Errorf("Listen with an unknown group = %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*s2*")); len(left) != 0 {
		t.Errorf("a socket whose options failed was left behind: %v", left)
	}
	// Closing removes the socket.
	ln, err = Listen(Address{Network: "unix", Addr: path}, SocketOptions{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
}
