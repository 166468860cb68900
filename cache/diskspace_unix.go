//go:build linux || darwin || freebsd || netbsd || openbsd

package cache

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// diskFree returns the bytes available to this process on the file system
// holding path.
func diskFree(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // the fields' types differ by system
}

// allocated returns the disk space a file takes, which is less than its
// size for a sparse file (Badger's logs are created sparse at full size).
func allocated(fi fs.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512 //nolint:unconvert // the field's type differs by system
	}
	return fi.Size()
}
