package ptx

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// Options configure the interpreter. The zero value is usable.
type Options struct {
	// Memory is the device memory in bytes (default 4 GiB). Alloc fails
	// with an error matching cuda.ErrOutOfMemory beyond it, and one
	// allocation is at most 4 GiB.
	Memory int64
	// SharedMemPerBlock limits static plus dynamic shared memory of a
	// block (default 48 KiB, as on GPUs without an opt-in).
	SharedMemPerBlock int
	// MaxInstructions bounds the instructions one launch executes, all
	// threads together, so that a kernel that loops forever fails
	// (ErrLaunchTimeout) instead of hanging the test. Default 1<<32;
	// negative means no limit.
	MaxInstructions int64
	// Workers is the number of blocks run at once, each on its own
	// goroutine (default runtime.GOMAXPROCS(0)).
	Workers int
	// Poison fills new allocations, shared memory and local memory with
	// 0xFF bytes instead of zeros, so that reading memory nobody wrote
	// gives NaNs and -1s.
	Poison bool
}

const (
	defaultMemory          = 4 << 30
	defaultSharedMem       = 48 << 10
	defaultMaxInstructions = 1 << 32
	maxThreadsPerBlock     = 1024
	maxLaunchState         = 256 << 20 // register files and local memory of one worker
)

func (o Options) withDefaults() Options {
	if o.Memory <= 0 {
		o.Memory = defaultMemory
	}
	if o.SharedMemPerBlock <= 0 {
		o.SharedMemPerBlock = defaultSharedMem
	}
	if o.MaxInstructions == 0 {
		o.MaxInstructions = defaultMaxInstructions
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// DeviceName is the name of the interpreter's one device.
const DeviceName = "mlbuild PTX interpreter"

// Driver is the interpreter as a cuda.Driver: one device, sm_80.
type Driver struct {
	opts Options
}

var _ cuda.Driver = (*Driver)(nil)

// NewDriver returns an interpreter with one device.
func NewDriver(opts Options) cuda.Driver { return &Driver{opts: opts.withDefaults()} }

// Name implements cuda.Driver.
func (d *Driver) Name() string { return DeviceName }

// DeviceCount implements cuda.Driver: always 1.
func (d *Driver) DeviceCount() (int, error) { return 1, nil }

// Device implements cuda.Driver.
func (d *Driver) Device(ordinal int) (cuda.DeviceInfo, error) {
	if ordinal != 0 {
		return cuda.DeviceInfo{}, newError(cuda.ErrInvalidDevice, "cuDeviceGet", "device %d does not exist (the interpreter has device 0 only)", ordinal)
	}
	return cuda.DeviceInfo{Ordinal: 0, Name: DeviceName, TotalMem: d.opts.Memory, Major: deviceArch / 10, Minor: deviceArch % 10,
		Multiprocessors: d.opts.Workers}, nil
}

// NewContext implements cuda.Driver.
func (d *Driver) NewContext(ordinal int) (cuda.Context, error) {
	info, err := d.Device(ordinal)
	if err != nil {
		return nil, err
	}
	return &Context{opts: d.opts, info: info, streams: map[cuda.Stream]bool{}, modules: map[cuda.Module]*loadedModule{},
		funcs: map[cuda.Function]*loadedKernel{}, events: map[cuda.Event]*event{}}, nil
}

// Context is an interpreter context (a cuda.Context). Launches and
// copies run synchronously, at the call, on every stream.
type Context struct {
	mu      sync.Mutex
	opts    Options
	info    cuda.DeviceInfo
	closed  bool
	allocs  [][]byte // allocation k at globalBase + k<<32; nil once freed
	used    int64
	handle  uintptr // last handle given out
	streams map[cuda.Stream]bool
	modules map[cuda.Module]*loadedModule
	funcs   map[cuda.Function]*loadedKernel
	events  map[cuda.Event]*event
	stats   Stats
}

var _ cuda.Context = (*Context)(nil)

// Stats counts a context's launches.
type Stats struct {
	Launches, Blocks, Threads int64
	// Instructions is the number executed, predicated-off ones included.
	Instructions int64
	// Time is the wall time spent in launches.
	Time time.Duration
}

type loadedModule struct {
	mod     *Module
	globals []cuda.DevicePtr
	kernels map[string]*loadedKernel
}

type loadedKernel struct {
	k    *kernel
	tmpl []uint64
	mod  cuda.Module
}

type event struct {
	t        time.Time
	recorded bool
}

// Stats returns the counters of the launches so far.
func (c *Context) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// lock locks c and fails if it is closed.
func (c *Context) lock(call string) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return newError(cuda.ErrInvalidContext, call, "the context is closed")
	}
	return nil
}

func (c *Context) newHandle() uintptr {
	c.handle++
	return c.handle
}

// Device implements cuda.Context.
func (c *Context) Device() cuda.DeviceInfo { return c.info }

// Alloc implements cuda.Context. Allocation k is at 1<<40 + k<<32;
// freed addresses are not reused, so a use after Free is reported.
func (c *Context) Alloc(bytes int64) (cuda.DevicePtr, error) {
	const call = "cuMemAlloc"
	if err := c.lock(call); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	return c.alloc(call, bytes)
}

func (c *Context) alloc(call string, bytes int64) (cuda.DevicePtr, error) {
	switch {
	case bytes <= 0:
		return 0, newError(cuda.ErrInvalidValue, call, "%d bytes", bytes)
	case bytes > windowSize:
		return 0, newError(cuda.ErrOutOfMemory, call, "%d bytes: the interpreter allocates at most 4 GiB at once", bytes)
	case bytes > c.opts.Memory-c.used:
		return 0, newError(cuda.ErrOutOfMemory, call, "%d bytes requested with %d of %d bytes in use", bytes, c.used, c.opts.Memory)
	case uint64(len(c.allocs)) >= (1<<64-globalBase)>>32:
		return 0, newError(cuda.ErrOutOfMemory, call, "out of addresses")
	}
	b := make([]byte, bytes)
	if c.opts.Poison {
		for i := range b {
			b[i] = 0xff
		}
	}
	k := len(c.allocs)
	c.allocs = append(c.allocs, b)
	c.used += bytes
	return cuda.DevicePtr(globalBase + uint64(k)<<32), nil
}

// Free implements cuda.Context.
func (c *Context) Free(p cuda.DevicePtr) error {
	const call = "cuMemFree"
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return c.free(call, p)
}

func (c *Context) free(call string, p cuda.DevicePtr) error {
	a := uint64(p) - globalBase
	k := a >> 32
	switch {
	case uint64(p) < globalBase || k >= uint64(len(c.allocs)) || a&(windowSize-1) != 0:
		return newError(cuda.ErrInvalidValue, call, "0x%x is not an address Alloc returned", uint64(p))
	case c.allocs[k] == nil:
		return newError(cuda.ErrInvalidValue, call, "0x%x is already freed", uint64(p))
	}
	c.used -= int64(len(c.allocs[k]))
	c.allocs[k] = nil
	return nil
}

// span is device memory [p, p+n) as a slice.
func (c *Context) span(call string, p cuda.DevicePtr, n int64) ([]byte, error) {
	a := uint64(p) - globalBase
	k := a >> 32
	off := a & (windowSize - 1)
	if uint64(p) < globalBase || k >= uint64(len(c.allocs)) {
		return nil, newError(cuda.ErrInvalidValue, call, "0x%x is not device memory", uint64(p))
	}
	m := c.allocs[k]
	if m == nil {
		return nil, newError(cuda.ErrInvalidValue, call, "0x%x is in freed memory", uint64(p))
	}
	if n < 0 || off > uint64(len(m)) || uint64(n) > uint64(len(m))-off {
		return nil, newError(cuda.ErrInvalidValue, call, "%d bytes at 0x%x are out of bounds of allocation 0x%x (%d bytes)", n, uint64(p), globalBase+k<<32, len(m))
	}
	return m[off : off+uint64(n)], nil
}

func (c *Context) checkStream(call string, s cuda.Stream) error {
	if s != 0 && !c.streams[s] {
		return newError(cuda.ErrInvalidHandle, call, "stream %d does not exist", s)
	}
	return nil
}

// CopyHtoD implements cuda.Context.
func (c *Context) CopyHtoD(s cuda.Stream, dst cuda.DevicePtr, src []byte) error {
	call := "cuMemcpyHtoD"
	if s != 0 {
		call = "cuMemcpyHtoDAsync"
	}
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := c.checkStream(call, s); err != nil {
		return err
	}
	if len(src) == 0 {
		return nil
	}
	m, err := c.span(call, dst, int64(len(src)))
	if err != nil {
		return err
	}
	copy(m, src)
	return nil
}

// CopyDtoH implements cuda.Context.
func (c *Context) CopyDtoH(s cuda.Stream, dst []byte, src cuda.DevicePtr) error {
	call := "cuMemcpyDtoH"
	if s != 0 {
		call = "cuMemcpyDtoHAsync"
	}
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := c.checkStream(call, s); err != nil {
		return err
	}
	if len(dst) == 0 {
		return nil
	}
	m, err := c.span(call, src, int64(len(dst)))
	if err != nil {
		return err
	}
	copy(dst, m)
	return nil
}

// CopyDtoD implements cuda.Context.
func (c *Context) CopyDtoD(s cuda.Stream, dst, src cuda.DevicePtr, bytes int64) error {
	call := "cuMemcpyDtoD"
	if s != 0 {
		call = "cuMemcpyDtoDAsync"
	}
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := c.checkStream(call, s); err != nil {
		return err
	}
	if bytes == 0 {
		return nil
	}
	d, err := c.span(call, dst, bytes)
	if err != nil {
		return err
	}
	m, err := c.span(call, src, bytes)
	if err != nil {
		return err
	}
	copy(d, m)
	return nil
}

// NewStream implements cuda.Context.
func (c *Context) NewStream() (cuda.Stream, error) {
	if err := c.lock("cuStreamCreate"); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	s := cuda.Stream(c.newHandle())
	c.streams[s] = true
	return s, nil
}

// DestroyStream implements cuda.Context.
func (c *Context) DestroyStream(s cuda.Stream) error {
	const call = "cuStreamDestroy"
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if !c.streams[s] {
		return newError(cuda.ErrInvalidHandle, call, "stream %d does not exist", s)
	}
	delete(c.streams, s)
	return nil
}

// Synchronize implements cuda.Context: everything already ran.
func (c *Context) Synchronize(s cuda.Stream) error {
	const call = "cuStreamSynchronize"
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	return c.checkStream(call, s)
}

// LoadModule implements cuda.Context: it parses and decodes the PTX and
// places its .global and .const variables in device memory.
func (c *Context) LoadModule(ptx []byte) (cuda.Module, error) {
	const call = "cuModuleLoadData"
	m, perr := parse(ptx)
	if perr != nil {
		perr.Call = call
		perr.Err = withCall(perr.Err, call)
		return 0, perr
	}
	if err := c.lock(call); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	lm := &loadedModule{mod: m, kernels: map[string]*loadedKernel{}}
	for _, g := range m.globals {
		p, err := c.alloc(call, int64(max(g.size, 1)))
		if err != nil {
			for _, q := range lm.globals {
				_ = c.free(call, q)
			}
			return 0, fmt.Errorf("%w (for %s variable %s, line %d)", err, map[symKind]string{symGlobal: ".global", symConst: ".const"}[g.kind], g.name, g.line)
		}
		mem, _ := c.span(call, p, int64(len(g.init)))
		copy(mem, g.init)
		lm.globals = append(lm.globals, p)
	}
	h := cuda.Module(c.newHandle())
	for _, k := range m.kernels {
		tmpl := append([]uint64(nil), k.tmpl...)
		for _, r := range k.relocs {
			tmpl[r.slot] = uint64(lm.globals[r.global]) + uint64(r.addend)
		}
		lm.kernels[k.name] = &loadedKernel{k: k, tmpl: tmpl, mod: h}
	}
	c.modules[h] = lm
	return h, nil
}

// UnloadModule implements cuda.Context.
func (c *Context) UnloadModule(m cuda.Module) error {
	const call = "cuModuleUnload"
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	lm, ok := c.modules[m]
	if !ok {
		return newError(cuda.ErrInvalidHandle, call, "module %d is not loaded", m)
	}
	for _, p := range lm.globals {
		_ = c.free(call, p)
	}
	for f, lk := range c.funcs {
		if lk.mod == m {
			delete(c.funcs, f)
		}
	}
	delete(c.modules, m)
	return nil
}

// Function implements cuda.Context.
func (c *Context) Function(m cuda.Module, name string) (cuda.Function, error) {
	const call = "cuModuleGetFunction"
	if err := c.lock(call); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	lm, ok := c.modules[m]
	if !ok {
		return 0, newError(cuda.ErrInvalidHandle, call, "module %d is not loaded", m)
	}
	lk, ok := lm.kernels[name]
	if !ok {
		var names []string
		for n := range lm.kernels {
			names = append(names, n)
		}
		sort.Strings(names)
		return 0, newError(cuda.ErrNotFound, call, "no kernel %q in the module (it has: %s)", name, strings.Join(names, ", "))
	}
	f := cuda.Function(c.newHandle())
	c.funcs[f] = lk
	return f, nil
}

func argSize(a any) int {
	switch a.(type) {
	case cuda.DevicePtr, int64, uint64, float64:
		return 8
	case int32, uint32, float32:
		return 4
	}
	return 0
}

// Launch implements cuda.Context. It runs the kernel before it returns,
// and fails (with an error naming the kernel, the block and thread, the
// PTX line and the address) on an illegal memory access, a trap, a
// deadlock at a barrier or an exhausted instruction budget. Arguments
// must match the kernel's .param declarations in number and size, and
// float32/float64 arguments go to .f32/.f64 parameters only.
func (c *Context) Launch(s cuda.Stream, f cuda.Function, grid, block cuda.Dim3, sharedBytes uint32, args ...any) error {
	const call = "cuLaunchKernel"
	if err := c.lock(call); err != nil {
		return err
	}
	if err := c.checkStream(call, s); err != nil {
		c.mu.Unlock()
		return err
	}
	lk, ok := c.funcs[f]
	if !ok {
		c.mu.Unlock()
		return newError(cuda.ErrInvalidHandle, call, "function %d does not exist", f)
	}
	allocs := append([][]byte(nil), c.allocs...)
	c.mu.Unlock()

	k := lk.k
	fail := func(code *cuda.Error, format string, a ...any) *Error {
		e := newError(code, call, format, a...)
		e.Kernel = k.name
		return e
	}
	grid, block = grid.Norm(), block.Norm()
	nthreads := int(block.X) * int(block.Y) * int(block.Z)
	switch {
	case block.X > 1024 || block.Y > 1024 || block.Z > 64 || nthreads > maxThreadsPerBlock:
		return fail(cuda.ErrLaunchOutOfResources, "block (%d,%d,%d) has %d threads; the limit is 1024 (and 1024, 1024, 64 per dimension)", block.X, block.Y, block.Z, nthreads)
	case grid.X > 1<<31-1 || grid.Y > 65535 || grid.Z > 65535:
		return fail(cuda.ErrInvalidValue, "grid (%d,%d,%d) is too large", grid.X, grid.Y, grid.Z)
	}
	if r := k.reqntid; r[0] != 0 && (block != (cuda.Dim3{X: r[0], Y: r[1], Z: r[2]}).Norm()) {
		return fail(cuda.ErrInvalidValue, "block (%d,%d,%d) is not the kernel's .reqntid %d, %d, %d", block.X, block.Y, block.Z, r[0], max(r[1], 1), max(r[2], 1))
	}
	if m := k.maxntid; m[0] != 0 && nthreads > int(m[0])*int(max(m[1], 1))*int(max(m[2], 1)) {
		return fail(cuda.ErrInvalidValue, "block (%d,%d,%d) has more threads than the kernel's .maxntid %d, %d, %d", block.X, block.Y, block.Z, m[0], max(m[1], 1), max(m[2], 1))
	}
	if k.static+int(sharedBytes) > c.opts.SharedMemPerBlock {
		return fail(cuda.ErrLaunchOutOfResources, "%d bytes of static and %d of dynamic shared memory exceed the %d-byte limit", k.static, sharedBytes, c.opts.SharedMemPerBlock)
	}
	if state := nthreads * (len(lk.tmpl)*8 + k.local); state > maxLaunchState {
		return fail(cuda.ErrLaunchOutOfResources, "%d threads × %d register slots and %d bytes of local memory are too much for the interpreter", nthreads, len(lk.tmpl), k.local)
	}
	if len(args) != len(k.params) {
		return fail(cuda.ErrInvalidValue, "the kernel takes %d parameters (%s), got %d arguments", len(k.params), paramList(k.params), len(args))
	}
	for i, a := range args {
		p := k.params[i]
		n := argSize(a)
		if n == 0 {
			e := fail(cuda.ErrInvalidValue, "argument %d is %T (want DevicePtr, int32, uint32, int64, uint64, float32 or float64)", i, a)
			e.cause = cuda.ErrUnsupportedArg
			return e
		}
		_, isFloat := a.(float32)
		if _, ok := a.(float64); ok {
			isFloat = true
		}
		unsigned := p.kind >= kU8 && p.kind <= kU64
		if n != p.Size || isFloat && (p.kind.signed() || unsigned) || !isFloat && p.kind.isFloat() {
			return fail(cuda.ErrInvalidValue, "argument %d (%T, %d bytes) does not match parameter %d %s (%s, %d bytes)", i, a, n, i, p.Name, p.Type, p.Size)
		}
	}
	pp, err := cuda.PackParams(args...)
	if err != nil {
		return fail(cuda.ErrInvalidValue, "%v", err)
	}
	params := make([]byte, k.psize)
	for i, p := range k.params {
		copy(params[p.Offset:p.Offset+p.Size], pp.Buf[pp.Offsets[i]:pp.Offsets[i]+pp.Sizes[i]])
	}
	shared := k.static + int(sharedBytes)
	if sharedBytes > 0 || k.dynOff > k.static {
		shared = k.dynOff + int(sharedBytes)
	}
	l := &launch{k: k, code: k.code, tmpl: lk.tmpl, params: params, allocs: allocs, grid: grid, block: block,
		nthreads: nthreads, shared: shared, poison: c.opts.Poison, limit: c.opts.MaxInstructions}
	if c.opts.MaxInstructions < 0 {
		l.unlimited = true
	} else {
		l.budget.Store(c.opts.MaxInstructions)
	}
	start := time.Now()
	err = l.run(c.opts.Workers)
	el := time.Since(start)
	c.mu.Lock()
	c.stats.Launches++
	c.stats.Blocks += int64(grid.X) * int64(grid.Y) * int64(grid.Z)
	c.stats.Threads += int64(grid.X) * int64(grid.Y) * int64(grid.Z) * int64(nthreads)
	c.stats.Instructions += l.executed.Load()
	c.stats.Time += el
	c.mu.Unlock()
	return err
}

func paramList(ps []Param) string {
	var b []string
	for _, p := range ps {
		b = append(b, p.Name+" "+p.Type)
	}
	return strings.Join(b, ", ")
}

// NewEvent implements cuda.Context.
func (c *Context) NewEvent() (cuda.Event, error) {
	if err := c.lock("cuEventCreate"); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	e := cuda.Event(c.newHandle())
	c.events[e] = &event{}
	return e, nil
}

// DestroyEvent implements cuda.Context.
func (c *Context) DestroyEvent(e cuda.Event) error {
	const call = "cuEventDestroy"
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if c.events[e] == nil {
		return newError(cuda.ErrInvalidHandle, call, "event %d does not exist", e)
	}
	delete(c.events, e)
	return nil
}

// Record implements cuda.Context: the event takes the wall time.
func (c *Context) Record(e cuda.Event, s cuda.Stream) error {
	const call = "cuEventRecord"
	if err := c.lock(call); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := c.checkStream(call, s); err != nil {
		return err
	}
	ev := c.events[e]
	if ev == nil {
		return newError(cuda.ErrInvalidHandle, call, "event %d does not exist", e)
	}
	ev.t, ev.recorded = time.Now(), true
	return nil
}

// Elapsed implements cuda.Context.
func (c *Context) Elapsed(start, end cuda.Event) (time.Duration, error) {
	const call = "cuEventElapsedTime"
	if err := c.lock(call); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	for _, e := range []cuda.Event{start, end} {
		ev := c.events[e]
		if ev == nil {
			return 0, newError(cuda.ErrInvalidHandle, call, "event %d does not exist", e)
		}
		if !ev.recorded {
			return 0, newError(cuda.ErrInvalidHandle, call, "event %d was not recorded", e)
		}
	}
	return c.events[end].t.Sub(c.events[start].t), nil
}

// Close implements cuda.Context: it frees everything.
func (c *Context) Close() error {
	if err := c.lock("cuCtxDestroy"); err != nil {
		return err
	}
	defer c.mu.Unlock()
	c.closed = true
	c.allocs, c.modules, c.funcs, c.events, c.streams = nil, nil, nil, nil, nil
	c.used = 0
	return nil
}
