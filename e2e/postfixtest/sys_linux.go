//go:build linux

package postfixtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// supported reports whether this platform can run a private Postfix.
const supported = true

// portReservation holds a loopback TCP port for the lifetime of an instance.
//
// The socket is bound with SO_REUSEADDR but never listens. Linux then lets
// another SO_REUSEADDR socket (Postfix's master and smtp-sink both set it in
// inet_listen) bind and listen on the same port, while the kernel's ephemeral
// port allocator skips it, so no other test can be handed the port between the
// moment we choose it and the moment Postfix binds it. A reserved port that
// nobody listens on refuses connections, which is exactly what dead.test needs.
type portReservation struct {
	fd   int
	port int
}

func reservePort() (*portReservation, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve port: socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve port: SO_REUSEADDR: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve port: bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve port: getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		return nil, fmt.Errorf("reserve port: unexpected address type %T", sa)
	}
	return &portReservation{fd: fd, port: in4.Port}, nil
}

func (r *portReservation) release() {
	if r != nil && r.fd >= 0 {
		syscall.Close(r.fd)
		r.fd = -1
	}
}

// groupMembers lists live (non-zombie) processes whose process group is pgid.
// Postfix's master calls setsid(), so its daemons share its pid as their group.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// proc(5): "pid (comm) state ppid pgrp ..."; comm may contain spaces
		// and parentheses, so split after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killGroup(pgid int, sig syscall.Signal) {
	if pgid > 1 {
		syscall.Kill(-pgid, sig)
	}
}

// ownProcessGroup puts a child in a process group of its own.
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
