// Package tinymodel writes tiny random llama models with a character-level
// tokenizer: Hugging Face directories for the tests of the commands and
// steps that load models.
package tinymodel

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// Spec describes a tiny model: a 2-layer Llama (hidden 32, 4 heads, 2
// key/value heads) with random bf16 weights and a tokenizer whose
// vocabulary is <unk>, <s>, </s>, the Specials (special added tokens),
// then the Chars, one token each.
type Spec struct {
	// Seed seeds the weights (a PCG with streams Seed, 2; N(0, 0.3²),
	// norms 1).
	Seed         uint64
	VocabSize    int
	MaxPositions int
	Specials     []string
	Chars        []string
	// ChatTemplate, when set, goes into tokenizer_config.json.
	ChatTemplate string
}

// Write writes config.json, model.safetensors, tokenizer.json and
// tokenizer_config.json into dir.
func Write(dir string, s Spec) error {
	cfgJSON := fmt.Sprintf(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":32,"intermediate_size":48,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":%d,"max_position_embeddings":%d,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":false}`, s.VocabSize, s.MaxPositions)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644); err != nil {
		return err
	}
	cfg, err := config.Parse([]byte(cfgJSON))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 2))
	var ts []safetensors.Tensor
	for _, t := range cfg.Tensors() {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.3)
			if len(t.Shape) == 1 {
				v[i] = 1
			}
		}
		ts = append(ts, safetensors.Tensor{Name: t.Name, DType: safetensors.BF16, Shape: t.Shape, Data: safetensors.BF16Bytes(v)})
	}
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		return err
	}

	specials := append([]string{"<unk>", "<s>", "</s>"}, s.Specials...)
	vocab := map[string]int{}
	var added []map[string]any
	for i, sp := range specials {
		vocab[sp] = i
		added = append(added, map[string]any{"id": i, "content": sp, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	for i, c := range s.Chars {
		vocab[c] = len(specials) + i
	}
	if len(vocab) > s.VocabSize {
		return fmt.Errorf("tinymodel: %d tokens do not fit a vocabulary of %d", len(vocab), s.VocabSize)
	}
	tokJSON, err := json.Marshal(map[string]any{
		"version": "1.0", "added_tokens": added, "normalizer": nil, "pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":           []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}}},
		"decoder": map[string]any{"type": "Fuse"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}, "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": false},
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokJSON, 0o644); err != nil {
		return err
	}
	tc := map[string]any{"bos_token": "<s>", "eos_token": "</s>"}
	if s.ChatTemplate != "" {
		tc["chat_template"] = s.ChatTemplate
	}
	tcJSON, err := json.Marshal(tc)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tcJSON, 0o644)
}
