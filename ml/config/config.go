// Package config reads the Hugging Face config.json of a llama-family model
// (LlamaForCausalLM, MistralForCausalLM, Phi3ForCausalLM) into one Config,
// with the defaults transformers applies, and refuses what mlbuild does not
// implement (other architectures, biases, RoPE scalings other than none,
// "llama3" and "linear", partial rotary embeddings, pre-quantized checkpoints, activation
// functions other than SiLU) with one clear sentence instead of running a
// silently different model. It also knows the tensor names and shapes each
// architecture stores and checks a set of safetensors weights against them.
package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Arch is a supported architecture, spelled as in config.json's
// "architectures" list.
type Arch string

// The supported architectures.
const (
	Llama   Arch = "LlamaForCausalLM"
	Mistral Arch = "MistralForCausalLM"
	Phi3    Arch = "Phi3ForCausalLM"
)

// modelTypes maps each architecture to its config.json "model_type".
var modelTypes = map[Arch]string{Llama: "llama", Mistral: "mistral", Phi3: "phi3"}

// supportedList is the sentence fragment naming what is supported.
const supportedList = "mlbuild supports LlamaForCausalLM, MistralForCausalLM and Phi3ForCausalLM"

// ErrUnsupported is wrapped by errors about a valid config that describes
// something mlbuild does not implement; ErrInvalid by errors about a config
// that is malformed or inconsistent.
var (
	ErrUnsupported = errors.New("unsupported model")
	ErrInvalid     = errors.New("invalid model config")
)

// Config is a parsed, validated and defaulted config.json.
type Config struct {
	Architecture Arch
	ModelType    string // "llama", "mistral" or "phi3"

	HiddenSize            int
	IntermediateSize      int
	NumHiddenLayers       int
	NumAttentionHeads     int
	NumKeyValueHeads      int // defaults to NumAttentionHeads (8 for Mistral, as transformers does)
	HeadDim               int // defaults to HiddenSize / NumAttentionHeads
	VocabSize             int
	MaxPositionEmbeddings int
	RMSNormEps            float64
	RopeTheta             float64      // defaults to 10000
	RopeScaling           *RopeScaling // nil: plain RoPE
	TieWordEmbeddings     bool

	BOSTokenIDs []int // empty when the config has none
	EOSTokenIDs []int
	PadTokenID  int // -1 when the config has none (or one outside the vocabulary)

	TorchDType string // "bfloat16", "float16", "float32", ... as written; "" when absent
	HiddenAct  string // always "silu"

	// SlidingWindow is the attention window (0: none). Only Mistral and
	// Phi-3 have one; Check refuses contexts longer than it.
	SlidingWindow int
	// OriginalMaxPositionEmbeddings is Phi-3's pretraining context (0 when
	// absent); informational.
	OriginalMaxPositionEmbeddings int

	// FusedQKV and FusedGateUp are set for Phi-3, which stores
	// self_attn.qkv_proj (rows q, then k, then v) and mlp.gate_up_proj
	// (rows gate, then up) instead of separate projections.
	FusedQKV    bool
	FusedGateUp bool
}

// RopeScaling is a supported rope_scaling block: Type "llama3" (all
// fields), or "linear" (Factor only).
type RopeScaling struct {
	Type                          string // "llama3" or "linear"
	Factor                        float64
	LowFreqFactor                 float64
	HighFreqFactor                float64
	OriginalMaxPositionEmbeddings int
}

// Load reads path, a model directory (its config.json is read) or a
// config.json file.
func Load(path string) (*Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads the bytes of a config.json.
func Parse(data []byte) (*Config, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return nil, invalid("not a JSON object: %v", err)
	}
	arch, err := architecture(obj)
	if err != nil {
		return nil, err
	}
	c := &Config{Architecture: arch, ModelType: modelTypes[arch], PadTokenID: -1}
	if err := c.fill(obj); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUnsupported)
}

// architecture picks the architecture from "architectures" and
// "model_type", refusing unknown or contradictory ones.
func architecture(obj object) (Arch, error) {
	var archs []string
	if err := obj.strings("architectures", &archs); err != nil {
		return "", err
	}
	modelType, _, err := obj.str("model_type")
	if err != nil {
		return "", err
	}
	var arch Arch
	switch {
	case len(archs) > 0:
		for _, a := range archs[1:] {
			if a != archs[0] {
				return "", unsupported("config lists several architectures (%q); %s", archs, supportedList)
			}
		}
		arch = Arch(archs[0])
		if _, ok := modelTypes[arch]; !ok {
			return "", unsupported("architecture %s is not supported; %s", archs[0], supportedList)
		}
		if modelType != "" && modelType != modelTypes[arch] {
			return "", invalid("architecture %s does not match model_type %q (want %q)", arch, modelType, modelTypes[arch])
		}
	case modelType != "":
		for a, t := range modelTypes {
			if t == modelType {
				arch = a
			}
		}
		if arch == "" {
			return "", unsupported("model type %q is not supported; %s", modelType, supportedList)
		}
	default:
		return "", invalid("config has neither \"architectures\" nor \"model_type\"; %s", supportedList)
	}
	return arch, nil
}

// Limits that keep every derived size well inside an int64 (and refuse
// nonsense before anything is allocated from it).
const (
	maxDim      = 1 << 20
	maxCount    = 1 << 16
	maxVocab    = 1 << 26
	maxPosition = 1 << 30
)

func (c *Config) fill(obj object) error {
	var err error
	req := func(dst *int, key string, lo, hi int) {
		if err != nil {
			return
		}
		var ok bool
		if *dst, ok, err = obj.intIn(key, lo, hi); err == nil && !ok {
			err = invalid("required field %q is missing", key)
		}
	}
	req(&c.HiddenSize, "hidden_size", 1, maxDim)
	req(&c.IntermediateSize, "intermediate_size", 1, maxDim)
	req(&c.NumHiddenLayers, "num_hidden_layers", 1, maxCount)
	req(&c.NumAttentionHeads, "num_attention_heads", 1, maxCount)
	req(&c.VocabSize, "vocab_size", 1, maxVocab)
	if err != nil {
		return err
	}

	// num_key_value_heads: absent or null means one kv head per attention
	// head, except that an absent one means 8 for Mistral (MistralConfig's
	// default).
	kv, ok, err := obj.intIn("num_key_value_heads", 1, maxCount)
	switch {
	case err != nil:
		return err
	case ok:
		c.NumKeyValueHeads = kv
	case c.Architecture == Mistral && !obj.has("num_key_value_heads"):
		c.NumKeyValueHeads = 8
	default:
		c.NumKeyValueHeads = c.NumAttentionHeads
	}

	hd, ok, err := obj.intIn("head_dim", 1, maxDim)
	if err != nil {
		return err
	}
	if ok {
		c.HeadDim = hd
	} else {
		if c.HiddenSize%c.NumAttentionHeads != 0 {
			return invalid("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}

	defaults := map[Arch]struct {
		maxPos int
		eps    float64
		bos    []int
		eos    []int
		pad    int
	}{
		Llama:   {2048, 1e-6, []int{1}, []int{2}, -1},
		Mistral: {4096 * 32, 1e-6, []int{1}, []int{2}, -1},
		Phi3:    {4096, 1e-5, []int{1}, []int{32000}, 32000},
	}[c.Architecture]

	if c.MaxPositionEmbeddings, ok, err = obj.intIn("max_position_embeddings", 1, maxPosition); err != nil {
		return err
	} else if !ok {
		c.MaxPositionEmbeddings = defaults.maxPos
	}
	if c.RMSNormEps, ok, err = obj.float("rms_norm_eps"); err != nil {
		return err
	} else if !ok {
		c.RMSNormEps = defaults.eps
	}
	if c.TieWordEmbeddings, _, err = obj.boolean("tie_word_embeddings"); err != nil {
		return err
	}

	if c.BOSTokenIDs, ok, err = obj.ids("bos_token_id"); err != nil {
		return err
	} else if !ok && !obj.has("bos_token_id") {
		c.BOSTokenIDs = defaults.bos
	}
	if c.EOSTokenIDs, ok, err = obj.ids("eos_token_id"); err != nil {
		return err
	} else if !ok && !obj.has("eos_token_id") {
		c.EOSTokenIDs = defaults.eos
	}
	pad, ok, err := obj.ids("pad_token_id")
	switch {
	case err != nil:
		return err
	case ok && len(pad) == 1:
		c.PadTokenID = pad[0]
	case ok:
		return invalid("pad_token_id must be one integer, got %d", len(pad))
	case !obj.has("pad_token_id"):
		c.PadTokenID = defaults.pad
	}

	// transformers 5 writes "dtype"; earlier versions "torch_dtype".
	if c.TorchDType, ok, err = obj.str("dtype"); err != nil {
		return err
	} else if !ok {
		if c.TorchDType, _, err = obj.str("torch_dtype"); err != nil {
			return err
		}
	}

	act, ok, err := obj.str("hidden_act")
	if err != nil {
		return err
	}
	switch {
	case !ok, act == "silu", act == "swish": // transformers maps both names to SiLU
		c.HiddenAct = "silu"
	default:
		return unsupported("hidden_act %q is not supported; mlbuild implements the SwiGLU MLP with silu only", act)
	}

	for _, key := range []string{"attention_bias", "mlp_bias"} {
		if b, _, err := obj.boolean(key); err != nil {
			return err
		} else if b {
			return unsupported("%s is true; mlbuild implements llama-family layers without biases", key)
		}
	}

	if q, ok := obj["quantization_config"]; ok && string(q) != "null" {
		var qc struct {
			Method string `json:"quant_method"`
		}
		_ = jsonUnmarshal(q, &qc)
		return unsupported("the checkpoint is already quantized (quant_method %q); mlbuild needs the unquantized 16- or 32-bit weights", qc.Method)
	}

	if err := c.fillRope(obj); err != nil {
		return err
	}

	switch c.Architecture {
	case Mistral:
		// MistralConfig's default window is 4096; an explicit null disables it.
		w, ok, err := obj.intIn("sliding_window", 1, maxPosition)
		switch {
		case err != nil:
			return err
		case ok:
			c.SlidingWindow = w
		case !obj.has("sliding_window"):
			c.SlidingWindow = 4096
		}
	case Phi3:
		if c.SlidingWindow, _, err = obj.intIn("sliding_window", 1, maxPosition); err != nil {
			return err
		}
		if c.OriginalMaxPositionEmbeddings, _, err = obj.intIn("original_max_position_embeddings", 1, maxPosition); err != nil {
			return err
		}
		c.FusedQKV, c.FusedGateUp = true, true
	}
	// LlamaForCausalLM has no sliding window: transformers ignores the key.
	return nil
}

// fillRope reads rope_theta, rope_scaling and partial_rotary_factor, in
// both the transformers 4 spelling (top-level rope_theta, rope_scaling) and
// the transformers 5 one (a rope_parameters object holding rope_type,
// rope_theta and the scaling parameters).
func (c *Config) fillRope(obj object) error {
	theta, hasTheta, err := obj.float("rope_theta")
	if err != nil {
		return err
	}
	partial, hasPartial, err := obj.float("partial_rotary_factor")
	if err != nil {
		return err
	}

	var params object
	for _, key := range []string{"rope_scaling", "rope_parameters"} {
		raw, ok := obj[key]
		if !ok || string(raw) == "null" {
			continue
		}
		p, err := decodeObject(raw)
		if err != nil {
			return invalid("%s must be an object or null: %v", key, err)
		}
		if len(p) == 0 {
			continue
		}
		if params != nil {
			return invalid("config has both rope_scaling and rope_parameters; expected one")
		}
		params = p
	}
	c.RopeTheta = 10000
	if hasTheta {
		c.RopeTheta = theta
	}
	if params == nil {
		return checkPartial(partial, hasPartial)
	}
	for _, layerType := range []string{"full_attention", "sliding_attention"} {
		if params.has(layerType) {
			return unsupported("per-layer-type RoPE parameters (%q) are not supported", layerType)
		}
	}
	if t, ok, err := params.float("rope_theta"); err != nil {
		return err
	} else if ok {
		if hasTheta && t != theta {
			return invalid("rope_theta %g disagrees with rope_parameters.rope_theta %g", theta, t)
		}
		c.RopeTheta = t
	}
	if p, ok, err := params.float("partial_rotary_factor"); err != nil {
		return err
	} else if ok {
		partial, hasPartial = p, true
	}
	if err := checkPartial(partial, hasPartial); err != nil {
		return err
	}

	typ, ok, err := params.str("rope_type")
	if err != nil {
		return err
	}
	if !ok {
		if typ, _, err = params.str("type"); err != nil {
			return err
		}
	}
	switch typ {
	case "", "default":
		return nil
	case "llama3":
	case "linear":
		// Position interpolation: every frequency divided by the factor.
		f, ok, err := params.float("factor")
		switch {
		case err != nil:
			return err
		case !ok:
			return invalid("rope_scaling of type linear needs \"factor\"")
		case !(f >= 1) || math.IsInf(f, 0):
			return invalid("rope_scaling factor %g must be at least 1", f)
		}
		c.RopeScaling = &RopeScaling{Type: typ, Factor: f}
		return nil
	default:
		return unsupported("rope_scaling type %q is not supported; mlbuild implements plain RoPE and \"llama3\" and \"linear\" scaling", typ)
	}
	rs := &RopeScaling{Type: typ}
	for _, f := range []struct {
		key string
		dst *float64
	}{{"factor", &rs.Factor}, {"low_freq_factor", &rs.LowFreqFactor}, {"high_freq_factor", &rs.HighFreqFactor}} {
		v, ok, err := params.float(f.key)
		if err != nil {
			return err
		}
		if !ok {
			return invalid("rope_scaling of type llama3 needs %q", f.key)
		}
		*f.dst = v
	}
	if rs.OriginalMaxPositionEmbeddings, ok, err = params.intIn("original_max_position_embeddings", 1, maxPosition); err != nil {
		return err
	} else if !ok {
		return invalid("rope_scaling of type llama3 needs \"original_max_position_embeddings\"")
	}
	switch {
	case !(rs.Factor >= 1):
		return invalid("rope_scaling factor %g must be at least 1", rs.Factor)
	case !(rs.LowFreqFactor > 0) || !(rs.HighFreqFactor > rs.LowFreqFactor):
		return invalid("rope_scaling needs 0 < low_freq_factor < high_freq_factor, got %g and %g", rs.LowFreqFactor, rs.HighFreqFactor)
	}
	c.RopeScaling = rs
	return nil
}

func checkPartial(p float64, ok bool) error {
	if ok && p != 1 {
		return unsupported("partial_rotary_factor %g is not supported; mlbuild rotates the whole head (factor 1)", p)
	}
	return nil
}

func (c *Config) validate() error {
	switch {
	case c.NumAttentionHeads%c.NumKeyValueHeads != 0:
		return invalid("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	case c.HeadDim%2 != 0:
		return invalid("head_dim %d is odd; rotary embeddings need an even head dimension", c.HeadDim)
	case c.Architecture == Phi3 && c.HeadDim*c.NumAttentionHeads != c.HiddenSize:
		return unsupported("Phi-3 with head_dim %d × %d heads ≠ hidden_size %d is not supported", c.HeadDim, c.NumAttentionHeads, c.HiddenSize)
	case !(c.RMSNormEps > 0) || math.IsInf(c.RMSNormEps, 0):
		return invalid("rms_norm_eps %g must be a positive number", c.RMSNormEps)
	case !(c.RopeTheta > 0) || math.IsInf(c.RopeTheta, 0):
		return invalid("rope_theta %g must be a positive number", c.RopeTheta)
	case c.RopeScaling != nil && c.RopeScaling.OriginalMaxPositionEmbeddings > c.MaxPositionEmbeddings:
		return invalid("rope_scaling original_max_position_embeddings %d exceeds max_position_embeddings %d", c.RopeScaling.OriginalMaxPositionEmbeddings, c.MaxPositionEmbeddings)
	}
	for _, l := range []struct {
		name string
		ids  []int
	}{{"bos_token_id", c.BOSTokenIDs}, {"eos_token_id", c.EOSTokenIDs}} {
		for _, id := range l.ids {
			if id < 0 || id >= c.VocabSize {
				return invalid("%s %d is outside the vocabulary of %d tokens", l.name, id, c.VocabSize)
			}
		}
	}
	if c.PadTokenID >= c.VocabSize || c.PadTokenID < 0 {
		c.PadTokenID = -1 // old Llama conversions write -1; such a pad id is unusable anyway
	}
	return nil
}

// Check reports whether the model can run with a context of ctx tokens
// (prompt plus generated tokens, or a training sequence length): ctx must
// be positive, within max_position_embeddings, and, for models with a
// sliding attention window, within the window, since mlbuild's attention is
// full causal attention.
func (c *Config) Check(ctx int) error {
	switch {
	case ctx <= 0:
		return fmt.Errorf("context length %d must be positive", ctx)
	case ctx > c.MaxPositionEmbeddings:
		return unsupported("a context of %d tokens exceeds the model's max_position_embeddings of %d", ctx, c.MaxPositionEmbeddings)
	case c.SlidingWindow > 0 && ctx > c.SlidingWindow:
		return unsupported("a context of %d tokens exceeds the model's %d-token sliding attention window, which mlbuild does not implement; use at most %d tokens", ctx, c.SlidingWindow, c.SlidingWindow)
	}
	return nil
}

// KVGroups returns how many attention heads share each key/value head.
func (c *Config) KVGroups() int { return c.NumAttentionHeads / c.NumKeyValueHeads }
