//go:build unix

package logtail

import (
	"os"
	"syscall"
)

// fileID is the identity of a file that survives renames: (st_dev, st_ino).
type fileID struct {
	dev, ino uint64
}

func identity(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
}
