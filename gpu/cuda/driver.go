package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// DevicePtr is an address in device memory (a CUdeviceptr).
type DevicePtr uint64

// Stream, Module, Function and Event are opaque handles of the
// implementation that made them (CUstream, CUmodule, CUfunction, CUevent
// for the real driver). Stream 0 is the context's default stream.
type (
	Stream   uintptr
	Module   uintptr
	Function uintptr
	Event    uintptr
)

// Dim3 is a grid or block size; zero components count as 1.
type Dim3 struct{ X, Y, Z uint32 }

// Norm returns d with its zero components set to 1 (the size a launch
// uses).
func (d Dim3) Norm() Dim3 {
	if d.X == 0 {
		d.X = 1
	}
	if d.Y == 0 {
		d.Y = 1
	}
	if d.Z == 0 {
		d.Z = 1
	}
	return d
}

// DeviceInfo describes one device.
type DeviceInfo struct {
	Ordinal int
	// Name is the marketing name, e.g. "NVIDIA H100 80GB HBM3".
	Name string
	// TotalMem is the device memory in bytes.
	TotalMem int64
	// Major and Minor are the compute capability (9, 0 for sm_90).
	Major, Minor int
	// Multiprocessors is the number of SMs.
	Multiprocessors int
}

// Arch is the compute capability as PTX names a target: "sm_90".
func (d DeviceInfo) Arch() string { return fmt.Sprintf("sm_%d%d", d.Major, d.Minor) }

// String describes the device in one line: "cuda:0 NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)".
func (d DeviceInfo) String() string {
	return fmt.Sprintf("cuda:%d %s (%s, %.1f GiB)", d.Ordinal, d.Name, d.Arch(), float64(d.TotalMem)/(1<<30))
}

// Driver is the device API mlbuild's CUDA backend is written against. Two
// implementations are planned: the real driver (Load) and a PTX
// interpreter that runs the same embedded PTX on the CPU for tests.
type Driver interface {
	// Name identifies the implementation, e.g. "libcuda.so.1 (CUDA 12.4)".
	Name() string
	// DeviceCount is the number of devices.
	DeviceCount() (int, error)
	// Device describes device ordinal.
	Device(ordinal int) (DeviceInfo, error)
	// NewContext creates a context on device ordinal.
	NewContext(ordinal int) (Context, error)
}

// Context is a device context: memory, streams, modules, launches and
// events. Its methods may be called from any goroutine, but not
// concurrently on one stream. Copies and launches on a stream other than
// 0 are asynchronous: host memory passed to an async copy must stay
// alive and unchanged until the stream is synchronized.
type Context interface {
	// Device describes the context's device.
	Device() DeviceInfo
	// Alloc allocates bytes of device memory (not zeroed).
	Alloc(bytes int64) (DevicePtr, error)
	// Free releases memory from Alloc.
	Free(p DevicePtr) error
	// CopyHtoD copies src to dst on stream s.
	CopyHtoD(s Stream, dst DevicePtr, src []byte) error
	// CopyDtoH copies len(dst) bytes from src on stream s.
	CopyDtoH(s Stream, dst []byte, src DevicePtr) error
	// CopyDtoD copies bytes between device buffers on stream s.
	CopyDtoD(s Stream, dst, src DevicePtr, bytes int64) error
	// NewStream creates a stream.
	NewStream() (Stream, error)
	// DestroyStream destroys a stream from NewStream.
	DestroyStream(s Stream) error
	// Synchronize waits for everything queued on s.
	Synchronize(s Stream) error
	// LoadModule loads PTX text (NUL-terminated or not), JIT-compiled
	// for the device.
	LoadModule(ptx []byte) (Module, error)
	// UnloadModule unloads a module from LoadModule.
	UnloadModule(m Module) error
	// Function looks up a kernel (an .entry) of m by name.
	Function(m Module, name string) (Function, error)
	// Launch queues f on s with grid×block threads and sharedBytes of
	// dynamic shared memory. Arguments are passed in order and must be
	// DevicePtr, int32, uint32, int64, uint64, float32 or float64, matching
	// the kernel's .param declarations.
	Launch(s Stream, f Function, grid, block Dim3, sharedBytes uint32, args ...any) error
	// NewEvent creates an event that records timing.
	NewEvent() (Event, error)
	// DestroyEvent destroys an event from NewEvent.
	DestroyEvent(e Event) error
	// Record records e on s.
	Record(e Event, s Stream) error
	// Elapsed waits for end and returns the time between two recorded
	// events.
	Elapsed(start, end Event) (time.Duration, error)
	// Close destroys the context and everything in it.
	Close() error
}

// Params is a kernel's arguments laid out as cuLaunchKernel reads them:
// each argument's bytes at an offset aligned to its size, in one buffer
// (the driver is given a pointer to each). An interpreter reads the same
// layout.
type Params struct {
	Buf     []byte
	Offsets []int
	Sizes   []int
}

// PackParams lays out kernel arguments (see Context.Launch for the
// types). An unsupported type is an error wrapping ErrUnsupportedArg that
// names the argument's position.
func PackParams(args ...any) (Params, error) {
	var p Params
	for i, a := range args {
		var b [8]byte
		var n int
		switch v := a.(type) {
		case DevicePtr:
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			n = 8
		case int32:
			binary.LittleEndian.PutUint32(b[:], uint32(v))
			n = 4
		case uint32:
			binary.LittleEndian.PutUint32(b[:], v)
			n = 4
		case int64:
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			n = 8
		case uint64:
			binary.LittleEndian.PutUint64(b[:], v)
			n = 8
		case float32:
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			n = 4
		case float64:
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			n = 8
		default:
			return Params{}, fmt.Errorf("%w: argument %d is %T (want DevicePtr, int32, uint32, int64, uint64, float32 or float64)", ErrUnsupportedArg, i, a)
		}
		off := (len(p.Buf) + n - 1) / n * n
		for len(p.Buf) < off {
			p.Buf = append(p.Buf, 0)
		}
		p.Buf = append(p.Buf, b[:n]...)
		p.Offsets = append(p.Offsets, off)
		p.Sizes = append(p.Sizes, n)
	}
	return p, nil
}
