//go:build !linux

package cuda

import "runtime"

// DefaultLibrary is the driver library Load opens on Linux.
const DefaultLibrary = "libcuda.so.1"

// Lib is the real CUDA driver; the run-time binding exists on Linux only.
type Lib struct{}

// Load reports that the binding is not available on this system.
func Load() (*Lib, error) { return LoadFrom(DefaultLibrary) }

// LoadFrom reports that the binding is not available on this system.
func LoadFrom(path string) (*Lib, error) {
	return nil, &LoadError{Library: path, Reason: "cannot be loaded: mlbuild's CUDA binding supports Linux only, not " + runtime.GOOS, missing: ErrNoDriver}
}
