//go:build linux

package cuda

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"
)

// openDevice loads the real driver and makes a context on device 0, or
// skips: these tests run only where an NVIDIA driver is installed (gpu/check.sh
// sets MLBUILD_REQUIRE_GPU=1, which turns the skip into a failure).
func openDevice(t *testing.T) (*Lib, Context) {
	t.Helper()
	l, err := Load()
	if err != nil {
		if os.Getenv("MLBUILD_REQUIRE_GPU") == "1" {
			t.Fatalf("MLBUILD_REQUIRE_GPU=1 but the driver does not load: %v", err)
		}
		t.Skipf("no CUDA driver: %v", err)
	}
	ctx, err := l.NewContext(0)
	if err != nil {
		t.Fatalf("NewContext(0): %v", err)
	}
	t.Cleanup(func() {
		if err := ctx.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l, ctx
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// TestDeviceSmoke is gpu/check.sh's smoke test of the real driver: the
// device, memory and copies (synchronous and on a stream), the
// hand-written PTX kernel in testdata/scale.ptx, events, and CUDA's
// errors mapped to the sentinels.
func TestDeviceSmoke(t *testing.T) {
	l, ctx := openDevice(t)
	n, err := l.DeviceCount()
	if err != nil || n < 1 {
		t.Fatalf("DeviceCount = %d, %v", n, err)
	}
	info := ctx.Device()
	t.Logf("%s: %d device(s); %s, %d SMs", l.Name(), n, info, info.Multiprocessors)
	if info.Name == "" || info.TotalMem <= 0 || info.Major < 3 {
		t.Errorf("implausible device %+v", info)
	}

	const count = 1000
	host := make([]float32, count)
	for i := range host {
		host[i] = float32(i) - 0.5
	}
	p, err := ctx.Alloc(4 * count)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ctx.Free(p); err != nil {
			t.Error(err)
		}
	}()
	if err := ctx.CopyHtoD(0, p, f32Bytes(host)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 4*count)
	if err := ctx.CopyDtoH(0, back, p); err != nil {
		t.Fatal(err)
	}
	for i, x := range bytesF32(back) {
		if x != host[i] {
			t.Fatalf("round trip: element %d = %v, want %v", i, x, host[i])
		}
	}

	s, err := ctx.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ctx.DestroyStream(s); err != nil {
			t.Error(err)
		}
	}()
	q, err := ctx.Alloc(4 * count)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ctx.Free(q); err != nil {
			t.Error(err)
		}
	}()
	if err := ctx.CopyDtoD(s, q, p, 4*count); err != nil {
		t.Fatal(err)
	}

	ptx, err := os.ReadFile("testdata/scale.ptx")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := ctx.LoadModule(ptx)
	if err != nil {
		t.Fatalf("LoadModule(scale.ptx): %v", err)
	}
	defer func() {
		if err := ctx.UnloadModule(mod); err != nil {
			t.Error(err)
		}
	}()
	fn, err := ctx.Function(mod, "scale_f32")
	if err != nil {
		t.Fatal(err)
	}
	start, err := ctx.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	end, err := ctx.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Record(start, s); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Launch(s, fn, Dim3{X: (count + 255) / 256}, Dim3{X: 256}, 0, q, uint32(count), float32(2.5)); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Record(end, s); err != nil {
		t.Fatal(err)
	}
	async := make([]byte, 4*count)
	if err := ctx.CopyDtoH(s, async, q); err != nil {
		t.Fatal(err)
	}
	if err := ctx.Synchronize(s); err != nil {
		t.Fatal(err)
	}
	for i, x := range bytesF32(async) {
		if want := host[i] * 2.5; x != want {
			t.Fatalf("scale_f32: element %d = %v, want %v", i, x, want)
		}
	}
	d, err := ctx.Elapsed(start, end)
	if err != nil || d < 0 {
		t.Errorf("Elapsed = %v, %v", d, err)
	}
	t.Logf("scale_f32 over %d elements: %v (event timing)", count, d)
	for _, e := range []Event{start, end} {
		if err := ctx.DestroyEvent(e); err != nil {
			t.Error(err)
		}
	}

	if _, err := ctx.Function(mod, "no_such_kernel"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing kernel: %v, want ErrNotFound", err)
	}
	if _, err := ctx.Alloc(1 << 52); !errors.Is(err, ErrOutOfMemory) {
		t.Errorf("a 4 PiB allocation: %v, want ErrOutOfMemory", err)
	}
	if _, err := ctx.LoadModule([]byte("not ptx")); err == nil {
		t.Error("LoadModule accepted text that is not PTX")
	} else {
		t.Logf("bad PTX: %v", err)
	}
}

// TestDeviceGEMM runs cuBLASLt's row-major GEMM on the device, with each
// transposition, beside a float64 reference (fp32 accumulation: close,
// not bit-identical).
func TestDeviceGEMM(t *testing.T) {
	_, ctx := openDevice(t)
	blas, err := LoadBLASLt(ctx)
	if err != nil {
		if os.Getenv("MLBUILD_REQUIRE_GPU") == "1" {
			t.Fatalf("cuBLASLt: %v", err)
		}
		t.Skipf("cuBLASLt: %v", err)
	}
	defer func() {
		if err := blas.Close(); err != nil {
			t.Error(err)
		}
	}()
	t.Logf("cuBLASLt %d", blas.Version())
	const m, n, k = 3, 5, 7
	a, b := make([]float32, m*k), make([]float32, k*n)
	for i := range a {
		a[i] = float32(i%5) - 1.5
	}
	for i := range b {
		b[i] = float32(i%7)*0.25 - 0.5
	}
	up := func(v []float32) DevicePtr {
		p, err := ctx.Alloc(int64(4 * len(v)))
		if err != nil {
			t.Fatal(err)
		}
		if err := ctx.CopyHtoD(0, p, f32Bytes(v)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ws, err := ctx.Alloc(1 << 22)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		ta, tb := tr[0], tr[1]
		// Store a as [k,m] when transposed, b as [n,k].
		as, bs := a, b
		if ta {
			as = transpose(a, m, k)
		}
		if tb {
			bs = transpose(b, k, n)
		}
		pa, pb, pc := up(as), up(bs), up(make([]float32, m*n))
		g := Gemm{TransA: ta, TransB: tb, M: m, N: n, K: k, A: pa, B: pb, C: pc, AType: R32F, BType: R32F, CType: R32F, Alpha: 1}
		if err := blas.Matmul(0, g, ws, 1<<22); err != nil {
			t.Fatalf("Matmul %v: %v", tr, err)
		}
		out := make([]byte, 4*m*n)
		if err := ctx.CopyDtoH(0, out, pc); err != nil {
			t.Fatal(err)
		}
		got := bytesF32(out)
		for i := range m {
			for j := range n {
				var want float64
				for l := range k {
					want += float64(a[i*k+l]) * float64(b[l*n+j])
				}
				if d := math.Abs(float64(got[i*n+j]) - want); d > 1e-4 {
					t.Fatalf("trans %v: C[%d,%d] = %v, want %v", tr, i, j, got[i*n+j], want)
				}
			}
		}
		for _, p := range []DevicePtr{pa, pb, pc} {
			if err := ctx.Free(p); err != nil {
				t.Error(err)
			}
		}
	}
	if err := ctx.Free(ws); err != nil {
		t.Error(err)
	}
}

// transpose returns the [c,r] transpose of the row-major [r,c] x.
func transpose(x []float32, r, c int) []float32 {
	out := make([]float32, len(x))
	for i := range r {
		for j := range c {
			out[j*r+i] = x[i*c+j]
		}
	}
	return out
}
