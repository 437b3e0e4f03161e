package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/posthorn/posthorn/sqlite"
)

// Exit statuses, one rule for every command:
//
//   - 2 (exitConfig): an administrator must act before running again can
//     succeed: a usage error, a configuration error, or a database that
//     cannot be used as it is (damaged, not a database, a newer schema, a
//     missing directory, a binary built without SQLite). systemd's
//     RestartPreventExitStatus=2 keeps the service from restarting in a
//     loop on it.
//   - 1 (exitFail): any other failure, which may pass by itself: an
//     endpoint that does not answer, a database busy for too long, another
//     serve holding the store, a full disk.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

// configError marks an error of the configuration file.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// exitFor is the exit status of a command that failed with err.
func exitFor(err error) int {
	var ce configError
	if errors.As(err, &ce) || sqlite.Unusable(err) {
		return exitConfig
	}
	return exitFail
}

// report prints err for the command name ("posthorn user") and returns its
// exit status.
func report(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return exitFor(err)
}
