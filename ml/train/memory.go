package train

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dustin/go-humanize"

	"github.com/mlbuild/mlbuild/ml/config"
)

// PlanOptions describe the training run a memory plan is for.
type PlanOptions struct {
	// Rows and SeqLen are the micro-batch: sequences and their length.
	Rows, SeqLen int
	// WeightBytes is the size of one element of the base's dense weights
	// (embeddings, lm_head, norms) as stored: 2 for bf16 or fp16, 4 for
	// float32.
	WeightBytes int
	// ActivationCheckpointing plans for Options.ActivationCheckpointing.
	ActivationCheckpointing bool
	// WidenGEMM plans for a device whose matrix products widen a 16-bit
	// operand into a float32 copy first (the CUDA backend's cuBLASLt
	// path): the lm_head's copy then exists during its products.
	WidenGEMM bool
	// Workspace is memory the device's GEMM keeps (cuBLASLt's workspace).
	Workspace int64
}

// MemoryPlan is the device memory a QLoRA training run holds at its
// peak, by what holds it, in bytes.
type MemoryPlan struct {
	// Weights is the frozen base: NF4 codes and statistics of the
	// quantized linears, dense weights in their stored precision, and the
	// float32 scratch one linear is dequantized into.
	Weights int64
	// Adapter is the trainable parameters and their gradients (float32).
	Adapter int64
	// Optimizer is AdamW's two moments per trainable parameter.
	Optimizer int64
	// Activations is the largest amount a micro-batch's forward and
	// backward passes hold at once: kept activations, gradients of
	// activations, logits, per-operation scratch.
	Activations int64
	// Workspace is PlanOptions.Workspace.
	Workspace int64
	// Total is the sum: the peak.
	Total int64
	// Checkpointing says whether the plan is for activation checkpointing.
	Checkpointing bool
}

// String is the plan in one line, in binary units.
func (p MemoryPlan) String() string {
	g := func(b int64) string { return humanize.IBytes(uint64(max(b, 0))) }
	ck := "without"
	if p.Checkpointing {
		ck = "with"
	}
	return fmt.Sprintf("%s (%s activation checkpointing): base %s, adapter %s, optimizer %s, activations %s, workspace %s",
		g(p.Total), ck, g(p.Weights), g(p.Adapter), g(p.Optimizer), g(p.Activations), g(p.Workspace))
}

// nf4Bytes is what NF4 with double quantization holds on a device for n
// elements: packed codes, one 8-bit absmax per 64, one float32 per 256 of
// those, each an allocation rounded up to 16 bytes (as the CUDA backend
// allocates).
func nf4Bytes(n int64) int64 {
	blocks := (n + 63) / 64
	return round16((n+1)/2) + round16(blocks) + round16(4*((blocks+255)/256))
}

func round16(b int64) int64 { return (b + 15) &^ 15 }

// PlanQLoRAMemory plans the device memory of training a QLoRA adapter of
// lc on a base of cfg (LoadQLoRA's model, Train's loop), without running
// anything: it follows the allocations of the forward and backward passes
// (forward.go) and takes the largest of the moments where they peak (the
// logits, their gradient, the top layer's backward). A test holds it to
// the CUDA backend's measured peak on small models. Modules to save are
// not planned (an error).
func PlanQLoRAMemory(cfg *config.Config, lc LoRAConfig, o PlanOptions) (MemoryPlan, error) {
	if len(lc.ModulesToSave) > 0 {
		return MemoryPlan{}, fmt.Errorf("memory plan: modules_to_save are not planned")
	}
	if o.Rows <= 0 || o.SeqLen <= 0 || (o.WeightBytes != 2 && o.WeightBytes != 4) {
		return MemoryPlan{}, fmt.Errorf("memory plan: rows %d, seq_len %d, weight bytes %d", o.Rows, o.SeqLen, o.WeightBytes)
	}
	targets, err := lc.Targets(cfg)
	if err != nil {
		return MemoryPlan{}, err
	}
	const f = 4 // float32
	h, qd, kvd, inter := int64(cfg.HiddenSize), int64(cfg.QDim()), int64(cfg.KVDim()), int64(cfg.IntermediateSize)
	v, layers, r := int64(cfg.VocabSize), int64(cfg.NumHiddenLayers), int64(lc.R)
	n := int64(o.Rows * o.SeqLen)
	wb := int64(o.WeightBytes)
	p := MemoryPlan{Workspace: o.Workspace, Checkpointing: o.ActivationCheckpointing}

	// The base, per layer: its linears' NF4 (one tensor per stored matrix)
	// and the adapters of the targeted modules (out×in: A is r×in, B out×r).
	type mod struct {
		name    string
		out, in int64
	}
	var mods []mod
	if cfg.FusedQKV {
		mods = append(mods, mod{"qkv_proj", qd + 2*kvd, h})
	} else {
		mods = append(mods, mod{"q_proj", qd, h}, mod{"k_proj", kvd, h}, mod{"v_proj", kvd, h})
	}
	mods = append(mods, mod{"o_proj", h, qd})
	if cfg.FusedGateUp {
		mods = append(mods, mod{"gate_up_proj", 2 * inter, h})
	} else {
		mods = append(mods, mod{"gate_proj", inter, h}, mod{"up_proj", inter, h})
	}
	mods = append(mods, mod{"down_proj", h, inter})
	var largest, adapted, loraParams int64
	isAdapted := map[string]bool{}
	for _, m := range mods {
		p.Weights += layers * nf4Bytes(m.out*m.in)
		if slices.Contains(targets, m.name) {
			isAdapted[m.name] = true
			adapted++
			loraParams += r*m.in + m.out*r
		}
	}
	// The scratch holds one linear dequantized: a part of a fused matrix
	// (q, k, v of qkv_proj; gate, up of gate_up_proj) is its own linear.
	largest = max(qd*h, inter*h)
	dense := v*h + (2*layers+1)*h // embed_tokens and the norms
	if !cfg.TieWordEmbeddings {
		dense += v * h
	}
	p.Weights += dense*wb + largest*f + (16+256)*f // + the dequantization scratch and the NF4 tables
	p.Adapter = 2 * layers * loraParams * f
	p.Optimizer = 2 * layers * loraParams * f

	// A layer's kept activations (layerActs without its input), its
	// output, and the adapters' x·Aᵀ (r wide, one per adapted module).
	acts := (3*h + 2*qd + 2*kvd + 3*inter) * n * f
	out := h * n * f
	lmh := adapted * r * n * f
	stack := layers * (acts + out + lmh)
	if o.ActivationCheckpointing {
		stack = layers * (out + lmh)
	}
	x := h * n * f // the embedding output
	// The head runs only at labelled positions (forward), but a plan
	// holds for any data: every position may have a label.
	logits := v * n * f
	widen := int64(0)
	if o.WidenGEMM && wb != f {
		widen = v * h * f
	}
	// The top layer's backward, at each of its moments: the gradient
	// buffers (dx, tmp, dact, dgate, dup, datt, dq, dk, dv) and the layer
	// computed again when checkpointing, plus what each projection's
	// backward holds (every adapter's dh of the call, one dropout copy of
	// its input) or the attention backward's scratch (its output, the
	// log-sum-exps and deltas), with tmp2 from the o projection on.
	grads := (2*h + 3*inter + 2*qd + 2*kvd) * n * f
	dh := r * n * f
	group := func(in int64, names ...string) int64 {
		var k, drop int64
		for _, name := range names {
			if isAdapted[name] {
				k++
				if lc.Dropout > 0 {
					drop = in * n * f
				}
			}
		}
		return k*dh + drop
	}
	tmp2 := h * n * f
	// Each projection's backward frees its adapters' x·Aᵀ at its end.
	gone := func(names ...string) int64 {
		var k int64
		for _, name := range names {
			if isAdapted[name] {
				k++
			}
		}
		return k * dh
	}
	down, gu, op := gone("down_proj"), gone("gate_proj", "up_proj", "gate_up_proj"), gone("o_proj")
	qkv, gateUp := group(h, "q_proj", "k_proj", "v_proj", "qkv_proj"), group(h, "gate_proj", "up_proj", "gate_up_proj")
	moment := max(group(inter, "down_proj"), gateUp-down, tmp2+group(qd, "o_proj")-down-gu,
		tmp2+(qd+2*int64(cfg.NumAttentionHeads))*n*f-down-gu-op, tmp2+qkv-down-gu-op)
	top := stack + x + grads + moment
	if o.ActivationCheckpointing {
		// The layer computed again: all of it, its output, and a dropout
		// copy of the widest adapted input.
		var drop int64
		if lc.Dropout > 0 {
			for _, m := range mods {
				if isAdapted[m.name] {
					drop = max(drop, m.in*n*f)
				}
			}
		}
		top = max(top+acts, stack+x+grads+acts+out+drop)
	}
	p.Activations = max(
		stack+x+h*n*f+logits+widen,       // the logits' product
		stack+x+h*n*f+2*logits,           // their gradient beside them
		stack+x+h*n*f+logits+h*n*f+widen, // the gradient through lm_head
		top,
	)
	p.Total = p.Weights + p.Adapter + p.Optimizer + p.Activations + p.Workspace
	return p, nil
}

// ErrDoesNotFit is matched by PlanToFit's error when a run does not fit the
// device even with activation checkpointing.
var ErrDoesNotFit = errors.New("does not fit in device memory")

// PlanToFit plans a run for a device of deviceBytes: without activation
// checkpointing when that fits, else with it; when neither fits, an error
// (matching ErrDoesNotFit) gives both plans and what to change.
func PlanToFit(cfg *config.Config, lc LoRAConfig, o PlanOptions, deviceBytes int64) (MemoryPlan, error) {
	o.ActivationCheckpointing = false
	plain, err := PlanQLoRAMemory(cfg, lc, o)
	if err != nil || plain.Total <= deviceBytes {
		return plain, err
	}
	o.ActivationCheckpointing = true
	ck, err := PlanQLoRAMemory(cfg, lc, o)
	if err != nil || ck.Total <= deviceBytes {
		return ck, err
	}
	return ck, fmt.Errorf("QLoRA of this %s model at %d×%d tokens per micro-batch %w (%s): it needs %s, or %s; use a smaller batch_size (grad_accum keeps the effective batch) or seq_len, a smaller lora rank, or a device with more memory",
		cfg.ModelType, o.Rows, o.SeqLen, ErrDoesNotFit, humanize.IBytes(uint64(max(deviceBytes, 0))), plain, ck)
}
