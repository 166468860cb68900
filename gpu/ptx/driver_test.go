package ptx

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// TestScalePTX runs gpu/cuda's hand-written smoke kernel the way its
// device test does on a GPU, on a stream, with events.
func TestScalePTX(t *testing.T) {
	c := newCtx(t, Options{})
	f := scaleKernel(t, c)
	const n = 1000
	host := make([]float32, n)
	for i := range host {
		host[i] = float32(i) - 0.5
	}
	s, err := c.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Alloc(4 * n)
	if err != nil {
		t.Fatal(err)
	}
	start, _ := c.NewEvent()
	end, _ := c.NewEvent()
	if err := c.CopyHtoD(s, p, f32Bytes(host)); err != nil {
		t.Fatal(err)
	}
	if err := c.Record(start, s); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(s, f, cuda.Dim3{X: (n + 255) / 256}, cuda.Dim3{X: 256}, 0, p, uint32(n), float32(2)); err != nil {
		t.Fatal(err)
	}
	if err := c.Record(end, s); err != nil {
		t.Fatal(err)
	}
	if err := c.Synchronize(s); err != nil {
		t.Fatal(err)
	}
	if d, err := c.Elapsed(start, end); err != nil || d < 0 {
		t.Errorf("Elapsed = %v, %v", d, err)
	}
	out := make([]byte, 4*n)
	if err := c.CopyDtoH(s, out, p); err != nil {
		t.Fatal(err)
	}
	for i, x := range bytesF32(out) {
		if x != 2*host[i] {
			t.Fatalf("x[%d] = %v, want %v", i, x, 2*host[i])
		}
	}
	q, _ := c.Alloc(4 * n)
	if err := c.CopyDtoD(0, q+4, p, 4*(n-1)); err != nil {
		t.Fatal(err)
	}
	if got := bytesF32(download(t, c, q, 8)); got[1] != 2*host[0] {
		t.Errorf("CopyDtoD: %v", got)
	}
	if err := c.DestroyStream(s); err != nil {
		t.Error(err)
	}
}

func TestDriver(t *testing.T) {
	d := NewDriver(Options{Memory: 1 << 30})
	if d.Name() != "mlbuild PTX interpreter" {
		t.Errorf("Name = %q", d.Name())
	}
	if n, err := d.DeviceCount(); n != 1 || err != nil {
		t.Errorf("DeviceCount = %d, %v", n, err)
	}
	info, err := d.Device(0)
	want := cuda.DeviceInfo{Name: "mlbuild PTX interpreter", TotalMem: 1 << 30, Major: 8, Minor: 0, Multiprocessors: runtime.GOMAXPROCS(0)}
	if err != nil || info != want {
		t.Errorf("Device(0) = %+v, %v", info, err)
	}
	if info.String() != "cuda:0 mlbuild PTX interpreter (sm_80, 1.0 GiB)" {
		t.Errorf("String = %q", info.String())
	}
	if _, err := d.Device(1); !isCode(err, cuda.ErrInvalidDevice) {
		t.Errorf("Device(1): %v", err)
	}
	if _, err := d.NewContext(1); !isCode(err, cuda.ErrInvalidDevice) {
		t.Errorf("NewContext(1): %v", err)
	}
	c, err := d.NewContext(0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Device() != want {
		t.Errorf("Context.Device = %+v", c.Device())
	}
}

func TestMemory(t *testing.T) {
	c := newCtx(t, Options{Memory: 1 << 20})
	p, err := c.Alloc(1 << 19)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(p) != 1<<40 {
		t.Errorf("first allocation at %#x", uint64(p))
	}
	q, err := c.Alloc(1 << 19)
	if err != nil || uint64(q) != 1<<40+1<<32 {
		t.Fatalf("second allocation %#x, %v", uint64(q), err)
	}
	_, err = c.Alloc(1)
	if !isCode(err, cuda.ErrOutOfMemory) || err.Error() != "ptx: cuMemAlloc: 1 bytes requested with 1048576 of 1048576 bytes in use (CUDA_ERROR_OUT_OF_MEMORY)" {
		t.Errorf("Alloc past the limit: %v", err)
	}
	if _, err := c.Alloc(0); !isCode(err, cuda.ErrInvalidValue) {
		t.Errorf("Alloc(0): %v", err)
	}
	if err := c.Free(q); err != nil {
		t.Fatal(err)
	}
	if err := c.Free(q); !isCode(err, cuda.ErrInvalidValue) || !strings.Contains(err.Error(), "already freed") {
		t.Errorf("double Free: %v", err)
	}
	if err := c.Free(p + 4); !isCode(err, cuda.ErrInvalidValue) {
		t.Errorf("Free inside an allocation: %v", err)
	}
	if _, err := c.Alloc(1 << 19); err != nil {
		t.Errorf("Alloc after Free: %v", err)
	}
	buf := make([]byte, 16)
	for _, err := range []error{
		c.CopyHtoD(0, p+(1<<19)-8, buf),
		c.CopyDtoH(0, buf, q),
		c.CopyDtoD(0, p, 12345, 4),
		c.CopyHtoD(0, 0, buf),
	} {
		if !isCode(err, cuda.ErrInvalidValue) {
			t.Errorf("bad copy: %v", err)
		}
	}
	if err := c.CopyHtoD(0, p+(1<<19)-16, buf); err != nil {
		t.Errorf("copy to the last bytes: %v", err)
	}
}

func TestHandles(t *testing.T) {
	c := newCtx(t, Options{})
	m, err := c.LoadModule(append([]byte(loopPTX), 0)) // NUL-terminated, as cuModuleLoadData takes it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Function(m, "nope"); !isCode(err, cuda.ErrNotFound) || !strings.Contains(err.Error(), `no kernel "nope" in the module (it has: loop)`) {
		t.Errorf("Function(nope): %v", err)
	}
	f, err := c.Function(m, "loop")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := c.Alloc(4)
	for _, err := range []error{
		c.Launch(99, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, out, uint32(1)),
		c.Launch(0, 12345, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0),
		c.Synchronize(77),
		c.DestroyStream(77),
		c.UnloadModule(4242),
		c.DestroyEvent(55),
		c.Record(55, 0),
	} {
		if !isCode(err, cuda.ErrInvalidHandle) {
			t.Errorf("bad handle: %v", err)
		}
	}
	if _, err := c.Function(4242, "loop"); !isCode(err, cuda.ErrInvalidHandle) {
		t.Errorf("Function on a bad module: %v", err)
	}
	e1, _ := c.NewEvent()
	e2, _ := c.NewEvent()
	if _, err := c.Elapsed(e1, e2); !isCode(err, cuda.ErrInvalidHandle) || !strings.Contains(err.Error(), "was not recorded") {
		t.Errorf("Elapsed of unrecorded events: %v", err)
	}
	_ = c.Record(e1, 0)
	time.Sleep(time.Millisecond)
	_ = c.Record(e2, 0)
	if d, err := c.Elapsed(e1, e2); err != nil || d < time.Millisecond {
		t.Errorf("Elapsed = %v, %v", d, err)
	}
	if err := c.DestroyEvent(e1); err != nil {
		t.Error(err)
	}
	if err := c.UnloadModule(m); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, out, uint32(1)); !isCode(err, cuda.ErrInvalidHandle) {
		t.Errorf("launch of an unloaded function: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Alloc(4); !isCode(err, cuda.ErrInvalidContext) {
		t.Errorf("Alloc after Close: %v", err)
	}
	if err := c.Close(); !isCode(err, cuda.ErrInvalidContext) {
		t.Errorf("second Close: %v", err)
	}
}

// TestRealKernelsLoad loads every kernel of gpu/kernels, when the
// directory has them: the interpreter must accept all of the project's PTX.
func TestRealKernelsLoad(t *testing.T) {
	files, _ := filepath.Glob("../kernels/*.ptx")
	if len(files) == 0 {
		t.Skip("no gpu/kernels/*.ptx")
	}
	c := newCtx(t, Options{})
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.LoadModule(src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := c.UnloadModule(m); err != nil {
			t.Error(err)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Call: "cuLaunchKernel", Kernel: "k", InThread: true, Block: cuda.Dim3{X: 1, Y: 2, Z: 3}, Thread: cuda.Dim3{X: 4},
		Line: 7, Instr: "trap", Msg: "trap", Err: withCall(cuda.ErrLaunchFailed, "cuLaunchKernel")}
	if got, want := e.Error(), "ptx: cuLaunchKernel k: block (1,2,3) thread (4,0,0): line 7: trap: trap (CUDA_ERROR_LAUNCH_FAILED)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var ce *cuda.Error
	if errors.Is(e, cuda.ErrUnsupportedArg) || !errors.As(e, &ce) || ce.Call != "cuLaunchKernel" || ce.Code != 719 {
		t.Errorf("unwraps to %+v", ce)
	}
	if got := (&Error{Line: 3, Msg: "bad", Err: cuda.ErrInvalidPTX}).Error(); got != "ptx: line 3: bad (CUDA_ERROR_INVALID_PTX)" {
		t.Errorf("Parse error format %q", got)
	}
}
