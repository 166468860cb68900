package tensor

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// BenchmarkMatMul reports the GEMM's throughput: a square 512³ product and
// the decode-time GEMV of one token through a 4096×4096 linear layer stored
// [out,in] (transB), in fp32 and with bf16 weights.
func BenchmarkMatMul(b *testing.B) {
	be := NewCPU(0)
	r := newRand(1)
	for _, c := range []struct {
		m, n, k int
		transB  bool
		dt      DType
	}{
		{512, 512, 512, false, F32},
		{1, 4096, 4096, true, F32},
		{1, 4096, 4096, true, BF16},
		{128, 4096, 4096, true, BF16},
	} {
		name := fmt.Sprintf("%dx%dx%d/%s", c.m, c.n, c.k, c.dt)
		b.Run(name, func(b *testing.B) {
			a := be.FromFloat32(randVec(r, c.m*c.k), c.m, c.k)
			br, bc := c.k, c.n
			if c.transB {
				br, bc = c.n, c.k
			}
			w := be.FromFloat32(randVec(r, c.k*c.n), br, bc)
			if c.dt != F32 {
				h := be.Zeros(c.dt, br, bc)
				be.Copy(h, w)
				w = h
			}
			dst := be.Zeros(F32, c.m, c.n)
			b.ResetTimer()
			for b.Loop() {
				be.MatMul(dst, a, w, false, c.transB, 1, 0)
			}
			flops := 2 * float64(c.m) * float64(c.n) * float64(c.k) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// fmaSink keeps the scalar loop's result alive.
var fmaSink float32

// peakLoops are the FMA loops BenchmarkPeakFMA measures: a name, the loop
// (n iterations), and its flops per iteration. gemm_amd64_test.go adds the
// AVX2 and AVX-512 loops.
var peakLoops = []peakLoop{{"go-scalar", scalarFMA, 32}}

// peakLoop is one FMA loop of BenchmarkPeakFMA.
type peakLoop struct {
	name  string
	run   func(n int)
	flops float64
}

// scalarFMA runs 16 independent x = x*m + c chains n times: the rate plain
// Go code (no SIMD) reaches.
func scalarFMA(n int) {
	m, c := float32(0.999999), float32(1e-7)
	var x0, x1, x2, x3, x4, x5, x6, x7 float32 = 1, 2, 3, 4, 5, 6, 7, 8
	var y0, y1, y2, y3, y4, y5, y6, y7 float32 = 1, 2, 3, 4, 5, 6, 7, 8
	for range n {
		x0 = x0*m + c
		x1 = x1*m + c
		x2 = x2*m + c
		x3 = x3*m + c
		x4 = x4*m + c
		x5 = x5*m + c
		x6 = x6*m + c
		x7 = x7*m + c
		y0 = y0*m + c
		y1 = y1*m + c
		y2 = y2*m + c
		y3 = y3*m + c
		y4 = y4*m + c
		y5 = y5*m + c
		y6 = y6*m + c
		y7 = y7*m + c
	}
	fmaMu.Lock()
	fmaSink += x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + y0 + y1 + y2 + y3 + y4 + y5 + y6 + y7
	fmaMu.Unlock()
}

var fmaMu sync.Mutex

// BenchmarkPeakFMA measures the machine's fp32 multiply-add throughput with
// one goroutine per core, the ceiling BenchmarkMatMul is compared against.
func BenchmarkPeakFMA(b *testing.B) {
	const iters = 1 << 20
	workers := runtime.GOMAXPROCS(0)
	for _, l := range peakLoops {
		b.Run(l.name, func(b *testing.B) {
			for b.Loop() {
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() { l.run(iters) })
				}
				wg.Wait()
			}
			flops := l.flops * float64(iters) * float64(workers) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// attnFlops counts the useful multiply-adds (2 flops each) of causal
// attention: per attended (query, key) pair and head, 2·HeadDim for Q·Kᵀ and
// 2·HeadDim for P·V in the forward pass; the backward pass is counted as 2.5
// forwards (dV, dP, dQ, dK and the recomputed scores), FlashAttention's
// convention.
func attnFlops(p AttnParams, backward bool) float64 {
	var pairs float64
	for i := range p.SeqQ {
		s, e := p.keyRange(i)
		if e > s {
			pairs += float64(e - s)
		}
	}
	f := 4 * float64(p.HeadDim) * pairs * float64(p.Batch*p.Heads)
	if backward {
		f *= 3.5
	}
	return f
}

func benchAttn(b *testing.B, p AttnParams, backward bool) {
	be := NewCPU(0)
	r := newRand(3)
	qs := []int{p.Batch * p.SeqQ, p.Heads * p.HeadDim}
	ks := []int{p.Batch * p.KVStride, p.KVHeads * p.HeadDim}
	q := be.FromFloat32(randVec(r, qs[0]*qs[1]), qs...)
	k := be.FromFloat32(randVec(r, ks[0]*ks[1]), ks...)
	v := be.FromFloat32(randVec(r, ks[0]*ks[1]), ks...)
	dout := be.FromFloat32(randVec(r, qs[0]*qs[1]), qs...)
	out, dq := be.Zeros(F32, qs...), be.Zeros(F32, qs...)
	dk, dv := be.Zeros(F32, ks...), be.Zeros(F32, ks...)
	b.ResetTimer()
	for b.Loop() {
		be.Attention(out, q, k, v, p)
		if backward {
			be.AttentionBackward(dq, dk, dv, dout, q, k, v, p)
		}
	}
	b.ReportMetric(attnFlops(p, backward)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkAttentionTrain is one training step's attention (forward and
// backward) of the small llama: batch 8, 256 tokens, 4 heads of 64.
func BenchmarkAttentionTrain(b *testing.B) {
	benchAttn(b, AttnParams{Batch: 8, SeqQ: 256, SeqKV: 256, KVStride: 256, Heads: 4, KVHeads: 4, HeadDim: 64}, true)
}

// BenchmarkAttentionDecode is one generation step (one query) against a long
// KV cache: the small llama (4 heads of 64) and a llama-7B-like GQA layer
// (32 query heads, 8 kv heads of 128).
func BenchmarkAttentionDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		p    AttnParams
	}{
		{"small/kv2048", AttnParams{Batch: 1, SeqQ: 1, SeqKV: 2048, KVStride: 2048, Heads: 4, KVHeads: 4, HeadDim: 64, PosOffset: 2047}},
		{"gqa/kv4096", AttnParams{Batch: 1, SeqQ: 1, SeqKV: 4000, KVStride: 4096, Heads: 32, KVHeads: 8, HeadDim: 128, PosOffset: 3999}},
	} {
		b.Run(c.name, func(b *testing.B) { benchAttn(b, c.p, false) })
	}
}
