package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
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
