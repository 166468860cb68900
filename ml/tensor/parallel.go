package tensor

import (
	"sync"
	"sync/atomic"
)

// workerPool runs index ranges on up to workers goroutines.
type workerPool struct {
	workers int
}

// run calls fn on consecutive chunks [lo,hi) of [0,n), each grain long (the
// last may be shorter). Chunk boundaries depend only on n and grain, never on
// the number of workers, which only decides how many chunks run at once.
func (p *workerPool) run(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := (n + grain - 1) / grain
	w := min(p.workers, chunks)
	if w <= 1 {
		for c := range chunks {
			fn(c*grain, min(n, (c+1)*grain))
		}
		return
	}
	var next atomic.Int64
	work := func() {
		for {
			c := int(next.Add(1) - 1)
			if c >= chunks {
				return
			}
			fn(c*grain, min(n, (c+1)*grain))
		}
	}
	// The caller is one of the w workers.
	var wg sync.WaitGroup
	for range w - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// grainFor picks a chunk length for n items of roughly cost work units each
// so that a chunk holds at least ~32k units; it depends only on n and cost.
func grainFor(n, cost int) int {
	const target = 1 << 15
	g := target / max(cost, 1)
	return max(1, min(g, n))
}
