package tensor

import (
	"math"
	"testing"
)

func init() {
	if hasAVX2FMA {
		peakLoops = append(peakLoops, struct {
			name  string
			run   func(n int)
			flops float64
		}{"avx2-fma", fmaPeak, 192})
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
