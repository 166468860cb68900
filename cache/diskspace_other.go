//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package cache

import (
	"errors"
	"io/fs"
)

// diskFree is unknown on this system: the store's free-space checks are
// skipped and only the write errors the system reports remain.
func diskFree(string) (int64, error) {
	return 0, errors.ErrUnsupported
}

// allocated returns the disk space a file takes, taken to be its size.
func allocated(fi fs.FileInfo) int64 { return fi.Size() }
