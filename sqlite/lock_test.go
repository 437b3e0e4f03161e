package sqlite

import (
	"context"
	"errors"
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
