//go:build !cgo

package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// Built without cgo (no C compiler: go then turns cgo off), the driver is a
// stub: Open and Check say what to do instead of the stub's own message.
// Run with CGO_ENABLED=0 go test ./sqlite -run TestWithoutCgo.
func TestWithoutCgo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posthorn.db")
	_, err := Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "built without cgo") || !strings.Contains(err.Error(), "install a C compiler (gcc)") || !Unusable(err) {
		t.Errorf("Open: %v", err)
	}
	if _, err := Check(context.Background(), path); err == nil || !strings.Contains(err.Error(), "built without cgo") {
		t.Errorf("Check: %v", err)
	}
}
