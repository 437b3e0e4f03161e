//go:build !linux

package postfixtest

import (
	"errors"
	"syscall"
)

// supported reports whether this platform can run a private Postfix. The
// harness relies on Linux socket semantics (see sys_linux.go) and /proc.
const supported = false

type portReservation struct{ port int }

func reservePort() (*portReservation, error) {
	return nil, errors.New("reserve port: only supported on linux")
}

func (r *portReservation) release() {}

func groupMembers(pgid int) []int { return nil }

func killGroup(pgid int, sig syscall.Signal) {}

func ownProcessGroup() *syscall.SysProcAttr { return nil }
