package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Two Exclusive stores on one file: the second is refused, naming the lock
// file and the holder, while stores without the lock (the other commands)
// open and write beside the first; after Close the lock can be taken again.
func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	first, err := Open(path, Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(path, Options{Exclusive: true})
	if err == nil {
		second.Close()
		t.Fatal("a second exclusive Open succeeded")
	}
	if !errors.Is(err, ErrLocked) || Unusable(err) {
		t.Errorf("error = %v; want ErrLocked, not ErrUnusable", err)
	}
	for _, want := range []string{path + ".lock", "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	other, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open without the lock beside serve: %v", err)
	}
	if err := other.AddUser(context.Background(), "admin", "hash"); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{Exclusive: true})
	if err != nil {
		t.Fatalf("exclusive Open after Close: %v", err)
	}
	again.Close()
}

// A failed Open releases the lock it took.
func TestExclusiveReleasedOnFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	write(t, path, []byte("not a db!\n"))
	if _, err := Open(path, Options{Exclusive: true}); err == nil {
		t.Fatal("Open of a text file succeeded")
	}
	l, err := acquireLock(path)
	if err != nil {
		t.Fatalf("lock still held after a failed Open: %v", err)
	}
	l.release()
}

// refuseLockFile makes openLockFile refuse, as the kernel refuses the
// service user a file root created 0644, every open of the lock file whose
// flags refuse says so; tests may run as root, whom no file mode refuses.
func refuseLockFile(t *testing.T, refuse func(flag int) bool) {
	t.Helper()
	t.Cleanup(func() { openLockFile = os.OpenFile })
	openLockFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if strings.HasSuffix(name, ".lock") && refuse(flag) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
		}
		return os.OpenFile(name, flag, perm)
	}
}

// A lock file the user may only read (left by `sudo posthorn serve`) still
// locks: serve starts, a second serve is refused, the old pid note stays.
func TestLockFileReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	write(t, path+".lock", []byte("4242\n"))
	refuseLockFile(t, func(flag int) bool { return flag&(os.O_WRONLY|os.O_RDWR) != 0 })
	first, err := Open(path, Options{Exclusive: true})
	if err != nil {
		t.Fatalf("Open with a read-only lock file: %v", err)
	}
	defer first.Close()
	second, err := Open(path, Options{Exclusive: true})
	if err == nil {
		second.Close()
		t.Fatal("a second exclusive Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: %v; want ErrLocked", err)
	}
	if b, err := os.ReadFile(path + ".lock"); err != nil || string(b) != "4242\n" {
		t.Errorf("lock file holds %q (%v), want the old note", b, err)
	}
	if _, err := Check(context.Background(), path); err != nil {
		t.Errorf("Check with a readable lock file: %v", err)
	}
}

// A lock file the user cannot open at all: serve's Open fails as
// unusable (so that systemd does not restart it in vain) and check-config
// reports it; both name the file and the fix.
func TestLockFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	write(t, path+".lock", []byte("4242\n"))
	refuseLockFile(t, func(int) bool { return true })
	_, openErr := Open(path, Options{Exclusive: true})
	_, checkErr := Check(context.Background(), path)
	for name, err := range map[string]error{"Open": openErr, "Check": checkErr} {
		if !Unusable(err) {
			t.Errorf("%s: %v; want ErrUnusable", name, err)
			continue
		}
		for _, want := range []string{path + ".lock", "permission denied", "sudo chown posthorn: " + path + ".lock"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not contain %q", name, err, want)
			}
		}
	}
}
