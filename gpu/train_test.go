package gpu

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/train"
)

// TestQLoRATrainingAgainstCPU trains the same QLoRA adapter (NF4 base,
// LoRA on every linear, dropout, AdamW, clipping, validation) on the CPU
// backend and on the CUDA backend, and compares every step's training
// loss, gradient norm and validation loss: the CUDA kernels carry a whole
// training run, not only single operations. (The two differ in the order
// of some float32 sums, so they agree closely, not bit for bit; the CUDA
// backend against itself is bit for bit.)
func TestQLoRATrainingAgainstCPU(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { qloraAgainstCPU(t, b.open(t)) })
	}
}

// tinyBase writes a small random llama-family base and returns its
// folder and 16 examples.
func tinyBase(t *testing.T) (string, []train.Example) {
	t.Helper()
	cfg, err := config.Parse([]byte(`{"hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,"num_attention_heads":4,
"num_key_value_heads":2,"vocab_size":41,"max_position_embeddings":64,"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,
"tie_word_embeddings":false,"architectures":["LlamaForCausalLM"],"model_type":"llama"}`))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := train.WriteRandomModel(base, cfg, 5); err != nil {
		t.Fatal(err)
	}
	var out []train.Example
	for i := range 16 {
		ids := []int{1}
		for j := range 6 + i%7 {
			ids = append(ids, 3+(i*7+j*3)%37)
		}
		ids = append(ids, 2)
		out = append(out, train.Example{IDs: ids, Labels: append([]int{-100}, ids[1:]...)})
	}
	return base, out
}

func qloraAgainstCPU(t *testing.T, gpu *Backend) {
	base, all := tinyBase(t)
	trainSet, valSet := all[:12], all[12:]
	run := func(be tensor.Backend) *train.Result {
		lc := train.LoRAConfig{R: 4, Alpha: 8, Dropout: 0.1, TargetModules: []string{"all-linear"}}
		m, err := train.LoadQLoRA(base, be, lc, 1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := train.Train(context.Background(), m, trainSet, valSet, train.Options{
			MaxSteps: 4, BatchSize: 3, GradAccum: 1, SeqLen: 16, Seed: 11,
			Schedule: train.Schedule{Kind: "cosine", Peak: 2e-2, Warmup: 1}, EvalEvery: 2, MaxGradNorm: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want, got := run(tensor.NewCPU(2)), run(gpu)
	if gpu.Context().Device().Name != interpreterName {
		// On a GPU (fast): a second same-seed run repeats bit for bit.
		again := run(gpu)
		for i, p := range got.History {
			if q := again.History[i]; q.TrainLoss != p.TrainLoss || q.GradNorm != p.GradNorm {
				t.Fatalf("step %d: a second run on the device gives loss %v, grad norm %v; first %v, %v", p.Step, q.TrainLoss, q.GradNorm, p.TrainLoss, p.GradNorm)
			}
		}
	}
	if len(got.History) != len(want.History) {
		t.Fatalf("%d steps, CPU %d", len(got.History), len(want.History))
	}
	near := func(what string, step int, g, w float64) {
		if math.Abs(g-w) > 1e-5*(1+math.Abs(w)) {
			t.Errorf("step %d %s = %.9g, CPU %.9g", step, what, g, w)
		}
	}
	near("initial validation loss", 0, got.InitialValLoss, want.InitialValLoss)
	for i, w := range want.History {
		g := got.History[i]
		near("training loss", w.Step, g.TrainLoss, w.TrainLoss)
		near("gradient norm", w.Step, g.GradNorm, w.GradNorm)
		if (g.ValLoss == nil) != (w.ValLoss == nil) {
			t.Fatalf("step %d: validation ran on one backend only", w.Step)
		}
		if w.ValLoss != nil {
			near("validation loss", w.Step, *g.ValLoss, *w.ValLoss)
		}
		t.Logf("step %d: loss %.6f (CPU %.6f), grad norm %.6f (CPU %.6f)", w.Step, g.TrainLoss, w.TrainLoss, g.GradNorm, w.GradNorm)
	}
	if !(got.BestValLoss < got.InitialValLoss) {
		t.Errorf("validation loss did not fall on the CUDA backend: %v -> %v", got.InitialValLoss, got.BestValLoss)
	}
}

// TestGenerateAgainstCPU generates with the KV cache (one-row attention
// over cached keys, cache writes into row views) on the CPU backend and on
// the CUDA backend: the same tokens, and the prompt's last logits within
// float32 rounding.
func TestGenerateAgainstCPU(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			base, _ := tinyBase(t)
			run := func(be tensor.Backend) ([]int, []float32) {
				m, err := llama.Load(base, be)
				if err != nil {
					t.Fatal(err)
				}
				ids, err := m.Generate(context.Background(), []int{1, 5, 9, 13}, llama.GenOptions{MaxTokens: 12}, func(int) error { return nil })
				if err != nil {
					t.Fatal(err)
				}
				// Two generations at once through a Batcher (one sequence
				// per step here: the backend is not tensor.RowStable) get
				// Generate's tokens.
				bt := llama.NewBatcher(m)
				var batched [2][]int
				var errs [2]error
				var wg sync.WaitGroup
				for i := range batched {
					wg.Add(1)
					go func() {
						defer wg.Done()
						batched[i], errs[i] = bt.Generate(context.Background(), []int{1, 5, 9, 13}, llama.GenOptions{MaxTokens: 12}, nil)
					}()
				}
				wg.Wait()
				for i := range batched {
					if errs[i] != nil || !slices.Equal(batched[i], ids) {
						t.Errorf("batched generation %d: %v, %v; alone %v", i, batched[i], errs[i], ids)
					}
				}
				c, err := m.NewCache(8)
				if err != nil {
					t.Fatal(err)
				}
				logits, err := m.Forward(c, []int{1, 5, 9, 13}, false)
				if err != nil {
					t.Fatal(err)
				}
				return ids, logits
			}
			wantIDs, wantLogits := run(tensor.NewCPU(2))
			gotIDs, gotLogits := run(b.open(t))
			if !slices.Equal(gotIDs, wantIDs) {
				t.Errorf("tokens %v, CPU %v", gotIDs, wantIDs)
			}
			compare(t, "last logits", gotLogits, wantLogits, 1e-5)
		})
	}
}
