package eval

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	mlconfig "github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/steps/synthtools"
)

// writeTinyModel writes a random 2-layer Llama with a character-level
// tokenizer (printable ASCII and newline) into a temporary directory. With
// specialTags the chat tags ("<|user|>" ...) are special tokens of their
// own; without, they are spelled character by character.
func writeTinyModel(t *testing.T, seed uint64, specialTags bool) string {
	t.Helper()
	dir := t.TempDir()
	cfgJSON := `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":32,"intermediate_size":48,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":128,"max_position_embeddings":4096,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":false}`
	must(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644))
	cfg, err := mlconfig.Parse([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	var ts []safetensors.Tensor
	for _, s := range cfg.Tensors() {
		n := 1
		for _, d := range s.Shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.3)
			if len(s.Shape) == 1 {
				v[i] = 1
			}
		}
		ts = append(ts, safetensors.Tensor{Name: s.Name, DType: safetensors.BF16, Shape: s.Shape, Data: safetensors.BF16Bytes(v)})
	}
	must(t, safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil))

	specials := []string{"<unk>", "<s>", "</s>"}
	if specialTags {
		specials = append(specials, synthtools.Tags()...)
	}
	vocab := map[string]int{}
	var added []map[string]any
	for i, s := range specials {
		vocab[s] = i
		added = append(added, map[string]any{"id": i, "content": s, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	next := len(specials)
	vocab["\n"] = next
	next++
	for c := ' '; c <= '~'; c++ {
		vocab[string(c)] = next
		next++
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
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokJSON, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"bos_token":"<s>","eos_token":"</s>"}`), 0o644))
	return dir
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
