package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// ErrLocked is the error of an Exclusive Open while another process holds
// the store.
var ErrLocked = errors.New("database is in use by another process")

// fileLock is the lock an Exclusive store holds on PATH.lock.
//
// Why a file of its own: SQLite locks the database file with POSIX record
// locks (fcntl), which belong to the process and are all dropped when any
// descriptor of the file in that process is closed
// (https://www.sqlite.org/howtocorrupt.html, section 2.2); opening the
// database file once more to lock it would put SQLite's own locks at risk
// each time that descriptor closed. And flock on the database file could
// be mapped to fcntl locks by some file systems (NFS), where it would then
// conflict with SQLite's. A separate file has neither problem, and the
// -wal and -shm files are SQLite's to create and remove. The lock file
// stays after the holder exits: removing it would race with a process
// that has just opened it; an unlocked file is harmless.
type fileLock struct {
	f    *os.File
	path string
}

// lockPath is the lock file of the database at path.
func lockPath(path string) string { return path + ".lock" }

// openLockFile opens the lock file: os.OpenFile, a variable so that a
// test, which may run as root (whom no file mode refuses), can make it
// refuse.
var openLockFile = os.OpenFile

// lockFileHint says how to give a lock file created by root back to the
// service user (packaging/posthorn.sysusers).
func lockFileHint(lp string) string {
	return fmt.Sprintf("was posthorn run as root? Give the file to the user posthorn serve runs as: sudo chown posthorn: %s", lp)
}

// acquireLock takes the exclusive lock of the database at path without
// waiting, and writes this process's id into the lock file so that the
// next process that fails to take it can name the holder.
func acquireLock(path string) (*fileLock, error) {
	lp := lockPath(path)
	// 0644: the id of the holder is no secret, and a second posthorn run
	// by another user can then name it.
	f, err := openLockFile(lp, os.O_RDWR|os.O_CREATE, 0o644)
	readOnly := false
	if errors.Is(err, fs.ErrPermission) {
		// A `sudo posthorn serve` leaves the file root's, 0644: the
		// service user may still read it, and flock(2) takes an
		// exclusive lock on a descriptor open for reading. Only the pid
		// note below is lost.
		if ro, rerr := openLockFile(lp, os.O_RDONLY, 0); rerr == nil {
			f, err, readOnly = ro, nil, true
		}
	}
	if err != nil {
		err = fmt.Errorf("lock file: %w", err)
		if errors.Is(err, fs.ErrPermission) {
			// Restarting will not help: an administrator must act.
			return nil, unusable(fmt.Errorf("%w; %s", err, lockFileHint(lp)))
		}
		return nil, err
	}
	locked, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lp, err)
	}
	if !locked {
		holder := ""
		if b, err := os.ReadFile(lp); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		return nil, fmt.Errorf("%w%s, which holds %s: is posthorn serve running already? Stop it first (systemctl stop posthorn)", ErrLocked, holder, lp)
	}
	// The id is only a hint for the message above; failing to write it
	// leaves the lock in force.
	if readOnly {
		return &fileLock{f: f, path: lp}, nil
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f, path: lp}, nil
}

// release drops the lock. The id stays in the file; a later holder
// overwrites it.
func (l *fileLock) release() error {
	if l == nil {
		return nil
	}
	return l.f.Close() // closing the descriptor releases its flock
}
