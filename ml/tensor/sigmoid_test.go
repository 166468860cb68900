package tensor

import (
	"math"
	"testing"
)

// sigmoidInputs are random gates over the range that matters, the clamp's
// edges and beyond, zeros and a length that leaves a tail.
func sigmoidInputs() []float32 {
	r := newRand(31)
	xs := randVec(r, 4099)
	for i := range xs {
		xs[i] *= float32(1 + i%40) // up to ±40
	}
	return append(xs, 0, float32(math.Copysign(0, -1)), 87, -87, 88, -88, 100, -100, 1e-30, -1e-30)
}

// TestSigmoid32Accuracy checks the float32 sigmoid against float64's.
func TestSigmoid32Accuracy(t *testing.T) {
	for _, g := range sigmoidInputs() {
		want := 1 / (1 + math.Exp(-float64(g)))
		got := float64(sigmoid32(g))
		// A few float32 roundings, and e^x to 2e-7 relative; below
		// 1e-37 the clamp keeps σ from reaching zero.
		if math.Abs(got-want) > 1e-6*want+1e-37 {
			t.Fatalf("sigmoid32(%g) = %g, want %g", g, got, want)
		}
	}
}

// TestSwiGLUKernelsBitIdentical checks the eight-lane kernels (AVX2 where
// the CPU has it) against the portable code, bit for bit, from every start
// offset so that the split between bulk and tail moves.
func TestSwiGLUKernelsBitIdentical(t *testing.T) {
	if swiglu8 == nil {
		t.Skip("no eight-lane SwiGLU kernel on this CPU")
	}
	gate := sigmoidInputs()
	n := len(gate)
	r := newRand(32)
	up, dy := randVec(r, n), randVec(r, n)
	saved, savedB := swiglu8, swigluBackward8
	defer func() { swiglu8, swigluBackward8 = saved, savedB }()
	run := func(lo int) (y, dg, du []float32) {
		y, dg, du = make([]float32, n), make([]float32, n), make([]float32, n)
		swiglu32(y, gate, up, lo, n)
		swigluBackward32(dg, du, dy, gate, up, lo, n)
		return y, dg, du
	}
	for lo := range 9 {
		swiglu8, swigluBackward8 = saved, savedB
		y1, dg1, du1 := run(lo)
		swiglu8, swigluBackward8 = nil, nil
		y0, dg0, du0 := run(lo)
		for i := lo; i < n; i++ {
			for _, p := range [][2]float32{{y1[i], y0[i]}, {dg1[i], dg0[i]}, {du1[i], du0[i]}} {
				if math.Float32bits(p[0]) != math.Float32bits(p[1]) {
					t.Fatalf("from %d, gate %g: kernel %g, portable %g", lo, gate[i], p[0], p[1])
				}
			}
		}
	}
}

// TestExpSumKernelBitIdentical checks the cross-entropy's eight-lane sum of
// exponentials against the portable loop, bit for bit, with and without
// the terms stored, on rows whose length leaves every tail.
func TestExpSumKernelBitIdentical(t *testing.T) {
	if expSum8 == nil {
		t.Skip("no eight-lane exp-sum kernel on this CPU")
	}
	saved := expSum8
	defer func() { expSum8 = saved }()
	x := sigmoidInputs()
	for _, n := range []int{1, 7, 8, 9, 100, 4096, len(x)} {
		xr := x[:n]
		mx := rowMax32(xr)
		var sums [2]float64
		var outs [2][]float32
		for k, kern := range []func([]float32, float32, []float32, *[8]float64){saved, nil} {
			expSum8 = kern
			outs[k] = make([]float32, n)
			sums[k] = expSum(xr, mx, outs[k])
			if s := expSum(xr, mx, nil); math.Float64bits(s) != math.Float64bits(sums[k]) {
				t.Fatalf("n=%d: the sum depends on storing the terms: %g, %g", n, s, sums[k])
			}
		}
		if math.Float64bits(sums[0]) != math.Float64bits(sums[1]) {
			t.Fatalf("n=%d: kernel sum %g, portable %g", n, sums[0], sums[1])
		}
		for i := range outs[0] {
			if math.Float32bits(outs[0][i]) != math.Float32bits(outs[1][i]) {
				t.Fatalf("n=%d: term %d: kernel %g, portable %g", n, i, outs[0][i], outs[1][i])
			}
		}
	}
}
