//go:build unix

package safetensors

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only. Where the file system cannot map
// files (some FUSE and network mounts), it falls back to reading the file.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	data, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		if err == unix.ENODEV || err == unix.EACCES || err == unix.EINVAL {
			return readAll(f, size)
		}
		return nil, nil, err
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
