package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// notifier speaks the service manager notification protocol of
// sd_notify(3): newline-separated VAR=value assignments in one datagram
// on the AF_UNIX socket named by $NOTIFY_SOCKET. It replaces a dependency
// on go-systemd for the four messages posthorn sends.
//
// The zero notifier (not run by systemd, or by a unit that is not
// Type=notify) does nothing.
type notifier struct {
	addr *net.UnixAddr // nil: no service manager listening
}

// Notification states (sd_notify(3)).
const (
	notifyReady     = "READY=1"     // startup finished, or a reload finished
	notifyReloading = "RELOADING=1" // a reload began; READY=1 ends it
	notifyStopping  = "STOPPING=1"  // shutdown began
)

// newNotifier reads $NOTIFY_SOCKET and removes it from the environment:
// children such as journalctl must not inherit it (systemd ignores them
// with NotifyAccess=main anyway, but another manager might not).
func newNotifier() (*notifier, error) {
	name, ok := os.LookupEnv("NOTIFY_SOCKET")
	if !ok || name == "" {
		return &notifier{}, nil
	}
	os.Unsetenv("NOTIFY_SOCKET")
	// sd_notify(3): an absolute path, or an abstract socket whose name
	// starts with "@" (the Go runtime maps a leading "@" to the NUL byte
	// of the Linux abstract namespace). systemd ≥ 253 also allows vsock:
	// addresses, which a service on the host never gets.
	if !strings.HasPrefix(name, "/") && !strings.HasPrefix(name, "@") {
		return &notifier{}, fmt.Errorf("read NOTIFY_SOCKET: unsupported address %q (want an absolute path or @abstract)", name)
	}
	return &notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}, nil
}

// enabled reports whether a service manager is listening.
func (n *notifier) enabled() bool { return n != nil && n.addr != nil }

// notify sends the states as one datagram. A STATUS= line is free text
// shown by systemctl status; newlines in it would start a new assignment,
// so callers pass single-line text.
func (n *notifier) notify(states ...string) error {
	if !n.enabled() || len(states) == 0 {
		return nil
	}
	for _, s := range states {
		if strings.ContainsRune(s, '\n') || !strings.Contains(s, "=") {
			return fmt.Errorf("send notification: malformed state %q", s)
		}
	}
	// One connection per message, as sd_notify does: the socket may have
	// been re-created by the manager (daemon-reexec) since the last one.
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("send notification: %w", err)
	}
	defer conn.Close()
	msg := strings.Join(states, "\n")
	w, err := conn.Write([]byte(msg))
	if err != nil {
		return fmt.Errorf("send notification: %w", err)
	}
	if w != len(msg) {
		return errors.New("send notification: short write")
	}
	return nil
}

// status returns a STATUS= assignment for text, folded to one line.
func status(text string) string {
	return "STATUS=" + strings.Join(strings.Fields(text), " ")
}
