package training

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// A qlora_train step whose state folder holds a damaged checkpoint (one
// byte of its tensors changed after an interruption) trains afresh and
// writes the adapter and metrics.json of an uninterrupted run, byte for
// byte, instead of resuming from the damage.
func TestQLoRAWithADamagedCheckpointMatchesAnUninterruptedRun(t *testing.T) {
	ws := steptest.New(t)
	writeData(ws)
	base := filepath.Join(ws.Dir, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tinymodel.Write(base, tinymodel.Spec{Seed: 3, VocabSize: 128, MaxPositions: 256, Chars: chars()}); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(ws.Dir, "data", "chat.jsonl")
	inputs := map[string][]steps.InputFile{"base": {steptest.Input(base, "base")},
		"train": {steptest.Input(data, "data/chat.jsonl")}, "validation": {steptest.Input(data, "data/chat.jsonl")}}
	cfg := map[string]cty.Value{"seq_len": cty.NumberIntVal(64), "batch_size": cty.NumberIntVal(4), "grad_accum": cty.NumberIntVal(1),
		"epochs": cty.NumberIntVal(1), "eval_every": cty.NumberIntVal(0), "checkpoint_every": cty.NumberIntVal(2), "threads": cty.NumberIntVal(2),
		"r": cty.NumberIntVal(2), "lora_alpha": cty.NumberIntVal(4), "lora_dropout": cty.NumberFloatVal(0.1)}
	// run trains in stateDir, interrupted after step stopAt when it is
	// above 0, and returns the adapter's weights and metrics.json.
	run := func(stateDir string, stopAt float64) ([]byte, []byte, error) {
		inv := steptest.Invocation(t, QLoRA{}, "qlora_train.tune", inputs, cfg)
		inv.StateDir = stateDir
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if stopAt > 0 {
			inv.Progress = func(done, _ float64, _ string) {
				if done >= stopAt {
					cancel()
				}
			}
		}
		if err := (QLoRA{}).Run(ctx, inv); err != nil {
			return nil, nil, err
		}
		adapter, err := os.ReadFile(filepath.Join(inv.OutDir, "adapter", "adapter_model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		metrics, err := os.ReadFile(filepath.Join(inv.OutDir, "metrics.json"))
		if err != nil {
			t.Fatal(err)
		}
		return adapter, metrics, nil
	}
	wantAdapter, wantMetrics, err := run(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	if _, _, err := run(state, 3); err == nil {
		t.Fatal("the interrupted run did not stop")
	}
	files, _ := filepath.Glob(filepath.Join(state, "checkpoint-*.safetensors"))
	if len(files) != 1 {
		t.Fatalf("the interrupted run left checkpoints %v, want one", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0x01
	if err := os.WriteFile(files[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	adapter, metrics, err := run(state, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(adapter, wantAdapter) {
		t.Error("the adapter differs from the uninterrupted run's")
	}
	if !bytes.Equal(metrics, wantMetrics) {
		t.Errorf("metrics.json differs from the uninterrupted run's:\n%s\n%s", metrics, wantMetrics)
	}
}
