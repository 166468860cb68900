package tensor

import "math"

// Dropout's mask is counter-based: whether element i of a tensor is kept
// is a fixed function of the mask's seed and i (DropoutKeeps), not a draw
// from a stream. A backend fills any part of the mask without the rest, in
// parallel and in any order, and the backward pass applies the forward's
// mask again from its seed, so no mask is ever stored.
//
// Element i's 32 bits are two rounds of MurmurHash3's finalizer (fmix32):
// fmix32(fmix32(i·φ + lo) ⊕ hi), φ = 0x9E3779B9 and lo, hi the seed's low
// and high 32 bits; 32-bit integer steps, so that eight lanes of AVX2 do
// eight elements at once (dropout_amd64.s). Element i is dropped when its
// bits are below DropoutThreshold(p).

// fmix32 is MurmurHash3's 32-bit finalizer (a bijection).
func fmix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x85EBCA6B
	x ^= x >> 13
	x *= 0xC2B2AE35
	return x ^ x>>16
}

// dropoutBits is the 32 random bits of element i.
func dropoutBits(seed uint64, i int) uint32 {
	return fmix32(fmix32(uint32(i)*0x9E3779B9+uint32(seed)) ^ uint32(seed>>32))
}

// DropoutThreshold is the 32-bit bound below which an element is dropped:
// ⌊p·2³²⌋, so that an element is dropped with probability p (to 2⁻³²).
func DropoutThreshold(p float32) uint32 {
	return uint32(min(float64(p)*(1<<32), math.MaxUint32))
}

// DropoutScale is the factor kept elements are multiplied by (inverted
// dropout): float32(1 / (1 − p)).
func DropoutScale(p float32) float32 { return float32(1 / (1 - float64(p))) }

// DropoutKeeps reports whether element i of the mask with this seed and
// probability p is kept: the mask every backend's Dropout applies. i must
// be below 2³² (a tensor's length).
func DropoutKeeps(seed uint64, i int, p float32) bool {
	return dropoutBits(seed, i) >= DropoutThreshold(p)
}

func checkDropout(p float32) {
	if !(p >= 0 && p < 1) {
		panic("tensor: Dropout probability must be in [0, 1)")
	}
}

// dropout8, where the CPU has it (AVX2), does dropoutRange's work for the
// first len(d)&^7 elements, starting at element index i0.
var dropout8 func(d, x []float32, i0 int, seed uint64, thresh uint32, scale float32)

// dropoutRange writes d[i] = x[i]·scale or 0 for i in [lo, hi), the mask of
// DropoutKeeps.
func dropoutRange(d, x []float32, lo, hi int, seed uint64, thresh uint32, scale float32) {
	i := lo
	if n := (hi - lo) &^ 7; dropout8 != nil && n > 0 {
		dropout8(d[lo:lo+n], x[lo:lo+n], lo, seed, thresh, scale)
		i += n
	}
	for ; i < hi; i++ {
		if dropoutBits(seed, i) < thresh {
			d[i] = 0
		} else {
			d[i] = x[i] * scale
		}
	}
}

// Dropout implements Backend.
func (c *CPU) Dropout(dst, x *Tensor, p float32, seed uint64) {
	checkDropout(p)
	sameLen("Dropout", dst, x)
	d, xs := c.f32("Dropout", dst), c.f32("Dropout", x)
	thresh, scale := DropoutThreshold(p), DropoutScale(p)
	if len(d) > math.MaxUint32 {
		panic("tensor: Dropout of more than 2³² elements")
	}
	c.elementwise(len(d), func(lo, hi int) {
		dropoutRange(d, xs, lo, hi, seed, thresh, scale)
	})
}
