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

var _ Driver = (*Lib)(nil)

func (*Lib) unsupported() error { _, err := LoadFrom(DefaultLibrary); return err }

// Name implements Driver.
func (*Lib) Name() string { return DefaultLibrary + " (unsupported on " + runtime.GOOS + ")" }

// DeviceCount implements Driver.
func (l *Lib) DeviceCount() (int, error) { return 0, l.unsupported() }

// Device implements Driver.
func (l *Lib) Device(int) (DeviceInfo, error) { return DeviceInfo{}, l.unsupported() }

// NewContext implements Driver.
func (l *Lib) NewContext(int) (Context, error) { return nil, l.unsupported() }
