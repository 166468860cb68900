package config

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

func load(t *testing.T, name string) *Config {
	t.Helper()
	c, err := Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The published configs of real checkpoints (testdata/, written from the
// values on their model cards' config.json).
func TestRealConfigs(t *testing.T) {
	cases := []struct {
		file string
		want Config
	}{
		{"llama-3-8b.json", Config{
			Architecture: Llama, ModelType: "llama",
			HiddenSize: 4096, IntermediateSize: 14336, NumHiddenLayers: 32, NumAttentionHeads: 32,
			NumKeyValueHeads: 8, HeadDim: 128, VocabSize: 128256, MaxPositionEmbeddings: 8192,
			RMSNormEps: 1e-5, RopeTheta: 500000, BOSTokenIDs: []int{128000}, EOSTokenIDs: []int{128001},
			PadTokenID: -1, TorchDType: "bfloat16", HiddenAct: "silu",
		}},
		{"llama-3.1-8b-instruct.json", Config{
			Architecture: Llama, ModelType: "llama",
			HiddenSize: 4096, IntermediateSize: 14336, NumHiddenLayers: 32, NumAttentionHeads: 32,
			NumKeyValueHeads: 8, HeadDim: 128, VocabSize: 128256, MaxPositionEmbeddings: 131072,
			RMSNormEps: 1e-5, RopeTheta: 500000,
			RopeScaling: &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192},
			BOSTokenIDs: []int{128000}, EOSTokenIDs: []int{128001, 128008, 128009},
			PadTokenID: -1, TorchDType: "bfloat16", HiddenAct: "silu",
		}},
		{"mistral-7b-v0.1.json", Config{
			Architecture: Mistral, ModelType: "mistral",
			HiddenSize: 4096, IntermediateSize: 14336, NumHiddenLayers: 32, NumAttentionHeads: 32,
			NumKeyValueHeads: 8, HeadDim: 128, VocabSize: 32000, MaxPositionEmbeddings: 32768,
			RMSNormEps: 1e-5, RopeTheta: 10000, BOSTokenIDs: []int{1}, EOSTokenIDs: []int{2},
			PadTokenID: -1, TorchDType: "bfloat16", HiddenAct: "silu", SlidingWindow: 4096,
		}},
		{"phi-3-mini-4k-instruct.json", Config{
			Architecture: Phi3, ModelType: "phi3",
			HiddenSize: 3072, IntermediateSize: 8192, NumHiddenLayers: 32, NumAttentionHeads: 32,
			NumKeyValueHeads: 32, HeadDim: 96, VocabSize: 32064, MaxPositionEmbeddings: 4096,
			RMSNormEps: 1e-5, RopeTheta: 10000, BOSTokenIDs: []int{1}, EOSTokenIDs: []int{32000},
			PadTokenID: 32000, TorchDType: "bfloat16", HiddenAct: "silu", SlidingWindow: 2047,
			OriginalMaxPositionEmbeddings: 4096, FusedQKV: true, FusedGateUp: true,
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got := load(t, c.file)
			if !reflect.DeepEqual(*got, c.want) {
				t.Errorf("got  %+v\nwant %+v", *got, c.want)
			}
			roundTrip(t, got)
		})
	}
}

func roundTrip(t *testing.T, c *Config) {
	t.Helper()
	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(js)
	if err != nil {
		t.Fatalf("Parse(JSON()): %v\n%s", err, js)
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\n%s", *back, *c, js)
	}
}

func TestCheckContext(t *testing.T) {
	mistral := load(t, "mistral-7b-v0.1.json")
	phi := load(t, "phi-3-mini-4k-instruct.json")
	llama := load(t, "llama-3-8b.json")
	for _, c := range []struct {
		cfg  *Config
		ctx  int
		want string // "" for success
	}{
		{mistral, 4096, ""},
		{mistral, 4097, "4096-token sliding attention window"},
		{phi, 2047, ""},
		{phi, 2048, "2047-token sliding attention window"},
		{llama, 8192, ""},
		{llama, 8193, "max_position_embeddings of 8192"},
		{llama, 0, "must be positive"},
	} {
		err := c.cfg.Check(c.ctx)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s Check(%d): %v", c.cfg.Architecture, c.ctx, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s Check(%d) = %v, want %q", c.cfg.Architecture, c.ctx, err, c.want)
		}
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		file, want  string
		unsupported bool
	}{
		{"gpt2.json", "architecture GPT2LMHeadModel is not supported; mlbuild supports LlamaForCausalLM, MistralForCausalLM and Phi3ForCausalLM", true},
		{"qwen2-7b.json", "architecture Qwen2ForCausalLM is not supported; mlbuild supports LlamaForCausalLM, MistralForCausalLM and Phi3ForCausalLM", true},
		{"phi-3-mini-128k-instruct.json", `rope_scaling type "longrope" is not supported`, true},
	}
	for _, c := range cases {
		_, err := Load(filepath.Join("testdata", c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.file, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.file) {
			t.Errorf("%s: error does not name the file: %v", c.file, err)
		}
		if errors.Is(err, ErrUnsupported) != c.unsupported {
			t.Errorf("%s: errors.Is(ErrUnsupported) = %v", c.file, !c.unsupported)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing config: %v", err)
	}
}

// tiny is a minimal Llama config; edit patches fields of it.
const tiny = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":16,"intermediate_size":40,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100}`

// with returns tiny with fields overridden (a nil value deletes the key).
func with(base string, fields map[string]any) []byte {
	var m map[string]any
	if err := jsonUnmarshal([]byte(base), &m); err != nil {
		panic(err)
	}
	for k, v := range fields {
		if v == nil {
			delete(m, k)
		} else if v == "null" {
			m[k] = nil
		} else {
			m[k] = v
		}
	}
	b, _ := jsonMarshal(m)
	return b
}

func TestTinyDefaults(t *testing.T) {
	c, err := Parse([]byte(tiny))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Architecture: Llama, ModelType: "llama", HiddenSize: 16, IntermediateSize: 40,
		NumHiddenLayers: 2, NumAttentionHeads: 4, NumKeyValueHeads: 2, HeadDim: 4, VocabSize: 100,
		MaxPositionEmbeddings: 2048, RMSNormEps: 1e-6, RopeTheta: 10000, BOSTokenIDs: []int{1},
		EOSTokenIDs: []int{2}, PadTokenID: -1, HiddenAct: "silu"}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
	if c.KVGroups() != 2 || c.QDim() != 16 || c.KVDim() != 8 {
		t.Errorf("KVGroups %d QDim %d KVDim %d", c.KVGroups(), c.QDim(), c.KVDim())
	}
	roundTrip(t, c)

	// Architecture from model_type alone; per-architecture defaults.
	m, err := Parse(with(tiny, map[string]any{"architectures": nil, "model_type": "mistral", "num_key_value_heads": nil, "num_attention_heads": 8, "hidden_size": 32}))
	if err != nil {
		t.Fatal(err)
	}
	if m.Architecture != Mistral || m.NumKeyValueHeads != 8 || m.SlidingWindow != 4096 || m.MaxPositionEmbeddings != 131072 {
		t.Errorf("Mistral defaults: %+v", *m)
	}
	roundTrip(t, m)
	m, _ = Parse(with(tiny, map[string]any{"architectures": []string{"MistralForCausalLM"}, "model_type": "mistral", "num_key_value_heads": "null", "sliding_window": "null"}))
	if m.NumKeyValueHeads != 4 || m.SlidingWindow != 0 {
		t.Errorf("Mistral with nulls: kv %d window %d", m.NumKeyValueHeads, m.SlidingWindow)
	}
	if err := m.Check(131072); err != nil {
		t.Errorf("Mistral without a window: %v", err)
	}
	roundTrip(t, m)

	p, err := Parse(with(tiny, map[string]any{"architectures": []string{"Phi3ForCausalLM"}, "model_type": "phi3", "num_key_value_heads": nil, "vocab_size": 32064}))
	if err != nil {
		t.Fatal(err)
	}
	if p.NumKeyValueHeads != 4 || p.RMSNormEps != 1e-5 || p.PadTokenID != 32000 || !reflect.DeepEqual(p.EOSTokenIDs, []int{32000}) || p.SlidingWindow != 0 || !p.FusedQKV || !p.FusedGateUp {
		t.Errorf("Phi-3 defaults: %+v", *p)
	}
	roundTrip(t, p)

	// Llama ignores sliding_window, as transformers does.
	l, _ := Parse(with(tiny, map[string]any{"sliding_window": 8}))
	if l.SlidingWindow != 0 {
		t.Errorf("Llama took a sliding window")
	}

	// transformers 5 spelling: rope_parameters and dtype.
	v5, err := Parse(with(tiny, map[string]any{"rope_parameters": map[string]any{"rope_type": "default", "rope_theta": 500000.0}, "dtype": "bfloat16"}))
	if err != nil {
		t.Fatal(err)
	}
	if v5.RopeTheta != 500000 || v5.RopeScaling != nil || v5.TorchDType != "bfloat16" {
		t.Errorf("v5 rope_parameters: %+v", *v5)
	}
	v5, err = Parse(with(tiny, map[string]any{"rope_parameters": map[string]any{"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "max_position_embeddings": 131072}))
	if err != nil {
		t.Fatal(err)
	}
	if v5.RopeScaling == nil || v5.RopeScaling.Factor != 32 || v5.RopeTheta != 500000 {
		t.Errorf("v5 llama3: %+v", *v5)
	}
	roundTrip(t, v5)

	// Token ids: lists, nulls, explicit head_dim, swish, 4096.0.
	c, err = Parse(with(tiny, map[string]any{"bos_token_id": "null", "eos_token_id": []int{2, 3}, "pad_token_id": -1, "head_dim": 8, "hidden_act": "swish", "max_position_embeddings": 4096.0, "rope_scaling": map[string]any{"rope_type": "default"}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.BOSTokenIDs) != 0 || !reflect.DeepEqual(c.EOSTokenIDs, []int{2, 3}) || c.PadTokenID != -1 || c.HeadDim != 8 || c.QDim() != 32 || c.HiddenAct != "silu" || c.MaxPositionEmbeddings != 4096 || c.RopeScaling != nil {
		t.Errorf("variants: %+v", *c)
	}
	roundTrip(t, c)
}

func TestInvalidConfigs(t *testing.T) {
	cases := []struct {
		name   string
		config []byte
		want   string
		unsup  bool
	}{
		{"not JSON", []byte("{"), "not a JSON object", false},
		{"array", []byte("[]"), "not a JSON object", false},
		{"null", []byte("null"), "not a JSON object", false},
		{"trailing data", []byte(tiny + "x"), "not a JSON object", false},
		{"no architecture", with(tiny, map[string]any{"architectures": nil, "model_type": nil}), `neither "architectures" nor "model_type"`, false},
		{"unknown model_type", with(tiny, map[string]any{"architectures": nil, "model_type": "qwen2"}), `model type "qwen2" is not supported; mlbuild supports`, true},
		{"mismatched model_type", with(tiny, map[string]any{"model_type": "mistral"}), `does not match model_type "mistral"`, false},
		{"several architectures", with(tiny, map[string]any{"architectures": []string{"LlamaForCausalLM", "MistralForCausalLM"}}), "several architectures", true},
		{"sequence classification", with(tiny, map[string]any{"architectures": []string{"LlamaForSequenceClassification"}}), "architecture LlamaForSequenceClassification is not supported", true},
		{"architectures not a list", with(tiny, map[string]any{"architectures": "LlamaForCausalLM"}), `"architectures" must be a list of strings`, false},
		{"missing hidden_size", with(tiny, map[string]any{"hidden_size": nil}), `required field "hidden_size" is missing`, false},
		{"missing vocab", with(tiny, map[string]any{"vocab_size": nil}), `"vocab_size" is missing`, false},
		{"string size", with(tiny, map[string]any{"hidden_size": "16"}), `"hidden_size" must be an integer`, false},
		{"fractional size", with(tiny, map[string]any{"hidden_size": 16.5}), `"hidden_size" must be an integer`, false},
		{"zero layers", with(tiny, map[string]any{"num_hidden_layers": 0}), `"num_hidden_layers" is 0, outside`, false},
		{"absurd vocab", with(tiny, map[string]any{"vocab_size": 1e12}), `"vocab_size" is 1000000000000, outside`, false},
		{"heads not dividing hidden", with(tiny, map[string]any{"num_attention_heads": 3, "num_key_value_heads": 1}), "not a multiple of num_attention_heads", false},
		{"kv not dividing heads", with(tiny, map[string]any{"num_key_value_heads": 3}), "not a multiple of num_key_value_heads 3", false},
		{"odd head_dim", with(tiny, map[string]any{"head_dim": 5}), "head_dim 5 is odd", false},
		{"gelu", with(tiny, map[string]any{"hidden_act": "gelu"}), `hidden_act "gelu" is not supported`, true},
		{"attention_bias", with(tiny, map[string]any{"attention_bias": true}), "attention_bias is true", true},
		{"mlp_bias", with(tiny, map[string]any{"mlp_bias": true}), "mlp_bias is true", true},
		{"bias not a bool", with(tiny, map[string]any{"attention_bias": "no"}), `"attention_bias" must be true or false`, false},
		{"linear rope without factor", with(tiny, map[string]any{"rope_scaling": map[string]any{"type": "linear"}}), `linear needs "factor"`, false},
		{"linear rope factor below 1", with(tiny, map[string]any{"rope_scaling": map[string]any{"rope_type": "linear", "factor": 0.5}}), "factor 0.5 must be at least 1", false},
		{"dynamic rope", with(tiny, map[string]any{"rope_scaling": map[string]any{"rope_type": "dynamic", "factor": 2.0}}), `rope_scaling type "dynamic" is not supported`, true},
		{"yarn rope", with(tiny, map[string]any{"rope_parameters": map[string]any{"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}}), `rope_scaling type "yarn" is not supported`, true},
		{"llama3 missing factor", with(tiny, map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 1024}}), `needs "factor"`, false},
		{"llama3 bad factors", with(tiny, map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 1024}}), "low_freq_factor < high_freq_factor", false},
		{"llama3 original beyond max", with(tiny, map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}), "exceeds max_position_embeddings", false},
		{"rope_scaling not an object", with(tiny, map[string]any{"rope_scaling": "llama3"}), "rope_scaling must be an object", false},
		{"both rope spellings", with(tiny, map[string]any{"rope_scaling": map[string]any{"rope_type": "default"}, "rope_parameters": map[string]any{"rope_type": "default"}}), "both rope_scaling and rope_parameters", false},
		{"conflicting theta", with(tiny, map[string]any{"rope_theta": 10000.0, "rope_parameters": map[string]any{"rope_theta": 500000.0}}), "disagrees", false},
		{"per-layer rope", with(tiny, map[string]any{"rope_parameters": map[string]any{"full_attention": map[string]any{"rope_theta": 1.0}}}), "per-layer-type", true},
		{"partial rotary", with(tiny, map[string]any{"partial_rotary_factor": 0.5}), "partial_rotary_factor 0.5 is not supported", true},
		{"partial rotary in rope_parameters", with(tiny, map[string]any{"rope_parameters": map[string]any{"partial_rotary_factor": 0.4, "rope_theta": 10000.0}}), "partial_rotary_factor 0.4", true},
		{"negative theta", with(tiny, map[string]any{"rope_theta": -1.0}), "rope_theta -1 must be a positive", false},
		{"zero eps", with(tiny, map[string]any{"rms_norm_eps": 0}), "rms_norm_eps 0 must be a positive", false},
		{"huge number", []byte(strings.Replace(tiny, "{", `{"rms_norm_eps":1e400,`, 1)), `"rms_norm_eps" must be a finite number`, false},
		{"eos outside vocab", with(tiny, map[string]any{"eos_token_id": []int{2, 100}}), "eos_token_id 100 is outside the vocabulary", false},
		{"bos negative", with(tiny, map[string]any{"bos_token_id": -5}), "bos_token_id -5 is outside", false},
		{"eos a string", with(tiny, map[string]any{"eos_token_id": "2"}), "must be an integer or a list", false},
		{"eos list of strings", with(tiny, map[string]any{"eos_token_id": []string{"2"}}), "must be an integer or a list", false},
		{"pad a list", with(tiny, map[string]any{"pad_token_id": []int{1, 2}}), "pad_token_id must be one integer", false},
		{"quantized", with(tiny, map[string]any{"quantization_config": map[string]any{"quant_method": "gptq", "bits": 4}}), `already quantized (quant_method "gptq")`, true},
		{"Phi-3 odd head_dim", with(tiny, map[string]any{"architectures": []string{"Phi3ForCausalLM"}, "model_type": "phi3", "head_dim": 8, "vocab_size": 32064}), "Phi-3 with head_dim 8", true},
		{"window not an int", with(tiny, map[string]any{"architectures": []string{"MistralForCausalLM"}, "model_type": "mistral", "sliding_window": "4096"}), `"sliding_window" must be an integer`, false},
		{"dtype not a string", with(tiny, map[string]any{"torch_dtype": 16}), `"torch_dtype" must be a string`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(c.config)
			if err == nil {
				t.Fatalf("accepted: %+v", *cfg)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if errors.Is(err, ErrUnsupported) != c.unsup || errors.Is(err, ErrInvalid) == c.unsup {
				t.Errorf("error class: unsupported=%v invalid=%v, want unsupported=%v", errors.Is(err, ErrUnsupported), errors.Is(err, ErrInvalid), c.unsup)
			}
		})
	}
}

func TestTensorNames(t *testing.T) {
	llama := load(t, "llama-3-8b.json")
	specs := llama.Tensors()
	if len(specs) != 1+32*9+2 {
		t.Fatalf("%d tensors", len(specs))
	}
	byName := map[string][]int{}
	for _, s := range specs {
		byName[s.Name] = s.Shape
	}
	want := map[string][]int{
		"model.embed_tokens.weight":                       {128256, 4096},
		"model.layers.0.self_attn.q_proj.weight":          {4096, 4096},
		"model.layers.0.self_attn.k_proj.weight":          {1024, 4096},
		"model.layers.0.self_attn.v_proj.weight":          {1024, 4096},
		"model.layers.0.self_attn.o_proj.weight":          {4096, 4096},
		"model.layers.31.mlp.gate_proj.weight":            {14336, 4096},
		"model.layers.31.mlp.up_proj.weight":              {14336, 4096},
		"model.layers.31.mlp.down_proj.weight":            {4096, 14336},
		"model.layers.31.input_layernorm.weight":          {4096},
		"model.layers.31.post_attention_layernorm.weight": {4096},
		"model.norm.weight":                               {4096},
		"lm_head.weight":                                  {128256, 4096},
	}
	for name, shape := range want {
		if !reflect.DeepEqual(byName[name], shape) {
			t.Errorf("%s: %v, want %v", name, byName[name], shape)
		}
	}
	// Llama-3-8B has 8,030,261,248 parameters.
	var n int64
	for _, s := range specs {
		p := int64(1)
		for _, d := range s.Shape {
			p *= int64(d)
		}
		n += p
	}
	if n != 8030261248 {
		t.Errorf("Llama-3-8B: %d parameters, want 8030261248", n)
	}

	phi := load(t, "phi-3-mini-4k-instruct.json")
	l := phi.Layer(3)
	if l.QKV != "model.layers.3.self_attn.qkv_proj.weight" || l.GateUp != "model.layers.3.mlp.gate_up_proj.weight" || l.Q != "" || l.Gate != "" {
		t.Errorf("Phi-3 layer names: %+v", l)
	}
	byName = map[string][]int{}
	n = 0
	for _, s := range phi.Tensors() {
		byName[s.Name] = s.Shape
		n += int64(s.Shape[0]) * int64(append(s.Shape, 1)[1])
	}
	if !reflect.DeepEqual(byName[l.QKV], []int{9216, 3072}) || !reflect.DeepEqual(byName[l.GateUp], []int{16384, 3072}) {
		t.Errorf("Phi-3 fused shapes: qkv %v gate_up %v", byName[l.QKV], byName[l.GateUp])
	}
	// Phi-3-mini has 3,821,079,552 parameters.
	if n != 3821079552 {
		t.Errorf("Phi-3-mini: %d parameters, want 3821079552", n)
	}

	mistral := load(t, "mistral-7b-v0.1.json")
	n = 0
	for _, s := range mistral.Tensors() {
		n += int64(s.Shape[0]) * int64(append(s.Shape, 1)[1])
	}
	// Mistral-7B-v0.1 has 7,241,732,096 parameters.
	if n != 7241732096 {
		t.Errorf("Mistral-7B: %d parameters, want 7241732096", n)
	}
}

// fakeSet is a TensorSet from a name -> (dtype, shape) table.
type fakeSet map[string]safetensors.TensorInfo

func (s fakeSet) Names() []string {
	var out []string
	for n := range s {
		out = append(out, n)
	}
	return out
}

func (s fakeSet) Info(name string) (safetensors.TensorInfo, bool) {
	i, ok := s[name]
	return i, ok
}

func setFor(c *Config, dtype safetensors.DType) fakeSet {
	s := fakeSet{}
	for _, spec := range c.Tensors() {
		s[spec.Name] = safetensors.TensorInfo{Name: spec.Name, DType: dtype, Shape: spec.Shape}
	}
	return s
}

func TestCheckTensors(t *testing.T) {
	c, _ := Parse([]byte(tiny))
	if err := c.CheckTensors(setFor(c, safetensors.BF16)); err != nil {
		t.Fatal(err)
	}
	s := setFor(c, safetensors.F32)
	s["model.layers.0.self_attn.rotary_emb.inv_freq"] = safetensors.TensorInfo{DType: safetensors.F32, Shape: []int{2}}
	if err := c.CheckTensors(s); err != nil {
		t.Fatalf("rotary_emb.inv_freq buffers should be ignored: %v", err)
	}

	s = setFor(c, safetensors.F16)
	delete(s, "model.layers.1.mlp.up_proj.weight")
	delete(s, LMHead)
	s["model.layers.2.mlp.up_proj.weight"] = safetensors.TensorInfo{DType: safetensors.F16, Shape: []int{40, 16}}
	s["model.layers.0.self_attn.q_proj.bias"] = safetensors.TensorInfo{DType: safetensors.F16, Shape: []int{16}}
	s[EmbedTokens] = safetensors.TensorInfo{DType: safetensors.F16, Shape: []int{101, 16}}
	s[FinalNorm] = safetensors.TensorInfo{DType: safetensors.U8, Shape: []int{16}}
	err := c.CheckTensors(s)
	if err == nil {
		t.Fatal("mismatched weights accepted")
	}
	for _, want := range []string{
		"LlamaForCausalLM, 2 layers",
		"2 missing (model.layers.1.mlp.up_proj.weight, lm_head.weight)",
		"2 unexpected (model.layers.0.self_attn.q_proj.bias, model.layers.2.mlp.up_proj.weight)",
		"model.embed_tokens.weight is [101 16], want [100 16]",
		"model.norm.weight has dtype U8",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	// Tied embeddings: no lm_head expected, and one present is unexpected.
	tied, _ := Parse(with(tiny, map[string]any{"tie_word_embeddings": true}))
	s = setFor(tied, safetensors.F32)
	if _, ok := s[LMHead]; ok {
		t.Fatal("tied config expects lm_head")
	}
	if err := tied.CheckTensors(s); err != nil {
		t.Fatal(err)
	}
	s[LMHead] = safetensors.TensorInfo{DType: safetensors.F32, Shape: []int{100, 16}}
	if err := tied.CheckTensors(s); err == nil || !strings.Contains(err.Error(), "1 unexpected (lm_head.weight)") || !strings.Contains(err.Error(), "tied embeddings") {
		t.Errorf("lm_head with tied embeddings: %v", err)
	}

	// Many problems are summarized, not listed one per line forever.
	s = fakeSet{}
	err = load(t, "llama-3-8b.json").CheckTensors(s)
	if err == nil || !strings.Contains(err.Error(), "291 missing") || !strings.Contains(err.Error(), "and 283 more") {
		t.Errorf("empty set: %v", err)
	}
}

// A real safetensors file written for a tiny Phi-3 passes CheckTensors
// through the safetensors package's types.
func TestCheckTensorsOnFile(t *testing.T) {
	c, err := Parse(with(tiny, map[string]any{"architectures": []string{"Phi3ForCausalLM"}, "model_type": "phi3", "vocab_size": 32064, "num_hidden_layers": 1}))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, spec := range c.Tensors() {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		ts = append(ts, safetensors.Tensor{Name: spec.Name, DType: safetensors.BF16, Shape: spec.Shape, Data: make([]byte, 2*n)})
	}
	dir := t.TempDir()
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := safetensors.OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.CheckTensors(m); err != nil {
		t.Fatal(err)
	}
	qkv, _ := m.Info(c2.Layer(0).QKV)
	if qkv.Shape[0] != c2.QDim()+2*c2.KVDim() {
		t.Errorf("qkv rows %d", qkv.Shape[0])
	}
}

// Inverse RoPE frequencies against PyTorch 1.13 (Debian python3-torch)
// running transformers' _compute_default_rope_parameters,
// _compute_linear_scaling_rope_parameters (transformers 4.49.0) and
// _compute_llama3_parameters.
func TestInvFreqMatchesPyTorch(t *testing.T) {
	gold := []struct {
		name  string
		cfg   []byte
		torch []uint32
	}{
		{"default theta 10000, head_dim 64", with(tiny, map[string]any{"head_dim": 64}), []uint32{
			0x3F800000, 0x3F3FF911, 0x3F0FF59A, 0x3ED7E89B, 0x3EA1E89B, 0x3E72D423, 0x3E361887, 0x3E088D77, 0x3DCCCCCD, 0x3D99940D, 0x3D6655C2, 0x3D2CBA15, 0x3D0186E3, 0x3CC2434F, 0x3C91AD39, 0x3C5A7BF2, 0x3C23D70A, 0x3BF5B9B0, 0x3BB8449C, 0x3B8A2E77, 0x3B4F3E38, 0x3B1B690D, 0x3AE91528, 0x3AAEC98E, 0x3A83126F, 0x3A44948C, 0x3A136A16, 0x39DD1725, 0x39A5CB60, 0x3978A815, 0x393A7753, 0x390BD472}},
		{"default theta 500000, head_dim 128 (Llama-3-8B)", mustRead(t, "llama-3-8b.json"), []uint32{
			0x3F800000, 0x3F508AC1, 0x3F29E1C6, 0x3F0A6384, 0x3EE177BC, 0x3EB7AB7D, 0x3E959EE3, 0x3E73C461, 0x3E4693B0, 0x3E21C3A0, 0x3E03C6A0, 0x3DD6B19C, 0x3DAEE4AD, 0x3D8E7898, 0x3D681E67, 0x3D3D1684, 0x3D1A08C8, 0x3CFAF53F, 0x3CCC6F49, 0x3CA68939, 0x3C87A9C3, 0x3C5D06EC, 0x3C340D6D, 0x3C12AC7F, 0x3BEEF74F, 0x3BC2AA76, 0x3B9E9402, 0x3B812E35, 0x3B527720, 0x3B2B72DC, 0x3B0BAA41, 0x3AE38C10, 0x3AB95D21, 0x3A970023, 0x3A7603EA, 0x3A486886, 0x3A23418D, 0x3A04FDBF, 0x39D8AC81, 0x39B08199, 0x398FC8F8, 0x396A426F, 0x393ED4F4, 0x391B7475, 0x38FD45C3, 0x38CE51F5, 0x38A8126B, 0x3888EA0F, 0x385F10C4, 0x3835B687, 0x381406CB, 0x37F12B80, 0x37C47610, 0x37A00A69, 0x37825F34, 0x37546808, 0x372D07A7, 0x370CF400, 0x36E5A54D, 0x36BB12C7, 0x369864A7, 0x367848C2, 0x364A41B0, 0x3624C2FF}},
		{"llama3 factor 8 (Llama-3.1-8B)", mustRead(t, "llama-3.1-8b-instruct.json"), []uint32{
			0x3F800000, 0x3F508AC1, 0x3F29E1C6, 0x3F0A6384, 0x3EE177BC, 0x3EB7AB7D, 0x3E959EE3, 0x3E73C461, 0x3E4693B0, 0x3E21C3A0, 0x3E03C6A0, 0x3DD6B19C, 0x3DAEE4AD, 0x3D8E7898, 0x3D681E67, 0x3D3D1684, 0x3D1A08C8, 0x3CFAF53F, 0x3CCC6F49, 0x3CA68939, 0x3C87A9C3, 0x3C5D06EC, 0x3C340D6D, 0x3C12AC7F, 0x3BEEF74F, 0x3BC2AA76, 0x3B9E9402, 0x3B812E35, 0x3B527720, 0x3B0DFD06, 0x3AB3D11D, 0x3A60979E, 0x3A0995D2, 0x39A3F108, 0x393B2DD2, 0x38C86886, 0x38A3418D, 0x3884FDBF, 0x3858AC81, 0x38308199, 0x380FC8F8, 0x37EA426F, 0x37BED4F4, 0x379B7475, 0x377D45C3, 0x374E51F5, 0x3728126B, 0x3708EA0F, 0x36DF10C4, 0x36B5B687, 0x369406CB, 0x36712B80, 0x36447610, 0x36200A69, 0x36025F34, 0x35D46808, 0x35AD07A7, 0x358CF400, 0x3565A54D, 0x353B12C7, 0x351864A7, 0x34F848C2, 0x34CA41B0, 0x34A4C2FF}},
		{"linear factor 3, head_dim 64", with(tiny, map[string]any{"head_dim": 64, "rope_scaling": map[string]any{"rope_type": "linear", "factor": 3.0}}), []uint32{
			0x3EAAAAAB, 0x3E7FF6C1, 0x3E3FF223, 0x3E0FF067, 0x3DD7E0CF, 0x3DA1E2C2, 0x3D72CB5F, 0x3D3611F4, 0x3D088889, 0x3CCCC567, 0x3C998E81, 0x3C664D71, 0x3C2CB3D9, 0x3C018235, 0x3BC23C4C, 0x3B91A7F7, 0x3B5A740D, 0x3B23D120, 0x3AF5B0D0, 0x3AB83DF4, 0x3A8A297B, 0x3A4F36BC, 0x3A1B6370, 0x39E90CBD, 0x39AEC33F, 0x39830DB3, 0x39448D73, 0x391364C3, 0x38DD0F2B, 0x38A5C563, 0x38789F19, 0x383A7098}},
		{"llama3 factor 32, head_dim 64 (Llama-3.2-1B)", with(tiny, map[string]any{"head_dim": 64, "rope_theta": 500000.0, "max_position_embeddings": 131072,
			"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}), []uint32{
			0x3F800000, 0x3F29E1C6, 0x3EE177BC, 0x3E959EE3, 0x3E4693B0, 0x3E03C6A0, 0x3DAEE4AD, 0x3D681E67, 0x3D1A08C8, 0x3CCC6F49, 0x3C87A9C3, 0x3C340D6D, 0x3BEEF74F, 0x3B9E9402, 0x3B527720, 0x3AA9279B, 0x39E13620, 0x38CB98F7, 0x37A3418D, 0x3758AC81, 0x370FC8F8, 0x36BED4F4, 0x367D45C3, 0x3628126B, 0x35DF10C4, 0x359406CB, 0x35447610, 0x35025F34, 0x34AD07A7, 0x3465A54D, 0x341864A7, 0x33CA41B0}},
	}
	for _, g := range gold {
		t.Run(g.name, func(t *testing.T) {
			c, err := Parse(g.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := c.InvFreq()
			if len(got) != len(g.torch) {
				t.Fatalf("%d frequencies, want %d", len(got), len(g.torch))
			}
			for i, bits := range g.torch {
				if math.Float32bits(got[i]) != bits {
					t.Errorf("inv_freq[%d] = %g (%#08x), PyTorch %g (%#08x)", i, got[i], math.Float32bits(got[i]), math.Float32frombits(bits), bits)
				}
			}
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJSONWritesHFFields(t *testing.T) {
	c := load(t, "phi-3-mini-4k-instruct.json")
	js, err := c.JSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	for _, want := range []string{`"architectures": [` + "\n" + `    "Phi3ForCausalLM"`, `"model_type": "phi3"`, `"sliding_window": 2047`, `"pad_token_id": 32000`, `"original_max_position_embeddings": 4096`, `"rope_scaling": null`} {
		if !strings.Contains(s, want) {
			t.Errorf("config.json lacks %s:\n%s", want, s)
		}
	}
	c.RMSNormEps = math.NaN()
	if _, err := c.JSON(); err == nil {
		t.Error("NaN written")
	}
}

func FuzzConfig(f *testing.F) {
	for _, name := range []string{"llama-3-8b.json", "llama-3.1-8b-instruct.json", "mistral-7b-v0.1.json", "phi-3-mini-4k-instruct.json", "phi-3-mini-128k-instruct.json", "gpt2.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(tiny))
	f.Add([]byte(`{"model_type":"mistral","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":null,"vocab_size":3,"bos_token_id":null,"eos_token_id":[0,2]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of no class: %v", err)
			}
			return
		}
		// Whatever parses is internally consistent and survives a round trip.
		if c.NumAttentionHeads%c.NumKeyValueHeads != 0 || c.HeadDim%2 != 0 || c.HeadDim <= 0 {
			t.Fatalf("inconsistent config accepted: %+v", *c)
		}
		_ = c.Check(c.MaxPositionEmbeddings)
		if got := len(c.InvFreq()); got != c.HeadDim/2 {
			t.Fatalf("%d frequencies for head_dim %d", got, c.HeadDim)
		}
		for _, f := range c.InvFreq() {
			if f != f {
				t.Fatalf("NaN frequency for %+v", *c)
			}
		}
		if c.NumHiddenLayers <= 64 {
			if n := len(c.Tensors()); n != c.NumHiddenLayers*(9-btoi(c.FusedQKV)*2-btoi(c.FusedGateUp))+2+btoi(!c.TieWordEmbeddings) {
				t.Fatalf("%d tensors for %+v", n, *c)
			}
		}
		js, err := c.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(js)
		if err != nil {
			t.Fatalf("Parse(JSON()): %v\n%s", err, js)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", *back, *c)
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
