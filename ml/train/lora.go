package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// LoRAConfig configures low-rank adapters as PEFT's LoraConfig does.
type LoRAConfig struct {
	// R is the rank; Alpha the scaling numerator: the adapter's output is
	// multiplied by Alpha/R (Alpha/√R with RSLoRA).
	R      int
	Alpha  float64
	RSLoRA bool
	// Dropout is applied to the adapter's input only (the base path sees
	// the undropped input).
	Dropout float64
	// TargetModules are module names ("q_proj", "v_proj", Phi-3's fused
	// "qkv_proj" and "gate_up_proj") or the single entry "all-linear":
	// every linear layer of the decoder (never lm_head), as PEFT does.
	TargetModules []string
	// ModulesToSave are whole modules trained and saved alongside the
	// adapters, as PEFT's modules_to_save: "embed_tokens" and "lm_head".
	// Training them is how a fine-tune teaches a base tokens it has never
	// seen (chat tags, tool-call syntax). With tied embeddings the two are
	// one matrix, saved as embed_tokens.
	ModulesToSave []string
}

// AllLinear is the TargetModules entry that selects every linear layer of
// the decoder, as PEFT's "all-linear".
const AllLinear = "all-linear"

// LinearModules are the names TargetModules may list: the decoder's linear
// modules, separate (Llama, Mistral) and fused (Phi-3's qkv_proj and
// gate_up_proj).
var LinearModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "gate_proj", "up_proj", "down_proj", "gate_up_proj"}

// Names of the modules ModulesToSave may list, and their tensors' names in
// a PEFT adapter file.
const (
	EmbedTokensModule = "embed_tokens"
	LMHeadModule      = "lm_head"
	adapterEmbedName  = "base_model.model.model.embed_tokens.weight"
	adapterLMHeadName = "base_model.model.lm_head.weight"
)

// Scaling is the factor applied to B·A.
func (c LoRAConfig) Scaling() float32 {
	if c.RSLoRA {
		return float32(c.Alpha / math.Sqrt(float64(c.R)))
	}
	return float32(c.Alpha / float64(c.R))
}

// moduleNames lists a config's linear modules (short names) in model order.
func moduleNames(cfg *config.Config) []string {
	var out []string
	if cfg.FusedQKV {
		out = append(out, "qkv_proj")
	} else {
		out = append(out, "q_proj", "k_proj", "v_proj")
	}
	out = append(out, "o_proj")
	if cfg.FusedGateUp {
		out = append(out, "gate_up_proj")
	} else {
		out = append(out, "gate_proj", "up_proj")
	}
	return append(out, "down_proj")
}

// Targets resolves TargetModules against a model config: the short module
// names that get adapters, in model order. Unknown names are an error that
// lists the model's modules.
func (c LoRAConfig) Targets(cfg *config.Config) ([]string, error) {
	all := moduleNames(cfg)
	if len(c.TargetModules) == 1 && c.TargetModules[0] == AllLinear {
		return all, nil
	}
	var out []string
	for _, name := range all {
		if slices.Contains(c.TargetModules, name) {
			out = append(out, name)
		}
	}
	for _, t := range c.TargetModules {
		if !slices.Contains(all, t) {
			return nil, fmt.Errorf("target module %q is not a linear layer of this %s model (it has %s, or use \"all-linear\")",
				t, cfg.ModelType, strings.Join(all, ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no target modules")
	}
	return out, nil
}

// Validate checks the config's numbers.
func (c LoRAConfig) Validate() error {
	switch {
	case c.R <= 0:
		return fmt.Errorf("lora rank r must be positive, got %d", c.R)
	case c.Alpha <= 0:
		return fmt.Errorf("lora_alpha must be positive, got %v", c.Alpha)
	case c.Dropout < 0 || c.Dropout >= 1:
		return fmt.Errorf("lora_dropout must be in [0, 1), got %v", c.Dropout)
	case len(c.TargetModules) == 0:
		return errors.New("target_modules must name at least one module")
	}
	for _, m := range c.ModulesToSave {
		if m != EmbedTokensModule && m != LMHeadModule {
			return fmt.Errorf("modules_to_save may list %q and %q, not %q", EmbedTokensModule, LMHeadModule, m)
		}
	}
	return nil
}

// PEFT's adapter file names.
const (
	AdapterConfigFile  = "adapter_config.json"
	AdapterWeightsFile = "adapter_model.safetensors"
)

// adapterConfigJSON is PEFT's adapter_config.json: the LoraConfig fields
// that every PEFT release since 0.10 knows (newer fields take their
// defaults), so old and new PEFT versions load it.
type adapterConfigJSON struct {
	PeftType            string   `json:"peft_type"`
	TaskType            string   `json:"task_type"`
	BaseModelNameOrPath string   `json:"base_model_name_or_path"`
	R                   int      `json:"r"`
	LoraAlpha           float64  `json:"lora_alpha"`
	LoraDropout         float64  `json:"lora_dropout"`
	TargetModules       []string `json:"target_modules"`
	UseRSLoRA           bool     `json:"use_rslora"`
	Bias                string   `json:"bias"`
	FanInFanOut         bool     `json:"fan_in_fan_out"`
	InferenceMode       bool     `json:"inference_mode"`
	InitLoraWeights     bool     `json:"init_lora_weights"`
	ModulesToSave       []string `json:"modules_to_save"`
	LayersToTransform   []int    `json:"layers_to_transform"`
	LayersPattern       []string `json:"layers_pattern"`
	RankPattern         struct{} `json:"rank_pattern"`
	AlphaPattern        struct{} `json:"alpha_pattern"`
	UseDora             bool     `json:"use_dora"`
	Revision            *string  `json:"revision"`
}

// AdapterTensorName is PEFT's saved name of a LoRA matrix: layer i, module
// ("q_proj", "gate_up_proj", ...), and "A" or "B".
func AdapterTensorName(layer int, module, ab string) string {
	return fmt.Sprintf("base_model.model.model.layers.%d.%s.%s.lora_%s.weight", layer, modulePath(module), module, ab)
}

// modulePath is the sub-module holding a projection.
func modulePath(module string) string {
	switch module {
	case "gate_proj", "up_proj", "down_proj", "gate_up_proj":
		return "mlp"
	}
	return "self_attn"
}

// Adapter is a set of trained LoRA matrices with its config.
type Adapter struct {
	Config  LoRAConfig
	Targets []string // resolved short module names
	// Tensors maps AdapterTensorName to its data ([r,in] for A, [out,r]
	// for B) and shape, and PEFT's names of the ModulesToSave to theirs.
	Tensors map[string]AdapterTensor
}

// AdapterTensor is one adapter matrix.
type AdapterTensor struct {
	Shape []int
	Data  []float32
}

// Save writes dir/adapter_config.json and dir/adapter_model.safetensors in
// PEFT's format (float32 weights).
func (a *Adapter) Save(dir, baseName string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := adapterConfigJSON{
		PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModelNameOrPath: baseName,
		R: a.Config.R, LoraAlpha: a.Config.Alpha, LoraDropout: a.Config.Dropout,
		TargetModules: slices.Sorted(slices.Values(a.Targets)), UseRSLoRA: a.Config.RSLoRA,
		Bias: "none", InferenceMode: true, InitLoraWeights: true, ModulesToSave: a.Config.ModulesToSave,
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, AdapterConfigFile), append(data, '\n'), 0o644); err != nil {
		return err
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range a.Tensors {
			if !yield(n) {
				return
			}
		}
	})
	ts := make([]safetensors.Tensor, 0, len(names))
	for _, n := range names {
		t := a.Tensors[n]
		ts = append(ts, safetensors.Tensor{Name: n, DType: safetensors.F32, Shape: t.Shape, Data: safetensors.F32Bytes(t.Data)})
	}
	return safetensors.Write(filepath.Join(dir, AdapterWeightsFile), ts, map[string]string{"format": "pt"})
}

// LoadAdapter reads a PEFT LoRA adapter directory.
func LoadAdapter(dir string) (*Adapter, error) {
	raw, err := os.ReadFile(filepath.Join(dir, AdapterConfigFile))
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w (want a PEFT adapter directory with %s and %s)", dir, err, AdapterConfigFile, AdapterWeightsFile)
	}
	var cfg adapterConfigJSON
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, AdapterConfigFile), err)
	}
	if cfg.PeftType != "LORA" {
		return nil, fmt.Errorf("%s: peft_type is %q; only LORA adapters are supported", filepath.Join(dir, AdapterConfigFile), cfg.PeftType)
	}
	if cfg.UseDora {
		return nil, fmt.Errorf("%s: DoRA adapters (use_dora) are not supported", filepath.Join(dir, AdapterConfigFile))
	}
	a := &Adapter{
		Config: LoRAConfig{R: cfg.R, Alpha: cfg.LoraAlpha, RSLoRA: cfg.UseRSLoRA, Dropout: cfg.LoraDropout,
			TargetModules: cfg.TargetModules, ModulesToSave: cfg.ModulesToSave},
		Targets: cfg.TargetModules,
		Tensors: map[string]AdapterTensor{},
	}
	if err := a.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, AdapterConfigFile), err)
	}
	f, err := safetensors.Open(filepath.Join(dir, AdapterWeightsFile))
	if err != nil {
		return nil, fmt.Errorf("adapter %s: %w", dir, err)
	}
	defer f.Close()
	for _, info := range f.Tensors() {
		v, err := f.Float32(info.Name)
		if err != nil {
			return nil, fmt.Errorf("adapter %s: tensor %s: %w", dir, info.Name, err)
		}
		a.Tensors[info.Name] = AdapterTensor{Shape: info.Shape, Data: v}
	}
	return a, nil
}
