package llama

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// GenOptions control Generate.
type GenOptions struct {
	// MaxTokens is the most tokens to generate (not counting the prompt);
	// it must be positive.
	MaxTokens int
	// Temperature divides the logits before sampling; 0 (or less) is
	// greedy decoding: the highest logit, ties to the lowest id.
	Temperature float64
	// TopK keeps only the K most likely tokens before sampling (0: all).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches TopP (0 or 1: all).
	TopP float64
	// Seed seeds the sampler's PCG generator: the same seed, options,
	// prompt and model give the same tokens.
	Seed uint64
	// StopTokens end generation when sampled (typically the EOS ids). The
	// stop token is neither emitted nor returned.
	StopTokens []int
}

// ErrStop may be returned by an emit callback to end generation early
// without an error (for example when the text reached a stop string).
var ErrStop = errors.New("llama: stop")

// Sampler picks the next token from logits with a fixed procedure, so that
// a seed reproduces a generation exactly:
//
//  1. Temperature <= 0 or TopK == 1: the argmax, ties to the lowest id.
//  2. Otherwise the ids are ordered by logit, descending (ties by
//     ascending id); the first TopK are kept when TopK > 0; probabilities
//     are the float64 softmax of logit/Temperature over the kept ids; when
//     0 < TopP < 1 the shortest prefix whose cumulative probability
//     reaches TopP is kept; one uniform draw u in [0,1) from the PCG picks
//     the first id whose cumulative probability exceeds u times the kept
//     total.
type Sampler struct {
	opts GenOptions
	rng  *rand.Rand
	idx  []int
	prob []float64
}

// NewSampler returns a sampler for opts' Temperature, TopK, TopP and Seed.
func NewSampler(opts GenOptions) *Sampler {
	return &Sampler{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x6d6c6275696c64))}
}

// Argmax returns the index of the largest value, the lowest on ties (NaN
// values are never chosen unless all are NaN).
func Argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] || math.IsNaN(float64(logits[best])) && !math.IsNaN(float64(v)) {
			best = i
		}
	}
	return best
}

// Sample returns the next token id.
func (s *Sampler) Sample(logits []float32) int {
	o := s.opts
	if o.Temperature <= 0 || o.TopK == 1 {
		return Argmax(logits)
	}
	idx := s.idx[:0]
	for i := range logits {
		idx = append(idx, i)
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		la, lb := logits[a], logits[b]
		switch {
		case la > lb:
			return -1
		case la < lb:
			return 1
		}
		return 0
	})
	if o.TopK > 0 && o.TopK < len(idx) {
		idx = idx[:o.TopK]
	}
	prob := s.prob[:0]
	top := float64(logits[idx[0]]) / o.Temperature
	total := 0.0
	for _, id := range idx {
		p := math.Exp(float64(logits[id])/o.Temperature - top)
		prob = append(prob, p)
		total += p
	}
	if o.TopP > 0 && o.TopP < 1 {
		cum := 0.0
		for i, p := range prob {
			cum += p
			if cum >= o.TopP*total {
				prob, idx = prob[:i+1], idx[:i+1]
				break
			}
		}
		total = 0
		for _, p := range prob {
			total += p
		}
	}
	s.idx, s.prob = idx, prob
	u := s.rng.Float64() * total
	cum := 0.0
	for i, p := range prob {
		cum += p
		if cum > u {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}

// Generate continues prompt (token ids) with up to opts.MaxTokens tokens:
// it prefills the prompt into a fresh KV cache, then decodes one token at a
// time, calling emit with each generated token as soon as it is chosen. It
// stops at MaxTokens, at a stop token, when emit returns ErrStop, or when
// ctx is done, and returns the generated ids (emitted ones only). An emit
// error other than ErrStop is returned with the ids so far.
func (m *Model) Generate(ctx context.Context, prompt []int, opts GenOptions, emit func(id int) error) ([]int, error) {
	return generate(ctx, m, prompt, opts, emit, func(c *Cache, ids []int, _ bool) ([]float32, error) {
		return m.Forward(c, ids, false)
	})
}

// generate is Generate with the model's steps run by step: the prompt
// (prefill true), then one token at a time; step returns the logits of
// the last position.
func generate(ctx context.Context, m *Model, prompt []int, opts GenOptions, emit func(id int) error,
	step func(c *Cache, ids []int, prefill bool) ([]float32, error)) ([]int, error) {
	if len(prompt) == 0 {
		return nil, errors.New("llama: generation needs a prompt of at least one token (such as BOS)")
	}
	if opts.MaxTokens <= 0 {
		return nil, fmt.Errorf("llama: max tokens %d must be positive", opts.MaxTokens)
	}
	if opts.TopK < 0 || math.IsNaN(opts.Temperature) || !(opts.TopP >= 0 && opts.TopP <= 1) {
		return nil, fmt.Errorf("llama: invalid sampling options (temperature %g, top-k %d, top-p %g)", opts.Temperature, opts.TopK, opts.TopP)
	}
	// The last generated token is never fed back, hence the -1.
	cache, err := m.NewCache(len(prompt) + opts.MaxTokens - 1)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}
	defer cache.Free(m.be)
	stop := make(map[int]bool, len(opts.StopTokens))
	for _, id := range opts.StopTokens {
		stop[id] = true
	}
	sampler := NewSampler(opts)
	var out []int
	logits, err := step(cache, prompt, true)
	for err == nil {
		if err = ctx.Err(); err != nil {
			break
		}
		id := sampler.Sample(logits)
		if stop[id] {
			break
		}
		out = append(out, id)
		if emit != nil {
			if err = emit(id); err != nil {
				break
			}
		}
		if len(out) == opts.MaxTokens {
			break
		}
		logits, err = step(cache, []int{id}, false)
	}
	if errors.Is(err, ErrStop) {
		err = nil
	}
	return out, err
}
