package tensor

import (
	"math"
	"testing"
)

// TestAttentionAVX2Kernels checks the element-wise AVX2 kernels against the
// portable ones and the in-place block kernel against kernelGo.
func TestAttentionAVX2Kernels(t *testing.T) {
	if !hasAVX2FMA {
		t.Skip("CPU has no AVX2/FMA")
	}
	r := newRand(23)
	for _, n := range []int{1, 7, 8, 9, 31, 64, 100} {
		x := randVec(r, n)
		for i := range x {
			x[i] *= 40
		}
		if got, want := maxAVX2(x), maxGo(x); got != want {
			t.Fatalf("n=%d: maxAVX2 = %g, want %g", n, got, want)
		}
		m := maxGo(x)
		a, b := append([]float32(nil), x...), append([]float32(nil), x...)
		sa, sb := expSubAVX2(a, m, 0.7), expSubGo(b, m, 0.7)
		if math.Abs(sa-sb) > 1e-6*sb {
			t.Fatalf("n=%d: expSubAVX2 sum %g, want %g", n, sa, sb)
		}
		for i := range a {
			arg := (x[i] - m) * float32(0.7) // rounded to float32, as the kernels do
			want := math.Exp(float64(arg))
			if math.Abs(float64(a[i])-want) > 3e-7*want+1e-37 || math.Abs(float64(b[i])-want) > 3e-7*want+1e-37 {
				t.Fatalf("n=%d: exp element %d: avx2 %g go %g want %g", n, i, a[i], b[i], want)
			}
		}
		y0 := randVec(r, n)
		ya, yb := append([]float32(nil), y0...), append([]float32(nil), y0...)
		axpyAVX2(ya, x, 0.3)
		axpy(yb, x, 0.3)
		for i := range ya {
			if math.Abs(float64(ya[i]-yb[i])) > 1e-6*(1+math.Abs(float64(yb[i]))) {
				t.Fatalf("n=%d: axpy element %d: %g, want %g", n, i, ya[i], yb[i])
			}
		}
		scaleAVX2(a, 0.3)
		scaleGo(b, 0.3)
		p := randVec(r, n)
		dsoftmaxAVX2(a, p, 0.25, 0.125)
		dsoftmaxGo(b, p, 0.25, 0.125)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) && math.Abs(float64(a[i]-b[i])) > 1e-6*math.Abs(float64(b[i])) {
				t.Fatalf("n=%d: scale/dsoftmax element %d: %g, want %g", n, i, a[i], b[i])
			}
		}
	}
	for _, kc := range []int{1, 5, 64, 256} {
		a, b := randVec(r, kc*gemmMR), randVec(r, kc*gemmNR)
		var want [gemmMR * gemmNR]float32
		kernelGo(kc, a, b, &want)
		const ldc = 21
		c0 := randVec(r, (gemmMR-1)*ldc+gemmNR)
		for _, acc := range []bool{false, true} {
			c := append([]float32(nil), c0...)
			blockAVX2(kc, a, b, c, ldc, acc)
			for i := range gemmMR {
				for j := range gemmNR {
					w := want[i*gemmNR+j]
					if acc {
						w += c0[i*ldc+j]
					}
					if g := c[i*ldc+j]; math.Abs(float64(g-w)) > 1e-5*(1+math.Abs(float64(w))) {
						t.Fatalf("kc=%d acc=%v: c[%d,%d] = %g, want %g", kc, acc, i, j, g, w)
					}
				}
			}
			// Elements between the rows are untouched.
			for i := range gemmMR - 1 {
				for j := gemmNR; j < ldc; j++ {
					if c[i*ldc+j] != c0[i*ldc+j] {
						t.Fatalf("kc=%d: wrote outside the block at %d,%d", kc, i, j)
					}
				}
			}
		}
	}
}
