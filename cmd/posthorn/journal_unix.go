//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// toJournal reports whether w is the stream systemd connected to the
// journal: systemd.exec(5) sets $JOURNAL_STREAM to "DEVICE:INODE" of that
// stream, and it is ours only if stderr still is that file (a shell
// redirect in between would make it something else).
func toJournal(w io.Writer) bool {
	want := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if want == "" || !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fmt.Sprintf("%d:%d", uint64(st.Dev), uint64(st.Ino)) == want
}
