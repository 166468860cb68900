package train

import (
	"slices"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// Batch is one micro-batch: Rows sequences of Len tokens each, right-padded
// (padding carries the label IgnoreIndex). Causal attention already keeps
// every real token from seeing the padding that follows it, so padding
// needs no further mask and never leaks into the loss.
type Batch struct {
	Rows, Len int
	IDs       []int // Rows*Len
	// Targets[r*Len+t] is the label position t is trained to predict (the
	// next token), or IgnoreIndex.
	Targets []int
	// Real is the number of positions that are not padding.
	Real int
}

// Trained counts the positions that enter the loss.
func (b *Batch) Trained() int {
	n := 0
	for _, t := range b.Targets {
		if t != tensor.IgnoreIndex {
			n++
		}
	}
	return n
}

// layerActs are one layer's activations of a micro-batch, kept for the
// backward pass.
type layerActs struct {
	xin, xn1, q, k, v, att, xmid, xn2, gate, up, act *tensor.Tensor
	// rng, with activation checkpointing, is the dropout generator as the
	// layer's forward pass found it; only xin is kept then.
	rng *seeded.Rand
}

// free releases the activations' device memory (a no-op on the CPU,
// whose memory the collector frees), except keep (the embedding output,
// which the pass owns).
func (a layerActs) free(be tensor.Backend, keep *tensor.Tensor) {
	for _, t := range []*tensor.Tensor{a.xin, a.xn1, a.q, a.k, a.v, a.att, a.xmid, a.xn2, a.gate, a.up, a.act} {
		if t != nil && t != keep {
			be.Free(t)
		}
	}
}

// pass is one forward pass kept for its backward pass.
type pass struct {
	b         *Batch
	positions []int
	p         tensor.AttnParams
	x         *tensor.Tensor // embedding output
	layers    []layerActs
	xf        *tensor.Tensor // last layer's output
	// scored are the positions whose logits are computed: those with a
	// label, or nil for every position (see forward).
	scored []int
	// headIn is the LM head's input: the final norm's output at the
	// scored positions (all of them when scored is nil).
	headIn *tensor.Tensor
	// targets are the labels of headIn's rows.
	targets  []int
	logits   *tensor.Tensor
	training bool
}

// headRowQuantum is what the number of rows the LM head runs at is
// rounded up to (scoredPositions), so that a device's allocation cache
// sees a few shapes rather than a new one every micro-batch.
var headRowQuantum = 64

// scoredPositions returns the positions the LM head runs at: those of b
// that have a label, then as many unlabelled ones (the first, repeated)
// as round their number up to a multiple of headRowQuantum; nil when that
// is every position (no gather is needed). A repeated unlabelled row adds
// nothing: its logits are not scored and its gradient is zero.
func scoredPositions(b *Batch) []int {
	rows := make([]int, 0, len(b.Targets))
	filler := -1
	for i, t := range b.Targets {
		if t != tensor.IgnoreIndex {
			rows = append(rows, i)
		} else if filler < 0 {
			filler = i
		}
	}
	padded := (len(rows) + headRowQuantum - 1) / headRowQuantum * headRowQuantum
	if padded >= len(b.Targets) {
		return nil
	}
	for len(rows) < padded {
		rows = append(rows, filler)
	}
	return rows
}

// forward runs the micro-batch through the model and returns the summed
// loss and the number of scored positions. A frozen LM head (QLoRA's)
// runs only at the positions that have a label, unless allLogits
// (Logits): the loss and every gradient are the same, bit for bit, since
// the head's and the cross-entropy's rows are independent and a position
// without a label adds nothing to either. In chat fine-tuning most
// positions (the prompt, the tool's result, padding) have none, and the
// head of a large vocabulary is a fifth of a small model's compute. A
// trained head runs everywhere: its weight gradient sums over positions,
// and fewer rows would group that sum otherwise (the same gradient to
// rounding, not to the bit, so earlier results would not reproduce).
// With training, activations are
// kept for backward (with activation checkpointing, m.recompute, only each
// layer's input) and LoRA dropout is drawn from a PCG seeded with
// dropoutSeed.
func (m *Model) forward(b *Batch, training, allLogits bool, dropoutSeed uint64) (*pass, float64, int) {
	cfg, be := m.Config, m.be
	n, h := b.Rows*b.Len, cfg.HiddenSize
	eps := float32(cfg.RMSNormEps)
	ps := &pass{b: b, training: training, positions: make([]int, n)}
	for i := range ps.positions {
		ps.positions[i] = i % b.Len
	}
	ps.p = tensor.AttnParams{
		Batch: b.Rows, SeqQ: b.Len, SeqKV: b.Len, KVStride: b.Len,
		Heads: cfg.NumAttentionHeads, KVHeads: cfg.NumKeyValueHeads, HeadDim: cfg.HeadDim,
		Window: cfg.SlidingWindow,
	}
	var rng *seeded.Rand
	if training {
		rng = seeded.New(dropoutSeed, 0x64726f70)
	}
	x := be.Zeros(tensor.F32, n, h)
	be.Embedding(x, m.embed.W, b.IDs)
	ps.x = x
	for _, l := range m.layers {
		var layerRng *seeded.Rand
		if training && m.recompute {
			layerRng = rng.Clone() // the draws this layer's dropout makes
		}
		a, out := m.layerForward(l, x, ps, rng)
		switch {
		case !training:
			a.free(be, ps.x)
		case m.recompute:
			// Activation checkpointing: keep the layer's input and its
			// dropout's generator; the backward pass computes the rest again.
			a.free(be, x)
			ps.layers = append(ps.layers, layerActs{xin: x, rng: layerRng})
		default:
			ps.layers = append(ps.layers, a)
		}
		x = out
	}
	ps.xf = x
	normed := be.Zeros(tensor.F32, n, h)
	be.RMSNorm(normed, x, m.norm.W, eps)
	ps.headIn, ps.targets = normed, b.Targets
	if !allLogits && !m.lmHead.trainable() {
		ps.scored = scoredPositions(b)
	}
	if ps.scored != nil {
		// Gather the scored rows (an embedding lookup with normed as
		// the table); the backward pass scatters their gradient back.
		ps.headIn = be.Zeros(tensor.F32, len(ps.scored), h)
		if len(ps.scored) > 0 {
			be.Embedding(ps.headIn, normed, ps.scored)
		}
		be.Free(normed)
		ps.targets = make([]int, len(ps.scored))
		for i, r := range ps.scored {
			ps.targets[i] = b.Targets[r]
		}
	}
	rows := ps.headIn.Dim(0)
	ps.logits = be.Zeros(tensor.F32, rows, cfg.VocabSize)
	if rows == 0 {
		return ps, 0, 0
	}
	be.MatMul(ps.logits, ps.headIn, m.lmHead.W, false, true, 1, 0)
	sum, count := be.CrossEntropy(ps.logits, ps.targets)
	return ps, sum, count
}

// layerForward runs decoder layer l on x and returns its activations and
// its output (a new tensor; x is not changed).
func (m *Model) layerForward(l *block, x *tensor.Tensor, ps *pass, rng *seeded.Rand) (layerActs, *tensor.Tensor) {
	cfg, be := m.Config, m.be
	n, h := ps.b.Rows*ps.b.Len, cfg.HiddenSize
	qd, kvd, inter := cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize
	eps := float32(cfg.RMSNormEps)
	a := layerActs{xin: x}
	a.xn1 = be.Zeros(tensor.F32, n, h)
	be.RMSNorm(a.xn1, x, l.inNorm.W, eps)
	a.q = be.Zeros(tensor.F32, n, qd)
	a.k = be.Zeros(tensor.F32, n, kvd)
	a.v = be.Zeros(tensor.F32, n, kvd)
	m.project(a.xn1, []*linear{l.q, l.k, l.v}, []*tensor.Tensor{a.q, a.k, a.v}, 0, rng)
	m.rope(a.q, ps.positions, cfg.NumAttentionHeads, 1)
	m.rope(a.k, ps.positions, cfg.NumKeyValueHeads, 1)
	a.att = be.Zeros(tensor.F32, n, qd)
	be.Attention(a.att, a.q, a.k, a.v, ps.p)
	a.xmid = be.Zeros(tensor.F32, n, h)
	be.Copy(a.xmid, x)
	m.project(a.att, []*linear{l.o}, []*tensor.Tensor{a.xmid}, 1, rng)
	a.xn2 = be.Zeros(tensor.F32, n, h)
	be.RMSNorm(a.xn2, a.xmid, l.postNorm.W, eps)
	a.gate = be.Zeros(tensor.F32, n, inter)
	a.up = be.Zeros(tensor.F32, n, inter)
	m.project(a.xn2, []*linear{l.gate, l.up}, []*tensor.Tensor{a.gate, a.up}, 0, rng)
	a.act = be.Zeros(tensor.F32, n, inter)
	be.SwiGLU(a.act, a.gate, a.up)
	out := be.Zeros(tensor.F32, n, h)
	be.Copy(out, a.xmid)
	m.project(a.act, []*linear{l.down}, []*tensor.Tensor{out}, 1, rng)
	return a, out
}

// project computes ys[i] = x·Wᵢᵀ (+ beta·ys[i]) plus each adapter's
// scaling·(dropout(x)·Aᵀ)·Bᵢᵀ. The linears share the input x; linears of
// one fused module share its adapter, whose A·x is computed once.
func (m *Model) project(x *tensor.Tensor, ls []*linear, ys []*tensor.Tensor, beta float32, rng *seeded.Rand) {
	be := m.be
	var done []*loraModule
	for i, l := range ls {
		be.MatMul(ys[i], x, m.weight(l), false, true, 1, beta)
		lm := l.lora
		if lm == nil {
			continue
		}
		if !slices.Contains(done, lm) {
			done = append(done, lm)
			// Only the mask's seed is kept for the backward pass, which
			// applies the mask again to x (kept by the caller).
			lm.x, lm.dropped = x, false
			in := x
			if rng != nil && lm.dropout > 0 {
				lm.dropSeed, lm.dropped = rng.Uint64(), true
				in = be.Zeros(tensor.F32, x.Shape()...)
				be.Dropout(in, x, float32(lm.dropout), lm.dropSeed)
			}
			if lm.h != nil {
				be.Free(lm.h) // an evaluation's, never read by a backward pass
			}
			lm.h = be.Zeros(tensor.F32, x.Dim(0), lm.A.W.Dim(0))
			be.MatMul(lm.h, in, lm.A.W, false, true, 1, 0)
			if in != x {
				be.Free(in)
			}
		}
		be.MatMul(ys[i], lm.h, lm.B.W.Rows(l.lo, l.hi), false, true, lm.scaling, 1)
	}
}

// projectBackward is project's backward pass: dx (beta 0 overwrites,
// 1 accumulates) gets Σ dyᵢ·Wᵢ plus the adapters' contributions, trainable
// dense weights accumulate dyᵢᵀ·x, adapters accumulate dA and dB.
func (m *Model) projectBackward(dx *tensor.Tensor, beta float32, x *tensor.Tensor, ls []*linear, dys []*tensor.Tensor) {
	be := m.be
	var mods []*loraModule
	for i, l := range ls {
		w := m.weight(l)
		be.MatMul(dx, dys[i], w, false, false, 1, beta)
		beta = 1
		if l.dense.trainable() {
			be.MatMul(l.dense.G, dys[i], x, true, false, 1, 1)
		}
		lm := l.lora
		if lm == nil {
			continue
		}
		if !slices.Contains(mods, lm) {
			mods = append(mods, lm)
			lm.dh = be.Zeros(tensor.F32, x.Dim(0), lm.A.W.Dim(0))
		}
		// y += s·h·B_lᵀ  =>  dB_l += s·dyᵀ·h,  dh += s·dy·B_l.
		be.MatMul(lm.B.G.Rows(l.lo, l.hi), dys[i], lm.h, true, false, lm.scaling, 1)
		be.MatMul(lm.dh, dys[i], lm.B.W.Rows(l.lo, l.hi), false, false, lm.scaling, 1)
	}
	for _, lm := range mods {
		// h = x̃·Aᵀ  =>  dA += dhᵀ·x̃,  dx̃ = dh·A,  dx += mask ⊙ dx̃.
		in := lm.x
		p := float32(lm.dropout)
		if lm.dropped {
			in = be.Zeros(tensor.F32, x.Shape()...)
			be.Dropout(in, lm.x, p, lm.dropSeed)
		}
		be.MatMul(lm.A.G, lm.dh, in, true, false, 1, 1)
		if !lm.dropped {
			be.MatMul(dx, lm.dh, lm.A.W, false, false, 1, 1)
		} else {
			be.Free(in)
			t := be.Zeros(tensor.F32, x.Shape()...)
			be.MatMul(t, lm.dh, lm.A.W, false, false, 1, 0)
			be.Dropout(t, t, p, lm.dropSeed)
			be.Add(dx, dx, t)
			be.Free(t)
		}
		be.Free(lm.h)
		be.Free(lm.dh)
		lm.x, lm.dropped, lm.h, lm.dh = nil, false, nil, nil
	}
}

// backward accumulates the gradients of scale·(summed loss of ps) into
// the trainable parameters.
func (m *Model) backward(ps *pass, scale float32) {
	cfg, be := m.Config, m.be
	n, h := ps.b.Rows*ps.b.Len, cfg.HiddenSize
	qd, kvd, inter := cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize
	eps := float32(cfg.RMSNormEps)

	// Every activation is freed as soon as the backward pass is done with
	// it (Backend.Free: device memory is released now, not when the
	// collector runs; a no-op on the CPU).
	dnormed := be.Zeros(tensor.F32, n, h)
	if rows := ps.headIn.Dim(0); rows > 0 {
		dlogits := be.Zeros(tensor.F32, rows, cfg.VocabSize)
		be.CrossEntropyBackward(dlogits, ps.logits, ps.targets, scale)
		be.Free(ps.logits)
		dhead := dnormed
		if ps.scored != nil {
			dhead = be.Zeros(tensor.F32, rows, h)
		}
		be.MatMul(dhead, dlogits, m.lmHead.W, false, false, 1, 0)
		if m.lmHead.trainable() {
			be.MatMul(m.lmHead.G, dlogits, ps.headIn, true, false, 1, 1)
		}
		be.Free(dlogits)
		if ps.scored != nil {
			be.EmbeddingBackward(dnormed, dhead, ps.scored) // scatter; a repeated filler row adds zeros
			be.Free(dhead)
		}
	} else {
		be.Free(ps.logits)
	}
	be.Free(ps.headIn)
	ps.logits, ps.headIn = nil, nil
	dx := be.Zeros(tensor.F32, n, h)
	be.RMSNormBackward(dx, gradOf(m.norm), dnormed, ps.xf, m.norm.W, eps)
	be.Free(dnormed)

	tmp := be.Zeros(tensor.F32, n, h)
	dact := be.Zeros(tensor.F32, n, inter)
	dgate := be.Zeros(tensor.F32, n, inter)
	dup := be.Zeros(tensor.F32, n, inter)
	datt := be.Zeros(tensor.F32, n, qd)
	dq := be.Zeros(tensor.F32, n, qd)
	dk := be.Zeros(tensor.F32, n, kvd)
	dv := be.Zeros(tensor.F32, n, kvd)
	for li := len(m.layers) - 1; li >= 0; li-- {
		l, a := m.layers[li], ps.layers[li]
		if a.xn1 == nil {
			// Checkpointed: the layer's forward pass again, with the same
			// dropout draws, gives the same activations bit for bit.
			var out *tensor.Tensor
			a, out = m.layerForward(l, a.xin, ps, a.rng)
			be.Free(out)
		}
		// out = xmid + down(act): dx flows to xmid unchanged.
		m.projectBackward(dact, 0, a.act, []*linear{l.down}, []*tensor.Tensor{dx})
		be.SwiGLUBackward(dgate, dup, dact, a.gate, a.up)
		m.projectBackward(tmp, 0, a.xn2, []*linear{l.gate, l.up}, []*tensor.Tensor{dgate, dup})
		dxn := tmp
		tmp2 := be.Zeros(tensor.F32, n, h)
		be.RMSNormBackward(tmp2, gradOf(l.postNorm), dxn, a.xmid, l.postNorm.W, eps)
		be.Add(dx, dx, tmp2)
		// xmid = xin + o(att).
		m.projectBackward(datt, 0, a.att, []*linear{l.o}, []*tensor.Tensor{dx})
		be.AttentionBackward(dq, dk, dv, datt, a.q, a.k, a.v, ps.p)
		m.rope(dq, ps.positions, cfg.NumAttentionHeads, -1)
		m.rope(dk, ps.positions, cfg.NumKeyValueHeads, -1)
		m.projectBackward(tmp, 0, a.xn1, []*linear{l.q, l.k, l.v}, []*tensor.Tensor{dq, dk, dv})
		be.RMSNormBackward(tmp2, gradOf(l.inNorm), tmp, a.xin, l.inNorm.W, eps)
		be.Add(dx, dx, tmp2)
		be.Free(tmp2)
		// a.xin is the previous layer's output (or the embedding output,
		// freed below), which no earlier layer's backward reads.
		a.free(be, ps.x)
		if li == len(m.layers)-1 {
			be.Free(ps.xf) // the last layer's output
		}
		ps.layers[li] = layerActs{}
	}
	if m.embed.trainable() {
		be.EmbeddingBackward(m.embed.G, dx, ps.b.IDs)
	}
	for _, t := range []*tensor.Tensor{tmp, dact, dgate, dup, datt, dq, dk, dv, dx, ps.x} {
		be.Free(t)
	}
	ps.x, ps.xf = nil, nil
}

func gradOf(p *Param) *tensor.Tensor {
	if p.trainable() {
		return p.G
	}
	return nil
}

// rope rotates t [n, heads*HeadDim] in place by the positions' angles
// (sign 1) or back (sign -1, the backward pass): on the backend for plain
// RoPE, with the config's scaled frequencies otherwise.
func (m *Model) rope(t *tensor.Tensor, positions []int, heads int, sign float64) {
	hd := m.Config.HeadDim
	switch {
	case m.invFreq != nil:
		tensor.RoPEWithFreqs(m.be, t, positions, heads, hd, m.invFreq, sign < 0)
	case sign > 0:
		m.be.RoPE(t, t, positions, heads, hd, m.Config.RopeTheta)
	default:
		m.be.RoPEBackward(t, t, positions, heads, hd, m.Config.RopeTheta)
	}
}
