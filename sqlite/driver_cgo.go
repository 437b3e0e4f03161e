//go:build cgo

package sqlite

import (
	"errors"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// rawConn is the driver's connection, which setSync compares.
type rawConn = sqlite3.SQLiteConn

// errNoCgo is nil when the driver is real.
var errNoCgo error

// resultCode returns the SQLite primary and extended result codes of err
// (https://www.sqlite.org/rescode.html), or ok false when err is not an
// SQLite error.
func resultCode(err error) (code, extended int, ok bool) {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return int(se.Code), int(se.ExtendedCode), true
	}
	return 0, 0, false
}
