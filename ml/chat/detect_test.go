package chat

import (
	"os"
	"path/filepath"
	"testing"
)

// TestForModelDir: the template comes from the chat_template only; special
// tokens alone, no template and no file give the fallback.
func TestForModelDir(t *testing.T) {
	fallback := TwainBot()
	for _, c := range []struct {
		config string // "" writes no file
		want   string
		found  bool
	}{
		{`{"chat_template": "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM' }}<|im_end|>"}`, "smollm2", true},
		{`{"chat_template": "<|im_start|>{{ role }}<|im_end|>"}`, "chatml", true},
		{`{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}`, TwainBotName, false},
		{`{"chat_template": "[INST] <<SYS>>"}`, TwainBotName, false},
		{"", TwainBotName, false},
	} {
		dir := t.TempDir()
		if c.config != "" {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, found, err := ForModelDir(dir, fallback)
		if err != nil || got.Name != c.want || found != c.found {
			t.Errorf("ForModelDir(%s) = %v, %v, %v; want %s, %v", c.config, got.Name, found, err, c.want, c.found)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ForModelDir(dir, fallback); err == nil {
		t.Error("ForModelDir accepted invalid JSON")
	}
}
