package interop_test

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/train"
)

// mergeTolerance bounds the relative difference of each merged tensor
// from PEFT's merge_and_unload of the same adapter on the same base.
const mergeTolerance = 1e-6

// TestAdapterAndMergeLoadInPEFT trains LoRA adapters with mlbuild's QLoRA
// (ml/train, what the qlora_train step runs: NF4 base, adapters on every
// linear layer, a few AdamW steps) on bases that transformers made, saves
// them in PEFT's format and merges them as the merge step does, then checks
// against the Hugging Face libraries:
//   - PeftModel.from_pretrained on the dequantized base (the NF4 round trip
//     of the base's linear layers, the weights QLoRA trained against) gives
//     mlbuild's adapted logits within logitTolerance (relLogitDiff), and so
//     does the original base made 4-bit by bitsandbytes (Linear4bit,
//     quantized on the CPU), whose dequantized weights must equal mlbuild's
//     NF4 round trip bit for bit;
//   - AutoModelForCausalLM.from_pretrained on the merged directory gives
//     the logits of mlbuild's merged model within logitTolerance;
//   - PEFT's own merge_and_unload of the adapter gives every tensor of
//     mlbuild's merged file within mergeTolerance (max |Δ| / max |peft|).
func TestAdapterAndMergeLoadInPEFT(t *testing.T) {
	python(t)
	root := t.TempDir()
	bases := filepath.Join(root, "bases")
	type adapterCase struct {
		name, base    string
		modulesToSave []string
		targets       []string // nil: all-linear
		rsLoRA        bool
	}
	cases := []adapterCase{
		{name: "llama", base: "llama"},
		{name: "phi3", base: "phi3"}, // fused qkv_proj and gate_up_proj
		{name: "phi3-qkv", base: "phi3", targets: []string{"qkv_proj"}},
		{name: "llama31-rope", base: "llama31-rope"},
		{name: "llama-linear-rope", base: "llama-linear-rope"},
		{name: "llama-rslora-qv", base: "llama", targets: []string{"q_proj", "v_proj"}, rsLoRA: true},
		{name: "llama-lm-head", base: "llama", modulesToSave: []string{"lm_head"}}, // on an untied model
		{name: "llama-embed", base: "llama", modulesToSave: []string{"embed_tokens", "lm_head"}},
		// The demo pipeline's setting: a tied base, its embeddings trained.
		{name: "llama-tied-embed", base: "llama-tied", modulesToSave: []string{"embed_tokens"}},
	}
	var baseNames []string
	for _, c := range cases {
		baseNames = append(baseNames, c.base)
	}
	runScript(t, "hf_models.py", append([]string{bases}, baseNames...)...)

	be := tensor.NewCPU(1)
	ids := []int{1, 5, 17, 33, 2, 60, 41, 8, 8, 19, 127, 0, 12, 7, 30, 55}
	type request struct {
		Name     string `json:"name"`
		Base     string `json:"base"`
		Original string `json:"original"`
		Adapter  string `json:"adapter"`
		Merged   string `json:"merged"`
	}
	var reqs []request
	adapted := map[string][]float32{}
	merged := map[string][]float32{}
	untrained := map[string][]float32{}
	for i, c := range cases {
		base := filepath.Join(bases, c.base)
		lc := train.LoRAConfig{R: 4, Alpha: 8, TargetModules: c.targets, RSLoRA: c.rsLoRA, ModulesToSave: c.modulesToSave}
		if lc.TargetModules == nil {
			lc.TargetModules = []string{train.AllLinear}
		}
		m, err := train.LoadQLoRA(base, be, lc, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		// The adapter before training (B = 0) merges into the dequantized
		// base: the weights PEFT's base must have.
		dequant := filepath.Join(root, c.name, "dequantized")
		writeMerged(t, dequant, base, m.Adapter(), be)
		if untrained[c.name], err = m.Logits(ids); err != nil {
			t.Fatal(err)
		}

		rng := rand.New(rand.NewPCG(uint64(i), 7))
		var examples []train.Example
		for range 8 {
			seq := make([]int, 12)
			for j := range seq {
				seq[j] = rng.IntN(m.Config.VocabSize)
			}
			examples = append(examples, train.Example{IDs: seq, Labels: seq})
		}
		if _, err := train.Train(t.Context(), m, examples, nil, train.Options{
			MaxSteps: 8, BatchSize: 2, SeqLen: 12, Seed: 3,
			Schedule: train.Schedule{Kind: "constant", Peak: 2e-2},
		}); err != nil {
			t.Fatal(err)
		}
		ad := m.Adapter()
		adapterDir := filepath.Join(root, c.name, "adapter")
		if err := ad.Save(adapterDir, base); err != nil {
			t.Fatal(err)
		}
		mergedDir := filepath.Join(root, c.name, "merged")
		writeMerged(t, mergedDir, base, ad, be)
		if adapted[c.name], err = m.Logits(ids); err != nil {
			t.Fatal(err)
		}
		mm, err := llama.Load(mergedDir, be)
		if err != nil {
			t.Fatal(err)
		}
		cache, err := mm.NewCache(len(ids))
		if err != nil {
			t.Fatal(err)
		}
		if merged[c.name], err = mm.Forward(cache, ids, true); err != nil {
			t.Fatal(err)
		}
		cache.Free(be)
		reqs = append(reqs, request{c.name, dequant, base, adapterDir, mergedDir})
	}
	req, err := json.Marshal(map[string]any{"input_ids": ids, "cases": reqs})
	if err != nil {
		t.Fatal(err)
	}
	reqFile := filepath.Join(root, "request.json")
	if err := os.WriteFile(reqFile, req, 0o644); err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Torch, Transformers, PEFT string
		Cases                     []struct {
			Name     string
			PEFT     [][]float64 `json:"peft"`
			PEFT4bit [][]float64 `json:"peft_4bit"`
			// bitsandbytes' 4-bit base beside mlbuild's NF4 round trip:
			// 64-blocks, those that differ, those of them with 8-bit code 0.
			Blocks4bit     int `json:"blocks_4bit"`
			BlocksDiffer   int `json:"blocks_differ"`
			BlocksDifferQ0 int `json:"blocks_differ_q0"`
			Merged         [][]float64
			MergeRel       float64 `json:"merge_rel"`
			MergeWorst     string  `json:"merge_worst"`
			Missing        []string
		}
	}
	if err := json.Unmarshal(runScript(t, "hf_adapter.py", reqFile), &ref); err != nil {
		t.Fatal(err)
	}
	t.Logf("reference: torch %s, transformers %s, peft %s", ref.Torch, ref.Transformers, ref.PEFT)
	for _, r := range ref.Cases {
		t.Run(r.Name, func(t *testing.T) {
			if len(r.Missing) > 0 {
				t.Errorf("PEFT's merged model has tensors mlbuild's merge lacks: %v", r.Missing)
			}
			a, mg := relLogitDiff(adapted[r.Name], r.PEFT), relLogitDiff(merged[r.Name], r.Merged)
			a4 := relLogitDiff(adapted[r.Name], r.PEFT4bit)
			t.Logf("%s: adapted vs PeftModel %.3g, on bitsandbytes' 4-bit base %.3g (%d of %d blocks differ from mlbuild's NF4, %d with 8-bit code 0), merged vs AutoModelForCausalLM %.3g, merged weights vs merge_and_unload %.3g (%s)",
				r.Name, a, a4, r.BlocksDiffer, r.Blocks4bit, r.BlocksDifferQ0, mg, r.MergeRel, r.MergeWorst)
			if d := relLogitDiff(adapted[r.Name], toRows(untrained[r.Name], len(r.PEFT))); d < 100*logitTolerance {
				t.Errorf("training moved the logits by only %.3g: the case does not test the adapter", d)
			}
			if a > logitTolerance {
				t.Errorf("adapted logits: relative difference %.3g from PEFT's > %g", a, logitTolerance)
			}
			// ml/nf4 quantizes as bitsandbytes does on the CPU: the two 4-bit
			// bases are the same, to the bit.
			if r.BlocksDiffer != 0 {
				t.Errorf("bitsandbytes' 4-bit base differs from mlbuild's NF4 in %d of %d blocks (%d of them of 8-bit code 0)", r.BlocksDiffer, r.Blocks4bit, r.BlocksDifferQ0)
			}
			if a4 > logitTolerance {
				t.Errorf("adapted logits: relative difference %.3g from PEFT's on bitsandbytes' 4-bit base > %g", a4, logitTolerance)
			}
			if mg > logitTolerance {
				t.Errorf("merged logits: relative difference %.3g from transformers' > %g", mg, logitTolerance)
			}
			if r.MergeRel > mergeTolerance {
				t.Errorf("merged weights: %s differs from merge_and_unload's by %.3g relative > %g", r.MergeWorst, r.MergeRel, mergeTolerance)
			}
		})
	}
}

// writeMerged writes dir as the merge step does: model.safetensors from
// train.Merge and the base's config.json with torch_dtype float32.
func writeMerged(t *testing.T, dir, base string, ad *train.Adapter, be tensor.Backend) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := train.Merge(filepath.Join(dir, "model.safetensors"), base, ad, be); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(base, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["torch_dtype"] = "float32"
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// toRows splits flat logits into n rows.
func toRows(flat []float32, n int) [][]float64 {
	out := make([][]float64, n)
	v := len(flat) / n
	for i := range out {
		out[i] = make([]float64, v)
		for j := range out[i] {
			out[i][j] = float64(flat[i*v+j])
		}
	}
	return out
}
