package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// Param is one tensor of the model. Trainable parameters have a gradient
// (and optimizer state, kept by the optimizer).
type Param struct {
	// Name is the tensor's name in the files it is saved to: the Hugging
	// Face name for model weights, PEFT's for adapter matrices.
	Name string
	W    *tensor.Tensor
	// G accumulates the gradient; nil for frozen parameters.
	G *tensor.Tensor
	// Decay marks parameters that get weight decay (matrices; not norms).
	Decay bool
}

func (p *Param) trainable() bool { return p != nil && p.G != nil }

// linear is one projection y = x·Wᵀ (+ LoRA). For Phi-3's fused modules
// a linear is a row range [lo, hi) of the fused weight, and the fused
// module's adapter is shared by its parts (the rows [lo, hi) of B).
type linear struct {
	out, in int
	dense   *Param      // the weight [out, in] or a row view of a fused one
	q       *nf4.Tensor // the frozen 4-bit weight (dense is nil)
	lo, hi  int         // rows of q (and of the adapter's B)
	lora    *loraModule // nil when not adapted
}

// loraModule is the adapter of one (possibly fused) module, with the
// activations of the current micro-batch.
type loraModule struct {
	layer   int
	module  string
	A, B    *Param // [r, in], [out, r]
	scaling float32
	dropout float64

	x *tensor.Tensor // the input of the micro-batch [N, in], before dropout
	// dropSeed is the seed of the micro-batch's dropout mask (Dropout
	// derives the mask from it, forward and backward); dropped tells
	// whether there is one.
	dropSeed uint64
	dropped  bool
	h        *tensor.Tensor // A·x̃ [N, r]
	dh       *tensor.Tensor // [N, r]
}

type block struct {
	inNorm, postNorm *Param
	q, k, v, o       *linear
	gate, up, down   *linear
}

// Model is a llama-family model set up for training: either every weight
// trainable in float32 (pretraining) or a frozen base, its linear layers
// held in NF4, with trainable LoRA adapters (QLoRA).
type Model struct {
	Config *config.Config
	be     tensor.Backend

	embed, norm, lmHead *Param
	layers              []*block
	loras               []*loraModule
	lora                *LoRAConfig

	params  []*Param // trainable, in a fixed order
	scratch *tensor.Tensor
	// dequantized, when not nil, keeps each quantized linear's weight
	// after it is first dequantized (CacheDequantized).
	dequantized map[*linear]*tensor.Tensor
	// recompute is activation checkpointing: a training forward pass keeps
	// each decoder layer's input only, and the backward pass runs the
	// layer forward again (Options.ActivationCheckpointing).
	recompute bool
	invFreq   []float32 // scaled RoPE frequencies (host path); nil for plain RoPE
}

// Backend returns the model's backend.
func (m *Model) Backend() tensor.Backend { return m.be }

// Params returns the trainable parameters in a fixed order.
func (m *Model) Params() []*Param { return m.params }

// NewPretrain builds a model for cfg with every weight trainable, in
// float32, initialised as transformers' LlamaPreTrainedModel does: linear
// and embedding weights from N(0, initStd²), norms to one. The draws come
// from a PCG seeded with seed, in model order.
func NewPretrain(cfg *config.Config, be tensor.Backend, seed uint64, initStd float64) *Model {
	m := &Model{Config: cfg, be: be}
	if cfg.RopeScaling != nil {
		m.invFreq = cfg.InvFreq()
	}
	rng := seeded.New(seed, 0x70726574)
	mk := func(name string, shape ...int) *Param {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		if len(shape) == 1 {
			for i := range data {
				data[i] = 1
			}
		} else {
			for i := range data {
				data[i] = float32(rng.Normal() * initStd)
			}
		}
		p := &Param{Name: name, W: be.FromFloat32(data, shape...), G: be.Zeros(tensor.F32, shape...), Decay: len(shape) > 1}
		m.params = append(m.params, p)
		return p
	}
	h := cfg.HiddenSize
	m.embed = mk(config.EmbedTokens, cfg.VocabSize, h)
	qd, kvd, inter := cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		n := cfg.Layer(i)
		b := &block{}
		b.inNorm = mk(n.InputNorm, h)
		if cfg.FusedQKV {
			qkv := mk(n.QKV, qd+2*kvd, h)
			b.q, b.k, b.v = denseRows(qkv, 0, qd, h), denseRows(qkv, qd, qd+kvd, h), denseRows(qkv, qd+kvd, qd+2*kvd, h)
		} else {
			b.q, b.k, b.v = denseLinear(mk(n.Q, qd, h)), denseLinear(mk(n.K, kvd, h)), denseLinear(mk(n.V, kvd, h))
		}
		b.o = denseLinear(mk(n.O, h, qd))
		b.postNorm = mk(n.PostAttentionNorm, h)
		if cfg.FusedGateUp {
			gu := mk(n.GateUp, 2*inter, h)
			b.gate, b.up = denseRows(gu, 0, inter, h), denseRows(gu, inter, 2*inter, h)
		} else {
			b.gate, b.up = denseLinear(mk(n.Gate, inter, h)), denseLinear(mk(n.Up, inter, h))
		}
		b.down = denseLinear(mk(n.Down, h, inter))
		m.layers = append(m.layers, b)
	}
	m.norm = mk(config.FinalNorm, h)
	if cfg.TieWordEmbeddings {
		m.lmHead = m.embed
	} else {
		m.lmHead = mk(config.LMHead, cfg.VocabSize, h)
	}
	m.setup()
	return m
}

func denseLinear(p *Param) *linear {
	return &linear{out: p.W.Dim(0), in: p.W.Dim(1), dense: p, hi: p.W.Dim(0)}
}

// denseRows is rows [lo, hi) of a fused weight as a linear of its own.
func denseRows(p *Param, lo, hi, in int) *linear {
	v := &Param{Name: p.Name, W: p.W.Rows(lo, hi)}
	if p.G != nil {
		v.G = p.G.Rows(lo, hi)
	}
	return &linear{out: hi - lo, in: in, dense: v, lo: lo, hi: hi}
}

// LoadQLoRA loads the Hugging Face model directory dir as a frozen base
// with every linear layer of the decoder quantized to NF4 (bitsandbytes'
// layout with double quantization; lm_head and the embeddings stay in
// their stored precision, as bitsandbytes leaves them) and adds LoRA
// adapters to the modules lc targets. A's are drawn from
// U(±1/√in) (kaiming-uniform with a=√5, as PEFT) with a PCG seeded with
// seed, in model order; B's are zero.
func LoadQLoRA(dir string, be tensor.Backend, lc LoRAConfig, seed uint64) (*Model, error) {
	if err := lc.Validate(); err != nil {
		return nil, err
	}
	cfg, weights, err := llama.Open(dir, "base model")
	if err != nil {
		return nil, err
	}
	defer weights.Close()
	targets, err := lc.Targets(cfg)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, be: be, lora: &lc}
	if cfg.RopeScaling != nil {
		m.invFreq = cfg.InvFreq()
	}
	var firstErr error
	frozen := func(name string) *Param {
		if firstErr != nil {
			return nil
		}
		t, err := llama.LoadTensor(be, weights, name)
		if err != nil {
			firstErr = err
			return nil
		}
		return &Param{Name: name, W: t}
	}
	quant := func(name string) *nf4.Tensor {
		if firstErr != nil {
			return nil
		}
		v, err := weights.Float32(name)
		if err != nil {
			firstErr = fmt.Errorf("tensor %s: %w", name, err)
			return nil
		}
		info, _ := weights.Info(name)
		return nf4.Quantize(v, info.Shape...)
	}
	rng := seeded.New(seed, 0x6c6f7261)
	adapt := func(layer int, module string, q *nf4.Tensor, parts ...*linear) {
		if !slices.Contains(targets, module) || q == nil {
			return
		}
		out, in := q.Shape[0], q.Shape[1]
		bound := 1 / math.Sqrt(float64(in))
		a := make([]float32, lc.R*in)
		for i := range a {
			a[i] = float32((2*rng.Float64() - 1) * bound)
		}
		lm := &loraModule{
			layer: layer, module: module, scaling: lc.Scaling(), dropout: lc.Dropout,
			A: &Param{Name: AdapterTensorName(layer, module, "A"), W: be.FromFloat32(a, lc.R, in), G: be.Zeros(tensor.F32, lc.R, in)},
			B: &Param{Name: AdapterTensorName(layer, module, "B"), W: be.Zeros(tensor.F32, out, lc.R), G: be.Zeros(tensor.F32, out, lc.R)},
		}
		m.loras = append(m.loras, lm)
		m.params = append(m.params, lm.A, lm.B)
		for _, p := range parts {
			p.lora = lm
		}
	}
	qlin := func(q *nf4.Tensor, lo, hi int) *linear {
		if q == nil {
			return nil
		}
		return &linear{out: hi - lo, in: q.Shape[1], q: q, lo: lo, hi: hi}
	}
	// A module to save is trained in float32 from the base's values.
	trainable := func(p *Param, peftName string) *Param {
		if p == nil {
			return nil
		}
		v := make([]float32, p.W.Len())
		be.Read(p.W, v)
		shape := slices.Clone(p.W.Shape())
		t := &Param{Name: peftName, W: be.FromFloat32(v, shape...), G: be.Zeros(tensor.F32, shape...)}
		m.params = append(m.params, t)
		return t
	}
	saveEmbed, saveHead := slices.Contains(lc.ModulesToSave, EmbedTokensModule), slices.Contains(lc.ModulesToSave, LMHeadModule)
	if cfg.TieWordEmbeddings && saveHead && !saveEmbed {
		return nil, fmt.Errorf("base model %s ties lm_head to embed_tokens: list %q in modules_to_save to train them", dir, EmbedTokensModule)
	}
	m.embed = frozen(config.EmbedTokens)
	if saveEmbed {
		m.embed = trainable(m.embed, adapterEmbedName)
	}
	qd, kvd, inter := cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize
	for i := 0; i < cfg.NumHiddenLayers && firstErr == nil; i++ {
		n := cfg.Layer(i)
		b := &block{inNorm: frozen(n.InputNorm), postNorm: frozen(n.PostAttentionNorm)}
		if cfg.FusedQKV {
			qkv := quant(n.QKV)
			b.q, b.k, b.v = qlin(qkv, 0, qd), qlin(qkv, qd, qd+kvd), qlin(qkv, qd+kvd, qd+2*kvd)
			adapt(i, "qkv_proj", qkv, b.q, b.k, b.v)
		} else {
			q, k, v := quant(n.Q), quant(n.K), quant(n.V)
			b.q, b.k, b.v = qlin(q, 0, qd), qlin(k, 0, kvd), qlin(v, 0, kvd)
			adapt(i, "q_proj", q, b.q)
			adapt(i, "k_proj", k, b.k)
			adapt(i, "v_proj", v, b.v)
		}
		o := quant(n.O)
		b.o = qlin(o, 0, cfg.HiddenSize)
		adapt(i, "o_proj", o, b.o)
		if cfg.FusedGateUp {
			gu := quant(n.GateUp)
			b.gate, b.up = qlin(gu, 0, inter), qlin(gu, inter, 2*inter)
			adapt(i, "gate_up_proj", gu, b.gate, b.up)
		} else {
			g, u := quant(n.Gate), quant(n.Up)
			b.gate, b.up = qlin(g, 0, inter), qlin(u, 0, inter)
			adapt(i, "gate_proj", g, b.gate)
			adapt(i, "up_proj", u, b.up)
		}
		d := quant(n.Down)
		b.down = qlin(d, 0, cfg.HiddenSize)
		adapt(i, "down_proj", d, b.down)
		m.layers = append(m.layers, b)
	}
	m.norm = frozen(config.FinalNorm)
	if cfg.TieWordEmbeddings {
		m.lmHead = m.embed
	} else {
		m.lmHead = frozen(config.LMHead)
		if saveHead {
			m.lmHead = trainable(m.lmHead, adapterLMHeadName)
		}
	}
	if firstErr != nil {
		return nil, fmt.Errorf("cannot load the weights of base model %s: %w", dir, firstErr)
	}
	m.setup()
	return m, nil
}

// setup allocates the dequantization scratch.
func (m *Model) setup() {
	most := 0
	for _, b := range m.layers {
		for _, l := range b.linears() {
			if l.q != nil && l.out*l.in > most {
				most = l.out * l.in
			}
		}
	}
	if most > 0 {
		m.scratch = m.be.Zeros(tensor.F32, most)
	}
}

func (b *block) linears() []*linear {
	return []*linear{b.q, b.k, b.v, b.o, b.gate, b.up, b.down}
}

// weight returns l's weight [out, in] as a tensor: the dense one, or the
// NF4 one dequantized: into the shared scratch (valid until the next
// call), or once into a copy of its own when CacheDequantized is on.
func (m *Model) weight(l *linear) *tensor.Tensor {
	if l.dense != nil {
		return l.dense.W
	}
	if m.dequantized != nil {
		w := m.dequantized[l]
		if w == nil {
			w = m.be.Zeros(tensor.F32, l.out, l.in)
			m.be.DequantizeNF4(w, l.q, l.lo, l.hi)
			m.dequantized[l] = w
		}
		return w
	}
	n := l.out * l.in
	w := m.scratch.Rows(0, n).Reshape(l.out, l.in)
	m.be.DequantizeNF4(w, l.q, l.lo, l.hi)
	return w
}

// CPUDequantizedCacheBytes is the most float32 copies of a base's
// quantized linears that qlora_train keeps on the CPU (CacheDequantized):
// SmolLM2-135M's take 425 MB, a 1B base's 4 GB, more than a laptop spares.
const CPUDequantizedCacheBytes = 1 << 30

// CacheDequantized keeps every quantized linear's float32 weight once it
// is first dequantized, instead of dequantizing it again into the shared
// scratch at every use (twice a step, three times with activation
// checkpointing), when those copies take at most maxBytes; it returns
// their size and whether it keeps them. The weights are the same bits, so
// every result is too; the copies cost 4 bytes a quantized parameter,
// what QLoRA saves, which is why the caller decides (on a CPU, for a base
// small enough that memory is not what limits it; dequantizing is a tenth
// of such a base's training step there).
func (m *Model) CacheDequantized(maxBytes int64) (int64, bool) {
	var bytes int64
	for _, b := range m.layers {
		for _, l := range b.linears() {
			if l.q != nil {
				bytes += 4 * int64(l.out) * int64(l.in)
			}
		}
	}
	if bytes == 0 || bytes > maxBytes {
		return bytes, false
	}
	m.dequantized = map[*linear]*tensor.Tensor{}
	return bytes, true
}

// DenseWeightBytes is the size of one element of the base's dense frozen
// weights (embeddings, lm_head, norms) as the backend holds them.
func (m *Model) DenseWeightBytes() int { return m.embed.W.DType().Size() }

// QuantizedBytes is the memory the NF4 weights hold (packed codes and
// statistics) and the number of parameters they stand for.
func (m *Model) QuantizedBytes() (bytes, params int64) {
	seen := map[*nf4.Tensor]bool{}
	for _, b := range m.layers {
		for _, l := range b.linears() {
			if l.q != nil && !seen[l.q] {
				seen[l.q] = true
				bytes += int64(l.q.Bytes())
				params += int64(l.q.Shape[0] * l.q.Shape[1])
			}
		}
	}
	return bytes, params
}

// NumParams returns the number of parameters of the model and how many are
// trainable.
func (m *Model) NumParams() (total, trainable int64) {
	cfg := m.Config
	for _, s := range cfg.Tensors() {
		n := int64(1)
		for _, d := range s.Shape {
			n *= int64(d)
		}
		total += n
	}
	for _, p := range m.params {
		trainable += int64(p.W.Len())
	}
	return total, trainable
}
