package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// writeTinyModel writes a random 2-layer Llama with a character-level
// tokenizer (64 ids) into a temporary directory.
func writeTinyModel(t *testing.T, chatTemplate string) string {
	t.Helper()
	dir := t.TempDir()
	cfgJSON := `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":32,"intermediate_size":48,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":64,"max_position_embeddings":512,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":false}`
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgJSON), 0o644)
	cfg, err := config.Parse([]byte(cfgJSON))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
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
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2, "<|user|>": 3, "<|end|>": 4, "<|assistant|>": 5}
	chars := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,!?\n"
	for i, r := range chars {
		vocab[string(r)] = 6 + i
	}
	var added []map[string]any
	for _, s := range []string{"<unk>", "<s>", "</s>", "<|user|>", "<|end|>", "<|assistant|>"} {
		added = append(added, map[string]any{"id": vocab[s], "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	tokJSON, _ := json.Marshal(map[string]any{
		"version": "1.0", "added_tokens": added, "normalizer": nil, "pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":           []any{map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}}},
		"decoder": map[string]any{"type": "Fuse"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{}, "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": false},
	})
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), tokJSON, 0o644)
	tc := map[string]any{"bos_token": "<s>", "eos_token": "</s>"}
	if chatTemplate != "" {
		tc["chat_template"] = chatTemplate
	}
	tcJSON, _ := json.Marshal(tc)
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tcJSON, 0o644)
	return dir
}

func runGenerate(t *testing.T, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := cmdGenerate(context.Background(), args, &out, &errb)
	return out.String(), err
}

func TestGenerateCommand(t *testing.T) {
	dir := writeTinyModel(t, "")
	a, err := runGenerate(t, "--model", dir, "--prompt", "hello", "--max-tokens", "12")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := runGenerate(t, "--model", dir, "--prompt", "hello", "--max-tokens", "12")
	if a != b || a == "" {
		t.Errorf("greedy runs differ or are empty: %q vs %q", a, b)
	}
	t.Logf("greedy: %q", a)
	s1, _ := runGenerate(t, "--model", dir, "--prompt", "hello", "--max-tokens", "12", "--temperature", "1", "--seed", "7")
	s2, _ := runGenerate(t, "--model", dir, "--prompt", "hello", "--max-tokens", "12", "--temperature", "1", "--seed", "7", "--top-p", "0.9", "--top-k", "20")
	t.Logf("sampled: %q %q", s1, s2)

	for name, tc := range map[string]struct{ dir, want string }{
		"missing":     {filepath.Join(t.TempDir(), "none"), "does not exist"},
		"not a model": {t.TempDir(), "config.json"},
	} {
		_, err := runGenerate(t, "--model", tc.dir, "--prompt", "x")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	gpt := writeTinyModel(t, "")
	os.WriteFile(filepath.Join(gpt, "config.json"), []byte(`{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2"}`), 0o644)
	if _, err := runGenerate(t, "--model", gpt, "--prompt", "x"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("gpt2: %v", err)
	}
	dmg := writeTinyModel(t, "")
	os.WriteFile(filepath.Join(dmg, "model.safetensors"), []byte("xx"), 0o644)
	if _, err := runGenerate(t, "--model", dmg, "--prompt", "x"); err == nil {
		t.Error("damaged weights: no error")
	} else {
		t.Logf("damaged: %v", err)
	}
}

func TestGenerateChat(t *testing.T) {
	dir := writeTinyModel(t, "{% for message in messages %}<|user|>\n{{ message['content'] }}<|end|>\n<|assistant|>\n{% endfor %}")
	out, err := runGenerate(t, "--model", dir, "--prompt", "hi", "--max-tokens", "30", "--chat")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chat: %q", out)
	if _, err := runGenerate(t, "--model", writeTinyModel(t, ""), "--prompt", "hi", "--chat"); err == nil {
		t.Log("no template: detected anyway")
	} else {
		t.Logf("no template: %v", err)
	}
}

func TestStopWriter(t *testing.T) {
	var b bytes.Buffer
	s := &stopWriter{w: &b, stops: []string{"<|end|>", "\nUser:"}}
	var err error
	for _, p := range []string{"Hel", "lo <|", "e", "nd", "|> more"} {
		if err = s.write(p); err != nil {
			break
		}
	}
	if err == nil || b.String() != "Hello " {
		t.Errorf("got %q, %v", b.String(), err)
	}
	b.Reset()
	s = &stopWriter{w: &b, stops: []string{"<|end|>"}}
	s.write("a <|en")
	s.write("x")
	s.close()
	if b.String() != "a <|enx\n" {
		t.Errorf("false alarm: got %q", b.String())
	}
}
