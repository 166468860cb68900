package training

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/train"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

// QLoRA is the qlora_train step kind.
type QLoRA struct{}

func init() { steps.Register(QLoRA{}) }

// QLoRAVersion enters every qlora_train key; bump it when the output for
// the same inputs changes (5: counter-based dropout masks, float32 SwiGLU
// kernels; 6: the loss curve drawn by ml/plot's own renderer).
const QLoRAVersion = "6"

// Schema implements steps.Kind.
func (QLoRA) Schema() steps.Schema {
	attrs := []steps.Attribute{
		{Name: "base", Type: cty.String, Input: true, Required: true, Doc: "The base model: a Hugging Face llama-family directory (Llama, Mistral, Phi-3, SmolLM2), e.g. pretrain.NAME.output, or a llama-architecture .gguf file (dequantized to float32, then quantized to NF4). A base whose tokenizer_config.json has a chat template that mlbuild knows is trained in it; any other in TwainBot's format."},
		{Name: "train", Type: cty.List(cty.String), Input: true, Required: true, Doc: "JSONL training records (split.NAME.train)."},
		{Name: "validation", Type: cty.List(cty.String), Input: true, Required: true, Doc: "JSONL validation records (split.NAME.validation)."},
		{Name: "r", Type: cty.Number, Default: num(16), Doc: "LoRA rank."},
		{Name: "lora_alpha", Type: cty.Number, Default: num(32), Doc: "LoRA alpha: the adapter is scaled by alpha/r (alpha/√r with use_rslora)."},
		{Name: "lora_dropout", Type: cty.Number, Default: num(0.05), Doc: "Dropout on the adapter's input."},
		{Name: "use_rslora", Type: cty.Bool, Default: cty.False, Doc: "Rank-stabilised scaling alpha/√r."},
		{Name: "target_modules", Type: cty.List(cty.String), Default: cty.ListVal([]cty.Value{cty.StringVal("all-linear")}),
			Doc: `Modules that get adapters: names such as "q_proj", "v_proj" (Phi-3: "qkv_proj", "gate_up_proj"), or ["all-linear"].`},
		{Name: "modules_to_save", Type: cty.List(cty.String), Default: cty.ListValEmpty(cty.String),
			Doc: `Whole modules trained (in float32) and saved with the adapter, as PEFT's modules_to_save: "embed_tokens", "lm_head". Needed when the data uses tokens the base never learned (chat tags, tool-call syntax).`},
		{Name: "activation_checkpointing", Type: cty.String, Default: cty.StringVal("auto"), NotInKey: true,
			Doc: `Keep only each layer's input in the forward pass and compute the layer again in the backward pass: "on", "off", or "auto" (on a GPU: when the run's memory plan does not fit the device without it; on the CPU: off). ` +
				`The adapter is bit-identical either way, so it is not in the key.`},
	}
	attrs = append(attrs, optimizerAttributes(defaults{seqLen: 512, batch: 4, accum: 2, epochs: 3, warmup: 10,
		evalEvery: 20, patience: 3, checkpoint: 10, lr: 2e-4, minLR: 0, wd: 0})...)
	return steps.Schema{
		Kind:    "qlora_train",
		Version: QLoRAVersion,
		Doc: "Quantizes the base model's linear layers to NF4 (bitsandbytes' layout, double quantization), trains LoRA adapters on the training records " +
			"(conversations on their assistant turns), keeps the adapter of the best validation loss and writes it in PEFT's format with metrics and loss curves.",
		Heavy:      true,
		Attributes: attrs,
		Outputs: []steps.Output{
			{Name: "adapter", Path: "adapter", Dir: true, Doc: "adapter_config.json and adapter_model.safetensors (PEFT)."},
			{Name: "metrics", Path: "metrics.json", Doc: "Steps, losses, tokens, throughput inputs and memory."},
			{Name: "curves", Path: "curves", Dir: true, Doc: "loss.csv and loss.png (train and validation loss)."},
		},
	}
}

// qloraConfig is a qlora_train step's attributes.
type qloraConfig struct {
	R             int      `attr:"r"`
	Alpha         float64  `attr:"lora_alpha"`
	Dropout       float64  `attr:"lora_dropout"`
	RSLoRA        bool     `attr:"use_rslora"`
	TargetModules []string `attr:"target_modules"`
	ModulesToSave []string `attr:"modules_to_save"`
	Checkpointing string   `attr:"activation_checkpointing"`
	loopConfig

	loop train.Options    // from loopConfig
	lora train.LoRAConfig // from the fields above
}

// readQLoRA decodes and checks the step's attributes, in the schema's
// order.
func readQLoRA(inv *steps.Invocation) (*qloraConfig, error) {
	c := &qloraConfig{}
	if err := inv.Decode(c); err != nil {
		return nil, err
	}
	if c.R < 1 || c.R > 4096 {
		return nil, &steps.AttrError{Attr: "r", Msg: fmt.Sprintf("must be between 1 and 4096, got %d", c.R)}
	}
	if c.Alpha <= 0 {
		return nil, &steps.AttrError{Attr: "lora_alpha", Msg: "must be positive"}
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return nil, &steps.AttrError{Attr: "lora_dropout", Msg: "must be in [0, 1)"}
	}
	if len(c.TargetModules) == 0 {
		return nil, &steps.AttrError{Attr: "target_modules", Msg: `must name at least one module, or be ["all-linear"]`}
	}
	for _, t := range c.TargetModules {
		if t == train.AllLinear {
			if len(c.TargetModules) > 1 {
				return nil, &steps.AttrError{Attr: "target_modules", Msg: `"all-linear" must be the only entry`}
			}
			continue
		}
		if !slices.Contains(train.LinearModules, t) {
			return nil, &steps.AttrError{Attr: "target_modules", Msg: fmt.Sprintf("unknown module %q (known: %s, %s)", t, train.AllLinear, strings.Join(train.LinearModules, ", "))}
		}
	}
	for _, m := range c.ModulesToSave {
		if m != train.EmbedTokensModule && m != train.LMHeadModule {
			return nil, &steps.AttrError{Attr: "modules_to_save", Msg: fmt.Sprintf("unknown module %q (known: %s, %s)", m, train.EmbedTokensModule, train.LMHeadModule)}
		}
	}
	if !slices.Contains([]string{"auto", "on", "off"}, c.Checkpointing) {
		return nil, &steps.AttrError{Attr: "activation_checkpointing", Msg: fmt.Sprintf(`must be "auto", "on" or "off", got %q`, c.Checkpointing)}
	}
	c.lora = train.LoRAConfig{R: c.R, Alpha: c.Alpha, Dropout: c.Dropout, RSLoRA: c.RSLoRA, TargetModules: c.TargetModules, ModulesToSave: c.ModulesToSave}
	var err error
	if c.loop, err = c.options(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate implements steps.Validator.
func (QLoRA) Validate(inv *steps.Invocation) error {
	_, err := readQLoRA(inv)
	return err
}

// Run implements steps.Kind.
func (QLoRA) Run(ctx context.Context, inv *steps.Invocation) error {
	c, err := readQLoRA(inv)
	if err != nil {
		return err
	}
	opts, lc := c.loop, c.lora
	baseDir, err := llama.ModelDir(inv.Inputs["base"][0].Path) // a .gguf file becomes a converted directory
	if err != nil {
		return err
	}
	tok, err := loadTokenizer(baseDir)
	if err != nil {
		return err
	}
	tpl, err := trainingTemplate(baseDir)
	if err != nil {
		return err
	}
	enc := trainingdata.NewEncoderFor(tok, tpl)
	trainSet, cut, _, err := examples(enc, inv.Inputs["train"], opts.SeqLen, true)
	if err != nil {
		return err
	}
	valSet, valCut, _, err := examples(enc, inv.Inputs["validation"], opts.SeqLen, true)
	if err != nil {
		return err
	}
	be, err := c.backend(inv)
	if err != nil {
		return err
	}
	m, err := train.LoadQLoRA(baseDir, be, lc, opts.Seed)
	if err != nil {
		return err
	}
	qBytes, qParams := m.QuantizedBytes()
	total, trainable := m.NumParams()
	inv.Logger().Info("qlora", "parameters", total, "trainable", trainable, "nf4_bytes_per_param", float64(qBytes)/float64(qParams),
		"train_records", len(trainSet), "validation_records", len(valSet), "chat_template", tpl.Name)
	if m.Config.MaxPositionEmbeddings < opts.SeqLen {
		return &steps.AttrError{Attr: "seq_len", Msg: fmt.Sprintf("%d exceeds the base model's max_position_embeddings %d", opts.SeqLen, m.Config.MaxPositionEmbeddings)}
	}
	if opts.ActivationCheckpointing, err = c.checkpointing(inv, m, be); err != nil {
		return err
	}
	if _, onCPU := be.(*tensor.CPU); onCPU {
		// A small base's dequantized weights fit beside it: keep them
		// rather than dequantize every linear twice a step (same bits).
		if bytes, kept := m.CacheDequantized(train.CPUDequantizedCacheBytes); kept {
			inv.Logger().Info("qlora: the dequantized base is kept in float32 between steps", "bytes", bytes)
		}
	}
	res, err := trainLoop(ctx, inv, m, trainSet, valSet, opts, padID(tok), QLoRAVersion)
	if err != nil {
		return err
	}
	inv.Logger().Info("qlora done", "steps", res.Steps, "seconds", res.Seconds, "tokens_per_sec", res.TokensPerSec,
		"peak_rss_bytes", peakRSS(), "base_fp32_bytes", total*4)
	adapterDir := filepath.Join(inv.OutDir, "adapter")
	if err := m.Adapter().Save(adapterDir, inv.Inputs["base"][0].Name); err != nil {
		return fmt.Errorf("write the adapter: %w", err)
	}
	// Run-dependent numbers (wall time, memory) went to the log, not to
	// metrics.json, which must be identical run after run.
	return writeResults(inv, "qlora_train: loss", m, res, map[string]any{
		"base_fp32_bytes": total * 4, "nf4_bytes": qBytes, "nf4_parameters": qParams,
		"nf4_bytes_per_parameter": float64(qBytes) / float64(qParams),
		"train_records":           len(trainSet), "validation_records": len(valSet), "records_cut_to_seq_len": cut + valCut,
		"seen_tokens": res.SeenTokens, "chat_template": tpl.Name,
	})
}

// deviceReserve is the device memory a plan leaves to the CUDA context
// and the driver (its code, the JIT-compiled kernels, cuBLASLt's handle).
const deviceReserve = 1 << 30

// checkpointing decides activation checkpointing: the attribute's "on" or
// "off", or for "auto" the memory plan on a device backend (off on the
// CPU, whose memory is the host's). A run that does not fit the device
// even with checkpointing fails here, before training, with the plan.
func (c *qloraConfig) checkpointing(inv *steps.Invocation, m *train.Model, be tensor.Backend) (bool, error) {
	switch c.Checkpointing {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	mr, ok := be.(tensor.MemoryReporter)
	if !ok {
		return false, nil
	}
	if len(c.lora.ModulesToSave) > 0 {
		inv.Logger().Info("memory plan: modules_to_save are not planned; activation checkpointing off (set it \"on\" if the device runs out of memory)")
		return false, nil
	}
	mi := mr.Memory()
	budget := mi.Total - deviceReserve
	plan, err := train.PlanToFit(m.Config, c.lora, train.PlanOptions{
		Rows: c.loop.BatchSize, SeqLen: c.loop.SeqLen, WeightBytes: m.DenseWeightBytes(),
		WidenGEMM: mi.GEMMWidens, Workspace: mi.GEMMWorkspace,
	}, budget)
	if err != nil {
		return false, &steps.AttrError{Attr: "batch_size", Msg: err.Error()}
	}
	inv.Logger().Info("memory plan", "plan", plan.String(), "device_bytes", mi.Total, "budget_bytes", budget)
	return plan.Checkpointing, nil
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes, or 0
// where /proc is not available.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb); err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
