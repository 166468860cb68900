//go:build linux

package cuda

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"github.com/ebitengine/purego"
)

// DefaultLibrary is the driver library Load opens: the soname every
// NVIDIA driver installs.
const DefaultLibrary = "libcuda.so.1"

// Lib is the real CUDA driver, libcuda.so.1, loaded at run time. It
// implements Driver.
type Lib struct {
	path    string
	handle  uintptr
	version int
	fn      libFuncs
}

type libFuncs struct {
	init, driverGetVersion                                               uintptr
	deviceGetCount, deviceGet, deviceGetName, deviceTotalMem, deviceAttr uintptr
	ctxCreate, ctxDestroy, ctxSetCurrent                                 uintptr
	memAlloc, memFree                                                    uintptr
	memcpyHtoD, memcpyDtoH, memcpyDtoD                                   uintptr
	memcpyHtoDAsync, memcpyDtoHAsync, memcpyDtoDAsync                    uintptr
	streamCreate, streamDestroy, streamSynchronize                       uintptr
	moduleLoadData, moduleUnload, moduleGetFunction, launchKernel        uintptr
	eventCreate, eventDestroy, eventRecord, eventSynchronize, eventTime  uintptr
	getErrorName, getErrorString                                         uintptr
}

// symbols maps each function to its exported name (the _v2 ABI where the
// header's macro points there).
func (f *libFuncs) symbols() []struct {
	p    *uintptr
	name string
} {
	return []struct {
		p    *uintptr
		name string
	}{
		{&f.init, "cuInit"}, {&f.driverGetVersion, "cuDriverGetVersion"},
		{&f.deviceGetCount, "cuDeviceGetCount"}, {&f.deviceGet, "cuDeviceGet"}, {&f.deviceGetName, "cuDeviceGetName"},
		{&f.deviceTotalMem, "cuDeviceTotalMem_v2"}, {&f.deviceAttr, "cuDeviceGetAttribute"},
		{&f.ctxCreate, "cuCtxCreate_v2"}, {&f.ctxDestroy, "cuCtxDestroy_v2"}, {&f.ctxSetCurrent, "cuCtxSetCurrent"},
		{&f.memAlloc, "cuMemAlloc_v2"}, {&f.memFree, "cuMemFree_v2"},
		{&f.memcpyHtoD, "cuMemcpyHtoD_v2"}, {&f.memcpyDtoH, "cuMemcpyDtoH_v2"}, {&f.memcpyDtoD, "cuMemcpyDtoD_v2"},
		{&f.memcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"}, {&f.memcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"}, {&f.memcpyDtoDAsync, "cuMemcpyDtoDAsync_v2"},
		{&f.streamCreate, "cuStreamCreate"}, {&f.streamDestroy, "cuStreamDestroy_v2"}, {&f.streamSynchronize, "cuStreamSynchronize"},
		{&f.moduleLoadData, "cuModuleLoadData"}, {&f.moduleUnload, "cuModuleUnload"}, {&f.moduleGetFunction, "cuModuleGetFunction"},
		{&f.launchKernel, "cuLaunchKernel"},
		{&f.eventCreate, "cuEventCreate"}, {&f.eventDestroy, "cuEventDestroy_v2"}, {&f.eventRecord, "cuEventRecord"},
		{&f.eventSynchronize, "cuEventSynchronize"}, {&f.eventTime, "cuEventElapsedTime"},
		{&f.getErrorName, "cuGetErrorName"}, {&f.getErrorString, "cuGetErrorString"},
	}
}

var _ Driver = (*Lib)(nil)

// Load opens DefaultLibrary and initializes the driver (cuInit). Without
// a driver the error says so in one line and matches ErrNoDriver:
// "cuda: libcuda.so.1 not found: no NVIDIA driver on this machine".
func Load() (*Lib, error) { return LoadFrom(DefaultLibrary) }

// LoadFrom is Load with another library path or name.
func LoadFrom(path string) (*Lib, error) {
	// dlopen and dlsym report failures through dlerror, whose message is
	// per OS thread: purego calls them one after the other, so the
	// goroutine must not move to another thread in between (it did, and
	// the message came back empty, a missing driver then reading as a
	// broken one).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l, err := openLib(path)
	if err != nil {
		return nil, err
	}
	for _, s := range l.fn.symbols() {
		p, err := purego.Dlsym(l.handle, s.name)
		if err != nil || p == 0 {
			_ = purego.Dlclose(l.handle)
			return nil, &LoadError{Library: path, Reason: "is not a usable CUDA driver: it has no " + s.name, Err: err}
		}
		*s.p = p
	}
	if err := l.call("cuInit", l.fn.init, 0); err != nil {
		_ = purego.Dlclose(l.handle)
		return nil, err
	}
	var v int32
	if err := l.call("cuDriverGetVersion", l.fn.driverGetVersion, uintptr(unsafe.Pointer(&v))); err != nil {
		return nil, err
	}
	l.version = int(v)
	return l, nil
}

// openLib dlopens path, telling a missing library from a broken one.
func openLib(path string) (*Lib, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		msg := err.Error()
		if strings.Contains(msg, "No such file") || strings.Contains(msg, "cannot open shared object") {
			reason := "not found"
			if filepath.Base(path) == DefaultLibrary {
				reason += ": no NVIDIA driver on this machine"
			}
			return nil, &LoadError{Library: path, Reason: reason, Err: err, missing: ErrNoDriver}
		}
		return nil, &LoadError{Library: path, Reason: "cannot be loaded: " + oneLine(msg), Err: err}
	}
	return &Lib{path: path, handle: h}, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// call calls a driver function and maps its CUresult to an *Error naming
// name. Pointer arguments are converted to uintptr in the call
// expression, which go:uintptrescapes keeps alive for the call.
//
//go:uintptrescapes
func (l *Lib) call(name string, fn uintptr, args ...uintptr) error {
	r, _, _ := purego.SyscallN(fn, args...)
	return l.check(name, Result(int32(r)))
}

func (l *Lib) check(name string, r Result) error {
	if r == Success {
		return nil
	}
	e := &Error{Call: name, Code: r, Name: r.Name(), Message: resultNames[r][1]}
	if l.fn.getErrorName != 0 {
		var p *byte
		if rr, _, _ := purego.SyscallN(l.fn.getErrorName, uintptr(r), uintptr(unsafe.Pointer(&p))); rr == 0 && p != nil {
			e.Name = cString(p)
		}
	}
	if l.fn.getErrorString != 0 {
		var p *byte
		if rr, _, _ := purego.SyscallN(l.fn.getErrorString, uintptr(r), uintptr(unsafe.Pointer(&p))); rr == 0 && p != nil {
			e.Message = cString(p)
		}
	}
	return e
}

// cString copies a NUL-terminated C string (at most 4 KiB).
func cString(p *byte) string {
	n := 0
	for n < 4096 && *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// Name implements Driver: "libcuda.so.1 (CUDA 12.4)".
func (l *Lib) Name() string {
	return fmt.Sprintf("%s (CUDA %d.%d)", l.path, l.version/1000, l.version%1000/10)
}

// Version is cuDriverGetVersion's number (12040 for CUDA 12.4).
func (l *Lib) Version() int { return l.version }

// DeviceCount implements Driver.
func (l *Lib) DeviceCount() (int, error) {
	var n int32
	err := l.call("cuDeviceGetCount", l.fn.deviceGetCount, uintptr(unsafe.Pointer(&n)))
	return int(n), err
}

// CUdevice_attribute values used.
const (
	attrMultiprocessors = 16
	attrCCMajor         = 75
	attrCCMinor         = 76
)

func (l *Lib) device(ordinal int) (int32, error) {
	var d int32
	err := l.call("cuDeviceGet", l.fn.deviceGet, uintptr(unsafe.Pointer(&d)), uintptr(ordinal))
	return d, err
}

// Device implements Driver.
func (l *Lib) Device(ordinal int) (DeviceInfo, error) {
	info := DeviceInfo{Ordinal: ordinal}
	d, err := l.device(ordinal)
	if err != nil {
		return info, err
	}
	var name [256]byte
	if err := l.call("cuDeviceGetName", l.fn.deviceGetName, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(d)); err != nil {
		return info, err
	}
	info.Name = cString(&name[0])
	var mem uint64
	if err := l.call("cuDeviceTotalMem", l.fn.deviceTotalMem, uintptr(unsafe.Pointer(&mem)), uintptr(d)); err != nil {
		return info, err
	}
	info.TotalMem = int64(mem)
	for _, a := range []struct {
		attr uintptr
		dst  *int
	}{{attrCCMajor, &info.Major}, {attrCCMinor, &info.Minor}, {attrMultiprocessors, &info.Multiprocessors}} {
		var v int32
		if err := l.call("cuDeviceGetAttribute", l.fn.deviceAttr, uintptr(unsafe.Pointer(&v)), a.attr, uintptr(d)); err != nil {
			return info, err
		}
		*a.dst = int(v)
	}
	return info, nil
}

// NewContext implements Driver (cuCtxCreate).
func (l *Lib) NewContext(ordinal int) (Context, error) {
	info, err := l.Device(ordinal)
	if err != nil {
		return nil, err
	}
	d, err := l.device(ordinal)
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var h uintptr
	if err := l.call("cuCtxCreate", l.fn.ctxCreate, uintptr(unsafe.Pointer(&h)), 0, uintptr(d)); err != nil {
		return nil, err
	}
	return &libContext{l: l, h: h, info: info}, nil
}

// libContext is a context of the real driver.
type libContext struct {
	l    *Lib
	h    uintptr
	info DeviceInfo
}

var _ Context = (*libContext)(nil)

// current locks the goroutine to its thread and makes c current there;
// the caller defers runtime.UnlockOSThread.
func (c *libContext) current() error {
	runtime.LockOSThread()
	return c.l.call("cuCtxSetCurrent", c.l.fn.ctxSetCurrent, c.h)
}

// do runs f with c current on a locked thread.
func (c *libContext) do(f func() error) error {
	defer runtime.UnlockOSThread()
	if err := c.current(); err != nil {
		return err
	}
	return f()
}

func (c *libContext) Device() DeviceInfo { return c.info }

func (c *libContext) Alloc(bytes int64) (DevicePtr, error) {
	var p DevicePtr
	if bytes <= 0 {
		return 0, fmt.Errorf("cuda: cuMemAlloc: %d bytes: %w", bytes, ErrInvalidValue)
	}
	err := c.do(func() error {
		return c.l.call("cuMemAlloc", c.l.fn.memAlloc, uintptr(unsafe.Pointer(&p)), uintptr(bytes))
	})
	if err != nil {
		return 0, fmt.Errorf("%w (allocating %d bytes on %s)", err, bytes, c.info)
	}
	return p, nil
}

func (c *libContext) Free(p DevicePtr) error {
	return c.do(func() error { return c.l.call("cuMemFree", c.l.fn.memFree, uintptr(p)) })
}

func (c *libContext) CopyHtoD(s Stream, dst DevicePtr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	return c.do(func() error {
		if s == 0 {
			return c.l.call("cuMemcpyHtoD", c.l.fn.memcpyHtoD, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)))
		}
		return c.l.call("cuMemcpyHtoDAsync", c.l.fn.memcpyHtoDAsync, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(len(src)), uintptr(s))
	})
}

func (c *libContext) CopyDtoH(s Stream, dst []byte, src DevicePtr) error {
	if len(dst) == 0 {
		return nil
	}
	return c.do(func() error {
		if s == 0 {
			return c.l.call("cuMemcpyDtoH", c.l.fn.memcpyDtoH, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(len(dst)))
		}
		return c.l.call("cuMemcpyDtoHAsync", c.l.fn.memcpyDtoHAsync, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(len(dst)), uintptr(s))
	})
}

func (c *libContext) CopyDtoD(s Stream, dst, src DevicePtr, bytes int64) error {
	return c.do(func() error {
		if s == 0 {
			return c.l.call("cuMemcpyDtoD", c.l.fn.memcpyDtoD, uintptr(dst), uintptr(src), uintptr(bytes))
		}
		return c.l.call("cuMemcpyDtoDAsync", c.l.fn.memcpyDtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), uintptr(s))
	})
}

func (c *libContext) NewStream() (Stream, error) {
	var s uintptr
	err := c.do(func() error { return c.l.call("cuStreamCreate", c.l.fn.streamCreate, uintptr(unsafe.Pointer(&s)), 0) })
	return Stream(s), err
}

func (c *libContext) DestroyStream(s Stream) error {
	return c.do(func() error { return c.l.call("cuStreamDestroy", c.l.fn.streamDestroy, uintptr(s)) })
}

func (c *libContext) Synchronize(s Stream) error {
	return c.do(func() error { return c.l.call("cuStreamSynchronize", c.l.fn.streamSynchronize, uintptr(s)) })
}

func (c *libContext) LoadModule(ptx []byte) (Module, error) {
	img := ptx
	if len(img) == 0 || img[len(img)-1] != 0 {
		img = append(append(make([]byte, 0, len(ptx)+1), ptx...), 0)
	}
	var m uintptr
	err := c.do(func() error {
		return c.l.call("cuModuleLoadData", c.l.fn.moduleLoadData, uintptr(unsafe.Pointer(&m)), uintptr(unsafe.Pointer(&img[0])))
	})
	return Module(m), err
}

func (c *libContext) UnloadModule(m Module) error {
	return c.do(func() error { return c.l.call("cuModuleUnload", c.l.fn.moduleUnload, uintptr(m)) })
}

func (c *libContext) Function(m Module, name string) (Function, error) {
	cname := append([]byte(name), 0)
	var f uintptr
	err := c.do(func() error {
		return c.l.call("cuModuleGetFunction", c.l.fn.moduleGetFunction, uintptr(unsafe.Pointer(&f)), uintptr(m), uintptr(unsafe.Pointer(&cname[0])))
	})
	if err != nil {
		return 0, fmt.Errorf("%w (kernel %q)", err, name)
	}
	return Function(f), nil
}

func (c *libContext) Launch(s Stream, f Function, grid, block Dim3, sharedBytes uint32, args ...any) error {
	p, err := PackParams(args...)
	if err != nil {
		return err
	}
	grid, block = grid.Norm(), block.Norm()
	var pin runtime.Pinner
	defer pin.Unpin()
	var params uintptr
	if len(args) > 0 {
		// The driver reads the argument values through an array of
		// pointers: both are pinned for the call (the driver copies the
		// values before cuLaunchKernel returns).
		pin.Pin(&p.Buf[0])
		ptrs := make([]unsafe.Pointer, len(args))
		for i, off := range p.Offsets {
			ptrs[i] = unsafe.Pointer(&p.Buf[off])
		}
		pin.Pin(&ptrs[0])
		params = uintptr(unsafe.Pointer(&ptrs[0]))
	}
	return c.do(func() error {
		return c.l.call("cuLaunchKernel", c.l.fn.launchKernel, uintptr(f),
			uintptr(grid.X), uintptr(grid.Y), uintptr(grid.Z), uintptr(block.X), uintptr(block.Y), uintptr(block.Z),
			uintptr(sharedBytes), uintptr(s), params, 0)
	})
}

func (c *libContext) NewEvent() (Event, error) {
	var e uintptr
	err := c.do(func() error { return c.l.call("cuEventCreate", c.l.fn.eventCreate, uintptr(unsafe.Pointer(&e)), 0) })
	return Event(e), err
}

func (c *libContext) DestroyEvent(e Event) error {
	return c.do(func() error { return c.l.call("cuEventDestroy", c.l.fn.eventDestroy, uintptr(e)) })
}

func (c *libContext) Record(e Event, s Stream) error {
	return c.do(func() error { return c.l.call("cuEventRecord", c.l.fn.eventRecord, uintptr(e), uintptr(s)) })
}

func (c *libContext) Elapsed(start, end Event) (time.Duration, error) {
	var ms float32
	err := c.do(func() error {
		if err := c.l.call("cuEventSynchronize", c.l.fn.eventSynchronize, uintptr(end)); err != nil {
			return err
		}
		return c.l.call("cuEventElapsedTime", c.l.fn.eventTime, uintptr(unsafe.Pointer(&ms)), uintptr(start), uintptr(end))
	})
	return time.Duration(float64(ms) * float64(time.Millisecond)), err
}

func (c *libContext) Close() error {
	if c.h == 0 {
		return errors.New("cuda: context already closed")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := c.l.call("cuCtxDestroy", c.l.fn.ctxDestroy, c.h)
	c.h = 0
	return err
}
