package tensor

import (
	"fmt"
	"math"
	"testing"
)

// The scalar attention kernels the CPU backend used before the blocked ones
// in attention.go: one query row at a time, scores and softmax in float64.
// Run in float64 they are a second, independent reference for the blocked
// kernels on shapes too large for the finite-difference checks.

// attentionRows computes output rows for the (sequence, query, head) triples
// with flat index in [lo,hi), index = (b*SeqQ+i)*Heads + h. scores is
// scratch of at least SeqKV elements.
func attentionRows[T float](out, q, k, v []T, p AttnParams, scores []float64, lo, hi int) {
	qw := p.Heads * p.HeadDim
	kw := p.KVHeads * p.HeadDim
	group := p.Heads / p.KVHeads
	d := p.HeadDim
	for idx := lo; idx < hi; idx++ {
		h := idx % p.Heads
		row := idx / p.Heads
		b, i := row/p.SeqQ, row%p.SeqQ
		kh := h / group
		qv := q[row*qw+h*d : row*qw+h*d+d]
		start, end := p.keyRange(i)
		o := out[row*qw+h*d : row*qw+h*d+d]
		for t := range o {
			o[t] = 0
		}
		if start >= end {
			continue
		}
		probs(scores, qv, k, p, b, kh, start, end)
		for j := start; j < end; j++ {
			pj := T(scores[j])
			vr := (b*p.KVStride + j) * kw
			vv := v[vr+kh*d : vr+kh*d+d]
			for t := range o {
				o[t] += pj * vv[t]
			}
		}
	}
}

// attentionBackwardKV computes, for the key/value rows of sequence b and kv
// head kh, their gradients: dk, dv rows [0,SeqKV) for that head. It
// recomputes the attention probabilities. The loop order (queries ascending,
// then heads of the group ascending) is fixed.
func attentionBackwardKV[T float](dk, dv, dout, q, k, v []T, p AttnParams, b, kh int, scores []float64) {
	qw := p.Heads * p.HeadDim
	kw := p.KVHeads * p.HeadDim
	group := p.Heads / p.KVHeads
	d := p.HeadDim
	for j := range p.KVStride {
		r := (b*p.KVStride + j) * kw
		for t := range d {
			dk[r+kh*d+t] = 0
			dv[r+kh*d+t] = 0
		}
	}
	for i := range p.SeqQ {
		row := b*p.SeqQ + i
		for h := kh * group; h < (kh+1)*group; h++ {
			start, end := p.keyRange(i)
			if start >= end {
				continue
			}
			probs(scores, q[row*qw+h*d:row*qw+h*d+d], k, p, b, kh, start, end)
			do := dout[row*qw+h*d : row*qw+h*d+d]
			qv := q[row*qw+h*d : row*qw+h*d+d]
			// dP_j = do·v_j ; dS_j = P_j (dP_j - Σ P dP)
			var sum float64
			for j := start; j < end; j++ {
				vr := (b*p.KVStride + j) * kw
				var dp float64
				for t := range d {
					dp += float64(do[t]) * float64(v[vr+kh*d+t])
				}
				sum += scores[j] * dp
			}
			scale := 1 / math.Sqrt(float64(d))
			for j := start; j < end; j++ {
				r := (b*p.KVStride + j) * kw
				var dp float64
				for t := range d {
					dp += float64(do[t]) * float64(v[r+kh*d+t])
				}
				pj := scores[j]
				ds := pj * (dp - sum) * scale
				for t := range d {
					dv[r+kh*d+t] += T(pj) * do[t]
					dk[r+kh*d+t] += T(ds) * qv[t]
				}
			}
		}
	}
}

// attentionBackwardQRows writes dq for flat (row, head) indices [lo,hi).
func attentionBackwardQRows[T float](dq, dout, q, k, v []T, p AttnParams, scores []float64, lo, hi int) {
	qw := p.Heads * p.HeadDim
	kw := p.KVHeads * p.HeadDim
	group := p.Heads / p.KVHeads
	d := p.HeadDim
	scale := 1 / math.Sqrt(float64(d))
	acc := make([]float64, d)
	dpsBuf := make([]float64, p.SeqKV)
	for idx := lo; idx < hi; idx++ {
		h := idx % p.Heads
		row := idx / p.Heads
		b, i := row/p.SeqQ, row%p.SeqQ
		kh := h / group
		dqv := dq[row*qw+h*d : row*qw+h*d+d]
		for t := range acc {
			acc[t] = 0
		}
		start, end := p.keyRange(i)
		if start < end {
			probs(scores, q[row*qw+h*d:row*qw+h*d+d], k, p, b, kh, start, end)
			do := dout[row*qw+h*d : row*qw+h*d+d]
			dps := dpsBuf[:end]
			var sum float64
			for j := start; j < end; j++ {
				vr := (b*p.KVStride + j) * kw
				var dp float64
				for t := range d {
					dp += float64(do[t]) * float64(v[vr+kh*d+t])
				}
				dps[j] = dp
				sum += scores[j] * dp
			}
			for j := start; j < end; j++ {
				ds := scores[j] * (dps[j] - sum) * scale
				kr := (b*p.KVStride + j) * kw
				for t := range d {
					acc[t] += ds * float64(k[kr+kh*d+t])
				}
			}
		}
		for t := range dqv {
			dqv[t] = T(acc[t])
		}
	}
}

// probs fills scores[start:end] with the softmax probabilities of query qv
// against keys of head kh in sequence b; the forward and backward passes
// both use it, so they see the same probabilities bit for bit.
func probs[T float](scores []float64, qv, k []T, p AttnParams, b, kh, start, end int) {
	kw := p.KVHeads * p.HeadDim
	d := p.HeadDim
	scale := 1 / math.Sqrt(float64(d))
	mx := math.Inf(-1)
	for j := start; j < end; j++ {
		kr := (b*p.KVStride + j) * kw
		kv := k[kr+kh*d : kr+kh*d+d]
		var s T
		for t := range qv {
			s += qv[t] * kv[t]
		}
		sc := float64(s) * scale
		scores[j] = sc
		mx = max(mx, sc)
	}
	var sum float64
	for j := start; j < end; j++ {
		e := math.Exp(scores[j] - mx)
		scores[j] = e
		sum += e
	}
	for j := start; j < end; j++ {
		scores[j] /= sum
	}
}

// refAttentionRows runs the scalar forward kernel in float64.
func refAttentionRows(q, k, v []float64, p AttnParams) []float64 {
	out := make([]float64, len(q))
	attentionRows(out, q, k, v, p, make([]float64, p.SeqKV), 0, p.Batch*p.SeqQ*p.Heads)
	return out
}

// refAttentionBackward runs the scalar kernels in float64.
func refAttentionBackward(dout, q, k, v []float64, p AttnParams) (dq, dk, dv []float64) {
	dq, dk, dv = make([]float64, len(q)), make([]float64, len(k)), make([]float64, len(v))
	scores := make([]float64, p.SeqKV)
	for b := range p.Batch {
		for kh := range p.KVHeads {
			attentionBackwardKV(dk, dv, dout, q, k, v, p, b, kh, scores)
		}
	}
	attentionBackwardQRows(dq, dout, q, k, v, p, scores, 0, p.Batch*p.SeqQ*p.Heads)
	return dq, dk, dv
}

// attnLargeCases cross query-block and GEMM-panel boundaries, with head
// sizes that are not multiples of the micro-kernel's tile.
var attnLargeCases = []AttnParams{
	{Batch: 2, SeqQ: 150, SeqKV: 150, KVStride: 150, Heads: 4, KVHeads: 2, HeadDim: 64},
	{Batch: 2, SeqQ: 70, SeqKV: 75, KVStride: 80, Heads: 3, KVHeads: 1, HeadDim: 20, PosOffset: 5},
	{Batch: 1, SeqQ: 130, SeqKV: 130, KVStride: 133, Heads: 2, KVHeads: 2, HeadDim: 36, Window: 50},
	{Batch: 1, SeqQ: 3, SeqKV: 300, KVStride: 310, Heads: 4, KVHeads: 2, HeadDim: 40, PosOffset: 297}, // short chunk, long cache
	{Batch: 2, SeqQ: 1, SeqKV: 200, KVStride: 256, Heads: 8, KVHeads: 2, HeadDim: 32, PosOffset: 199, Window: 64},
	{Batch: 1, SeqQ: 40, SeqKV: 10, KVStride: 10, Heads: 1, KVHeads: 1, HeadDim: 8, Window: 4}, // rows past the cache see no key
}

// TestAttentionLarge compares the blocked kernels with the float64
// references on larger shapes.
func TestAttentionLarge(t *testing.T) {
	be := cpu7
	r := newRand(31)
	for _, p := range attnLargeCases {
		name := fmt.Sprintf("%+v", p)
		qs := []int{p.Batch * p.SeqQ, p.Heads * p.HeadDim}
		ks := []int{p.Batch * p.KVStride, p.KVHeads * p.HeadDim}
		q, k, v, dout := randVec(r, qs[0]*qs[1]), randVec(r, ks[0]*ks[1]), randVec(r, ks[0]*ks[1]), randVec(r, qs[0]*qs[1])
		for i := range q {
			q[i] *= 3 // sharper softmaxes
		}
		qt, kt, vt := be.FromFloat32(q, qs...), be.FromFloat32(k, ks...), be.FromFloat32(v, ks...)
		out := be.FromFloat32(randVec(r, len(q)), qs...)
		be.Attention(out, qt, kt, vt, p)
		near(t, "Attention "+name, read(be, out), refAttention(f64(q), f64(k), f64(v), p), 2e-5)
		// The scalar kernel also pins the rows that see no key to zero,
		// where refAttention's softmax over no scores gives NaN (which near
		// accepts whatever the output).
		near(t, "Attention (scalar kernel) "+name, read(be, out), refAttentionRows(f64(q), f64(k), f64(v), p), 2e-5)
		dq, dk, dv := be.FromFloat32(randVec(r, len(q)), qs...), be.FromFloat32(randVec(r, len(k)), ks...), be.FromFloat32(randVec(r, len(k)), ks...)
		be.AttentionBackward(dq, dk, dv, be.FromFloat32(dout, qs...), qt, kt, vt, p)
		wq, wk, wv := refAttentionBackward(f64(dout), f64(q), f64(k), f64(v), p)
		near(t, "dq "+name, read(be, dq), wq, 2e-5)
		near(t, "dk "+name, read(be, dk), wk, 2e-5)
		near(t, "dv "+name, read(be, dv), wv, 2e-5)
	}
}

// TestAttentionPortable reruns the attention tests with the portable Go
// kernels, which CPUs without AVX2/FMA use.
func TestAttentionPortable(t *testing.T) {
	mk, dk, bk, ax := microKernel, dotKernel, blockKernel, axpyKernel
	mx, ex, sc, ds := maxKernel, expSubKernel, scaleKernel, dsoftmaxKernel
	defer func() {
		microKernel, dotKernel, blockKernel, axpyKernel = mk, dk, bk, ax
		maxKernel, expSubKernel, scaleKernel, dsoftmaxKernel = mx, ex, sc, ds
	}()
	microKernel, dotKernel, blockKernel, axpyKernel = kernelGo, dot, nil, axpy
	maxKernel, expSubKernel, scaleKernel, dsoftmaxKernel = maxGo, expSubGo, scaleGo, dsoftmaxGo
	TestAttention(t)
	TestAttentionBackward(t)
	TestAttentionLarge(t)
	TestAttentionNaN(t)
}

func TestExpNeg(t *testing.T) {
	for x := float32(-100); x <= 0; x += 0.0137 {
		got, want := float64(expNeg(x)), math.Exp(float64(x))
		if x < -87.3 {
			// Flushed to zero short of the float32 subnormals.
			if got > 1.3e-38 {
				t.Fatalf("expNeg(%g) = %g, want ~0", x, got)
			}
			continue
		}
		if math.Abs(got-want) > 3e-7*want {
			t.Fatalf("expNeg(%g) = %g, want %g", x, got, want)
		}
	}
	if expNeg(0) != 1 {
		t.Fatalf("expNeg(0) = %g", expNeg(0))
	}
}

// TestAttentionNaN checks that a NaN input reaches the outputs that depend
// on it (so that a diverging run is noticed) and no others.
func TestAttentionNaN(t *testing.T) {
	be := cpu7
	r := newRand(41)
	p := AttnParams{Batch: 1, SeqQ: 20, SeqKV: 20, KVStride: 20, Heads: 2, KVHeads: 1, HeadDim: 16}
	q := randVec(r, p.SeqQ*p.Heads*p.HeadDim)
	k := randVec(r, p.SeqKV*p.HeadDim)
	v := randVec(r, len(k))
	k[10*p.HeadDim+3] = float32(math.NaN()) // key 10
	out := be.Zeros(F32, p.SeqQ, p.Heads*p.HeadDim)
	be.Attention(out, be.FromFloat32(q, p.SeqQ, p.Heads*p.HeadDim), be.FromFloat32(k, p.SeqKV, p.HeadDim), be.FromFloat32(v, p.SeqKV, p.HeadDim), p)
	o := read(be, out)
	for i := range p.SeqQ {
		nan := math.IsNaN(float64(o[i*p.Heads*p.HeadDim]))
		if nan != (i >= 10) {
			t.Fatalf("query %d: output NaN = %v", i, nan)
		}
	}
}
