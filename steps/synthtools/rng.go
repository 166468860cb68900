package synthtools

import (
	"math/bits"
	"math/rand/v2"
)

// rng draws from a PCG with algorithms written here rather than
// math/rand/v2's Rand methods, so that the stream of choices, and hence the
// output for a seed, is pinned by this package and not by the Go release.
type rng struct{ src *rand.PCG }

// streamSynth is the PCG's second seed word ("twainbot" in ASCII), fixed so
// that the seed attribute alone selects the stream.
const streamSynth = 0x747761696e626f74

func newRNG(seed int64) *rng { return &rng{src: rand.NewPCG(uint64(seed), streamSynth)} }

// intN returns a uniform integer in [0, n) (Lemire's multiply-and-reject).
func (r *rng) intN(n int) int {
	if n <= 0 {
		panic("synthtools: intN of a non-positive bound")
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

// chance returns true with probability p (in 1/1000 steps).
func (r *rng) chance(p float64) bool { return r.intN(1000) < int(p*1000) }

// pick returns a uniformly chosen element of xs.
func pick[T any](r *rng, xs []T) T { return xs[r.intN(len(xs))] }

// shuffle permutes xs in place (Fisher-Yates, last element first).
func shuffle[T any](r *rng, xs []T) {
	for i := len(xs) - 1; i > 0; i-- {
		j := r.intN(i + 1)
		xs[i], xs[j] = xs[j], xs[i]
	}
}
