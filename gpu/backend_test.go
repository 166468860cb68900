package gpu

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/gpu/ptx"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tensor/tensortest"
	"github.com/mlbuild/mlbuild/ml/train"
)

// interpreterName is the PTX interpreter's device name.
const interpreterName = ptx.DeviceName

// interpreted is the CUDA backend on the PTX interpreter: the embedded
// kernels run on the CPU, the matrix products on the CPU backend.
func interpreted(t testing.TB) *Backend {
	t.Helper()
	ctx, err := ptx.NewDriver(ptx.Options{}).NewContext(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctx.Close() })
	be, err := NewBackend(ctx, HostGEMM{CPU: tensor.NewCPU(2)})
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// onDevice is the CUDA backend on the real cuda:0 with cuBLASLt, where a
// driver loads (gpu/check.sh); the test skips otherwise, or fails with
// MLBUILD_REQUIRE_GPU=1.
func onDevice(t testing.TB) *Backend {
	t.Helper()
	drv, err := cuda.Load()
	if err != nil {
		if os.Getenv("MLBUILD_REQUIRE_GPU") == "1" {
			t.Fatalf("MLBUILD_REQUIRE_GPU=1 but the driver does not load: %v", err)
		}
		t.Skipf("no CUDA driver (%v): the interpreter runs the same kernels", err)
	}
	ctx, err := drv.NewContext(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ctx.Close() })
	g, err := openBLAS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	be, err := NewBackend(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// backends are the CUDA backend's two homes: the PTX interpreter (always)
// and a real GPU (where there is one).
var backends = []struct {
	name string
	open func(testing.TB) *Backend
}{{"interpreter", interpreted}, {"device", onDevice}}

// TestConformance runs the backend conformance suite (every operation,
// forward and backward, against float64 references) on the CUDA backend:
// its kernels executed by the PTX interpreter, and on a GPU where there
// is one.
func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { tensortest.Conformance(t, b.open(t)) })
	}
}

// TestOpenOnInterpreter opens cuda:0 through tensor.OpenDevice's
// accelerator with the interpreter as the driver: by name it gives the
// CUDA backend, for "auto" it declines (not verified on a GPU).
func TestOpenOnInterpreter(t *testing.T) {
	a := accelerator{
		load: func() (cuda.Driver, error) { return ptx.NewDriver(ptx.Options{}), nil },
		gemm: func(cuda.Context) (GEMM, error) { return HostGEMM{CPU: tensor.NewCPU(1)}, nil },
	}
	be, desc, err := a.Open(0, tensor.DeviceOptions{})
	if err != nil || be.Name() != "cuda" {
		t.Fatalf("Open = %v, %q, %v", be, desc, err)
	}
	if _, _, err := a.Open(0, tensor.DeviceOptions{Auto: true}); err == nil {
		t.Error("auto opened an unverified backend")
	}
}

// cpuAndGPU runs the same operation on the CPU backend and the
// interpreted CUDA backend, on shapes larger than one block or tile.
type cpuAndGPU struct {
	t   *testing.T
	cpu tensor.Backend
	gpu *Backend
	r   *rand.Rand
}

func newCPUAndGPU(t *testing.T, open func(testing.TB) *Backend) *cpuAndGPU {
	return &cpuAndGPU{t: t, cpu: tensor.NewCPU(2), gpu: open(t), r: rand.New(rand.NewPCG(3, 4))}
}

func (c *cpuAndGPU) vec(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((c.r.Float64()*2 - 1) * scale)
	}
	return v
}

func read(be tensor.Backend, x *tensor.Tensor) []float32 {
	out := make([]float32, x.Len())
	be.Read(x, out)
	return out
}

// compare fails unless got is within tol·(1+|want|) of want everywhere
// (tol 0: bit for bit).
func compare(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	worst := 0.0
	for i := range want {
		if tol == 0 {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d = %v, CPU %v (want bit for bit)", what, i, got[i], want[i])
			}
			continue
		}
		d := math.Abs(float64(got[i])-float64(want[i])) / (1 + math.Abs(float64(want[i])))
		if !(d <= tol) {
			t.Fatalf("%s: element %d = %v, CPU %v", what, i, got[i], want[i])
		}
		worst = max(worst, d)
	}
	t.Logf("%s: %d values, largest relative difference %.2g", what, len(want), worst)
}

// TestAgainstCPULarge compares the CUDA kernels with the CPU backend on
// shapes that need several blocks, several attention tiles and head
// dimensions above one thread's share; the operations defined exactly are
// compared bit for bit.
func TestAgainstCPULarge(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { againstCPULarge(t, newCPUAndGPU(t, b.open)) })
	}
}

func againstCPULarge(t *testing.T, c *cpuAndGPU) {
	both := func(v []float32, shape ...int) (*tensor.Tensor, *tensor.Tensor) {
		return c.cpu.FromFloat32(v, shape...), c.gpu.FromFloat32(v, shape...)
	}
	t.Run("RMSNorm", func(t *testing.T) {
		const rows, d = 5, 600
		xc, xg := both(c.vec(rows*d, 3), rows, d)
		wc, wg := both(c.vec(d, 1), d)
		yc, yg := c.cpu.Zeros(tensor.F32, rows, d), c.gpu.Zeros(tensor.F32, rows, d)
		c.cpu.RMSNorm(yc, xc, wc, 1e-5)
		c.gpu.RMSNorm(yg, xg, wg, 1e-5)
		compare(t, "RMSNorm", read(c.gpu, yg), read(c.cpu, yc), 2e-7)
		dyc, dyg := both(c.vec(rows*d, 1), rows, d)
		dxc, dxg := c.cpu.Zeros(tensor.F32, rows, d), c.gpu.Zeros(tensor.F32, rows, d)
		dwc, dwg := c.cpu.Zeros(tensor.F32, d), c.gpu.Zeros(tensor.F32, d)
		c.cpu.RMSNormBackward(dxc, dwc, dyc, xc, wc, 1e-5)
		c.gpu.RMSNormBackward(dxg, dwg, dyg, xg, wg, 1e-5)
		compare(t, "RMSNormBackward dx", read(c.gpu, dxg), read(c.cpu, dxc), 2e-7)
		compare(t, "RMSNormBackward dw (rows in order, float64)", read(c.gpu, dwg), read(c.cpu, dwc), 0)
	})
	t.Run("RoPE", func(t *testing.T) {
		const heads, hd = 3, 64
		pos := []int{0, 1, 7, 100, 4095, 31}
		xc, xg := both(c.vec(len(pos)*heads*hd, 1), len(pos), heads*hd)
		yc, yg := c.cpu.Zeros(tensor.F32, len(pos), heads*hd), c.gpu.Zeros(tensor.F32, len(pos), heads*hd)
		c.cpu.RoPE(yc, xc, pos, heads, hd, 500000)
		c.gpu.RoPE(yg, xg, pos, heads, hd, 500000)
		compare(t, "RoPE", read(c.gpu, yg), read(c.cpu, yc), 0)
		c.cpu.RoPEBackward(yc, xc, pos, heads, hd, 10000)
		c.gpu.RoPEBackward(yg, xg, pos, heads, hd, 10000)
		compare(t, "RoPEBackward", read(c.gpu, yg), read(c.cpu, yc), 0)
	})
	t.Run("SoftmaxCrossEntropy", func(t *testing.T) {
		const rows, v = 4, 1000
		xc, xg := both(c.vec(rows*v, 12), rows, v)
		yc, yg := c.cpu.Zeros(tensor.F32, rows, v), c.gpu.Zeros(tensor.F32, rows, v)
		c.cpu.Softmax(yc, xc)
		c.gpu.Softmax(yg, xg)
		compare(t, "Softmax", read(c.gpu, yg), read(c.cpu, yc), 1e-7)
		labels := []int{999, 0, tensor.IgnoreIndex, 517}
		sc, nc := c.cpu.CrossEntropy(xc, labels)
		sg, ng := c.gpu.CrossEntropy(xg, labels)
		if nc != ng || math.Abs(sc-sg) > 1e-9*math.Abs(sc) {
			t.Errorf("CrossEntropy = %v over %d, CPU %v over %d", sg, ng, sc, nc)
		}
		c.cpu.CrossEntropyBackward(yc, xc, labels, 0.125)
		c.gpu.CrossEntropyBackward(yg, xg, labels, 0.125)
		compare(t, "CrossEntropyBackward", read(c.gpu, yg), read(c.cpu, yc), 1e-7)
	})
	t.Run("Attention", func(t *testing.T) {
		// 150 keys: three tiles of 64; head dimension 96: two dimensions
		// per thread for some threads; GQA; a window.
		for _, p := range []tensor.AttnParams{
			{Batch: 2, SeqQ: 150, SeqKV: 150, KVStride: 150, Heads: 4, KVHeads: 2, HeadDim: 96},
			{Batch: 1, SeqQ: 3, SeqKV: 140, KVStride: 160, Heads: 2, KVHeads: 1, HeadDim: 32, PosOffset: 137, Window: 70},
		} {
			nq, nk := p.Batch*p.SeqQ*p.Heads*p.HeadDim, p.Batch*p.KVStride*p.KVHeads*p.HeadDim
			qc, qg := both(c.vec(nq, 2), nq)
			kc, kg := both(c.vec(nk, 2), nk)
			vc, vg := both(c.vec(nk, 1), nk)
			oc, og := c.cpu.Zeros(tensor.F32, nq), c.gpu.Zeros(tensor.F32, nq)
			c.cpu.Attention(oc, qc, kc, vc, p)
			c.gpu.Attention(og, qg, kg, vg, p)
			compare(t, "Attention", read(c.gpu, og), read(c.cpu, oc), 1e-6)
			doc, dog := both(c.vec(nq, 1), nq)
			dqc, dqg := c.cpu.Zeros(tensor.F32, nq), c.gpu.Zeros(tensor.F32, nq)
			dkc, dkg := c.cpu.Zeros(tensor.F32, nk), c.gpu.Zeros(tensor.F32, nk)
			dvc, dvg := c.cpu.Zeros(tensor.F32, nk), c.gpu.Zeros(tensor.F32, nk)
			c.cpu.AttentionBackward(dqc, dkc, dvc, doc, qc, kc, vc, p)
			c.gpu.AttentionBackward(dqg, dkg, dvg, dog, qg, kg, vg, p)
			compare(t, "AttentionBackward dq", read(c.gpu, dqg), read(c.cpu, dqc), 1e-5)
			compare(t, "AttentionBackward dk", read(c.gpu, dkg), read(c.cpu, dkc), 1e-5)
			compare(t, "AttentionBackward dv", read(c.gpu, dvg), read(c.cpu, dvc), 1e-5)
		}
	})
	t.Run("ElementwiseAndCasts", func(t *testing.T) {
		const n = 70_001 // several grid-stride rounds
		a, b := c.vec(n, 5), c.vec(n, 5)
		ac, ag := both(a, n)
		bc, bg := both(b, n)
		yc, yg := c.cpu.Zeros(tensor.F32, n), c.gpu.Zeros(tensor.F32, n)
		c.cpu.SwiGLU(yc, ac, bc)
		c.gpu.SwiGLU(yg, ag, bg)
		compare(t, "SwiGLU", read(c.gpu, yg), read(c.cpu, yc), 1e-6)
		for _, dt := range []tensor.DType{tensor.BF16, tensor.F16} {
			hc, hg := c.cpu.Zeros(dt, n), c.gpu.Zeros(dt, n)
			c.cpu.Copy(hc, ac)
			c.gpu.Copy(hg, ag)
			compare(t, "Copy F32→"+dt.String(), read(c.gpu, hg), read(c.cpu, hc), 0)
		}
		c.cpu.AddScaled(bc, ac, 0.3)
		c.gpu.AddScaled(bg, ag, 0.3)
		compare(t, "AddScaled", read(c.gpu, bg), read(c.cpu, bc), 0)
	})
	t.Run("DequantizeNF4Large", func(t *testing.T) {
		const rows, cols = 64, 257
		q := nf4.Quantize(c.vec(rows*cols, 0.1), rows, cols)
		want := make([]float32, rows*cols)
		q.DequantizeRows(want, 0, rows)
		dst := c.gpu.Zeros(tensor.F32, rows, cols)
		c.gpu.DequantizeNF4(dst, q, 0, rows)
		compare(t, "DequantizeNF4", read(c.gpu, dst), want, 0)
	})
}

// TestDeterministic runs the backward passes twice: bit-identical.
func TestDeterministic(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { deterministic(t, newCPUAndGPU(t, b.open)) })
	}
}

func deterministic(t *testing.T, c *cpuAndGPU) {
	p := tensor.AttnParams{Batch: 1, SeqQ: 70, SeqKV: 70, KVStride: 70, Heads: 2, KVHeads: 1, HeadDim: 16}
	nq, nk := p.SeqQ*p.Heads*p.HeadDim, p.SeqKV*p.KVHeads*p.HeadDim
	q, k, v, do := c.gpu.FromFloat32(c.vec(nq, 1), nq), c.gpu.FromFloat32(c.vec(nk, 1), nk), c.gpu.FromFloat32(c.vec(nk, 1), nk), c.gpu.FromFloat32(c.vec(nq, 1), nq)
	run := func() []float32 {
		dq, dk, dv := c.gpu.Zeros(tensor.F32, nq), c.gpu.Zeros(tensor.F32, nk), c.gpu.Zeros(tensor.F32, nk)
		c.gpu.AttentionBackward(dq, dk, dv, do, q, k, v, p)
		return append(append(read(c.gpu, dq), read(c.gpu, dk)...), read(c.gpu, dv)...)
	}
	compare(t, "AttentionBackward, twice", run(), run(), 0)
}

// TestDeviceMemory: tensors nobody holds are collected when the device is
// full (the allocation retries after a garbage collection), and a device
// that is full of live tensors fails with a *tensor.DeviceError that gives
// the numbers and what to change.
func TestDeviceMemory(t *testing.T) {
	ctx, err := ptx.NewDriver(ptx.Options{Memory: 1 << 20}).NewContext(0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ctx.Close() }()
	be, err := NewBackend(ctx, HostGEMM{CPU: tensor.NewCPU(1)})
	if err != nil {
		t.Fatal(err)
	}
	for range 40 { // 40 × 64 KiB through a 1 MiB device
		x := be.Zeros(tensor.F32, 128, 128)
		be.Scale(x, x, 2)
	}
	var held []*tensor.Tensor
	err = tensor.CatchDeviceError(func() {
		for range 40 {
			held = append(held, be.Zeros(tensor.F32, 128, 128))
		}
	})
	var de *tensor.DeviceError
	if !errors.As(err, &de) || !errors.Is(err, cuda.ErrOutOfMemory) {
		t.Fatalf("filling the device: %v", err)
	}
	for _, want := range []string{"allocate: allocating F32[128 128]:", "needs 64 KiB more, this backend holds", "of " + ptx.DeviceName + "'s 1.0 MiB", "batch_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("%d tensors held; %v", len(held), err)
}

// TestAllocationsAreReused: once a shape has been seen, a QLoRA training
// step's allocations all come from the backend's cache (every activation
// is freed when the backward pass is done with it): with packed batches
// (three full micro-batches of one shape), the driver is asked for
// nothing after the first step.
func TestAllocationsAreReused(t *testing.T) {
	be := interpreted(t)
	base, examples := tinyBase(t)
	m, err := train.LoadQLoRA(base, be, train.LoRAConfig{R: 4, Alpha: 8, Dropout: 0.1, TargetModules: []string{"all-linear"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var driver []int64
	if _, err := train.Train(context.Background(), m, examples, nil, train.Options{
		MaxSteps: 3, BatchSize: 3, SeqLen: 16, Packing: true, Seed: 2, Schedule: train.Schedule{Kind: "constant", Peak: 1e-3},
		Progress: func(train.Status) { driver = append(driver, be.DriverAllocs()) },
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("driver allocations after each step: %v", driver)
	if driver[2] != driver[0] || driver[0] == 0 {
		t.Errorf("steps 2 and 3 made %d driver allocations", driver[2]-driver[0])
	}
}
