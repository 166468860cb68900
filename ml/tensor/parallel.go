package tensor

import (
	"runtime"
	"sync/atomic"
)

// workerPool runs index ranges on up to workers goroutines: the caller
// and workers-1 helpers. A helper that finishes a run waits for the next
// one for a short while, spinning, before it exits (the next run starts
// another): a training or decoding step is a long sequence of operations
// with short gaps between them, and a parked thread takes longer to wake
// than most of those operations take to run. Nothing is left running
// once the pool has been idle for that while.
type workerPool struct {
	workers int
	live    atomic.Int32            // helpers running or waiting for work
	gen     atomic.Uint64           // runs published
	cur     atomic.Pointer[poolJob] // the last run published
}

// poolJob is one run: its chunks, claimed in order by whoever is free.
type poolJob struct {
	fn       func(lo, hi int)
	n, grain int
	chunks   int64
	next     atomic.Int64
	active   atomic.Int32 // helpers inside work
}

// work claims and runs chunks until none are left.
func (j *poolJob) work() {
	for {
		c := j.next.Add(1) - 1
		if c >= j.chunks {
			return
		}
		lo := int(c) * j.grain
		j.fn(lo, min(j.n, lo+j.grain))
	}
}

// helperSpin is how many times a helper polls for the next run
// (runtime.Gosched between polls, some tens of microseconds in all)
// before it exits.
const helperSpin = 200

// helper works on job and on the runs published after it, until none
// comes for helperSpin polls.
func (p *workerPool) helper(job *poolJob, seen uint64) {
	defer p.live.Add(-1)
	for {
		job.active.Add(1)
		job.work()
		job.active.Add(-1)
		spins := 0
		for p.gen.Load() == seen {
			if spins++; spins > helperSpin {
				return
			}
			runtime.Gosched()
		}
		seen = p.gen.Load()
		job = p.cur.Load()
	}
}

// run calls fn on consecutive chunks [lo,hi) of [0,n), each grain long (the
// last may be shorter). Chunk boundaries depend only on n and grain, never on
// the number of workers, which only decides how many chunks run at once.
// It returns when every chunk has run. Runs may be nested or concurrent: a
// caller runs its own chunks whether or not helpers join it.
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
	job := &poolJob{fn: fn, n: n, grain: grain, chunks: int64(chunks)}
	p.cur.Store(job)
	seen := p.gen.Add(1)
	for {
		l := p.live.Load()
		if int(l) >= w-1 {
			break
		}
		if p.live.CompareAndSwap(l, l+1) {
			go p.helper(job, seen)
		}
	}
	job.work()
	// Every chunk is claimed; wait for the helpers still running one. A
	// helper counts itself active before it claims, so one that claimed a
	// chunk is counted by now.
	for job.active.Load() != 0 {
		runtime.Gosched()
	}
}

// grainFor picks a chunk length for n items of roughly cost work units each
// so that a chunk holds at least ~32k units; it depends only on n and cost.
func grainFor(n, cost int) int {
	const target = 1 << 15
	g := target / max(cost, 1)
	return max(1, min(g, n))
}
