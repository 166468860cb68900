package gguf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// intKV reads an integer metadata value.
func (f *File) intKV(key string) (int, error) {
	v, ok := f.KV[key]
	if !ok {
		return 0, fmt.Errorf("gguf %s: no %s", f.Name, key)
	}
	n, ok := v.AsInt()
	if !ok {
		return 0, fmt.Errorf("gguf %s: %s is a %s, want an integer", f.Name, key, v.Type)
	}
	return n, nil
}

// ConvertLlama writes a llama-architecture GGUF file as a Hugging Face
// model directory in dir: config.json, model.safetensors (every tensor
// dequantized to F32, renamed to transformers' names, q and k rows put back
// from llama.cpp's interleaved RoPE order into rotate_half order),
// tokenizer.json (byte-level BPE from tokenizer.ggml.*) and
// tokenizer_config.json (bos, eos, chat_template).
func ConvertLlama(f *File, dir string) error {
	if a := f.KV["general.architecture"].Str; a != "llama" {
		return fmt.Errorf("gguf %s: architecture %q is not supported (want llama)", f.Name, a)
	}
	get := map[string]int{}
	for _, k := range []string{"block_count", "embedding_length", "feed_forward_length", "attention.head_count", "attention.head_count_kv", "context_length"} {
		n, err := f.intKV("llama." + k)
		if err != nil {
			return err
		}
		get[k] = n
	}
	tokens := f.KV["tokenizer.ggml.tokens"].Strs
	if len(tokens) == 0 {
		return fmt.Errorf("gguf %s: no tokenizer.ggml.tokens", f.Name)
	}
	theta, _ := f.KV["llama.rope.freq_base"].AsFloat()
	if theta == 0 {
		theta = 10000
	}
	eps, _ := f.KV["llama.attention.layer_norm_rms_epsilon"].AsFloat()
	bos, _ := f.KV["tokenizer.ggml.bos_token_id"].AsInt()
	eos, _ := f.KV["tokenizer.ggml.eos_token_id"].AsInt()
	_, hasOutput := f.Tensor("output.weight")
	heads, kvHeads := get["attention.head_count"], get["attention.head_count_kv"]
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": get["embedding_length"], "intermediate_size": get["feed_forward_length"],
		"num_hidden_layers": get["block_count"], "num_attention_heads": heads,
		"num_key_value_heads": kvHeads, "max_position_embeddings": get["context_length"],
		"vocab_size": len(tokens), "rms_norm_eps": eps, "rope_theta": theta,
		"tie_word_embeddings": !hasOutput, "bos_token_id": bos, "eos_token_id": eos,
		"hidden_act": "silu", "torch_dtype": "float32",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	headDim := get["embedding_length"] / heads
	var ts []safetensors.Tensor
	for _, ti := range f.Tensors {
		name, ok := hfName(ti.Name)
		if !ok {
			return fmt.Errorf("gguf %s: tensor %q has no transformers counterpart", f.Name, ti.Name)
		}
		v, err := f.Float32(ti.Name)
		if err != nil {
			return err
		}
		switch {
		case strings.HasSuffix(ti.Name, ".attn_q.weight"):
			v = unpermute(v, int(ti.Dims[0]), headDim)
		case strings.HasSuffix(ti.Name, ".attn_k.weight"):
			v = unpermute(v, int(ti.Dims[0]), headDim)
		}
		ts = append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: ti.Shape(), Data: safetensors.F32Bytes(v)})
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFileName), ts, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return writeTokenizer(f, dir, tokens)
}

// unpermute undoes llama.cpp's convert_hf_to_gguf permute of a q or k
// weight (rows of length cols): within each head, GGUF row 2j+s is
// transformers' row s·headDim/2 + j.
func unpermute(v []float32, cols, headDim int) []float32 {
	out := make([]float32, len(v))
	rows := len(v) / cols
	half := headDim / 2
	for r := 0; r < rows; r++ {
		head, i := r/headDim, r%headDim
		j, s := i/2, i%2
		dst := head*headDim + s*half + j
		copy(out[dst*cols:(dst+1)*cols], v[r*cols:(r+1)*cols])
	}
	return out
}

var layerNames = map[string]string{
	"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
	"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
	"attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
	"ffn_down": "mlp.down_proj",
}

// hfName maps a GGUF llama tensor name to transformers'.
func hfName(n string) (string, bool) {
	switch n {
	case "token_embd.weight":
		return "model.embed_tokens.weight", true
	case "output_norm.weight":
		return "model.norm.weight", true
	case "output.weight":
		return "lm_head.weight", true
	}
	var layer int
	var part string
	if _, err := fmt.Sscanf(n, "blk.%d.%s", &layer, &part); err != nil {
		return "", false
	}
	base, ok := strings.CutSuffix(part, ".weight")
	if !ok {
		return "", false
	}
	hf, ok := layerNames[base]
	if !ok {
		return "", false
	}
	return fmt.Sprintf("model.layers.%d.%s.weight", layer, hf), true
}

func writeTokenizer(f *File, dir string, tokens []string) error {
	if m := f.KV["tokenizer.ggml.model"].Str; m != "gpt2" {
		return fmt.Errorf("gguf %s: tokenizer.ggml.model %q is not supported (want gpt2, byte-level BPE)", f.Name, m)
	}
	vocab := make(map[string]int, len(tokens))
	for i, t := range tokens {
		vocab[t] = i
	}
	types := f.KV["tokenizer.ggml.token_type"].Ints
	var added []map[string]any
	for i, t := range tokens {
		if i < len(types) && types[i] == 3 { // control
			added = append(added, map[string]any{"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
		}
	}
	pre := []any{map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}}
	if f.KV["tokenizer.ggml.pre"].Str == "smollm" {
		pre = append([]any{map[string]any{"type": "Split", "pattern": map[string]string{"Regex": `\p{N}`}, "behavior": "Isolated", "invert": false}}, pre...)
	}
	tok := map[string]any{
		"version": "1.0", "added_tokens": added, "normalizer": nil,
		"pre_tokenizer":  map[string]any{"type": "Sequence", "pretokenizers": pre},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": f.KV["tokenizer.ggml.merges"].Strs},
	}
	if err := writeJSON(filepath.Join(dir, "tokenizer.json"), tok); err != nil {
		return err
	}
	tc := map[string]any{}
	if id, ok := f.KV["tokenizer.ggml.bos_token_id"].AsInt(); ok && id >= 0 && id < len(tokens) {
		tc["bos_token"] = tokens[id]
	}
	if id, ok := f.KV["tokenizer.ggml.eos_token_id"].AsInt(); ok && id >= 0 && id < len(tokens) {
		tc["eos_token"] = tokens[id]
	}
	if t := f.KV["tokenizer.chat_template"].Str; t != "" {
		tc["chat_template"] = t
	}
	return writeJSON(filepath.Join(dir, "tokenizer_config.json"), tc)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}
