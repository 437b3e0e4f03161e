//go:build !unix

package sqlite

import "os"

// tryLock does not lock where flock(2) does not exist: posthorn serve runs
// on Linux, and the other systems only build it for development.
func tryLock(*os.File) (bool, error) { return true, nil }

// access is left to the open itself where access(2) does not exist.
func access(string, bool) error { return nil }
