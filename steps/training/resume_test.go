package training

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/internal/tinymodel"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// readTree returns every file under dir by its slash path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// A qlora_train step interrupted after a checkpoint and run again resumes
// from it, says so in its log, and writes outputs byte for byte those of an
// uninterrupted run: whether a run resumed is not part of what it built, so
// verify and --locked, which compare the outputs' digests, do not call a
// resumed result irreproducible.
func TestQLoRAResumedMatchesAnUninterruptedRun(t *testing.T) {
	ws := steptest.New(t)
	writeData(ws)
	base := filepath.Join(ws.Dir, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tinymodel.Write(base, tinymodel.Spec{Seed: 5, VocabSize: 128, MaxPositions: 256, Chars: chars()}); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(ws.Dir, "data", "chat.jsonl")
	inputs := map[string][]steps.InputFile{"base": {steptest.Input(base, "base")},
		"train": {steptest.Input(data, "data/chat.jsonl")}, "validation": {steptest.Input(data, "data/chat.jsonl")}}
	cfg := map[string]cty.Value{"seq_len": cty.NumberIntVal(64), "batch_size": cty.NumberIntVal(4), "grad_accum": cty.NumberIntVal(1),
		"epochs": cty.NumberIntVal(1), "eval_every": cty.NumberIntVal(2), "checkpoint_every": cty.NumberIntVal(2), "threads": cty.NumberIntVal(2),
		"r": cty.NumberIntVal(2), "lora_alpha": cty.NumberIntVal(4), "lora_dropout": cty.NumberFloatVal(0.1)}
	// run trains in stateDir, interrupted after step stopAt when it is
	// above 0, and returns its output folder's files and its log.
	run := func(stateDir string, stopAt float64) (map[string][]byte, string, error) {
		inv := steptest.Invocation(t, QLoRA{}, "qlora_train.tune", inputs, cfg)
		inv.StateDir = stateDir
		var log bytes.Buffer
		inv.Log = slog.New(slog.NewTextHandler(&log, nil))
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
			return nil, log.String(), err
		}
		return readTree(t, inv.OutDir), log.String(), nil
	}
	want, _, err := run(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	if _, _, err := run(state, 3); err == nil {
		t.Fatal("the interrupted run did not stop")
	}
	if files, _ := filepath.Glob(filepath.Join(state, "checkpoint-*.safetensors")); len(files) != 1 {
		t.Fatalf("the interrupted run left checkpoints %v, want one", files)
	}
	got, log, err := run(state, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "resuming from checkpoint") {
		t.Errorf("the resumed run's log does not say it resumed:\n%s", log)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: missing from the resumed run's outputs", name)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s differs from the uninterrupted run's:\n%.2000s\n---\n%.2000s", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: only in the resumed run's outputs", name)
		}
	}
}
