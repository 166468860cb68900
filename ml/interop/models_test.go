package interop_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// logitTolerance bounds relLogitDiff for float32 models.
const logitTolerance = 1e-4

// relLogitDiff is the relative difference of mlbuild's logits from the
// reference's: max |got − want| over every position and vocabulary entry,
// divided by max |want| over the same entries.
func relLogitDiff(got []float32, want [][]float64) float64 {
	num, den := 0.0, 0.0
	V := len(want[0])
	for p, row := range want {
		for i, w := range row {
			num = math.Max(num, math.Abs(float64(got[p*V+i])-w))
			den = math.Max(den, math.Abs(w))
		}
	}
	return num / den
}

type hfModels struct {
	Torch, Transformers string
	InputIDs            []int `json:"input_ids"`
	Prompt              []int
	Cases               []struct {
		Name, Architecture, DType string
		ExpectError               string `json:"expect_error"`
		Logits                    [][]float64
		Greedy                    []int
		Generate                  []int
		Margins                   []float64
	}
}

// TestTransformersModels loads in mlbuild the small random Llama, Mistral
// and Phi-3 models that transformers builds from its config classes and
// writes with save_pretrained (scripts/hf_models.py), and compares: the
// float32 logits of every position of a 20-token input within
// logitTolerance (relLogitDiff; a bf16 or f16 checkpoint's reference is its
// rounded weights run in float32, as mlbuild runs them), and a 16-token
// greedy continuation, token for token, with both transformers'
// generate(do_sample=False) and a plain argmax loop over full recomputes
// (mlbuild decodes with its KV cache). Variants mlbuild does not implement
// must be refused by the loader, or when the context is sized, with a
// clear error.
func TestTransformersModels(t *testing.T) {
	dir := t.TempDir()
	runScript(t, "hf_models.py", dir)
	data, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref hfModels
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("reference: torch %s, transformers %s", ref.Torch, ref.Transformers)
	be := tensor.NewCPU(1)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			path := filepath.Join(dir, c.Name)
			m, err := llama.Load(path, be)
			if c.ExpectError != "" {
				if err == nil {
					var cache *llama.Cache
					if cache, err = m.NewCache(len(ref.InputIDs)); err == nil {
						cache.Free(be)
					}
				}
				if err == nil || !strings.Contains(err.Error(), c.ExpectError) {
					t.Fatalf("%s: got error %v, want one saying %q", c.Architecture, err, c.ExpectError)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cache, err := m.NewCache(len(ref.InputIDs))
			if err != nil {
				t.Fatal(err)
			}
			defer cache.Free(be)
			all, err := m.Forward(cache, ref.InputIDs, true)
			if err != nil {
				t.Fatal(err)
			}
			rel := relLogitDiff(all, c.Logits)
			t.Logf("%s (%s %s): max relative logit difference %.3g (tolerance %g)", c.Name, c.Architecture, c.DType, rel, logitTolerance)
			if rel > logitTolerance {
				t.Errorf("relative logit difference %.3g > %g", rel, logitTolerance)
			}
			if m.Config.RopeScaling != nil {
				// The case must exercise the scaling: without it the
				// same weights give logits beyond the tolerance.
				plain := relLogitDiff(plainRopeLogits(t, path, be, ref.InputIDs), c.Logits)
				t.Logf("without rope_scaling: %.3g", plain)
				if plain <= logitTolerance {
					t.Errorf("the logits without rope_scaling are within %g too: the case does not test the scaling", logitTolerance)
				}
			}
			got, err := m.Generate(t.Context(), ref.Prompt, llama.GenOptions{MaxTokens: len(c.Greedy)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.Generate) {
				t.Errorf("greedy tokens %v, transformers' generate %v", got, c.Generate)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.Greedy) {
				step := 0
				for step < len(got) && step < len(c.Greedy) && got[step] == c.Greedy[step] {
					step++
				}
				margin := math.NaN()
				if step < len(c.Margins) {
					margin = c.Margins[step]
				}
				t.Errorf("greedy tokens %v, transformers %v (first difference at step %d, where transformers' best logit leads the second by %.3g)",
					got, c.Greedy, step, margin)
			}
		})
	}
}

// plainRopeLogits returns the logits of the model in dir with its
// rope_scaling removed from config.json.
func plainRopeLogits(t *testing.T, dir string, be tensor.Backend, ids []int) []float32 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	delete(cfg, "rope_scaling")
	plain := t.TempDir()
	if data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "model.safetensors"), filepath.Join(plain, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	m, err := llama.Load(plain, be)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := m.NewCache(len(ids))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Free(be)
	all, err := m.Forward(cache, ids, true)
	if err != nil {
		t.Fatal(err)
	}
	return all
}
