package logtail

import (
	"fmt"
	"syscall"
)

// inotifyAvailable checks that this process can create an inotify instance
// before nxadm/tail's watch package tries, because that package exits the
// process when it cannot (util.Fatal in InotifyTracker.run). The usual cause
// is fs.inotify.max_user_instances being used up by other processes of the
// same user.
func inotifyAvailable() error {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("create inotify instance: %w", err)
	}
	syscall.Close(fd)
	return nil
}
