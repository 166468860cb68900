package gpu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/gpu/kernels"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// GEMM computes the matrix products of a Backend (tensor.Backend.MatMul's
// contract) on tensors the backend owns. Two exist: cuBLASLt on a real
// device (newBLASGEMM) and HostGEMM, which runs the CPU backend's GEMM on
// host copies (the PTX interpreter has no cuBLAS).
type GEMM interface {
	MatMul(be *Backend, dst, a, b *tensor.Tensor, transA, transB bool, alpha, beta float32)
}

// Backend is the CUDA tensor.Backend: tensors live in device memory of one
// context, every operation is one or a few kernel launches of the
// embedded PTX (package gpu/kernels) on the context's default stream, and
// matrix products go to its GEMM.
//
// tensor.Backend has no error results: a failed driver call (out of
// memory, a failed launch) panics with a *tensor.DeviceError naming the
// operation and the call (an out-of-memory one with the numbers and what
// to change), which the engine reports as the step's error; a shape
// mismatch panics as on the CPU backend.
type Backend struct {
	ctx  cuda.Context
	gemm GEMM
	fns  map[string]cuda.Function
	// inUse is the device memory the backend's live tensors and scratch
	// hold, in bytes; peak the most they have held (since ResetPeak).
	inUse, peak atomic.Int64
	// cache is freed memory kept for reuse; driverAllocs counts the
	// allocations that went to the driver.
	cache        memCache
	driverAllocs atomic.Int64

	mu  sync.Mutex
	nf4 map[*nf4.Tensor]*nf4Buffers // uploaded quantized weights
	// nf4Tables holds the 16 NF4 codes then the 256 entries of QuantMap8.
	nf4Tables cuda.DevicePtr
}

// NewBackend loads every kernel module into ctx and returns a backend on
// it whose matrix products go to gemm.
func NewBackend(ctx cuda.Context, gemm GEMM) (*Backend, error) {
	be := &Backend{ctx: ctx, gemm: gemm, fns: map[string]cuda.Function{}, nf4: map[*nf4.Tensor]*nf4Buffers{}}
	for _, m := range kernels.Modules() {
		mod, err := ctx.LoadModule(m.PTX)
		if err != nil {
			return nil, fmt.Errorf("gpu: loading kernels %s.ptx: %w", m.Name, err)
		}
		for _, name := range entries(m.PTX) {
			f, err := ctx.Function(mod, name)
			if err != nil {
				return nil, fmt.Errorf("gpu: kernels %s.ptx: %w", m.Name, err)
			}
			be.fns[name] = f
		}
	}
	tables := make([]float32, 0, 16+256)
	tables = append(tables, nf4.Codes[:]...)
	tables = append(tables, nf4.QuantMap8[:]...)
	if err := tensor.CatchDeviceError(func() { be.nf4Tables = be.upload("NewBackend", "the NF4 tables", f32Bytes(tables)) }); err != nil {
		return nil, fmt.Errorf("gpu: %w", err)
	}
	return be, nil
}

// Name implements tensor.Backend.
func (be *Backend) Name() string { return "cuda" }

// Context is the device context the backend computes in.
func (be *Backend) Context() cuda.Context { return be.ctx }

// buffer is device memory behind one or more tensors.
type buffer struct {
	be    *Backend
	alloc *allocation
}

// allocation is what a buffer's cleanup frees; it is separate from the
// buffer so that the cleanup does not keep the buffer alive.
type allocation struct {
	be    *Backend
	ptr   cuda.DevicePtr
	bytes int64
	freed atomic.Bool
}

func (a *allocation) free() {
	if a.freed.CompareAndSwap(false, true) {
		a.be.release(a.ptr, a.bytes)
	}
}

// alloc allocates device memory for op, counting it. Freed memory is
// kept for reuse by size (the cache below): a training loop allocates the
// same shapes every micro-batch, and cuMemAlloc and cuMemFree are slow
// (cuMemFree waits for the device). When the device is full, alloc
// returns the cached memory to the driver and retries; then, since
// tensors nobody references are freed only when the garbage collector
// finds them, and Go's collector runs on host-memory pressure, not device
// memory, it collects and retries (a few times, while that frees
// something) before it gives up. Running out of memory then panics with
// the numbers and what to change.
func (be *Backend) alloc(op, what string, bytes int64) cuda.DevicePtr {
	bytes = allocSize(bytes)
	p, ok := be.cache.take(bytes)
	var err error
	if !ok {
		p, err = be.driverAlloc(bytes)
	}
	for try := 0; try < 3 && errors.Is(err, cuda.ErrOutOfMemory); try++ {
		if be.cache.flush(be.ctx) > 0 {
			if p, err = be.driverAlloc(bytes); err == nil {
				break
			}
		}
		held := be.inUse.Load()
		runtime.GC()
		// The cleanups run on their own goroutine after the collection.
		for i := 0; i < 200 && be.inUse.Load() == held; i++ {
			time.Sleep(time.Millisecond)
		}
		if be.inUse.Load() == held {
			break // nothing was garbage
		}
		be.cache.flush(be.ctx)
		p, err = be.driverAlloc(bytes)
	}
	if err != nil {
		if errors.Is(err, cuda.ErrOutOfMemory) {
			dev := be.ctx.Device()
			err = fmt.Errorf("%w: %s needs %s more, this backend holds %s of %s's %s; use a smaller micro-batch (batch_size, with grad_accum to keep the effective batch) or a shorter seq_len, or device = \"cpu\"",
				err, what, size(bytes), size(be.inUse.Load()), dev.Name, size(dev.TotalMem))
		}
		panic(&tensor.DeviceError{Op: op, Err: fmt.Errorf("allocating %s: %w", what, err)})
	}
	now := be.inUse.Add(bytes)
	for {
		old := be.peak.Load()
		if now <= old || be.peak.CompareAndSwap(old, now) {
			break
		}
	}
	return p
}

// allocSize is the size the backend allocates for bytes: a multiple of
// 16, at least 16 (so that every tensor is aligned for vector loads).
func allocSize(bytes int64) int64 { return max((bytes+15)&^15, 16) }

func (be *Backend) driverAlloc(bytes int64) (cuda.DevicePtr, error) {
	be.driverAllocs.Add(1)
	return be.ctx.Alloc(bytes)
}

// release returns memory from alloc to the cache. Every launch and copy
// runs on the default stream, in order, so memory freed after queuing a
// launch that reads it may be handed to a later launch at once.
func (be *Backend) release(p cuda.DevicePtr, bytes int64) {
	be.inUse.Add(-bytes)
	be.cache.put(p, bytes)
}

// DriverAllocs is the number of allocations the backend has asked the
// driver for (the rest came from its cache).
func (be *Backend) DriverAllocs() int64 { return be.driverAllocs.Load() }

// memCache keeps freed device allocations by size for reuse.
type memCache struct {
	mu     sync.Mutex
	free   map[int64][]cuda.DevicePtr
	cached int64
}

func (c *memCache) take(bytes int64) (cuda.DevicePtr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.free[bytes]
	if len(l) == 0 {
		return 0, false
	}
	p := l[len(l)-1]
	c.free[bytes] = l[:len(l)-1]
	c.cached -= bytes
	return p, true
}

func (c *memCache) put(p cuda.DevicePtr, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.free == nil {
		c.free = map[int64][]cuda.DevicePtr{}
	}
	c.free[bytes] = append(c.free[bytes], p)
	c.cached += bytes
}

// flush returns every cached allocation to the driver and says how many
// bytes that was.
func (c *memCache) flush(ctx cuda.Context) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.cached
	for _, l := range c.free {
		for _, p := range l {
			_ = ctx.Free(p) // nothing to do about a failed free
		}
	}
	c.free, c.cached = nil, 0
	return n
}

// InUse is the device memory the backend holds now, in bytes.
func (be *Backend) InUse() int64 { return be.inUse.Load() }

// Memory implements tensor.MemoryReporter.
func (be *Backend) Memory() tensor.MemoryInfo {
	mi := tensor.MemoryInfo{Total: be.ctx.Device().TotalMem}
	if g, ok := be.gemm.(interface{ footprint() (bool, int64) }); ok {
		mi.GEMMWidens, mi.GEMMWorkspace = g.footprint()
	}
	return mi
}

// Peak is the most device memory the backend has held since it was made
// or ResetPeak was called, in bytes.
func (be *Backend) Peak() int64 { return be.peak.Load() }

// ResetPeak starts a new peak from what the backend holds now.
func (be *Backend) ResetPeak() { be.peak.Store(be.inUse.Load()) }

// size spells a byte count in binary units: "64 KiB", "24 GiB".
func size(b int64) string { return humanize.IBytes(uint64(max(b, 0))) }

// Backend implements tensor.Storage.
func (b *buffer) Backend() tensor.Backend { return b.be }

// newTensor allocates an uninitialised tensor.
func (be *Backend) newTensor(dt tensor.DType, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("gpu: negative dimension in %v", shape))
		}
		n *= d
	}
	bytes := allocSize(int64(n) * int64(dt.Size()))
	p := be.alloc("allocate", fmt.Sprintf("%s%v", dt, shape), bytes)
	a := &allocation{be: be, ptr: p, bytes: bytes}
	b := &buffer{be: be, alloc: a}
	runtime.AddCleanup(b, func(a *allocation) { a.free() }, a)
	return tensor.NewTensor(b, dt, 0, shape...)
}

// ptr is the device address of t's first element.
func (be *Backend) ptr(op string, t *tensor.Tensor) cuda.DevicePtr {
	b, ok := t.Storage().(*buffer)
	if !ok || b.be != be {
		panic(fmt.Sprintf("gpu: %s: %s does not belong to this CUDA backend", op, t))
	}
	if b.alloc.freed.Load() {
		panic(fmt.Sprintf("gpu: %s: %s was freed", op, t))
	}
	return b.alloc.ptr + cuda.DevicePtr(t.Offset()*t.DType().Size())
}

// f32 is ptr for a tensor that must be F32.
func (be *Backend) f32(op string, t *tensor.Tensor) cuda.DevicePtr {
	if t.DType() != tensor.F32 {
		panic(fmt.Sprintf("gpu: %s: %s must be F32", op, t))
	}
	return be.ptr(op, t)
}

// Zeros implements tensor.Backend.
func (be *Backend) Zeros(dt tensor.DType, shape ...int) *tensor.Tensor {
	t := be.newTensor(dt, shape...)
	b := t.Storage().(*buffer)
	be.launch("Zeros", "zero_u32", gridFor(b.alloc.bytes/4), elemBlock, b.alloc.ptr, b.alloc.bytes/4)
	return t
}

// FromFloat32 implements tensor.Backend.
func (be *Backend) FromFloat32(data []float32, shape ...int) *tensor.Tensor {
	t := be.newTensor(tensor.F32, shape...)
	be.Write(t, data)
	return t
}

// FromRaw implements tensor.Backend.
func (be *Backend) FromRaw(dt tensor.DType, raw []byte, shape ...int) (*tensor.Tensor, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if len(raw) != n*dt.Size() {
		return nil, fmt.Errorf("gpu: FromRaw: %d bytes for %s%v (want %d)", len(raw), dt, shape, n*dt.Size())
	}
	t := be.newTensor(dt, shape...)
	be.check("FromRaw", "cuMemcpyHtoD", be.ctx.CopyHtoD(0, be.ptr("FromRaw", t), raw))
	return t, nil
}

// Read implements tensor.Backend.
func (be *Backend) Read(t *tensor.Tensor, dst []float32) {
	if len(dst) != t.Len() {
		panic(fmt.Sprintf("gpu: Read: %d values for %s", len(dst), t))
	}
	raw := make([]byte, t.Len()*t.DType().Size())
	be.check("Read", "cuMemcpyDtoH", be.ctx.CopyDtoH(0, raw, be.ptr("Read", t)))
	switch t.DType() {
	case tensor.F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case tensor.BF16:
		for i := range dst {
			dst[i] = tensor.BF16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case tensor.F16:
		for i := range dst {
			dst[i] = tensor.F16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	}
}

// Write implements tensor.Backend.
func (be *Backend) Write(t *tensor.Tensor, src []float32) {
	if len(src) != t.Len() {
		panic(fmt.Sprintf("gpu: Write: %d values for %s", len(src), t))
	}
	be.check("Write", "cuMemcpyHtoD", be.ctx.CopyHtoD(0, be.f32("Write", t), f32Bytes(src)))
}

// Copy implements tensor.Backend: a device-to-device copy for equal types,
// else the cast kernel (rounding to nearest even).
func (be *Backend) Copy(dst, src *tensor.Tensor) {
	if dst.Len() != src.Len() {
		panic(fmt.Sprintf("gpu: Copy: %s into %s", src, dst))
	}
	if dst.DType() == src.DType() {
		be.check("Copy", "cuMemcpyDtoD", be.ctx.CopyDtoD(0, be.ptr("Copy", dst), be.ptr("Copy", src), int64(src.Len()*src.DType().Size())))
		return
	}
	n := int64(src.Len())
	be.launch("Copy", "cast", gridFor(n), elemBlock, be.ptr("Copy", dst), int32(dst.DType()), be.ptr("Copy", src), int32(src.DType()), n)
}

// Free implements tensor.Backend: the device memory of t's storage is
// released now (every view of it becomes unusable); otherwise it is
// released when the storage is garbage collected.
func (be *Backend) Free(t *tensor.Tensor) {
	if b, ok := t.Storage().(*buffer); ok && b.be == be {
		b.alloc.free()
	}
}

// Launch geometry: element-wise kernels run elemThreads threads per block
// in a grid-stride loop over at most maxBlocks blocks; row-wise kernels one
// block of rowThreads (ROW_THREADS in common.cuh) per row; attention one
// block of attnTile (ATTN_TILE) per row and head.
const (
	elemThreads = 256
	maxBlocks   = 4096
	rowThreads  = 256
	attnTile    = 64
	attnMaxDim  = 256
)

// gridFor is the grid of an element-wise launch over n elements.
func gridFor(n int64) cuda.Dim3 {
	return cuda.Dim3{X: uint32(min(max((n+elemThreads-1)/elemThreads, 1), maxBlocks))}
}

var (
	elemBlock = cuda.Dim3{X: elemThreads}
	rowBlock  = cuda.Dim3{X: rowThreads}
	attnBlock = cuda.Dim3{X: attnTile}
)

// launch runs kernel name; a failure panics naming op.
func (be *Backend) launch(op, name string, grid, block cuda.Dim3, args ...any) {
	f, ok := be.fns[name]
	if !ok {
		panic(fmt.Sprintf("gpu: %s: kernel %s is not in the embedded PTX", op, name))
	}
	be.check(op, "launching "+name, be.ctx.Launch(0, f, grid, block, 0, args...))
}

// check panics with a *tensor.DeviceError for err, naming the
// operation.
func (be *Backend) check(op, what string, err error) {
	if err != nil {
		panic(&tensor.DeviceError{Op: op, Err: fmt.Errorf("%s: %w", what, err)})
	}
}

// upload copies bytes into new device memory kept for the backend's life
// (the NF4 tables, quantized weights).
func (be *Backend) upload(op, what string, b []byte) cuda.DevicePtr {
	p := be.alloc(op, what, max(int64(len(b)), 16))
	be.check(op, "cuMemcpyHtoD", be.ctx.CopyHtoD(0, p, b))
	return p
}

// scratch is device memory for one operation, freed by release.
type scratch struct {
	be    *Backend
	op    string
	ptrs  []cuda.DevicePtr
	sizes []int64
}

func (be *Backend) scratch(op string) *scratch { return &scratch{be: be, op: op} }

// alloc returns bytes of uninitialised device memory.
func (s *scratch) alloc(bytes int64) cuda.DevicePtr {
	bytes = allocSize(bytes)
	p := s.be.alloc(s.op, fmt.Sprintf("%d bytes of scratch", bytes), bytes)
	s.ptrs = append(s.ptrs, p)
	s.sizes = append(s.sizes, bytes)
	return p
}

// put uploads b.
func (s *scratch) put(b []byte) cuda.DevicePtr {
	p := s.alloc(int64(len(b)))
	s.be.check(s.op, "cuMemcpyHtoD", s.be.ctx.CopyHtoD(0, p, b))
	return p
}

// get downloads len(dst) bytes from p.
func (s *scratch) get(dst []byte, p cuda.DevicePtr) {
	s.be.check(s.op, "cuMemcpyDtoH", s.be.ctx.CopyDtoH(0, dst, p))
}

// release returns the scratch to the backend's cache (call it deferred:
// a panicking operation frees its scratch too). The default stream runs
// in order, so whatever reuses it next runs after the launches that read
// it.
func (s *scratch) release() {
	for i, p := range s.ptrs {
		s.be.release(p, s.sizes[i])
	}
	s.ptrs, s.sizes = nil, nil
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func i32Bytes(v []int) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(x)))
	}
	return b
}

// entries lists the .entry names of a PTX module.
func entries(ptx []byte) []string {
	var out []string
	for _, line := range strings.Split(string(ptx), "\n") {
		if _, rest, ok := strings.Cut(line, ".entry "); ok {
			name, _, _ := strings.Cut(rest, "(")
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}
