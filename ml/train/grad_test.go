package train

import (
	"math"
	"testing"

	"github.com/mlbuild/mlbuild/internal/seeded"
	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

func tinyConfig(t *testing.T, arch string, tied bool) *config.Config {
	t.Helper()
	fused := ""
	if arch == "phi3" {
		fused = `,"architectures":["Phi3ForCausalLM"],"model_type":"phi3"`
	} else {
		fused = `,"architectures":["LlamaForCausalLM"],"model_type":"llama"`
	}
	tie := "false"
	if tied {
		tie = "true"
	}
	cfg, err := config.Parse([]byte(`{"hidden_size":16,"intermediate_size":24,"num_hidden_layers":2,"num_attention_heads":4,
"num_key_value_heads":2,"vocab_size":23,"max_position_embeddings":64,"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"pad_token_id":0,"tie_word_embeddings":` + tie + fused + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func tinyBatch() *Batch {
	// Two sequences, the second right-padded, some targets ignored.
	seqs := [][2][]int{
		{[]int{1, 5, 7, 9, 3, 4, 11}, []int{-100, 5, 7, 9, 3, 4, 11}},
		{[]int{1, 8, 2, 6}, []int{-100, -100, 2, 6}},
	}
	return makeBatch(seqs, 0)
}

// lossOf is the mean loss of b under m's current parameters.
func lossOf(m *Model, b *Batch) float64 {
	_, s, c := m.forward(b, false, false, 0)
	return s / float64(c)
}

// checkGrads compares every trainable parameter's analytic gradient with
// central finite differences at a few random entries.
func checkGrads(t *testing.T, m *Model, b *Batch) {
	t.Helper()
	be := m.be
	ps, _, c := m.forward(b, true, false, 1)
	m.backward(ps, float32(1/float64(c)))
	rng := seeded.New(7, 7)
	const h = 1e-2
	worst := 0.0
	for _, p := range m.params {
		g := make([]float32, p.G.Len())
		be.Read(p.G, g)
		w := make([]float32, p.W.Len())
		be.Read(p.W, w)
		for k := 0; k < 6; k++ {
			i := rng.IntN(len(w))
			orig := w[i]
			w[i] = orig + h
			be.Write(p.W, w)
			up := lossOf(m, b)
			w[i] = orig - h
			be.Write(p.W, w)
			down := lossOf(m, b)
			w[i] = orig
			be.Write(p.W, w)
			num := (up - down) / (2 * h)
			err := math.Abs(num-float64(g[i])) / math.Max(1e-3, math.Abs(num)+math.Abs(float64(g[i])))
			worst = math.Max(worst, err)
			if err > 2e-2 {
				t.Errorf("%s[%d]: analytic %.6g, numeric %.6g", p.Name, i, g[i], num)
			}
		}
	}
	t.Logf("worst relative error %.2g over %d parameters", worst, len(m.params))
}

func TestPretrainGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		arch string
		tied bool
	}{{"llama", false}, {"llama", true}, {"phi3", false}} {
		t.Run(tc.arch, func(t *testing.T) {
			m := NewPretrain(tinyConfig(t, tc.arch, tc.tied), tensor.NewCPU(1), 3, 0.3)
			checkGrads(t, m, tinyBatch())
		})
	}
}

func TestPaddingDoesNotChangeTheLoss(t *testing.T) {
	m := NewPretrain(tinyConfig(t, "llama", false), tensor.NewCPU(1), 3, 0.3)
	seq := [2][]int{[]int{1, 8, 2, 6}, []int{-100, -100, 2, 6}}
	alone := makeBatch([][2][]int{seq}, 0)
	padded := makeBatch([][2][]int{{[]int{1, 5, 7, 9, 3, 4, 11}, make([]int, 7)}, seq}, 0)
	for i := range padded.Targets[:7] {
		padded.Targets[i] = tensor.IgnoreIndex
	}
	_, s1, c1 := m.forward(alone, false, false, 0)
	_, s2, c2 := m.forward(padded, false, false, 0)
	if c1 != c2 || math.Abs(s1-s2) > 1e-5*math.Abs(s1) {
		t.Fatalf("padded loss %v over %d, alone %v over %d", s2, c2, s1, c1)
	}
}
