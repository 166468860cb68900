// Package llama runs llama-family causal language models (LlamaForCausalLM,
// MistralForCausalLM, Phi3ForCausalLM) from a Hugging Face model directory
// on a tensor.Backend: the forward pass with a key/value cache, and token
// generation (greedy or sampled with temperature, top-k and top-p).
//
// The forward pass follows transformers' modeling_llama: RMSNorm computed in
// float32 with the weight applied after; RoPE in rotate_half layout with
// rope_theta (and "llama3" frequency scaling); grouped-query attention by
// repeating key/value heads; the SwiGLU MLP down(silu(gate(x))·up(x)); Phi-3's
// fused qkv_proj split as q, k, v and gate_up_proj as gate, up; lm_head
// shared with the embedding when tie_word_embeddings is set. Activations are
// float32; weights stay in their stored dtype (F32, BF16 or F16) and are
// widened inside the backend's operations.
package llama

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// Model is a loaded model. Its weights are read-only, so one Model may serve
// several Caches, but a Backend operation sequence is not synchronised:
// use a Model from one goroutine at a time.
type Model struct {
	Config *config.Config
	be     tensor.Backend

	embed  *tensor.Tensor // [V, H]
	norm   *tensor.Tensor // [H]
	lmHead *tensor.Tensor // [V, H]; embed when tied
	layers []layer

	invFreq []float32 // non-nil when RoPE needs frequency scaling (host path)
}

type layer struct {
	inNorm, postNorm *tensor.Tensor
	q, k, v, o       *tensor.Tensor // [out, in]; views of qkv_proj for Phi-3
	gate, up, down   *tensor.Tensor // views of gate_up_proj for Phi-3
}

// Backend returns the backend holding the weights.
func (m *Model) Backend() tensor.Backend { return m.be }

// Load reads the model in the Hugging Face directory dir (config.json and
// model.safetensors or a sharded set with its index) onto be. Errors are one
// sentence naming the directory: a missing directory or config, an
// unsupported architecture, weights that do not match the config, or a
// damaged file.
func Load(dir string, be tensor.Backend) (*Model, error) {
	cfg, weights, err := Open(dir, "model")
	if err != nil {
		return nil, err
	}
	defer weights.Close()
	m := &Model{Config: cfg, be: be}
	if cfg.RopeScaling != nil {
		m.invFreq = cfg.InvFreq()
	}
	var errs []error
	load := func(name string) *tensor.Tensor {
		t, err := LoadTensor(be, weights, name)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	m.embed = load(config.EmbedTokens)
	m.norm = load(config.FinalNorm)
	if cfg.TieWordEmbeddings {
		m.lmHead = m.embed
	} else {
		m.lmHead = load(config.LMHead)
	}
	qd, kvd, inter := cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize
	for i := 0; i < cfg.NumHiddenLayers && len(errs) == 0; i++ {
		n := cfg.Layer(i)
		var l layer
		l.inNorm = load(n.InputNorm)
		l.postNorm = load(n.PostAttentionNorm)
		l.o = load(n.O)
		l.down = load(n.Down)
		if cfg.FusedQKV {
			if qkv := load(n.QKV); qkv != nil {
				l.q, l.k, l.v = qkv.Rows(0, qd), qkv.Rows(qd, qd+kvd), qkv.Rows(qd+kvd, qd+2*kvd)
			}
		} else {
			l.q, l.k, l.v = load(n.Q), load(n.K), load(n.V)
		}
		if cfg.FusedGateUp {
			if gu := load(n.GateUp); gu != nil {
				l.gate, l.up = gu.Rows(0, inter), gu.Rows(inter, 2*inter)
			}
		} else {
			l.gate, l.up = load(n.Gate), load(n.Up)
		}
		m.layers = append(m.layers, l)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("cannot load the weights of model %s: %w", dir, errs[0])
	}
	m.prepack()
	return m, nil
}

// PrepackBytes is the most float32 memory Load spends on the CPU packing
// a model's matrices once (tensor.CPU.Prepack) instead of in every
// product of a prompt: SmolLM2-135M's take 540 MB, a 1B model's 5 GB.
const PrepackBytes = 1 << 30

// prepack packs the projections and the LM head once, on the CPU, when
// that takes at most PrepackBytes; prompts' products then skip packing
// them (a sixth of an eval's time on SmolLM2), with the same bits.
func (m *Model) prepack() {
	cpu, ok := m.be.(*tensor.CPU)
	if !ok {
		return
	}
	ws := []*tensor.Tensor{m.lmHead}
	for _, l := range m.layers {
		ws = append(ws, l.q, l.k, l.v, l.o, l.gate, l.up, l.down)
	}
	var bytes int64
	for _, w := range ws {
		bytes += 4 * int64(w.Len())
	}
	if bytes > PrepackBytes {
		return
	}
	for _, w := range ws {
		cpu.Prepack(w)
	}
}

// Open reads the Hugging Face model directory dir: its config.json, and
// its safetensors weights (one file or a sharded set), checked against the
// config. what names the directory in errors ("model", "base model"); each
// is one sentence naming it: a missing directory or config, an unsupported
// architecture, weights that do not match the config, or a damaged file.
// The caller closes the weights.
func Open(dir, what string) (*config.Config, *safetensors.Model, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s directory %s does not exist", what, dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", what, dir, err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("%s %s is not a directory (want a Hugging Face model directory with config.json and safetensors weights)", what, dir)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load %s %s: %w", what, dir, err)
	}
	weights, err := safetensors.OpenModel(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot load the weights of %s %s: %w", what, dir, err)
	}
	if err := cfg.CheckTensors(weights); err != nil {
		weights.Close()
		return nil, nil, fmt.Errorf("cannot load %s %s: %w", what, dir, err)
	}
	return cfg, weights, nil
}

// LoadTensor copies the named tensor of weights onto be in its stored
// dtype (F32, BF16 or F16; others are refused by name).
func LoadTensor(be tensor.Backend, weights *safetensors.Model, name string) (*tensor.Tensor, error) {
	info, _ := weights.Info(name)
	raw, err := weights.Raw(name)
	if err != nil {
		return nil, err
	}
	var dt tensor.DType
	switch info.DType {
	case safetensors.F32:
		dt = tensor.F32
	case safetensors.BF16:
		dt = tensor.BF16
	case safetensors.F16:
		dt = tensor.F16
	default:
		return nil, fmt.Errorf("tensor %s has unsupported dtype %s", name, info.DType)
	}
	t, err := be.FromRaw(dt, raw, info.Shape...)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", name, err)
	}
	return t, nil
}

// Cache is the key/value cache of one sequence: the keys and values of
// every layer for the tokens processed so far.
type Cache struct {
	k, v []*tensor.Tensor // per layer [Max, KVDim]
	len  int
	max  int
}

// Len is the number of tokens in the cache.
func (c *Cache) Len() int { return c.len }

// Cap is the number of tokens the cache can hold.
func (c *Cache) Cap() int { return c.max }

// Reset empties the cache for a new sequence.
func (c *Cache) Reset() { c.len = 0 }

// NewCache allocates a cache for a sequence of up to maxTokens tokens
// (prompt and generated). It refuses contexts the model cannot run (beyond
// max_position_embeddings or a sliding attention window).
func (m *Model) NewCache(maxTokens int) (*Cache, error) {
	if err := m.Config.Check(maxTokens); err != nil {
		return nil, err
	}
	c := &Cache{max: maxTokens}
	kvd := m.Config.KVDim()
	for range m.layers {
		c.k = append(c.k, m.be.Zeros(tensor.F32, maxTokens, kvd))
		c.v = append(c.v, m.be.Zeros(tensor.F32, maxTokens, kvd))
	}
	return c, nil
}

// Free releases the cache's backend memory.
func (c *Cache) Free(be tensor.Backend) {
	for i := range c.k {
		be.Free(c.k[i])
		be.Free(c.v[i])
	}
	c.k, c.v = nil, nil
}

// Forward runs ids (token positions Len() .. Len()+len(ids)-1) through the
// model, appending their keys and values to the cache, and returns the
// logits of the last position ([VocabSize]) or, with all, of every
// position ([len(ids)*VocabSize], row-major).
func (m *Model) Forward(c *Cache, ids []int, all bool) ([]float32, error) {
	cfg := m.Config
	n := len(ids)
	switch {
	case n == 0:
		return nil, errors.New("llama: Forward needs at least one token")
	case c.len+n > c.max:
		return nil, fmt.Errorf("llama: %d tokens exceed the cache's capacity of %d (%d already used)", n, c.max, c.len)
	}
	if err := m.checkIDs(ids); err != nil {
		return nil, err
	}
	be := m.be
	h, qd, inter := cfg.HiddenSize, cfg.QDim(), cfg.IntermediateSize
	pos0 := c.len
	positions := make([]int, n)
	for i := range positions {
		positions[i] = pos0 + i
	}
	eps := float32(cfg.RMSNormEps)

	x := be.Zeros(tensor.F32, n, h)
	xn := be.Zeros(tensor.F32, n, h)
	q := be.Zeros(tensor.F32, n, qd)
	att := be.Zeros(tensor.F32, n, qd)
	gate := be.Zeros(tensor.F32, n, inter)
	up := be.Zeros(tensor.F32, n, inter)
	scratch := []*tensor.Tensor{x, xn, q, att, gate, up}
	defer func() {
		for _, t := range scratch {
			be.Free(t)
		}
	}()

	be.Embedding(x, m.embed, ids)
	p := m.attnParams(c, n)
	for li, l := range m.layers {
		be.RMSNorm(xn, x, l.inNorm, eps)
		k := c.k[li].Rows(pos0, pos0+n)
		v := c.v[li].Rows(pos0, pos0+n)
		be.MatMul(q, xn, l.q, false, true, 1, 0)
		be.MatMul(k, xn, l.k, false, true, 1, 0)
		be.MatMul(v, xn, l.v, false, true, 1, 0)
		m.rope(q, positions, cfg.NumAttentionHeads)
		m.rope(k, positions, cfg.NumKeyValueHeads)
		be.Attention(att, q, c.k[li], c.v[li], p)
		m.finishLayer(l, x, xn, att, gate, up)
	}
	c.len += n

	rows := x
	if !all {
		rows = x.Rows(n-1, n)
	}
	r := rows.Dim(0)
	normed := xn.Rows(0, r)
	be.RMSNorm(normed, rows, m.norm, eps)
	logits := be.Zeros(tensor.F32, r, cfg.VocabSize)
	scratch = append(scratch, logits)
	be.MatMul(logits, normed, m.lmHead, false, true, 1, 0)
	out := make([]float32, r*cfg.VocabSize)
	be.Read(logits, out)
	return out, nil
}

// checkIDs refuses token ids outside the vocabulary.
func (m *Model) checkIDs(ids []int) error {
	for _, id := range ids {
		if id < 0 || id >= m.Config.VocabSize {
			return fmt.Errorf("llama: token id %d is outside the vocabulary of %d tokens", id, m.Config.VocabSize)
		}
	}
	return nil
}

// attnParams describes attention for n new tokens of one sequence whose
// keys and values are already in c (c.len counts the earlier ones).
func (m *Model) attnParams(c *Cache, n int) tensor.AttnParams {
	cfg := m.Config
	return tensor.AttnParams{
		Batch: 1, SeqQ: n, SeqKV: c.len + n, KVStride: c.max,
		Heads: cfg.NumAttentionHeads, KVHeads: cfg.NumKeyValueHeads, HeadDim: cfg.HeadDim,
		PosOffset: c.len,
	}
}

// finishLayer ends a decoder layer once att holds the attention output:
// x += o(att), then x += down(SwiGLU(gate(norm x), up(norm x))); xn, gate
// and up are scratch of x's rows.
func (m *Model) finishLayer(l layer, x, xn, att, gate, up *tensor.Tensor) {
	be := m.be
	be.MatMul(x, att, l.o, false, true, 1, 1)
	be.RMSNorm(xn, x, l.postNorm, float32(m.Config.RMSNormEps))
	be.MatMul(gate, xn, l.gate, false, true, 1, 0)
	be.MatMul(up, xn, l.up, false, true, 1, 0)
	be.SwiGLU(gate, gate, up)
	be.MatMul(x, gate, l.down, false, true, 1, 1)
}

// rope rotates t [n, heads*HeadDim] in place: on the backend for plain
// RoPE, with the config's scaled inverse frequencies otherwise.
func (m *Model) rope(t *tensor.Tensor, positions []int, heads int) {
	if m.invFreq == nil {
		m.be.RoPE(t, t, positions, heads, m.Config.HeadDim, m.Config.RopeTheta)
		return
	}
	tensor.RoPEWithFreqs(m.be, t, positions, heads, m.Config.HeadDim, m.invFreq, false)
}

// MaxDecodeBatch is the most sequences Decode takes at once.
const MaxDecodeBatch = 4

// decodeRows is how many sequences Decode can take at once and still give
// each exactly the logits it gets alone: as many as the backend's matrix
// products keep row by row (tensor.RowStable), else one.
func (m *Model) decodeRows() int {
	if rs, ok := m.be.(tensor.RowStable); ok {
		return max(1, min(MaxDecodeBatch, rs.RowStableRows()))
	}
	return 1
}

// Decode runs one token for each of up to MaxDecodeBatch sequences at
// once: ids[i] at position caches[i].Len(), appended to caches[i]. It
// returns the logits of every sequence ([len(ids)*VocabSize], row-major).
// The weights are read once for the whole batch, which is what decoding
// is bound by on a CPU. On a tensor.RowStable backend (the CPU's) and up
// to its RowStableRows sequences, each sequence's logits are bit for bit
// what Forward(caches[i], ids[i:i+1], false) gives; elsewhere they agree
// to rounding.
func (m *Model) Decode(caches []*Cache, ids []int) ([]float32, error) {
	cfg := m.Config
	b := len(ids)
	switch {
	case b == 0 || b > MaxDecodeBatch:
		return nil, fmt.Errorf("llama: Decode takes 1 to %d sequences, not %d", MaxDecodeBatch, b)
	case len(caches) != b:
		return nil, fmt.Errorf("llama: Decode got %d caches for %d tokens", len(caches), b)
	}
	positions := make([]int, b)
	for i, c := range caches {
		if c.len+1 > c.max {
			return nil, fmt.Errorf("llama: sequence %d is full (%d tokens)", i, c.max)
		}
		if slices.Contains(caches[:i], c) {
			return nil, fmt.Errorf("llama: Decode got sequence %d's cache twice", i)
		}
		positions[i] = c.len
	}
	if err := m.checkIDs(ids); err != nil {
		return nil, err
	}
	be := m.be
	h, qd, kvd, inter := cfg.HiddenSize, cfg.QDim(), cfg.KVDim(), cfg.IntermediateSize
	eps := float32(cfg.RMSNormEps)

	x := be.Zeros(tensor.F32, b, h)
	xn := be.Zeros(tensor.F32, b, h)
	q := be.Zeros(tensor.F32, b, qd)
	k := be.Zeros(tensor.F32, b, kvd)
	v := be.Zeros(tensor.F32, b, kvd)
	att := be.Zeros(tensor.F32, b, qd)
	gate := be.Zeros(tensor.F32, b, inter)
	up := be.Zeros(tensor.F32, b, inter)
	logits := be.Zeros(tensor.F32, b, cfg.VocabSize)
	defer func() {
		for _, t := range []*tensor.Tensor{x, xn, q, k, v, att, gate, up, logits} {
			be.Free(t)
		}
	}()

	be.Embedding(x, m.embed, ids)
	for li, l := range m.layers {
		be.RMSNorm(xn, x, l.inNorm, eps)
		be.MatMul(q, xn, l.q, false, true, 1, 0)
		be.MatMul(k, xn, l.k, false, true, 1, 0)
		be.MatMul(v, xn, l.v, false, true, 1, 0)
		m.rope(q, positions, cfg.NumAttentionHeads)
		m.rope(k, positions, cfg.NumKeyValueHeads)
		for i, c := range caches {
			pos := positions[i]
			be.Copy(c.k[li].Rows(pos, pos+1), k.Rows(i, i+1))
			be.Copy(c.v[li].Rows(pos, pos+1), v.Rows(i, i+1))
			be.Attention(att.Rows(i, i+1), q.Rows(i, i+1), c.k[li], c.v[li], m.attnParams(c, 1))
		}
		m.finishLayer(l, x, xn, att, gate, up)
	}
	for _, c := range caches {
		c.len++
	}
	be.RMSNorm(xn, x, m.norm, eps)
	be.MatMul(logits, xn, m.lmHead, false, true, 1, 0)
	out := make([]float32, b*cfg.VocabSize)
	be.Read(logits, out)
	return out, nil
}
