package training

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbuild/mlbuild/ml/chat"
)

// TestWriteChatTemplate: a merged model whose base had no chat template
// gets TwainBot's, the format it was fine-tuned in (the other keys kept);
// a base's own template is left as it is.
func TestWriteChatTemplate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokenizer_config.json")
	if err := os.WriteFile(path, []byte(`{"bos_token": "<s>", "eos_token": "</s>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeChatTemplate(dir); err != nil {
		t.Fatal(err)
	}
	tpl, found, err := chat.ForModelDir(dir, nil)
	if err != nil || !found || tpl.Name != chat.TwainBotName {
		t.Fatalf("after writeChatTemplate: %v, %v, %v; want twainbot", tpl, found, err)
	}
	data, _ := os.ReadFile(path)
	if name, ok := chat.Detect(data); !ok || name != chat.TwainBotName {
		t.Errorf("Detect = %q, %v", name, ok)
	}

	own := `{"chat_template": "<|im_start|>{{ role }}<|im_end|>"}`
	if err := os.WriteFile(path, []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeChatTemplate(dir); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != own {
		t.Errorf("a base's own template was rewritten: %s", data)
	}

	empty := t.TempDir()
	if err := writeChatTemplate(empty); err != nil {
		t.Fatal(err)
	}
	if tpl, found, _ := chat.ForModelDir(empty, nil); !found || tpl.Name != chat.TwainBotName {
		t.Error("no tokenizer_config.json: none written")
	}
}
