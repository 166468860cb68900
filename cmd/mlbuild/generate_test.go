package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// writeTinyModel writes a random 2-layer Llama with a character-level
// tokenizer (64 ids) into a temporary directory.
func writeTinyModel(t *testing.T, chatTemplate string) string {
	t.Helper()
	dir := t.TempDir()
	var chars []string
	for _, r := range "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,!?\n" {
		chars = append(chars, string(r))
	}
	err := tinymodel.Write(dir, tinymodel.Spec{Seed: 1, VocabSize: 64, MaxPositions: 512,
		Specials: []string{"<|user|>", "<|end|>", "<|assistant|>"}, Chars: chars, ChatTemplate: chatTemplate})
	if err != nil {
		t.Fatal(err)
	}
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
	if err := os.WriteFile(filepath.Join(gpt, "config.json"), []byte(`{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runGenerate(t, "--model", gpt, "--prompt", "x"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("gpt2: %v", err)
	}
	dmg := writeTinyModel(t, "")
	if err := os.WriteFile(filepath.Join(dmg, "model.safetensors"), []byte("xx"), 0o644); err != nil {
		t.Fatal(err)
	}
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
	// The README's form: the message as the one argument.
	if arg, err := runGenerate(t, "--model", dir, "--max-tokens", "30", "--chat", "hi"); err != nil || arg != out {
		t.Errorf("generate --chat TEXT = %q, %v; want what --prompt TEXT gives, %q", arg, err, out)
	}
	if _, err := runGenerate(t, "--model", dir, "--chat", "hi", "there"); err == nil {
		t.Error("two texts accepted")
	}
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
	for _, p := range []string{"a <|en", "x"} {
		if err := s.write(p); err != nil {
			t.Fatalf("false alarm: write %q: %v", p, err)
		}
	}
	if err := s.close(); err != nil {
		t.Fatalf("false alarm: close: %v", err)
	}
	if b.String() != "a <|enx\n" {
		t.Errorf("false alarm: got %q", b.String())
	}
}

// spTokenizerJSON is a SentencePiece-style tokenizer.json (Mistral's
// layout: spaces become ▁, the decoder strips one leading space at the
// start of a text) with the characters of "Lily went to the" and the
// words ▁park (id 14) and ▁lake (id 15).
const spTokenizerJSON = `{
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "▁"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": false,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "L": 4, "i": 5, "l": 6, "y": 7, "w": 8, "e": 9,
      "n": 10, "t": 11, "o": 12, "h": 13, "▁park": 14, "▁lake": 15},
    "merges": []}
}`

// The streamed text of a continuation keeps the leading space of its first
// token: "Lily went to the" continues as " park", not "park" (the ids were
// right; decoding them apart from the prompt's made the first one the
// start of a text, where the decoder strips a space). The model is
// steered so that its every token is ▁park or ▁lake: the output layer
// scores those two ±(the first hidden dimension) and every other token 0.
func TestGenerateKeepsContinuationSpace(t *testing.T) {
	dir := writeTinyModel(t, "")
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(spTokenizerJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.safetensors")
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, ti := range f.Tensors() {
		raw, err := f.Raw(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if ti.Name == "lm_head.weight" {
			v := make([]float32, ti.Shape[0]*ti.Shape[1])
			v[14*ti.Shape[1]] = 1  // ▁park
			v[15*ti.Shape[1]] = -1 // ▁lake
			raw = safetensors.BF16Bytes(v)
		}
		ts = append(ts, safetensors.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Data: append([]byte(nil), raw...)})
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	out, err := runGenerate(t, "--model", dir, "--prompt", "Lily went to the", "--max-tokens", "3")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^( park| lake){3}\n$`).MatchString(out) {
		t.Errorf("generate printed %q, want three of \" park\" and \" lake\" (the leading space kept) and a newline", out)
	}
}
