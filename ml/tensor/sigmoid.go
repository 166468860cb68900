package tensor

import "math"

// The SwiGLU kernels compute the sigmoid in float32 with expf32, whose
// every operation is spelled out (products rounded before they are added,
// no fused multiply-add), so that the AVX2 kernels (sigmoid_amd64.s), which
// run the same operations eight lanes at a time, give the same bits as this
// portable code on every CPU.

// sigmoidConsts are expf32's constants, in the order sigmoid_amd64.s reads
// them: log2(e); ln 2 in two parts (Cody–Waite: the high part has few bits,
// so n·hi is exact); the argument's clamp; 1; the exponent bias; and
// Cephes' expf polynomial for e^r on [−ln2/2, ln2/2] (relative error about
// 2e-7).
var sigmoidConsts = [16]float32{
	1.44269504088896341, // 0: log2(e)
	0.693359375,         // 1: ln 2, high part
	-2.12194440e-4,      // 2: ln 2, low part
	-87,                 // 3: lowest argument (2^n stays normal)
	88,                  // 4: highest argument
	1,                   // 5
	127,                 // 6: exponent bias
	1.9875691500e-4,     // 7: c0
	1.3981999507e-3,     // 8: c1
	8.3334519073e-3,     // 9: c2
	4.1665795894e-2,     // 10: c3
	1.6666665459e-1,     // 11: c4
	5.0000001201e-1,     // 12: c5
}

// expf32 is e^x in float32, x clamped to [−87, 88]: n = round(x·log2 e),
// r = x − n·ln2, e^r by the polynomial, times 2^n.
func expf32(x float32) float32 {
	c := &sigmoidConsts
	x = min(max(x, c[3]), c[4])
	n := float32(math.RoundToEven(float64(float32(x * c[0]))))
	r := x - float32(n*c[1])
	r -= float32(n * c[2])
	p := c[7]
	p = float32(p*r) + c[8]
	p = float32(p*r) + c[9]
	p = float32(p*r) + c[10]
	p = float32(p*r) + c[11]
	p = float32(p*r) + c[12]
	y := float32(p * float32(r*r))
	y += r
	y += c[5]
	return float32(y * math.Float32frombits(uint32(int32(n+c[6]))<<23))
}

// sigmoid32 is 1 / (1 + e^−g) in float32.
func sigmoid32(g float32) float32 { return 1 / (1 + expf32(-g)) }

// swiglu8 and swigluBackward8, where the CPU has them (AVX2), do the first
// n&^7 elements of swiglu32 and swigluBackward32 eight at a time, with the
// same operations.
var (
	swiglu8         func(y, gate, up []float32)
	swigluBackward8 func(dgate, dup, dy, gate, up []float32)
)

// swiglu32 computes y = silu(gate)·up for i in [lo, hi): silu(g) = g·σ(g)
// rounded to float32 before the product, as torch computes it.
func swiglu32(y, gate, up []float32, lo, hi int) {
	y, gate, up = y[lo:hi], gate[lo:hi], up[lo:hi]
	i := 0
	if swiglu8 != nil {
		i = len(y) &^ 7
		if i > 0 {
			swiglu8(y[:i], gate[:i], up[:i])
		}
	}
	for ; i < len(y); i++ {
		g := gate[i]
		y[i] = float32(g*sigmoid32(g)) * up[i]
	}
}

// swigluBackward32 computes, for i in [lo, hi), dup = dy·g·σ(g) and
// dgate = dy·up·(σ + g·σ·(1 − σ)), σ = σ(g).
func swigluBackward32(dgate, dup, dy, gate, up []float32, lo, hi int) {
	dgate, dup, dy, gate, up = dgate[lo:hi], dup[lo:hi], dy[lo:hi], gate[lo:hi], up[lo:hi]
	i := 0
	if swigluBackward8 != nil {
		i = len(dy) &^ 7
		if i > 0 {
			swigluBackward8(dgate[:i], dup[:i], dy[:i], gate[:i], up[:i])
		}
	}
	for ; i < len(dy); i++ {
		g, d := gate[i], dy[i]
		s := sigmoid32(g)
		gs := float32(g * s)
		dup[i] = float32(d * gs)
		t := float32(gs*(1-s)) + s
		dgate[i] = float32(float32(d*up[i]) * t)
	}
}
