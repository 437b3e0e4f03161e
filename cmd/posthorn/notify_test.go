package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify stands in for systemd's notification socket at name.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readNotify returns the next datagram, failing after a deadline so that a
// missing message cannot hang the test.
func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifier(t *testing.T) {
	for _, tc := range []struct {
		name   string
		socket func(t *testing.T) string // "" listens nowhere
	}{
		{"path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "notify") }},
		{"abstract", func(t *testing.T) string { return fmt.Sprintf("@posthorn-notify-test-%d", os.Getpid()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.socket(t)
			conn := listenNotify(t, name)
			t.Setenv("NOTIFY_SOCKET", name)
			n, err := newNotifier()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
				t.Error("NOTIFY_SOCKET is still set: children would inherit it")
			}
			if !n.enabled() {
				t.Fatal("notifier disabled with NOTIFY_SOCKET set")
			}
			if err := n.notify(notifyReady, status("following\n  /var/log/mail.log ")); err != nil {
				t.Fatal(err)
			}
			if got, want := readNotify(t, conn), "READY=1\nSTATUS=following /var/log/mail.log"; got != want {
				t.Errorf("datagram = %q, want %q", got, want)
			}
			if err := n.notify(notifyStopping); err != nil {
				t.Fatal(err)
			}
			if got := readNotify(t, conn); got != notifyStopping {
				t.Errorf("datagram = %q, want %q", got, notifyStopping)
			}
		})
	}
}

func TestNotifierErrors(t *testing.T) {
	t.Run("unset", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		n, err := newNotifier()
		if err != nil || n.enabled() {
			t.Fatalf("newNotifier() = enabled %v, %v; want a disabled notifier", n.enabled(), err)
		}
		if err := n.notify(notifyReady); err != nil {
			t.Errorf("notify without a manager: %v", err)
		}
		var nilNotifier *notifier
		if err := nilNotifier.notify(notifyReady); err != nil {
			t.Errorf("notify on nil: %v", err)
		}
	})
	t.Run("relative path", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "run/notify")
		n, err := newNotifier()
		if err == nil || !strings.Contains(err.Error(), "unsupported address") {
			t.Errorf("err = %v, want unsupported address", err)
		}
		if n.enabled() {
			t.Error("notifier enabled for an unusable address")
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
		n, err := newNotifier()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.notify(notifyReady); err == nil || !strings.HasPrefix(err.Error(), "send notification: ") {
			t.Errorf("err = %v, want send notification: ...", err)
		}
	})
	t.Run("malformed state", func(t *testing.T) {
		name := filepath.Join(t.TempDir(), "notify")
		listenNotify(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		n, err := newNotifier()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"READY=1\nSTOPPING=1", "READY"} {
			if err := n.notify(s); err == nil {
				t.Errorf("notify(%q) = nil, want an error", s)
			}
		}
	})
}
