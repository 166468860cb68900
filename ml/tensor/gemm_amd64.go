package tensor

import (
	"math"
	"time"

	"golang.org/x/sys/cpu"
)

// hasAVX2FMA reports whether the AVX2/FMA kernels in gemm_amd64.s can run.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// hasAVX512 reports whether the AVX-512 kernel can run (x/sys/cpu also
// checks that the OS saves the ZMM and mask registers).
var hasAVX512 = hasAVX2FMA && cpu.X86.HasAVX512F

func init() {
	if hasAVX2FMA {
		microKernel = kernelAVX2
		gemmBlock = gemmBlockAVX2
		dotKernel = dotAVX2
		dotBF16Kernel = dotBF16AVX2
	}
	if hasAVX2FMA {
		gemmKernelName = "avx2"
	}
	if hasAVX512 {
		gemmBlockWideCPU, gemmWideFaster = gemmBlockAVX512, avx512Faster
	}
}

// avx512Faster reports whether this CPU's 16-lane FMAs do clearly more work
// per second than its 8-lane ones: true where the AVX-512 units are 512
// bits wide (Intel's server cores), false where they are two 256-bit halves
// (AMD Zen 4, whose AVX2 kernel already reaches the same peak with fewer
// constraints). It times both FMA loops a few times (about 50 µs, once,
// at the first GEMM on an AVX-512 CPU: not at start-up). Both kernels give
// the same bits, so the choice only decides the speed.
func avx512Faster() bool {
	const iters = 2000
	best := func(run func(int)) time.Duration {
		d := time.Duration(math.MaxInt64)
		for range 5 {
			t0 := time.Now()
			run(iters)
			d = min(d, time.Since(t0))
		}
		return d
	}
	d2, d512 := best(fmaPeak), best(fmaPeak512)
	// fmaPeak512 does twice fmaPeak's flops per iteration.
	return float64(d2)*2 > 1.4*float64(d512)
}

// kern6x16 is the AVX2/FMA micro-kernel: tile[6×16] = Σ_p a[p,0:6]ᵀ b[p,0:16]
// for kc >= 0 steps of packed panels.
//
//go:noescape
func kern6x16(kc int, a, b, tile *float32)

// dot8x4 returns the dot product of x and y over n (a multiple of 32)
// elements, accumulating in four 8-lane registers.
//
//go:noescape
func dot8x4(x, y *float32, n int) float32

func kernelAVX2(kc int, a, b []float32, tile *[gemmMR * gemmNR]float32) {
	if kc <= 0 {
		*tile = [gemmMR * gemmNR]float32{}
		return
	}
	_ = a[kc*gemmMR-1]
	_ = b[kc*gemmNR-1]
	kern6x16(kc, &a[0], &b[0], &tile[0])
}

// dotAVX2 is dot with the bulk in 32-element AVX2 steps and the tail in Go.
func dotAVX2(x, y []float32) float32 {
	y = y[:len(x)]
	n := len(x) &^ 31
	var s float32
	if n > 0 {
		s = dot8x4(&x[0], &y[0], n)
	}
	for i := n; i < len(x); i++ {
		s += x[i] * y[i]
	}
	return s
}

// fmaPeak runs n iterations of 12 independent 8-lane FMAs (192 flops); only
// BenchmarkPeakFMA uses it.
//
//go:noescape
func fmaPeak(n int)

// dotBF16x4 is dot8x4 with y in bfloat16.
//
//go:noescape
func dotBF16x4(x *float32, y *uint16, n int) float32

// dotBF16AVX2 is dotBF16 with the bulk in 32-element AVX2 steps.
func dotBF16AVX2(x []float32, y []uint16) float32 {
	y = y[:len(x)]
	n := len(x) &^ 31
	var s float32
	if n > 0 {
		s = dotBF16x4(&x[0], &y[0], n)
	}
	for i := n; i < len(x); i++ {
		s += x[i] * BF16ToFloat32(y[i])
	}
	return s
}

// gemm6x16 is gemmBlock's AVX2/FMA kernel (mode 0: c = alpha·acc; mode 1:
// c = fma(acc, alpha, beta·c)).
//
//go:noescape
func gemm6x16(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)

// gemmBlockAVX2 is gemmBlock on gemm6x16.
func gemmBlockAVX2(kc int, a, b, c []float32, ldc int, alpha, beta float32, accum bool) {
	_ = a[kc*gemmMR-1]
	_ = b[kc*gemmNR-1]
	_ = c[(gemmMR-1)*ldc+gemmNR-1]
	mode := 0
	if accum {
		mode = 1
	}
	gemm6x16(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, mode)
}

// gemm12x32 is gemmBlockWide's AVX-512 kernel: the 12×32 block of two row
// panels (a0, a1) by two column panels (b0, b1), each element computed
// exactly as gemm6x16 computes it.
//
//go:noescape
func gemm12x32(kc int, a0, a1, b0, b1, c *float32, ldc int, alpha, beta float32, mode int)

// gemmBlockAVX512 is gemmBlockWide on gemm12x32.
func gemmBlockAVX512(kc int, a0, a1, b0, b1, c []float32, ldc int, alpha, beta float32, accum bool) {
	_ = a0[kc*gemmMR-1]
	_ = a1[kc*gemmMR-1]
	_ = b0[kc*gemmNR-1]
	_ = b1[kc*gemmNR-1]
	_ = c[(2*gemmMR-1)*ldc+2*gemmNR-1]
	mode := 0
	if accum {
		mode = 1
	}
	gemm12x32(kc, &a0[0], &a1[0], &b0[0], &b1[0], &c[0], ldc, alpha, beta, mode)
}

// fmaPeak512 runs n iterations of 12 independent 16-lane FMAs (384 flops);
// only BenchmarkPeakFMA uses it.
//
//go:noescape
func fmaPeak512(n int)
