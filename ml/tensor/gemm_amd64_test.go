package tensor

import (
	"math"
	"testing"
)

func init() {
	if hasAVX2FMA {
		peakLoops = append(peakLoops, peakLoop{"avx2-fma", fmaPeak, 192})
	}
	if hasAVX512 {
		peakLoops = append(peakLoops, peakLoop{"avx512-fma", fmaPeak512, 384})
	}
}

// TestAVX512KernelMatchesAVX2 checks that the 12×32 kernel gives each
// element of its block bit for bit what the four 6×16 kernels give, in both
// modes, so that the choice of kernel never changes a GEMM's result.
func TestAVX512KernelMatchesAVX2(t *testing.T) {
	if !hasAVX512 {
		t.Skip("CPU has no AVX-512")
	}
	r := newRand(22)
	const ldc = 2*gemmNR + 5
	for _, kc := range []int{1, 3, 4, 5, 192, 256} {
		for _, accum := range []bool{false, true} {
			a0, a1 := randVec(r, kc*gemmMR), randVec(r, kc*gemmMR)
			b0, b1 := randVec(r, kc*gemmNR), randVec(r, kc*gemmNR)
			c0 := randVec(r, 2*gemmMR*ldc)
			got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
			alpha, beta := float32(0.75), float32(-1.25)
			gemmBlockAVX512(kc, a0, a1, b0, b1, got, ldc, alpha, beta, accum)
			gemmBlockAVX2(kc, a0, b0, want, ldc, alpha, beta, accum)
			gemmBlockAVX2(kc, a0, b1, want[gemmNR:], ldc, alpha, beta, accum)
			gemmBlockAVX2(kc, a1, b0, want[gemmMR*ldc:], ldc, alpha, beta, accum)
			gemmBlockAVX2(kc, a1, b1, want[gemmMR*ldc+gemmNR:], ldc, alpha, beta, accum)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("kc=%d accum=%v: c[%d] = %g, want %g (bit for bit)", kc, accum, i, got[i], want[i])
				}
			}
		}
	}
}

func TestAVX2Kernels(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("CPU has no AVX2/FMA")
	}
	r := newRand(21)
	for _, kc := range []int{0, 1, 2, 7, 256} {
		a, b := randVec(r, kc*gemmMR), randVec(r, kc*gemmNR)
		var got, want [gemmMR * gemmNR]float32
		got[0] = float32(math.NaN())
		kernelAVX2(kc, a, b, &got)
		kernelGo(kc, a, b, &want)
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("kc=%d: tile[%d] = %g, want %g", kc, i, got[i], want[i])
			}
		}
	}
	for _, n := range []int{0, 1, 31, 32, 33, 100, 4096} {
		x, y := randVec(r, n), randVec(r, n)
		got, want := dotAVX2(x, y), dot(x, y)
		if math.Abs(float64(got-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Fatalf("n=%d: dotAVX2 = %g, dot = %g", n, got, want)
		}
		yb := make([]uint16, n)
		for i, v := range y {
			yb[i] = uint16(math.Float32bits(v) >> 16)
			y[i] = BF16ToFloat32(yb[i])
		}
		got, want = dotBF16AVX2(x, yb), dot(x, y)
		if math.Abs(float64(got-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Fatalf("n=%d: dotBF16AVX2 = %g, dot = %g", n, got, want)
		}
		if g := dotBF16(x, yb); math.Abs(float64(g-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Fatalf("n=%d: dotBF16 = %g, dot = %g", n, g, want)
		}
	}
}

// TestGEMMAVX512BitIdentical checks whole GEMMs (edges, slabs, both
// transposes, beta) with and without the AVX-512 kernel, bit for bit: a
// model trained on an AVX-512 machine is the one an AVX2 machine trains.
func TestGEMMAVX512BitIdentical(t *testing.T) {
	if !hasAVX512 {
		t.Skip("CPU has no AVX-512")
	}
	chooseWideKernel()
	saved := gemmBlockWide
	defer func() { gemmBlockWide = saved }()
	t.Logf("GEMMKernel() = %s", GEMMKernel())
	for _, s := range [][3]int{{300, 1100, 520}, {37, 70, 300}, {1030, 40, 260}, {13, 33, 7}} {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				var res [2][]float32
				for i, wide := range []func(int, []float32, []float32, []float32, []float32, []float32, int, float32, float32, bool){nil, gemmBlockAVX512} {
					gemmBlockWide = wide
					be := NewCPU(2)
					at, bt, _, _ := gemmOperands(be, 9, m, n, k, ta, tb)
					c := be.FromFloat32(randVec(newRand(4), m*n), m, n)
					be.MatMul(c, at, bt, ta, tb, 0.5, 1)
					be.MatMul(c, at, bt, ta, tb, 1, -2)
					res[i] = read(be, c)
				}
				for i := range res[0] {
					if math.Float32bits(res[0][i]) != math.Float32bits(res[1][i]) {
						t.Fatalf("%v ta=%v tb=%v: element %d = %g with AVX-512, %g without", s, ta, tb, i, res[1][i], res[0][i])
					}
				}
			}
		}
	}
}
