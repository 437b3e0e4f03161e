//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive flock(2) on f without waiting; false when
// another open file description holds it. flock belongs to the open file,
// not to the process, so even a second Open in the same process is refused.
func tryLock(f *os.File) (bool, error) {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, syscall.EINTR):
			continue
		default:
			return false, err
		}
	}
}

// access reports whether this process's user may read (and with write,
// also write) path, as access(2) decides: root may do anything.
func access(path string, write bool) error {
	mode := uint32(4) // R_OK
	if write {
		mode |= 2 // W_OK
	}
	if err := syscall.Access(path, mode); err != nil {
		return &os.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}
