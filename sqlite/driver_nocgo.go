//go:build !cgo

package sqlite

import "errors"

// rawConn stands in for the driver's connection type, which go-sqlite3
// defines only when built with cgo.
type rawConn struct{}

// errNoCgo: go-sqlite3 is a C library; without cgo it builds as a stub
// whose every connection fails with a message about CGO_ENABLED. Open
// says what to do instead.
var errNoCgo = errors.New("posthorn was built without cgo, so it has no SQLite: install a C compiler (gcc) and build it again (see the README's first lines)")

func resultCode(error) (code, extended int, ok bool) { return 0, 0, false }
