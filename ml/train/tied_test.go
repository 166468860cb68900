package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// TestTiedEmbeddingsAdapter: the adapter of a tied model whose embeddings
// were trained saves the matrix as lm_head too and lists lm_head in
// modules_to_save (PEFT's wrapper would otherwise compute the logits with
// the untrained matrix; ml/interop checks the logits against PEFT's), and
// Merge takes it, but refuses an lm_head that differs from embed_tokens.
func TestTiedEmbeddingsAdapter(t *testing.T) {
	cfg := tinyConfig(t, "llama", true)
	base := t.TempDir()
	js := map[string]any{"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
		"num_key_value_heads": 2, "vocab_size": 23, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
		"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": true,
		"architectures": []string{string(cfg.Architecture)}, "model_type": cfg.ModelType}
	data, _ := json.Marshal(js)
	if err := os.WriteFile(filepath.Join(base, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveWeights(filepath.Join(base, "model.safetensors"), cfg, NewPretrain(cfg, tensor.NewCPU(1), 5, 0.3).ParamData()); err != nil {
		t.Fatal(err)
	}
	be := tensor.NewCPU(1)
	lc := loraConfig()
	lc.ModulesToSave = []string{EmbedTokensModule}
	m, err := LoadQLoRA(base, be, lc, 1)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, m.embed.W.Len())
	be.Read(m.embed.W, v)
	for i := range v {
		v[i] += 0.05 * float32(i%7)
	}
	be.Write(m.embed.W, v)

	ad := m.Adapter()
	head, embed := ad.Tensors[adapterLMHeadName], ad.Tensors[adapterEmbedName]
	if !slices.Equal(head.Data, v) || !slices.Equal(embed.Data, v) || !slices.Equal(head.Shape, embed.Shape) {
		t.Fatal("the adapter's lm_head and embed_tokens are not the trained matrix")
	}
	if !slices.Equal(ad.Config.ModulesToSave, []string{EmbedTokensModule, LMHeadModule}) || !slices.Equal(m.lora.ModulesToSave, []string{EmbedTokensModule}) {
		t.Fatalf("modules_to_save: adapter %v, model %v", ad.Config.ModulesToSave, m.lora.ModulesToSave)
	}
	dir := t.TempDir()
	if err := ad.Save(dir, "base"); err != nil {
		t.Fatal(err)
	}
	back, err := LoadAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Merge(filepath.Join(t.TempDir(), "model.safetensors"), base, back, be)
	if err != nil {
		t.Fatal(err)
	}
	if st.Saved != 1 {
		t.Fatalf("merge replaced %d saved modules, want 1 (the tied matrix)", st.Saved)
	}
	back.Tensors[adapterLMHeadName].Data[0]++
	if _, err := Merge(filepath.Join(t.TempDir(), "model.safetensors"), base, back, be); err == nil || !strings.Contains(err.Error(), "ties lm_head to embed_tokens") {
		t.Fatalf("merge of a tied base with a different lm_head: %v", err)
	}
}
