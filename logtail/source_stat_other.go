//go:build !unix

package logtail

import "os"

// fileID is the identity of a file that survives renames. Outside Unix
// there is no (st_dev, st_ino), so every file looks the same and rotation
// is noticed only by truncation.
type fileID struct {
	dev, ino uint64
}

func identity(os.FileInfo) fileID { return fileID{} }
