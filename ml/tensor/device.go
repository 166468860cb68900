package tensor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// The device seam: every program and step that computes asks OpenDevice
// for its backend by name, instead of constructing one.
//
// Names:
//
//	cpu      the CPU backend (NewCPU)
//	cuda     the first CUDA device (cuda:0)
//	cuda:N   CUDA device N
//	auto     cuda:0 when a CUDA backend opens on this machine, else the CPU
//
// The CUDA backend lives in package gpu, which registers itself with
// RegisterAccelerator from its init function; ml/ never imports it, so a
// program that does not link package gpu in has only the CPU ("cuda"
// then fails saying so, and "auto" picks the CPU).

// DeviceAuto, DeviceCPU and DeviceCUDA are the device names' kinds.
const (
	DeviceAuto = "auto"
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// DeviceSpec is a parsed device name.
type DeviceSpec struct {
	// Kind is DeviceAuto, DeviceCPU or DeviceCUDA.
	Kind string
	// Ordinal is the device number of a cuda:N name (0 otherwise).
	Ordinal int
}

// String is the canonical spelling: "auto", "cpu", "cuda:0".
func (s DeviceSpec) String() string {
	if s.Kind == DeviceCUDA {
		return fmt.Sprintf("cuda:%d", s.Ordinal)
	}
	return s.Kind
}

// ParseDevice parses a device name (see OpenDevice); "" means "auto".
func ParseDevice(name string) (DeviceSpec, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "", DeviceAuto:
		return DeviceSpec{Kind: DeviceAuto}, nil
	case DeviceCPU:
		return DeviceSpec{Kind: DeviceCPU}, nil
	case DeviceCUDA:
		return DeviceSpec{Kind: DeviceCUDA}, nil
	}
	if rest, ok := strings.CutPrefix(n, DeviceCUDA+":"); ok {
		i, err := strconv.Atoi(rest)
		if err == nil && i >= 0 && i < 1<<16 && strconv.Itoa(i) == rest {
			return DeviceSpec{Kind: DeviceCUDA, Ordinal: i}, nil
		}
	}
	return DeviceSpec{}, fmt.Errorf(`unknown device %q: want "auto", "cpu", "cuda" or "cuda:N"`, name)
}

// Device says which backend OpenDevice returned.
type Device struct {
	// Name is what provenance records: "cpu" or "cuda:0".
	Name string
	// Description is one line about the hardware, e.g. "2 threads" or
	// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)".
	Description string
	// Fallback, for "auto" that chose the CPU, is why no GPU backend was
	// used (one line); empty otherwise.
	Fallback string
}

// DeviceOptions are the settings of the backend OpenDevice makes.
type DeviceOptions struct {
	// Threads is the CPU backend's worker count (0: GOMAXPROCS, every
	// core the process may use). Results do not depend on it.
	Threads int
	// Auto is set by OpenDevice when the name was "auto": an accelerator
	// may then decline a device it would open when asked by name (the CUDA
	// backend does until it has been verified on a GPU).
	Auto bool
}

// Accelerator opens a backend on a device of one kind (CUDA). Open
// returns the backend, a one-line description of the device, or an
// error that says in one line why that device cannot be used (no driver,
// no such device, ...).
type Accelerator interface {
	Open(ordinal int, opts DeviceOptions) (Backend, string, error)
}

var (
	accelMu sync.RWMutex
	accels  = map[string]Accelerator{}
)

// RegisterAccelerator makes OpenDevice use a for device names of kind
// (DeviceCUDA). Registering a kind twice panics.
func RegisterAccelerator(kind string, a Accelerator) {
	accelMu.Lock()
	defer accelMu.Unlock()
	if _, dup := accels[kind]; dup {
		panic("tensor: accelerator registered twice: " + kind)
	}
	accels[kind] = a
}

// ErrNoAccelerator is matched by OpenDevice's error for a GPU device in a
// program built without the GPU backend.
var ErrNoAccelerator = errors.New("this program was built without mlbuild's CUDA backend (package gpu)")

// OpenDevice returns the backend that name (see ParseDevice) selects. An
// explicit "cuda" or "cuda:N" that cannot be opened is an error saying
// why; "auto" then falls back to the CPU and says why in
// Device.Fallback, which the caller logs.
func OpenDevice(name string, opts DeviceOptions) (Backend, Device, error) {
	spec, err := ParseDevice(name)
	if err != nil {
		return nil, Device{}, err
	}
	if spec.Kind != DeviceCPU {
		be, desc, err := openAccelerator(spec.Kind, spec.Ordinal, opts)
		if err == nil {
			return be, Device{Name: fmt.Sprintf("%s:%d", DeviceCUDA, spec.Ordinal), Description: desc}, nil
		}
		if spec.Kind != DeviceAuto {
			return nil, Device{}, fmt.Errorf("cannot use device %s: %w", spec, err)
		}
		be, dev := openCPU(opts)
		dev.Fallback = err.Error()
		return be, dev, nil
	}
	be, dev := openCPU(opts)
	return be, dev, nil
}

func openAccelerator(kind string, ordinal int, opts DeviceOptions) (Backend, string, error) {
	if kind == DeviceAuto {
		kind = DeviceCUDA
		opts.Auto = true
	}
	accelMu.RLock()
	a := accels[kind]
	accelMu.RUnlock()
	if a == nil {
		return nil, "", ErrNoAccelerator
	}
	return a.Open(ordinal, opts)
}

func openCPU(opts DeviceOptions) (Backend, Device) {
	c := NewCPU(opts.Threads)
	return c, Device{Name: DeviceCPU, Description: fmt.Sprintf("%d threads", c.Workers())}
}

// DeviceError is the panic value of a Backend operation that failed on
// its device (out of device memory, a failed kernel launch): Backend
// methods have no error results, so a device failure panics as a shape
// mismatch does, but with a value callers may recover and report as an
// error rather than a bug. Its Failure method marks it so (the engine
// turns any panic whose value has one into the step's error).
type DeviceError struct {
	// Op is the Backend operation ("MatMul").
	Op string
	// Err says what failed; it wraps the driver's error.
	Err error
}

// Error implements error.
func (e *DeviceError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *DeviceError) Unwrap() error { return e.Err }

// Failure marks the error as a failure of the run, not a bug.
func (e *DeviceError) Failure() {}

// CatchDeviceError runs fn and returns the *DeviceError it panicked with,
// if any (other panics go on).
func CatchDeviceError(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*DeviceError); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	fn()
	return nil
}

// MemoryInfo describes a device backend's memory for planning (a backend
// that has a fixed device memory implements MemoryReporter).
type MemoryInfo struct {
	// Total is the device's memory in bytes.
	Total int64
	// GEMMWidens says that matrix products widen a 16-bit operand into a
	// float32 copy on the device first.
	GEMMWidens bool
	// GEMMWorkspace is memory the products keep, in bytes.
	GEMMWorkspace int64
}

// MemoryReporter is implemented by backends whose memory is a fixed device
// memory (not the host's): training plans its activations against it.
type MemoryReporter interface {
	Memory() MemoryInfo
}

// RowStable is implemented by backends whose MatMul gives each row of its
// result the same bits whatever the number of rows, up to RowStableRows
// rows: several sequences decoded in one product then get exactly what
// each gets alone (llama.Batcher relies on it). A backend without it
// (cuBLAS picks its algorithm by shape) is decoded one sequence at a time.
type RowStable interface {
	RowStableRows() int
}
