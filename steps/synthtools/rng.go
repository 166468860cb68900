package synthtools

import "github.com/mlbuild/mlbuild/internal/seeded"

// rng is the step's seeded source (see internal/seeded) with the helpers
// the generator uses.
type rng struct{ *seeded.Rand }

// streamSynth is the PCG's second seed word ("twainbot" in ASCII), fixed so
// that the seed attribute alone selects the stream.
const streamSynth = 0x747761696e626f74

func newRNG(seed int64) *rng { return &rng{seeded.New(uint64(seed), streamSynth)} }

// streamNoTool ("no tools" in ASCII) is the stream of the conversations
// that need no tool, apart from the tool conversations' so that adding
// them leaves the others' draws alone.
const streamNoTool = 0x6e6f20746f6f6c73

func newNoToolRNG(seed int64) *rng { return &rng{seeded.New(uint64(seed), streamNoTool)} }

// intN returns a uniform integer in [0, n).
func (r *rng) intN(n int) int { return r.IntN(n) }

// chance returns true with probability p (in 1/1000 steps).
func (r *rng) chance(p float64) bool { return r.intN(1000) < int(p*1000) }

// pick returns a uniformly chosen element of xs.
func pick[T any](r *rng, xs []T) T { return xs[r.intN(len(xs))] }

// shuffle permutes xs in place.
func shuffle[T any](r *rng, xs []T) {
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
}

// streamErrors ("tool err" in ASCII) is the stream of the conversations
// whose call the tool answers with an error.
const streamErrors = 0x746f6f6c20657272

func newErrorRNG(seed int64) *rng { return &rng{seeded.New(uint64(seed), streamErrors)} }

// streamSmallTalk ("smalltlk" in ASCII) is the stream of the small-talk
// conversations (smalltalk.go), apart from the other no-tool ones' so that
// small_talk = 0 leaves the output as it was.
const streamSmallTalk = 0x736d616c6c746c6b

func newSmallTalkRNG(seed int64) *rng { return &rng{seeded.New(uint64(seed), streamSmallTalk)} }
