//go:build !unix

package main

import "io"

// toJournal: the journal exists only on (unix) systemd hosts.
func toJournal(io.Writer) bool { return false }
