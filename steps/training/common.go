// Package training implements the step kinds that train and assemble
// models: pretrain (a small llama-family base model from scratch),
// qlora_train (LoRA adapters on an NF4-quantized frozen base) and merge
// (adapters folded into the dequantized base). The numerical work is in
// ml/train; this package reads the steps' inputs, maps attributes to
// training options, reports progress and writes the artifacts.
package training

import (
	"context"
	"encoding/csv"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/plot"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/ml/train"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/device"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

func num(v float64) cty.Value { return cty.NumberFloatVal(v) }

// optimizerAttributes are the training-loop settings pretrain and
// qlora_train share; defaults differ per kind.
func optimizerAttributes(d defaults) []steps.Attribute {
	return []steps.Attribute{
		{Name: "seq_len", Type: cty.Number, Default: num(float64(d.seqLen)), Doc: "Longest sequence in tokens; longer records are cut (and the block length when packing)."},
		{Name: "group_by_length", Type: cty.Bool, Default: cty.True, Doc: "Batch records of similar length together (the batches' order stays random), so that little compute goes to padding; ignored when packing."},
		{Name: "batch_size", Type: cty.Number, Default: num(float64(d.batch)), Doc: "Sequences per micro-batch (right-padded to the longest)."},
		{Name: "grad_accum", Type: cty.Number, Default: num(float64(d.accum)), Doc: "Micro-batches per optimizer step; the loss is averaged over all their trained tokens."},
		{Name: "epochs", Type: cty.Number, Default: num(float64(d.epochs)), Doc: "Passes over the training data."},
		{Name: "max_steps", Type: cty.Number, Default: num(0), Doc: "Optimizer steps to run; 0 runs `epochs` passes."},
		{Name: "learning_rate", Type: cty.Number, Default: num(d.lr), Doc: "Peak learning rate."},
		{Name: "lr_schedule", Type: cty.String, Default: cty.StringVal("cosine"), Doc: `"cosine", "linear" or "constant" decay after warmup.`},
		{Name: "warmup_steps", Type: cty.Number, Default: num(float64(d.warmup)), Doc: "Steps of linear warmup."},
		{Name: "min_lr_ratio", Type: cty.Number, Default: num(d.minLR), Doc: "Final learning rate as a fraction of the peak."},
		{Name: "weight_decay", Type: cty.Number, Default: num(d.wd), Doc: "AdamW's decoupled weight decay (matrices only)."},
		{Name: "adam_beta1", Type: cty.Number, Default: num(0.9), Doc: "AdamW β₁."},
		{Name: "adam_beta2", Type: cty.Number, Default: num(0.999), Doc: "AdamW β₂."},
		{Name: "adam_epsilon", Type: cty.Number, Default: num(1e-8), Doc: "AdamW ε."},
		{Name: "max_grad_norm", Type: cty.Number, Default: num(1), Doc: "Global gradient-norm clipping; 0 disables it."},
		{Name: "eval_every", Type: cty.Number, Default: num(float64(d.evalEvery)), Doc: "Optimizer steps between validation passes (0: only at the end)."},
		{Name: "patience", Type: cty.Number, Default: num(float64(d.patience)), Doc: "Validation passes without improvement before stopping early (0: never); the best parameters are kept."},
		{Name: "checkpoint_every", Type: cty.Number, Default: num(float64(d.checkpoint)), Doc: "Optimizer steps between checkpoints; an interrupted run resumes from the last one and ends bit-identical."},
		{Name: "seed", Type: cty.Number, Default: num(42), Doc: "Seed of the initialisation, data order and dropout."},
		{Name: "threads", Type: cty.Number, Default: num(0), NotInKey: true, Doc: "CPU threads (0: all cores). Results do not depend on it."},
		device.Attribute(),
	}
}

type defaults struct {
	seqLen, batch, accum, epochs, warmup, evalEvery, patience, checkpoint int
	lr, minLR, wd                                                         float64
}

// loopConfig holds the training-loop attributes pretrain and qlora_train
// share (optimizerAttributes), as steps.Decode reads them.
type loopConfig struct {
	SeqLen          int     `attr:"seq_len"`
	GroupByLength   bool    `attr:"group_by_length"`
	BatchSize       int     `attr:"batch_size"`
	GradAccum       int     `attr:"grad_accum"`
	Epochs          int     `attr:"epochs"`
	MaxSteps        int     `attr:"max_steps"`
	LearningRate    float64 `attr:"learning_rate"`
	LRSchedule      string  `attr:"lr_schedule"`
	WarmupSteps     int     `attr:"warmup_steps"`
	MinLRRatio      float64 `attr:"min_lr_ratio"`
	WeightDecay     float64 `attr:"weight_decay"`
	Beta1           float64 `attr:"adam_beta1"`
	Beta2           float64 `attr:"adam_beta2"`
	Epsilon         float64 `attr:"adam_epsilon"`
	MaxGradNorm     float64 `attr:"max_grad_norm"`
	EvalEvery       int     `attr:"eval_every"`
	Patience        int     `attr:"patience"`
	CheckpointEvery int     `attr:"checkpoint_every"`
	Seed            int64   `attr:"seed"`
	threadsConfig
}

// threadsConfig is the thread count and device of the kinds that compute.
type threadsConfig struct {
	Threads int    `attr:"threads"`
	Device  string `attr:"device"`
}

// options checks the shared attributes, in the schema's order, and maps
// them to the training loop's options.
func (c *loopConfig) options() (train.Options, error) {
	for _, a := range []struct {
		name string
		v    int
		min  int
	}{
		{"seq_len", c.SeqLen, 2}, {"batch_size", c.BatchSize, 1}, {"grad_accum", c.GradAccum, 1}, {"epochs", c.Epochs, 1},
		{"max_steps", c.MaxSteps, 0}, {"warmup_steps", c.WarmupSteps, 0}, {"eval_every", c.EvalEvery, 0},
		{"patience", c.Patience, 0}, {"checkpoint_every", c.CheckpointEvery, 0},
	} {
		if a.v < 0 || a.v > 1<<30 {
			return train.Options{}, &steps.AttrError{Attr: a.name, Msg: fmt.Sprintf("must be between 0 and 2^30, got %d", a.v)}
		}
		if a.v < a.min {
			return train.Options{}, &steps.AttrError{Attr: a.name, Msg: fmt.Sprintf("must be at least %d", a.min)}
		}
	}
	for _, a := range []struct {
		name string
		v    float64
	}{
		{"learning_rate", c.LearningRate}, {"min_lr_ratio", c.MinLRRatio}, {"weight_decay", c.WeightDecay},
		{"adam_beta1", c.Beta1}, {"adam_beta2", c.Beta2}, {"adam_epsilon", c.Epsilon}, {"max_grad_norm", c.MaxGradNorm},
	} {
		if math.IsNaN(a.v) || a.v < 0 {
			return train.Options{}, &steps.AttrError{Attr: a.name, Msg: fmt.Sprintf("must be a non-negative number, got %v", a.v)}
		}
	}
	if c.Beta1 >= 1 {
		return train.Options{}, &steps.AttrError{Attr: "adam_beta1", Msg: "AdamW's betas must be below 1"}
	}
	if c.Beta2 >= 1 {
		return train.Options{}, &steps.AttrError{Attr: "adam_beta2", Msg: "AdamW's betas must be below 1"}
	}
	if c.Epsilon <= 0 {
		return train.Options{}, &steps.AttrError{Attr: "adam_epsilon", Msg: "must be positive"}
	}
	if err := device.Validate(c.Device); err != nil {
		return train.Options{}, err
	}
	o := train.Options{
		SeqLen: c.SeqLen, BatchSize: c.BatchSize, GradAccum: c.GradAccum, Epochs: c.Epochs, MaxSteps: c.MaxSteps,
		EvalEvery: c.EvalEvery, Patience: c.Patience, CheckpointEvery: c.CheckpointEvery,
		WeightDecay: c.WeightDecay, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Epsilon, MaxGradNorm: c.MaxGradNorm,
		GroupByLength: c.GroupByLength, Seed: uint64(c.Seed),
	}
	o.Schedule.Kind, o.Schedule.Peak, o.Schedule.MinRatio, o.Schedule.Warmup = c.LRSchedule, c.LearningRate, c.MinLRRatio, c.WarmupSteps
	if err := o.Schedule.Validate(); err != nil {
		attr := "lr_schedule"
		if o.Schedule.Peak <= 0 {
			attr = "learning_rate"
		} else if o.Schedule.MinRatio > 1 {
			attr = "min_lr_ratio"
		}
		return o, &steps.AttrError{Attr: attr, Msg: err.Error()}
	}
	return o, nil
}

// backend opens the step's device (steps/device: reported to the engine,
// an "auto" that falls back to the CPU logged) with its thread count (0:
// every core).
func (c threadsConfig) backend(inv *steps.Invocation) (tensor.Backend, error) {
	return device.Open(inv, c.Device, c.Threads)
}

// progress reports training status to the engine as "step i/n" with the
// loss, throughput and ETA.
func progress(inv *steps.Invocation) func(train.Status) {
	return func(s train.Status) {
		msg := fmt.Sprintf("loss %.3f", s.Loss)
		if !math.IsNaN(s.ValLoss) {
			msg += fmt.Sprintf(" val %.3f", s.ValLoss)
		}
		msg += fmt.Sprintf(" · %.0f tok/s · ETA %s", s.TokensPerSec, s.ETA.Round(time.Second))
		inv.ReportProgress(float64(s.Step), float64(s.Total), msg)
	}
}

// trainingTemplate is the chat template a base model is fine-tuned in:
// its own when its tokenizer_config.json has a chat_template that ml/chat
// knows (SmolLM2's ChatML, Llama-3's), so that the tuned model chats the
// way the base was taught to and apply_chat_template renders what it was
// trained on; TwainBot's otherwise (merge then writes TwainBot's template
// into the merged model's tokenizer_config.json).
func trainingTemplate(baseDir string) (*chat.Template, error) {
	tpl, _, err := chat.ForModelDir(baseDir, chat.TwainBot())
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	return tpl, nil
}

// loadTokenizer reads tokenizer.json from a model or tokenizer directory.
func loadTokenizer(dir string) (*tokenizer.Tokenizer, error) {
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, fmt.Errorf("cannot load the tokenizer of %s: %w", dir, err)
	}
	return tok, nil
}

// examples encodes the records of files for training; without withChat,
// conversations are skipped (and counted).
func examples(enc *trainingdata.Encoder, files []steps.InputFile, seqLen int, withChat bool) (out []train.Example, cut, skipped int, err error) {
	exs, cut, err := enc.Load(files, seqLen)
	if err != nil {
		return nil, 0, 0, err
	}
	for _, e := range exs {
		if e.Chat && !withChat {
			skipped++
			continue
		}
		out = append(out, train.Example{IDs: e.IDs, Labels: e.Labels})
	}
	return out, cut, skipped, nil
}

// padID is the id used for padding: the tokenizer's pad token, else 0
// (padding is masked by its label, never by its id).
func padID(tok *tokenizer.Tokenizer) int {
	if p := tok.Pad(); p >= 0 {
		return p
	}
	return 0
}

// writeCurves writes the loss history as loss.csv and loss.png in dir.
func writeCurves(dir, title string, res *train.Result) error {
	f, err := os.Create(filepath.Join(dir, "loss.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	// csv.Writer's errors are sticky: w.Error() after Flush reports the first.
	_ = w.Write([]string{"step", "epoch", "train_loss", "val_loss", "lr", "grad_norm", "tokens"})
	trainS := plot.Series{Name: "train"}
	valS := plot.Series{Name: "validation"}
	if !math.IsNaN(res.InitialValLoss) {
		valS.X = append(valS.X, 0)
		valS.Y = append(valS.Y, res.InitialValLoss)
	}
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
	for _, p := range res.History {
		val := ""
		if p.ValLoss != nil {
			val = g(*p.ValLoss)
			valS.X = append(valS.X, float64(p.Step))
			valS.Y = append(valS.Y, *p.ValLoss)
		}
		_ = w.Write([]string{strconv.Itoa(p.Step), g(p.Epoch), g(p.TrainLoss), val, g(p.LR), g(p.GradNorm), strconv.FormatInt(p.Tokens, 10)})
		trainS.X = append(trainS.X, float64(p.Step))
		trainS.Y = append(trainS.Y, p.TrainLoss)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close() // the write's error is the one to report
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	series := []plot.Series{trainS}
	if len(valS.X) > 0 {
		series = append(series, valS)
	}
	return plot.LossCurves(filepath.Join(dir, "loss.png"), title, series...)
}

// jsonNum is v for JSON, or nil (null) when v is NaN or infinite.
func jsonNum(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// trainLoop trains m with opts completed by what every training step sets:
// the pad id, the step's state folder for checkpoints (fingerprinted by the
// kind's version), progress reports and the step's logger.
func trainLoop(ctx context.Context, inv *steps.Invocation, m *train.Model, trainSet, valSet []train.Example, opts train.Options, pad int, fingerprint string) (*train.Result, error) {
	opts.PadID = pad
	opts.StateDir = inv.StateDir
	opts.Fingerprint = fingerprint
	opts.Progress = progress(inv)
	opts.Log = inv.Logger()
	return train.Train(ctx, m, trainSet, valSet, opts)
}

// writeResults writes curves/ (loss.csv and loss.png, titled title) and
// metrics.json: what every training step reports of m and res, and extra.
func writeResults(inv *steps.Invocation, title string, m *train.Model, res *train.Result, extra map[string]any) error {
	curves := filepath.Join(inv.OutDir, "curves")
	if err := os.MkdirAll(curves, 0o755); err != nil {
		return err
	}
	if err := writeCurves(curves, title, res); err != nil {
		return err
	}
	total, trainable := m.NumParams()
	metrics := map[string]any{
		"parameters": total, "trainable_parameters": trainable,
		"steps": res.Steps, "planned_steps": res.PlannedSteps, "stopped_early": res.StoppedEarly,
		"best_step": res.BestStep, "best_val_loss": jsonNum(res.BestValLoss), "initial_val_loss": jsonNum(res.InitialValLoss),
		"final_train_loss": lastTrainLoss(res), "trained_tokens": res.Tokens,
	}
	// Whether the run resumed from a checkpoint (res.ResumedFrom) is not
	// part of what it built: the trainer logs it ("resuming from
	// checkpoint"), and metrics.json stays byte for byte that of an
	// uninterrupted run, so that verify and --locked, which compare
	// digests, do not call a resumed result irreproducible.
	maps.Copy(metrics, extra)
	return steps.WriteJSON(filepath.Join(inv.OutDir, "metrics.json"), metrics)
}
