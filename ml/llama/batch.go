package llama

import (
	"context"
	"fmt"
	"sync"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// Batcher runs several generations on one Model at once, from as many
// goroutines: each calls Batcher.Generate, and the decoding steps of the
// generations under way are run together, up to MaxDecodeBatch tokens per
// Model.Decode, so that the weights are read once for all of them. Every
// generation gets exactly the tokens Model.Generate gives it alone: the
// batching changes only the speed. On a backend that is not
// tensor.RowStable (the CUDA backend: cuBLAS picks its algorithm by
// shape) the steps are run one sequence at a time, so that a generation
// never depends on which others ran beside it.
//
//	b := llama.NewBatcher(m)
//	var wg sync.WaitGroup
//	for i, p := range prompts {
//		wg.Add(1)
//		go func() {
//			defer wg.Done()
//			out[i], errs[i] = b.Generate(ctx, p, opts, nil)
//		}()
//	}
//	wg.Wait()
//
// A batch runs when every generation under way has asked for its next
// step, so a generation's emit callback should not wait on another
// generation.
type Batcher struct {
	m       *Model
	mu      sync.Mutex
	cond    *sync.Cond
	active  int        // generations under way
	waiting []*stepReq // steps asked for and not yet run
	busy    bool       // a goroutine is running a batch
}

// stepReq is one generation's next step: its prompt (a prefill) or its
// last token.
type stepReq struct {
	cache   *Cache
	ids     []int
	prefill bool
	logits  []float32
	err     error
	done    bool
}

// NewBatcher returns a Batcher for m. While it is in use, m must not be
// used directly.
func NewBatcher(m *Model) *Batcher {
	b := &Batcher{m: m}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Generate is Model.Generate, safe for concurrent use, with its decoding
// steps batched with those of the other generations under way.
func (b *Batcher) Generate(ctx context.Context, prompt []int, opts GenOptions, emit func(id int) error) ([]int, error) {
	b.mu.Lock()
	b.active++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.active--
		b.cond.Broadcast() // the others may now be all that is under way
		b.mu.Unlock()
	}()
	return generate(ctx, b.m, prompt, opts, emit, func(c *Cache, ids []int, prefill bool) ([]float32, error) {
		return b.step(&stepReq{cache: c, ids: ids, prefill: prefill})
	})
}

// step queues r and waits for it to run. The goroutine that finds every
// generation's step queued and no batch running runs the queue.
func (b *Batcher) step(r *stepReq) ([]float32, error) {
	b.mu.Lock()
	b.waiting = append(b.waiting, r)
	b.cond.Broadcast()
	for !r.done {
		if b.busy || len(b.waiting) < b.active {
			b.cond.Wait()
			continue
		}
		batch := b.waiting
		b.waiting, b.busy = nil, true
		b.mu.Unlock()
		b.runBatch(batch)
		b.mu.Lock()
	}
	b.mu.Unlock()
	return r.logits, r.err
}

// runBatch runs batch and marks its steps done. Should the model panic
// (a bug), the batch's other steps fail with that panic's message, so
// that no generation waits forever, and the panic goes on up this
// goroutine.
func (b *Batcher) runBatch(batch []*stepReq) {
	defer func() {
		p := recover()
		b.mu.Lock()
		for _, r := range batch {
			if !r.done && p != nil {
				r.err = fmt.Errorf("llama: a batched step failed: %v", p)
			}
			r.done = true
		}
		b.busy = false
		b.cond.Broadcast()
		b.mu.Unlock()
		if p != nil {
			panic(p)
		}
	}()
	b.run(batch)
}

// run runs a batch: the prefills one by one, then the single tokens in
// groups of up to decodeRows. A device error fails the steps it hit.
func (b *Batcher) run(batch []*stepReq) {
	var decode []*stepReq
	for _, r := range batch {
		if !r.prefill {
			decode = append(decode, r)
			continue
		}
		if err := tensor.CatchDeviceError(func() { r.logits, r.err = b.m.Forward(r.cache, r.ids, false) }); err != nil {
			r.err = err
		}
	}
	vocab, rows := b.m.Config.VocabSize, b.m.decodeRows()
	for lo := 0; lo < len(decode); lo += rows {
		group := decode[lo:min(lo+rows, len(decode))]
		caches, ids := make([]*Cache, len(group)), make([]int, len(group))
		for i, r := range group {
			caches[i], ids[i] = r.cache, r.ids[0]
		}
		var logits []float32
		var derr error
		err := tensor.CatchDeviceError(func() { logits, derr = b.m.Decode(caches, ids) })
		if err == nil {
			err = derr
		}
		for i, r := range group {
			if err != nil {
				r.err = err
				continue
			}
			r.logits = logits[i*vocab : (i+1)*vocab]
		}
	}
}
