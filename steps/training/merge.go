package training

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/train"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/device"
)

// Merge is the merge step kind.
type Merge struct{}

func init() { steps.Register(Merge{}) }

// MergeVersion enters every merge key.
const MergeVersion = "2"

// Schema implements steps.Kind.
func (Merge) Schema() steps.Schema {
	return steps.Schema{
		Kind:    "merge",
		Version: MergeVersion,
		Doc: "Folds a LoRA adapter into its base model and writes a float32 Hugging Face model directory. " +
			"The adapter was trained against the NF4-quantized base, so it is merged into the dequantized base — W' = dequant(NF4(W)) + scaling·B·A — " +
			"not into the original 16-bit weights; the merged model computes what the trained model computed.",
		Heavy: true,
		Attributes: []steps.Attribute{
			{Name: "base", Type: cty.String, Input: true, Required: true, Doc: "The base model the adapter was trained on: a Hugging Face directory or a llama-architecture .gguf file."},
			{Name: "adapter", Type: cty.String, Input: true, Required: true, Doc: "A PEFT LoRA adapter directory (qlora_train.NAME.adapter)."},
			{Name: "threads", Type: cty.Number, Default: num(0), NotInKey: true, Doc: "CPU threads (0: all cores)."},
			device.Attribute(),
		},
		Outputs: []steps.Output{
			{Name: "output", Path: "model", Dir: true, Doc: "config.json, model.safetensors (float32), generation and tokenizer files."},
			{Name: "report", Path: "merge.json", Doc: "What was merged."},
		},
	}
}

// Run implements steps.Kind.
func (Merge) Run(ctx context.Context, inv *steps.Invocation) error {
	baseDir, err := llama.ModelDir(inv.Inputs["base"][0].Path) // a .gguf file becomes a converted directory
	if err != nil {
		return err
	}
	adapter, err := train.LoadAdapter(inv.Inputs["adapter"][0].Path)
	if err != nil {
		return err
	}
	var c threadsConfig
	if err := inv.Decode(&c); err != nil {
		return err
	}
	be, err := c.backend(inv)
	if err != nil {
		return err
	}
	out := filepath.Join(inv.OutDir, "model")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	st, err := train.Merge(filepath.Join(out, "model.safetensors"), baseDir, adapter, be)
	if err != nil {
		return err
	}
	// config.json: the base's, with the dtype of the merged weights.
	raw, err := os.ReadFile(filepath.Join(baseDir, "config.json"))
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(baseDir, "config.json"), err)
	}
	cfg["torch_dtype"] = "float32"
	delete(cfg, "quantization_config")
	if err := steps.WriteJSON(filepath.Join(out, "config.json"), cfg); err != nil {
		return err
	}
	for _, name := range append([]string{"generation_config.json"}, tokenizerFiles...) {
		data, err := os.ReadFile(filepath.Join(baseDir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(out, "tokenizer.json")); err != nil {
		return fmt.Errorf("base model %s has no tokenizer.json to copy into the merged model", inv.Inputs["base"][0].Name)
	}
	if err := writeChatTemplate(out); err != nil {
		return err
	}
	return steps.WriteJSON(filepath.Join(inv.OutDir, "merge.json"), map[string]any{
		"base": inv.Inputs["base"][0].Name, "adapter": inv.Inputs["adapter"][0].Name,
		"into":    "dequantized NF4 base (W' = dequant(NF4(W)) + scaling*B*A), float32",
		"scaling": adapter.Config.Scaling(), "r": adapter.Config.R, "target_modules": adapter.Targets,
		"tensors": st.Tensors, "dequantized_linears": st.Quantized, "adapted_linears": st.Adapted,
	})
}

// writeChatTemplate makes the merged model's tokenizer_config.json name
// the chat template it was fine-tuned in (see trainingTemplate): a base
// with a chat template of its own keeps it; otherwise the model was
// trained in TwainBot's format, whose Jinja template is written in, so
// that mlbuild chat and transformers' apply_chat_template speak it.
func writeChatTemplate(dir string) error {
	if _, found, err := chat.ForModelDir(dir, nil); err != nil || found {
		return err
	}
	path := filepath.Join(dir, "tokenizer_config.json")
	cfg := map[string]any{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &cfg); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	case !os.IsNotExist(err):
		return err
	}
	jinja, err := chat.TwainBot().Jinja()
	if err != nil {
		return err
	}
	cfg["chat_template"] = jinja
	return steps.WriteJSON(path, cfg)
}
