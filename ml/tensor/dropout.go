package tensor

import "math"

// Dropout's mask is counter-based: whether element i of a tensor is kept
// is a fixed function of the mask's seed and i (DropoutKeeps), not a draw
// from a stream. A backend fills any part of the mask without the rest, in
// parallel and in any order, and the backward pass applies the forward's
// mask again from its seed, so no mask is ever stored.
//
// Two elements share one 64-bit hash of (seed, i/2): SplitMix64's output
// function of seed + (i/2+1)·φ (φ = 0x9E3779B97F4A7C15, the Weyl sequence
// SplitMix64 steps through), the low 32 bits for even i, the high 32 for
// odd i. Element i is dropped when its 32 bits are below DropoutThreshold(p).

// dropoutGamma is SplitMix64's increment (2⁶⁴/φ, odd).
const dropoutGamma = 0x9E3779B97F4A7C15

// dropoutHash is the 64 bits of elements 2j and 2j+1.
func dropoutHash(seed uint64, j int) uint64 {
	z := seed + (uint64(j)+1)*dropoutGamma
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
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
// probability p is kept: the mask every backend's Dropout applies.
func DropoutKeeps(seed uint64, i int, p float32) bool {
	h := dropoutHash(seed, i>>1)
	if i&1 == 1 {
		h >>= 32
	}
	return uint32(h) >= DropoutThreshold(p)
}

func checkDropout(p float32) {
	if !(p >= 0 && p < 1) {
		panic("tensor: Dropout probability must be in [0, 1)")
	}
}

// dropoutRange writes d[i] = x[i]·scale or 0 for i in [lo, hi), the mask of
// DropoutKeeps, hashing once per pair of elements.
func dropoutRange(d, x []float32, lo, hi int, seed uint64, thresh uint32, scale float32) {
	i := lo
	if i < hi && i&1 == 1 {
		d[i] = keepOrDrop(x[i], uint32(dropoutHash(seed, i>>1)>>32), thresh, scale)
		i++
	}
	for ; i+1 < hi; i += 2 {
		h := dropoutHash(seed, i>>1)
		d[i] = keepOrDrop(x[i], uint32(h), thresh, scale)
		d[i+1] = keepOrDrop(x[i+1], uint32(h>>32), thresh, scale)
	}
	if i < hi {
		d[i] = keepOrDrop(x[i], uint32(dropoutHash(seed, i>>1)), thresh, scale)
	}
}

func keepOrDrop(v float32, bits, thresh uint32, scale float32) float32 {
	if bits < thresh {
		return 0
	}
	return v * scale
}

// Dropout implements Backend.
func (c *CPU) Dropout(dst, x *Tensor, p float32, seed uint64) {
	checkDropout(p)
	sameLen("Dropout", dst, x)
	d, xs := c.f32("Dropout", dst), c.f32("Dropout", x)
	thresh, scale := DropoutThreshold(p), DropoutScale(p)
	c.elementwise(len(d), func(lo, hi int) {
		dropoutRange(d, xs, lo, hi, seed, thresh, scale)
	})
}
