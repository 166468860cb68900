package train

import (
	"context"
	"testing"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// copyExamples are sequences "BOS x1..xn SEP x1..xn" of random tokens,
// trained on the second half only: solvable only by attending back to the
// matching position, so the task checks that attention (and its gradient
// through queries and keys) learns content-based lookups.
func copyExamples(n, length int, seed uint64) []Example {
	rng := seeded.New(seed, 1)
	var out []Example
	for i := 0; i < n; i++ {
		ids := []int{1}
		for j := 0; j < length; j++ {
			ids = append(ids, 4+rng.IntN(28))
		}
		ids = append(ids, 3)
		ids = append(ids, ids[1:length+1]...)
		labels := make([]int, len(ids))
		for j := range labels {
			labels[j] = tensor.IgnoreIndex
			if j > length+1 {
				labels[j] = ids[j]
			}
		}
		out = append(out, Example{IDs: ids, Labels: labels})
	}
	return out
}

func TestLearnsToCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	cfg, err := config.Parse([]byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":128,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":4,"vocab_size":32,"max_position_embeddings":64,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":false}`))
	if err != nil {
		t.Fatal(err)
	}
	m := NewPretrain(cfg, tensor.NewCPU(0), 1, 0.02)
	res, err := Train(context.Background(), m, copyExamples(512, 10, 1), copyExamples(32, 10, 2), Options{
		Epochs: 8, BatchSize: 16, SeqLen: 32, Seed: 1, MaxGradNorm: 1,
		Schedule: Schedule{Kind: "cosine", Peak: 3e-3, Warmup: 20, MinRatio: 0.1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("validation loss %.3f -> %.3f (chance: ln 28 = 3.33)", res.InitialValLoss, res.BestValLoss)
	if res.BestValLoss > 0.5 {
		t.Fatalf("the model did not learn to copy: validation loss %.3f", res.BestValLoss)
	}
}

// lookupExamples are length filler tokens (ids 4..35) with one "place"
// token (ids 36..99) at a random position, then a separator (3) after
// which the place is to be written: the model must find the token by its
// content, not its position, the way a tool call finds the place named in
// a question.
func lookupExamples(n, length int, seed uint64) []Example {
	rng := seeded.New(seed, 1)
	var out []Example
	for i := 0; i < n; i++ {
		ids := []int{1}
		at, place := rng.IntN(length), 36+rng.IntN(64)
		for j := 0; j < length; j++ {
			if j == at {
				ids = append(ids, place)
			} else {
				ids = append(ids, 4+rng.IntN(32))
			}
		}
		ids = append(ids, 3, place, 2)
		labels := make([]int, len(ids))
		for j := range labels {
			labels[j] = tensor.IgnoreIndex
		}
		labels[len(ids)-2] = place
		out = append(out, Example{IDs: ids, Labels: labels})
	}
	return out
}

// TestLearnsContentLookup: attention learns to find a token by what it is
// among 40 distractors at random positions and to copy it.
func TestLearnsContentLookup(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	cfg, err := config.Parse([]byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":128,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":4,"vocab_size":100,"max_position_embeddings":64,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":true}`))
	if err != nil {
		t.Fatal(err)
	}
	m := NewPretrain(cfg, tensor.NewCPU(0), 1, 0.02)
	res, err := Train(context.Background(), m, lookupExamples(2048, 40, 1), lookupExamples(64, 40, 2), Options{
		Epochs: 2, BatchSize: 16, SeqLen: 64, Seed: 1, MaxGradNorm: 1,
		Schedule: Schedule{Kind: "cosine", Peak: 3e-3, Warmup: 20, MinRatio: 0.1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("validation loss %.3f -> %.3f (chance: ln 64 = 4.16)", res.InitialValLoss, res.BestValLoss)
	if res.BestValLoss > 0.2 {
		t.Fatalf("the model did not learn to find the token: validation loss %.3f", res.BestValLoss)
	}
}
