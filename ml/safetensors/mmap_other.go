//go:build !unix

package safetensors

import "os"

// mapFile reads the whole file on systems without mmap support here.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	return readAll(f, size)
}
