// Package seeded is the deterministic random source of the data steps: a
// PCG with the draw and shuffle algorithms written here rather than taken
// from math/rand/v2's Rand methods, so that the stream of choices for a
// seed, and hence every output built from it, is pinned by this package and
// not by the Go release.
package seeded

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Rand is a seeded source. It is not safe for concurrent use.
type Rand struct{ src *rand.PCG }

// New returns the source for seed; stream, a constant of each caller,
// keeps callers with the same seed on different streams.
func New(seed, stream uint64) *Rand { return &Rand{src: rand.NewPCG(seed, stream)} }

// IntN returns a uniform integer in [0, n) (Lemire's multiply-and-reject).
// n must be positive.
func (r *Rand) IntN(n int) int {
	if n <= 0 {
		panic("seeded: IntN of a non-positive bound")
	}
	bound := uint64(n)
	hi, lo := bits.Mul64(r.src.Uint64(), bound)
	if lo < bound {
		thresh := -bound % bound
		for lo < thresh {
			hi, lo = bits.Mul64(r.src.Uint64(), bound)
		}
	}
	return int(hi)
}

// Shuffle permutes n elements through swap (Fisher-Yates, last element
// first).
func (r *Rand) Shuffle(n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, r.IntN(i+1))
	}
}

// Float64 returns a uniform float64 in [0, 1) (53 random bits).
func (r *Rand) Float64() float64 {
	return float64(r.src.Uint64()>>11) * (1.0 / (1 << 53))
}

// Normal returns a standard normal deviate (Box–Muller, one value per two
// uniforms, so the stream does not depend on a cached second value).
func (r *Rand) Normal() float64 {
	u1 := 1 - r.Float64() // (0, 1]
	u2 := r.Float64()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// Uint64 returns 64 random bits.
func (r *Rand) Uint64() uint64 { return r.src.Uint64() }

// Clone returns a generator in r's state: it draws what r would draw next,
// without advancing r.
func (r *Rand) Clone() *Rand {
	c := *r.src
	return &Rand{src: &c}
}
