//go:build unix

package logtail

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own and makes
// cancellation kill the whole group, so that a wrapper script given as
// JournalOptions.Journalctl does not leave its journalctl behind.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
}

// killProcessGroup: journalctl keeps no state worth a graceful stop, and
// the cursor of the last record read is already known.
func killProcessGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
