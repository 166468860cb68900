package llama

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// transformersFixtures is written by scripts/compare_transformers.py.
const transformersFixtures = "testdata/transformers/reference.json"

// TestTransformersFixtures compares the Go forward pass and greedy decoding
// with Hugging Face transformers' on the tiny random models that
// scripts/compare_transformers.py saved. It skips when the fixtures have
// not been generated (they need a machine with torch and transformers).
func TestTransformersFixtures(t *testing.T) {
	data, err := os.ReadFile(transformersFixtures)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s absent; run scripts/compare_transformers.py on a machine with torch and transformers", transformersFixtures)
	}
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Torch, Transformers string
		Cases               []struct {
			Name      string
			Dir       string
			DType     string
			InputIDs  []int       `json:"input_ids"`
			Logits    [][]float64 `json:"logits"`
			Prompt    []int
			Greedy    []int
			Tolerance float64
		}
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("fixtures from torch %s, transformers %s", ref.Torch, ref.Transformers)
	for _, c := range ref.Cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := Load(filepath.Join(filepath.Dir(transformersFixtures), c.Dir), tensor.NewCPU(0))
			if err != nil {
				t.Fatal(err)
			}
			cache, err := m.NewCache(len(c.InputIDs))
			if err != nil {
				t.Fatal(err)
			}
			all, err := m.Forward(cache, c.InputIDs, true)
			if err != nil {
				t.Fatal(err)
			}
			tol := c.Tolerance
			if tol == 0 {
				tol = 1e-4
			}
			V := m.Config.VocabSize
			for p := range c.InputIDs {
				if e := relErr(all[p*V:(p+1)*V], c.Logits[p]); e > tol {
					t.Errorf("position %d: relative error %.3g > %g", p, e, tol)
				}
			}
			got, err := m.Generate(t.Context(), c.Prompt, GenOptions{MaxTokens: len(c.Greedy)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.Greedy) {
				t.Errorf("greedy %v, transformers %v", got, c.Greedy)
			}
		})
	}
}
