package tensor

import (
	"math"
	"sync"
)

// CPU attention with the GEMM micro-kernel and AVX2 element-wise kernels.
//
// Prompts and training (SeqQ > gemvMaxM, attention_packed.go): for each
// block of attnBlockQ query rows of a head, the scores S = Q·Kᵀ over the
// keys any of its rows may see are computed tile by tile with the packed
// micro-kernel (skipping fully masked tiles), turned into masked row
// softmaxes P = softmax(scale·S) in float32 (row sums in float64), and
// multiplied by V. The backward pass recomputes P block by block and forms
// dP = dO·Vᵀ, dS = scale·P⊙(dP − rowsum(P⊙dP)), dQ = dS·K, and accumulates
// dK += dSᵀ·Q and dV += Pᵀ·dO over the query blocks and the query heads
// that share a kv head.
//
// Decoding (a few queries per sequence against a KV cache): per query and
// head, AVX2 dot products against the keys, a softmax and AVX2 axpys of the
// value rows.
//
// Every unit of work (forward: a chunk of queries of one sequence and kv
// head, or one query and head when decoding; backward: one sequence and kv
// head with all its query heads) runs on one goroutine in a fixed order and
// every output element is written by exactly one unit, so results are
// deterministic and do not depend on the number of workers.

// attnBlockQ is the number of query rows processed together.
const attnBlockQ = 64

// attnScratch is one goroutine's working memory.
type attnScratch struct {
	s, dp        []float32 // bq × nk scores / probabilities and dP / dS
	apack, bpack []float32 // packed GEMM operands
	dkAcc, dvAcc []float32 // SeqKV × HeadDim gradient accumulators
	arow         []float32 // decoding output accumulators
	qa           []float32 // packed query (or dO) rows
	kp, vp       kvPack    // packed keys and values
	tile         [gemmMR * gemmNR]float32
}

var attnScratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

// grow returns (*b)[:n], reallocating when it is too short.
func grow(b *[]float32, n int) []float32 {
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	*b = (*b)[:n]
	return *b
}

// blockKeys returns the keys [jlo, jhi) that some query in [i0, i1) attends
// to (jhi <= jlo when none does). keyRange's bounds are nondecreasing in i.
func (p AttnParams) blockKeys(i0, i1 int) (jlo, jhi int) {
	jlo, _ = p.keyRange(i0)
	_, jhi = p.keyRange(i1 - 1)
	return jlo, jhi
}

// f32Src describes float32 data as a GEMM operand whose rows are ld apart.
func f32Src(data []float32, ld int, trans bool) *matSrc {
	return &matSrc{f32: data, dt: F32, cols: ld, trans: trans}
}

// axpyKernel is axpy, or an AVX2 version (attention_amd64.go).
var axpyKernel = axpy

// axpy computes y += a·x.
func axpy(y, x []float32, a float32) {
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		yy := y[i : i+4 : i+4]
		xx := x[i : i+4 : i+4]
		yy[0] += a * xx[0]
		yy[1] += a * xx[1]
		yy[2] += a * xx[2]
		yy[3] += a * xx[3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// expNeg returns e^x for x <= 0 in float32 (Cephes expf: Cody–Waite range
// reduction and a degree-6 polynomial, within about 2 ulp), 0 below the
// smallest normal result.
func expNeg(x float32) float32 {
	if x < -87.3 {
		return 0
	}
	// n = round(x·log2(e)); x <= 0, so truncating t-0.5 rounds to nearest.
	n := int32(x*1.44269504088896341 - 0.5)
	fn := float32(n)
	r := x - fn*0.693359375
	r -= fn * -2.12194440e-4
	q := float32(1.9875691500e-4)
	q = q*r + 1.3981999507e-3
	q = q*r + 8.3334519073e-3
	q = q*r + 4.1665795894e-2
	q = q*r + 1.6666665459e-1
	q = q*r + 5.0000001201e-1
	y := q*r*r + r + 1
	return y * math.Float32frombits(uint32(n+127)<<23)
}

// blockKernel, where the CPU has one, computes a full MR×NR block of c in
// place: c (+)= Σ_p a[p,:]ᵀ b[p,:] over kc packed steps (p ascending), with
// c's rows ldc apart; acc adds to c's contents instead of overwriting them.
var blockKernel func(kc int, a, b, c []float32, ldc int, acc bool)

// The element-wise loops of the softmax and its gradient: portable Go, or
// AVX2 versions (attention_amd64.go).
var (
	maxKernel      = maxGo
	expSubKernel   = expSubGo
	scaleKernel    = scaleGo
	dsoftmaxKernel = dsoftmaxGo
)

// maxGo returns the largest element of a non-empty x.
func maxGo(x []float32) float32 {
	m := x[0]
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// expSubGo sets x[i] = exp((x[i]-m)·scale) (x[i] <= m, scale > 0) and
// returns their sum.
func expSubGo(x []float32, m, scale float32) float64 {
	var sum float64
	for j, v := range x {
		e := expNeg((v - m) * scale)
		x[j] = e
		sum += float64(e)
	}
	return sum
}

// scaleGo multiplies x by s.
func scaleGo(x []float32, s float32) {
	for j := range x {
		x[j] *= s
	}
}

// dsoftmaxGo sets d[i] = s*(p[i]*(d[i]-c)).
func dsoftmaxGo(d, p []float32, c, s float32) {
	p = p[:len(d)]
	for j := range d {
		d[j] = s * (p[j] * (d[j] - c))
	}
}

// softmaxBlock turns scale times the scores of query rows [i0, i0+bq)
// against keys [jlo, jlo+nk) (row-major, nk wide) into probabilities, zero
// for the keys a row does not attend to. A NaN score makes its row NaN.
func softmaxBlock(s []float32, nk int, p AttnParams, i0, bq, jlo int, scale float32) {
	for r := range bq {
		row := s[r*nk : r*nk+nk]
		start, end := p.keyRange(i0 + r)
		start, end = start-jlo, end-jlo
		if start >= end {
			clear(row)
			continue
		}
		clear(row[:start])
		clear(row[end:])
		live := row[start:end]
		sum := expSubKernel(live, maxKernel(live), scale)
		scaleKernel(live, float32(1/sum))
	}
}

// attnDecodeHeads is the most query heads of one kv head that a decoding
// unit processes together, reading each key and value row once for all of
// them. Measured on a 2-core EPYC (32 heads, 8 kv heads of 128, 4000 keys),
// one head per unit was fastest (10 ms against 13 ms with 4 or 8).
const attnDecodeHeads = 1

// attentionDecodeUnit computes the outputs of query i of sequence b for
// query heads [h0, h1), which share one kv head: a dot product per head and
// key, a softmax per head, and an axpy per head and value row, keys
// ascending.
func attentionDecodeUnit(sc *attnScratch, out, q, k, v []float32, p AttnParams, b, i, h0, h1 int) {
	d := p.HeadDim
	qw, kw := p.Heads*d, p.KVHeads*d
	kh := h0 / (p.Heads / p.KVHeads)
	rows := h1 - h0
	q0 := (b*p.SeqQ+i)*qw + h0*d
	o := out[q0 : q0+rows*d]
	start, end := p.keyRange(i)
	if start >= end {
		clear(o)
		return
	}
	nk := end - start
	s := grow(&sc.s, rows*nk)
	for j := range nk {
		r := (b*p.KVStride+start+j)*kw + kh*d
		kr := k[r : r+d]
		for h := range rows {
			s[h*nk+j] = dotKernel(q[q0+h*d:q0+h*d+d], kr)
		}
	}
	scale := float32(1 / math.Sqrt(float64(d)))
	for h := range rows {
		row := s[h*nk : h*nk+nk]
		sum := expSubKernel(row, maxKernel(row), scale)
		scaleKernel(row, float32(1/sum))
	}
	acc := grow(&sc.arow, rows*d)
	clear(acc)
	for j := range nk {
		r := (b*p.KVStride+start+j)*kw + kh*d
		vr := v[r : r+d]
		for h := range rows {
			axpyKernel(acc[h*d:h*d+d], vr, s[h*nk+j])
		}
	}
	copy(o, acc)
}

// attention runs the forward pass on the pool: for a few queries per
// sequence (decoding), one unit per query, sequence and group of up to
// attnDecodeHeads query heads sharing a kv head; otherwise one per sequence,
// kv head and chunk of attnChunkQ queries.
func (c *CPU) attention(out, q, k, v []float32, p AttnParams) {
	if p.SeqQ <= gemvMaxM {
		group := p.Heads / p.KVHeads
		per := ceilDiv(group, attnDecodeHeads) // units per kv head
		n := p.Batch * p.SeqQ * p.KVHeads * per
		c.pool.run(n, grainFor(n, 4*attnDecodeHeads*p.SeqKV*p.HeadDim), func(lo, hi int) {
			sc := attnScratchPool.Get().(*attnScratch)
			defer attnScratchPool.Put(sc)
			for u := lo; u < hi; u++ {
				row, hu := u/(p.KVHeads*per), u%(p.KVHeads*per)
				kh, part := hu/per, hu%per
				h0 := kh*group + part*attnDecodeHeads
				h1 := min((kh+1)*group, h0+attnDecodeHeads)
				attentionDecodeUnit(sc, out, q, k, v, p, row/p.SeqQ, row%p.SeqQ, h0, h1)
			}
		})
		return
	}
	nc := ceilDiv(p.SeqQ, attnChunkQ)
	n := p.Batch * p.KVHeads * nc
	c.pool.run(n, 1, func(lo, hi int) {
		sc := attnScratchPool.Get().(*attnScratch)
		defer attnScratchPool.Put(sc)
		for u := lo; u < hi; u++ {
			c0 := (u % nc) * attnChunkQ
			bk := u / nc
			attentionForwardUnit(sc, out, q, k, v, p, bk/p.KVHeads, bk%p.KVHeads, c0, min(p.SeqQ, c0+attnChunkQ))
		}
	})
}

// attentionBackward runs the backward pass on the pool, one unit per
// (sequence, kv head).
func (c *CPU) attentionBackward(dq, dk, dv, dout, q, k, v []float32, p AttnParams) {
	n := p.Batch * p.KVHeads
	c.pool.run(n, 1, func(lo, hi int) {
		sc := attnScratchPool.Get().(*attnScratch)
		defer attnScratchPool.Put(sc)
		for u := lo; u < hi; u++ {
			attentionBackwardPacked(sc, dq, dk, dv, dout, q, k, v, p, u/p.KVHeads, u%p.KVHeads)
		}
	})
}
