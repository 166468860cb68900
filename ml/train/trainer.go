// Package train trains llama-family models on the CPU (or any
// tensor.Backend): pretraining every weight in float32, and QLoRA — a
// frozen base whose linear layers are held in NF4 (bitsandbytes' layout,
// double quantization) and dequantized layer by layer on the fly, with
// trainable LoRA adapters in PEFT's layout.
//
// The loop is transformers' Trainer's: micro-batches of right-padded
// sequences (or packed blocks), gradient accumulation with the loss
// normalised by the number of trained tokens across all accumulated
// micro-batches, global-norm gradient clipping, AdamW with decoupled
// weight decay, linear warmup then cosine or linear decay. Validation loss
// is measured every EvalEvery steps; the parameters of the best validation
// loss are kept, and training stops early after Patience evaluations
// without improvement. Checkpoints written every CheckpointEvery steps let
// an interrupted run resume and finish bit-identical to an uninterrupted
// one: the data order of each epoch and the dropout masks of each
// micro-batch are drawn from PCGs seeded by (seed, epoch) and (seed, step,
// micro-batch), not from a running stream.
package train

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"slices"
	"time"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// Example is one training sequence: ids and, aligned with them, labels
// (the token itself where it is trained on, tensor.IgnoreIndex where not).
// The loss at position t predicts Labels[t+1].
type Example struct {
	IDs, Labels []int
}

// Options configure Train.
type Options struct {
	Epochs    int // passes over the training set (MaxSteps overrides)
	MaxSteps  int // optimizer steps; 0: Epochs' worth
	BatchSize int // sequences per micro-batch
	GradAccum int // micro-batches per optimizer step
	// SeqLen caps sequence length (longer examples are cut) and is the
	// block length when Packing.
	SeqLen int
	// Packing concatenates the shuffled examples into one stream cut into
	// SeqLen blocks (for pretraining) instead of padding each example.
	Packing bool
	// GroupByLength (without Packing) sorts each window of
	// GroupWindow·BatchSize shuffled examples by length before cutting it
	// into micro-batches, then shuffles the micro-batches: examples of
	// similar length share a batch, so little compute goes to padding when
	// lengths vary (short tool calls beside long prose), while the order
	// stays random. transformers' group_by_length does the same.
	GroupByLength bool
	// PadID fills padding (its label is ignored; any id works).
	PadID int

	Schedule    Schedule
	WeightDecay float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	MaxGradNorm float64
	// ActivationCheckpointing keeps only each decoder layer's input during
	// a training forward pass and computes the layer again in the backward
	// pass: activation memory falls from about a layer's worth per layer
	// to one row of the hidden size per layer, for about a third more
	// compute. Results are bit-identical either way.
	ActivationCheckpointing bool

	EvalEvery int // optimizer steps between validation passes (0: only at the end)
	Patience  int // evaluations without improvement before stopping (0: never)

	// StateDir, when set, holds checkpoints written every CheckpointEvery
	// steps; Train resumes from one whose Fingerprint matches.
	StateDir        string
	CheckpointEvery int
	Fingerprint     string

	Seed uint64
	// Progress is called after every optimizer step.
	Progress func(Status)
	Log      *slog.Logger
}

// Status is the state reported after each optimizer step.
type Status struct {
	Step, Total  int
	Epoch        float64
	Loss         float64 // this step's training loss
	ValLoss      float64 // the latest validation loss (NaN before the first)
	LR           float64
	TokensPerSec float64
	Elapsed      time.Duration
	ETA          time.Duration
}

// Point is one row of the loss history.
type Point struct {
	Step      int     `json:"step"`
	Epoch     float64 `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	// ValLoss is set on the steps where validation ran.
	ValLoss  *float64 `json:"val_loss,omitempty"`
	LR       float64  `json:"lr"`
	GradNorm float64  `json:"grad_norm"`
	Tokens   int64    `json:"tokens"` // trained tokens so far
}

// Result summarises a run.
type Result struct {
	Steps        int     `json:"steps"`
	PlannedSteps int     `json:"planned_steps"`
	StoppedEarly bool    `json:"stopped_early"`
	BestStep     int     `json:"best_step"`
	BestValLoss  float64 `json:"best_val_loss"`
	// InitialValLoss is the validation loss before the first step.
	InitialValLoss float64 `json:"initial_val_loss"`
	Tokens         int64   `json:"tokens"`       // trained (non-ignored) tokens
	SeenTokens     int64   `json:"seen_tokens"`  // tokens through the model, padding excluded
	ResumedFrom    int     `json:"resumed_from"` // step of the checkpoint resumed from (0: none)
	Seconds        float64 `json:"-"`            // wall time of this process's part
	TokensPerSec   float64 `json:"-"`            // SeenTokens/Seconds of this process's part
	History        []Point `json:"history"`
}

func (o *Options) defaults() {
	if o.Epochs <= 0 {
		o.Epochs = 1
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1
	}
	if o.GradAccum <= 0 {
		o.GradAccum = 1
	}
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Eps == 0 {
		o.Eps = 1e-8
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// batcher turns examples into micro-batches in a seeded order per epoch.
type batcher struct {
	ex       []Example
	opts     *Options
	perEpoch int
	epoch    int
	batches  []*Batch
}

func newBatcher(ex []Example, opts *Options) *batcher {
	b := &batcher{ex: ex, opts: opts, epoch: -1}
	b.build(0)
	b.perEpoch = len(b.batches)
	return b
}

// get returns micro-batch i of the whole run (epochs concatenated).
func (b *batcher) get(i int) *Batch {
	e := i / b.perEpoch
	if e != b.epoch {
		b.build(e)
	}
	return b.batches[i%b.perEpoch]
}

func (b *batcher) build(epoch int) {
	order := make([]int, len(b.ex))
	for i := range order {
		order[i] = i
	}
	rng := seeded.New(b.opts.Seed+uint64(epoch)*0x9e3779b97f4a7c15, 0x73687566)
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	b.epoch, b.batches = epoch, nil
	if b.opts.Packing {
		var ids, labels []int
		for _, k := range order {
			ids = append(ids, b.ex[k].IDs...)
			labels = append(labels, b.ex[k].Labels...)
		}
		L := b.opts.SeqLen
		var blocks [][2][]int
		for lo := 0; lo+1 < len(ids); lo += L {
			hi := min(lo+L, len(ids))
			blocks = append(blocks, [2][]int{ids[lo:hi], labels[lo:min(hi+1, len(labels))]})
		}
		for lo := 0; lo < len(blocks); lo += b.opts.BatchSize {
			b.batches = append(b.batches, makeBatch(blocks[lo:min(lo+b.opts.BatchSize, len(blocks))], b.opts.PadID))
		}
		return
	}
	bs := b.opts.BatchSize
	if b.opts.GroupByLength {
		w := GroupWindow * bs
		for lo := 0; lo < len(order); lo += w {
			win := order[lo:min(lo+w, len(order))]
			slices.SortStableFunc(win, func(x, y int) int { return len(b.ex[y].IDs) - len(b.ex[x].IDs) })
		}
	}
	for lo := 0; lo < len(order); lo += bs {
		var exs []Example
		for _, k := range order[lo:min(lo+bs, len(order))] {
			exs = append(exs, b.ex[k])
		}
		b.batches = append(b.batches, paddedBatch(exs, b.opts.SeqLen, b.opts.PadID))
	}
	if b.opts.GroupByLength {
		rng.Shuffle(len(b.batches), func(i, j int) { b.batches[i], b.batches[j] = b.batches[j], b.batches[i] })
	}
}

// GroupWindow is how many micro-batches' worth of examples GroupByLength
// sorts together.
const GroupWindow = 32

// paddedBatch is a micro-batch of exs, each cut to seqLen tokens,
// right-padded to the longest.
func paddedBatch(exs []Example, seqLen, pad int) *Batch {
	seqs := make([][2][]int, len(exs))
	for i, ex := range exs {
		n := min(len(ex.IDs), seqLen)
		seqs[i] = [2][]int{ex.IDs[:n], ex.Labels[:n]}
	}
	return makeBatch(seqs, pad)
}

// makeBatch right-pads seqs ({ids, labels}; labels may run one past ids,
// giving the last position's target) to the longest.
func makeBatch(seqs [][2][]int, pad int) *Batch {
	L := 0
	for _, s := range seqs {
		L = max(L, len(s[0]))
	}
	b := &Batch{Rows: len(seqs), Len: L, IDs: make([]int, len(seqs)*L), Targets: make([]int, len(seqs)*L)}
	for r, s := range seqs {
		b.Real += len(s[0])
		for t := 0; t < L; t++ {
			i := r*L + t
			b.IDs[i], b.Targets[i] = pad, tensor.IgnoreIndex
			if t < len(s[0]) {
				b.IDs[i] = s[0][t]
			}
			if t+1 < len(s[1]) && t+1 <= len(s[0]) {
				b.Targets[i] = s[1][t+1]
			}
		}
	}
	return b
}

// Evaluate returns the mean loss over examples' trained tokens (no
// dropout), in micro-batches of batchSize padded sequences.
func Evaluate(ctx context.Context, m *Model, examples []Example, batchSize, seqLen, pad int) (float64, error) {
	var sum float64
	var count int
	for lo := 0; lo < len(examples); lo += batchSize {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		_, s, c := m.forward(paddedBatch(examples[lo:min(lo+batchSize, len(examples))], seqLen, pad), false, false, 0)
		sum += s
		count += c
	}
	if count == 0 {
		return math.NaN(), nil
	}
	return sum / float64(count), nil
}

// Train trains m's trainable parameters on train, validating on val, and
// leaves m holding the parameters of the best validation loss (the last
// ones when val is empty).
func Train(ctx context.Context, m *Model, train, val []Example, opts Options) (*Result, error) {
	opts.defaults()
	if err := opts.Schedule.Validate(); err != nil {
		return nil, err
	}
	// Every micro-batch allocates its activations afresh, so the garbage
	// per step is several times the live heap; a process tuned for short
	// commands (mlbuild raises GOGC) would let the heap grow to many
	// times what training needs. Collect at the Go default while training.
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	m.recompute = opts.ActivationCheckpointing
	defer func() { m.recompute = false }()
	if len(train) == 0 {
		return nil, fmt.Errorf("no training examples")
	}
	if opts.SeqLen <= 1 {
		return nil, fmt.Errorf("seq_len must be at least 2, got %d", opts.SeqLen)
	}
	bt := newBatcher(train, &opts)
	stepsPerEpoch := (bt.perEpoch + opts.GradAccum - 1) / opts.GradAccum
	total := opts.MaxSteps
	if total <= 0 {
		total = stepsPerEpoch * opts.Epochs
	}
	opts.Schedule.Total = total
	params := m.Params()
	opt := NewAdamW(params, opts.Beta1, opts.Beta2, opts.Eps, opts.WeightDecay)
	res := &Result{PlannedSteps: total, BestValLoss: math.Inf(1), InitialValLoss: math.NaN()}
	var best [][]float32
	bad := 0
	start := 0

	if opts.StateDir != "" {
		ck, err := loadCheckpoint(opts.StateDir, opts.Fingerprint, m, opt)
		if err != nil {
			// A damaged checkpoint (its digests do not match) would
			// silently change the result: discard it and start afresh.
			opts.Log.Warn("discarding a damaged checkpoint; training from the start", "dir", opts.StateDir, "err", err)
			discardCheckpoint(opts.StateDir)
		} else if ck != nil {
			start = ck.Step
			res.History, res.BestStep, res.BestValLoss, res.InitialValLoss = ck.History, ck.BestStep, float64(ck.BestValLoss), float64(ck.InitialValLoss)
			res.Tokens, res.SeenTokens, res.ResumedFrom = ck.Tokens, ck.SeenTokens, ck.Step
			bad, best = ck.Bad, ck.best
			opts.Log.Info("resuming from checkpoint", "step", start)
		}
	}
	validate := func() (float64, error) {
		if len(val) == 0 {
			return math.NaN(), nil
		}
		return Evaluate(ctx, m, val, opts.BatchSize, opts.SeqLen, opts.PadID)
	}
	if start == 0 && len(val) > 0 {
		v, err := validate()
		if err != nil {
			return nil, err
		}
		res.InitialValLoss = v
	}
	lastVal := math.NaN()
	for i := len(res.History) - 1; i >= 0; i-- {
		if res.History[i].ValLoss != nil {
			lastVal = *res.History[i].ValLoss
			break
		}
	}
	began := time.Now()
	var seenHere int64
	for step := start; step < total; step++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		mbs := make([]*Batch, opts.GradAccum)
		trained := 0
		for k := range mbs {
			mbs[k] = bt.get(step*opts.GradAccum + k)
			trained += mbs[k].Trained()
		}
		var lossSum float64
		for k, b := range mbs {
			if trained == 0 {
				break
			}
			seed := opts.Seed ^ (uint64(step)*0x9e3779b97f4a7c15 + uint64(k)*0xbf58476d1ce4e5b9)
			ps, s, _ := m.forward(b, true, false, seed)
			lossSum += s
			m.backward(ps, float32(1/float64(trained)))
			n := int64(b.Real)
			res.SeenTokens += n
			seenHere += n
		}
		res.Tokens += int64(trained)
		lr := opts.Schedule.At(step)
		norm := opt.Step(m.be, params, lr, opts.MaxGradNorm)
		pt := Point{Step: step + 1, Epoch: float64((step+1)*opts.GradAccum) / float64(bt.perEpoch), LR: lr, GradNorm: norm, Tokens: res.Tokens}
		if trained > 0 {
			pt.TrainLoss = lossSum / float64(trained)
		}
		last := step+1 == total
		stop := false
		if (opts.EvalEvery > 0 && (step+1)%opts.EvalEvery == 0) || last {
			v, err := validate()
			if err != nil {
				return nil, err
			}
			if !math.IsNaN(v) {
				pt.ValLoss = &v
				lastVal = v
				if v < res.BestValLoss {
					res.BestValLoss, res.BestStep, bad = v, step+1, 0
					best = snapshot(m)
				} else {
					bad++
					stop = opts.Patience > 0 && bad >= opts.Patience
				}
			}
		}
		res.History = append(res.History, pt)
		res.Steps = step + 1
		elapsed := time.Since(began)
		if opts.Progress != nil {
			st := Status{Step: step + 1, Total: total, Epoch: pt.Epoch, Loss: pt.TrainLoss, ValLoss: lastVal, LR: lr, Elapsed: elapsed}
			if s := elapsed.Seconds(); s > 0 {
				st.TokensPerSec = float64(seenHere) / s
				st.ETA = time.Duration(float64(elapsed) / float64(step+1-start) * float64(total-step-1))
			}
			opts.Progress(st)
		}
		if stop {
			res.StoppedEarly = true
			opts.Log.Info("validation loss stopped improving; stopping early", "step", step+1, "best_step", res.BestStep)
			break
		}
		if opts.StateDir != "" && opts.CheckpointEvery > 0 && (step+1)%opts.CheckpointEvery == 0 && !last {
			ck := &checkpoint{Step: step + 1, History: res.History, BestStep: res.BestStep, BestValLoss: jsonFloat(res.BestValLoss),
				InitialValLoss: jsonFloat(res.InitialValLoss), Bad: bad, Tokens: res.Tokens, SeenTokens: res.SeenTokens, best: best}
			if err := saveCheckpoint(opts.StateDir, opts.Fingerprint, ck, m, opt); err != nil {
				return nil, fmt.Errorf("write checkpoint: %w", err)
			}
		}
	}
	if best != nil {
		restore(m, best)
	}
	res.Seconds = time.Since(began).Seconds()
	if res.Seconds > 0 {
		res.TokensPerSec = float64(seenHere) / res.Seconds
	}
	if math.IsInf(res.BestValLoss, 1) {
		res.BestValLoss = math.NaN()
	}
	return res, nil
}

func snapshot(m *Model) [][]float32 {
	out := make([][]float32, len(m.params))
	for i, p := range m.params {
		out[i] = make([]float32, p.W.Len())
		m.be.Read(p.W, out[i])
	}
	return out
}

func restore(m *Model, s [][]float32) {
	for i, p := range m.params {
		m.be.Write(p.W, s[i])
	}
}

// ParamData returns a copy of every trainable parameter's values by name.
func (m *Model) ParamData() map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range m.params {
		v := make([]float32, p.W.Len())
		m.be.Read(p.W, v)
		out[p.Name] = v
	}
	return out
}

// Adapter returns the model's LoRA adapters in PEFT's layout.
//
// A model with tied embeddings whose embeddings were trained uses the
// trained matrix as its lm_head too. PEFT's ModulesToSaveWrapper does not
// follow the tie: with modules_to_save ["embed_tokens"] alone, a PeftModel
// reads its input through the trained copy and computes its logits with
// the original matrix (peft 0.14.0). So the adapter lists lm_head in
// modules_to_save as well and stores the same matrix under both names: PEFT
// then computes what mlbuild trained, and Merge checks the two are equal.
func (m *Model) Adapter() *Adapter {
	a := &Adapter{Config: *m.lora, Tensors: map[string]AdapterTensor{}}
	a.Config.ModulesToSave = slices.Clone(a.Config.ModulesToSave)
	for _, p := range []*Param{m.embed, m.lmHead} {
		if p.trainable() && a.Tensors[p.Name].Data == nil {
			v := make([]float32, p.W.Len())
			m.be.Read(p.W, v)
			a.Tensors[p.Name] = AdapterTensor{Shape: slices.Clone(p.W.Shape()), Data: v}
		}
	}
	if m.Config.TieWordEmbeddings && m.embed.trainable() {
		e := a.Tensors[adapterEmbedName]
		a.Tensors[adapterLMHeadName] = AdapterTensor{Shape: slices.Clone(e.Shape), Data: slices.Clone(e.Data)}
		if !slices.Contains(a.Config.ModulesToSave, LMHeadModule) {
			a.Config.ModulesToSave = append(a.Config.ModulesToSave, LMHeadModule)
		}
	}
	for _, lm := range m.loras {
		if !slices.Contains(a.Targets, lm.module) {
			a.Targets = append(a.Targets, lm.module)
		}
		for _, p := range []*Param{lm.A, lm.B} {
			v := make([]float32, p.W.Len())
			m.be.Read(p.W, v)
			a.Tensors[p.Name] = AdapterTensor{Shape: slices.Clone(p.W.Shape()), Data: v}
		}
	}
	return a
}
