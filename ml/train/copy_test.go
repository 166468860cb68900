package train

import (
	"context"
	"fmt"
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
		out = append(out, repeated(rng, length, 32, length+2))
	}
	return out
}

// repeated draws one "BOS x1..xn SEP x1..xn" example of length n over
// tokens 4..vocab-1, labelled from position from on (earlier positions
// are IgnoreIndex).
func repeated(rng *seeded.Rand, length, vocab, from int) Example {
	ids := []int{1}
	for j := 0; j < length; j++ {
		ids = append(ids, 4+rng.IntN(vocab-4))
	}
	ids = append(ids, 3)
	ids = append(ids, ids[1:length+1]...)
	labels := make([]int, len(ids))
	for j := range labels {
		labels[j] = tensor.IgnoreIndex
		if j >= from {
			labels[j] = ids[j]
		}
	}
	return Example{IDs: ids, Labels: labels}
}

// trainToy trains a 2-layer llama (hidden 64, 4 heads) with the given
// vocabulary size and tying from scratch, with cosine decay from 3e-3.
func trainToy(t *testing.T, vocab int, tied bool, train, val []Example, epochs int) *Result {
	t.Helper()
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"intermediate_size":128,
"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":4,"vocab_size":%d,"max_position_embeddings":64,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":%v}`, vocab, tied))
	if err != nil {
		t.Fatal(err)
	}
	m := NewPretrain(cfg, tensor.NewCPU(0), 1, 0.02)
	res, err := Train(context.Background(), m, train, val, Options{
		Epochs: epochs, BatchSize: 16, SeqLen: 64, Seed: 1, MaxGradNorm: 1,
		Schedule: Schedule{Kind: "cosine", Peak: 3e-3, Warmup: 20, MinRatio: 0.1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLearnsToCopy(t *testing.T) {
	res := trainToy(t, 32, false, copyExamples(512, 10, 1), copyExamples(32, 10, 2), 8)
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
	res := trainToy(t, 100, true, lookupExamples(2048, 40, 1), lookupExamples(64, 40, 2), 2)
	t.Logf("validation loss %.3f -> %.3f (chance: ln 64 = 4.16)", res.InitialValLoss, res.BestValLoss)
	if res.BestValLoss > 0.2 {
		t.Fatalf("the model did not learn to find the token: validation loss %.3f", res.BestValLoss)
	}
}

// inductionExamples are sequences "BOS x1..xn SEP x1..xn" whose length n
// varies (4 to 20) over vocab-4 random tokens, trained on the second half
// after its first token: with the offset back to the source varying, only
// an induction circuit (a head that finds the earlier occurrence of the
// current token and copies the token after it) solves it.
func inductionExamples(n, vocab int, seed uint64) []Example {
	rng := seeded.New(seed, 1)
	var out []Example
	for i := 0; i < n; i++ {
		length := 4 + rng.IntN(17)
		out = append(out, repeated(rng, length, vocab, length+3))
	}
	return out
}

// TestLearnsInduction: two layers learn to continue a repeated sequence
// at any offset. Measured with these settings: 0.018 over 64 tokens; over
// 512 tokens 0.86 and over 4,096 tokens (each seen about 25 times) 1.43;
// trained on the random first half as well, the 4,096-token model stays
// near chance on the second. What a small model learns to copy in few
// steps is what it has seen often (docs/steps.md, pretrain).
func TestLearnsInduction(t *testing.T) {
	res := trainToy(t, 64, true, inductionExamples(4096, 64, 1), inductionExamples(64, 64, 2), 4)
	t.Logf("validation loss %.3f -> %.3f (chance: ln 60 = 4.09)", res.InitialValLoss, res.BestValLoss)
	if res.BestValLoss > 0.3 {
		t.Fatalf("the model did not learn induction: validation loss %.3f", res.BestValLoss)
	}
}
