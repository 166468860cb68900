package train

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// writeBase saves a random tiny model of arch as a Hugging Face directory.
func writeBase(t *testing.T, arch string) string {
	t.Helper()
	cfg := tinyConfig(t, arch, false)
	m := NewPretrain(cfg, tensor.NewCPU(1), 5, 0.3)
	dir := t.TempDir()
	js := map[string]any{"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
		"num_key_value_heads": 2, "vocab_size": 23, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
		"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "tie_word_embeddings": false,
		"architectures": []string{string(cfg.Architecture)}, "model_type": cfg.ModelType}
	data, _ := json.Marshal(js)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SaveWeights(filepath.Join(dir, "model.safetensors"), cfg, m.ParamData()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loraConfig() LoRAConfig {
	return LoRAConfig{R: 4, Alpha: 8, TargetModules: []string{"all-linear"}}
}

// randomizeB gives the adapters non-zero B so that every gradient is
// exercised (B starts at zero, which zeroes A's gradient).
func randomizeB(m *Model) {
	for i, lm := range m.loras {
		v := make([]float32, lm.B.W.Len())
		for j := range v {
			v[j] = float32(math.Sin(float64(i*131+j))) * 0.3
		}
		m.be.Write(lm.B.W, v)
	}
}

func TestQLoRAGradientsMatchFiniteDifferences(t *testing.T) {
	for _, arch := range []string{"llama", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			m, err := LoadQLoRA(writeBase(t, arch), tensor.NewCPU(1), loraConfig(), 1)
			if err != nil {
				t.Fatal(err)
			}
			randomizeB(m)
			_, trainable := m.NumParams()
			if want := int64(len(m.loras)); trainable == 0 || want == 0 {
				t.Fatal("no adapters")
			}
			checkGrads(t, m, tinyBatch())
		})
	}
}

func TestModulesToSaveGradientsAndMerge(t *testing.T) {
	lc := loraConfig()
	lc.ModulesToSave = []string{EmbedTokensModule, LMHeadModule}
	base := writeBase(t, "llama")
	be := tensor.NewCPU(1)
	m, err := LoadQLoRA(base, be, lc, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomizeB(m)
	if !m.embed.trainable() || !m.lmHead.trainable() || m.embed == m.lmHead {
		t.Fatal("embed_tokens and lm_head are not trainable copies")
	}
	checkGrads(t, m, tinyBatch())
	// Change the saved modules, then check the merged model carries them.
	for _, p := range []*Param{m.embed, m.lmHead} {
		v := make([]float32, p.W.Len())
		be.Read(p.W, v)
		for i := range v {
			v[i] += 0.05 * float32(i%7)
		}
		be.Write(p.W, v)
	}
	ad := m.Adapter()
	if _, ok := ad.Tensors["base_model.model.model.embed_tokens.weight"]; !ok {
		t.Fatalf("adapter tensors: %v", len(ad.Tensors))
	}
	dir := t.TempDir()
	if err := ad.Save(dir, "base"); err != nil {
		t.Fatal(err)
	}
	back, err := LoadAdapter(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	st, err := Merge(filepath.Join(out, "model.safetensors"), base, back, be)
	if err != nil {
		t.Fatal(err)
	}
	if st.Saved != 2 {
		t.Fatalf("merge replaced %d saved modules, want 2", st.Saved)
	}
	f, _ := safetensors.Open(filepath.Join(out, "model.safetensors"))
	defer f.Close()
	got, _ := f.Float32(config.EmbedTokens)
	want := make([]float32, m.embed.W.Len())
	be.Read(m.embed.W, want)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("merged embed_tokens[%d] = %v, trained %v", i, got[i], want[i])
		}
	}
}

func TestLoRADropoutGradients(t *testing.T) {
	lc := loraConfig()
	lc.Dropout = 0.3
	m, err := LoadQLoRA(writeBase(t, "llama"), tensor.NewCPU(1), lc, 1)
	if err != nil {
		t.Fatal(err)
	}
	randomizeB(m)
	// With a fixed dropout seed the training forward is a deterministic
	// function of the parameters: compare with finite differences of it.
	b := tinyBatch()
	ps, _, c := m.forward(b, true, false, 9)
	m.backward(ps, float32(1/float64(c)))
	lm := m.loras[0]
	g := make([]float32, lm.A.G.Len())
	m.be.Read(lm.A.G, g)
	w := make([]float32, lm.A.W.Len())
	m.be.Read(lm.A.W, w)
	lossAt := func() float64 {
		_, s, c := m.forward(b, true, false, 9)
		return s / float64(c)
	}
	for _, i := range []int{0, 5, 17} {
		orig := w[i]
		w[i] = orig + 1e-2
		m.be.Write(lm.A.W, w)
		up := lossAt()
		w[i] = orig - 1e-2
		m.be.Write(lm.A.W, w)
		down := lossAt()
		w[i] = orig
		m.be.Write(lm.A.W, w)
		num := (up - down) / 2e-2
		if math.Abs(num-float64(g[i])) > 2e-2*math.Max(1e-3, math.Abs(num)) {
			t.Errorf("A[%d]: analytic %g, numeric %g", i, g[i], num)
		}
	}
}

// toyExamples is a learnable task: count up from a start token.
func toyExamples(n int) []Example {
	var out []Example
	for i := 0; i < n; i++ {
		ids := []int{1}
		for j := 0; j < 6+i%5; j++ {
			ids = append(ids, 3+(i+j)%18)
		}
		ids = append(ids, 2)
		labels := append([]int{-100}, ids[1:]...)
		out = append(out, Example{IDs: ids, Labels: labels})
	}
	return out
}

func qloraOptions(dir string) Options {
	return Options{Epochs: 3, BatchSize: 3, GradAccum: 2, SeqLen: 16, Seed: 11,
		Schedule:  Schedule{Kind: "cosine", Peak: 2e-2, Warmup: 2},
		EvalEvery: 3, MaxGradNorm: 1, StateDir: dir, CheckpointEvery: 2, Fingerprint: "test"}
}

func TestQLoRATrainingLearnsAndResumesBitIdentical(t *testing.T) {
	base := writeBase(t, "llama")
	lc := loraConfig()
	lc.Dropout = 0.1
	trainSet, valSet := toyExamples(24), toyExamples(30)[24:]
	run := func(opts Options, ctx context.Context) (*Result, *Adapter, error) {
		m, err := LoadQLoRA(base, tensor.NewCPU(2), lc, 1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Train(ctx, m, trainSet, valSet, opts)
		if err != nil {
			return nil, nil, err
		}
		return res, m.Adapter(), nil
	}
	full, want, err := run(qloraOptions(t.TempDir()), context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !(full.BestValLoss < full.InitialValLoss-0.3) {
		t.Fatalf("validation loss did not fall: %v -> %v", full.InitialValLoss, full.BestValLoss)
	}
	// Interrupt after step 5 (a checkpoint was written at step 4), then resume.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	opts := qloraOptions(dir)
	opts.Progress = func(s Status) {
		if s.Step == 5 {
			cancel()
		}
	}
	if _, _, err := run(opts, ctx); err == nil {
		t.Fatal("the interrupted run did not stop")
	}
	res, got, err := run(qloraOptions(dir), context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedFrom != 4 {
		t.Fatalf("resumed from step %d, want 4", res.ResumedFrom)
	}
	var a, b bytes.Buffer
	for _, ad := range []*Adapter{want, got} {
		d := t.TempDir()
		if err := ad.Save(d, "base"); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(d, AdapterWeightsFile))
		if ad == want {
			a.Write(data)
		} else {
			b.Write(data)
		}
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the resumed run's adapter differs from the uninterrupted run's")
	}
	if res.BestValLoss != full.BestValLoss || len(res.History) != len(full.History) {
		t.Fatalf("resumed history differs: best %v vs %v, %d vs %d points", res.BestValLoss, full.BestValLoss, len(res.History), len(full.History))
	}
}

func TestMergedModelMatchesTheAdaptedModel(t *testing.T) {
	for _, arch := range []string{"llama", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			base := writeBase(t, arch)
			be := tensor.NewCPU(1)
			m, err := LoadQLoRA(base, be, loraConfig(), 1)
			if err != nil {
				t.Fatal(err)
			}
			randomizeB(m)
			adDir := t.TempDir()
			if err := m.Adapter().Save(adDir, "base"); err != nil {
				t.Fatal(err)
			}
			ad, err := LoadAdapter(adDir)
			if err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if _, err := Merge(filepath.Join(out, "model.safetensors"), base, ad, be); err != nil {
				t.Fatal(err)
			}
			cfgData, err := os.ReadFile(filepath.Join(base, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, "config.json"), cfgData, 0o644); err != nil {
				t.Fatal(err)
			}
			merged, err := llama.Load(out, be)
			if err != nil {
				t.Fatal(err)
			}
			ids := []int{1, 5, 7, 9, 3, 4, 11}
			cache, _ := merged.NewCache(len(ids))
			logits, err := merged.Forward(cache, ids, true)
			if err != nil {
				t.Fatal(err)
			}
			ps, _, _ := m.forward(makeBatch([][2][]int{{ids, ids}}, 0), false, true, 0)
			want := make([]float32, ps.logits.Len())
			be.Read(ps.logits, want)
			for i := range want {
				if d := math.Abs(float64(want[i] - logits[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("logit %d: adapted model %v, merged model %v", i, want[i], logits[i])
				}
			}
			f, _ := safetensors.Open(filepath.Join(out, "model.safetensors"))
			defer f.Close()
			if _, ok := f.Info(config.LMHead); !ok {
				t.Fatal("merged model lacks lm_head")
			}
		})
	}
}

// TestActivationCheckpointingIsBitIdentical: training with activation
// checkpointing (each layer recomputed in the backward pass, dropout
// included) gives the same adapter, bit for bit, as training without.
func TestActivationCheckpointingIsBitIdentical(t *testing.T) {
	base := writeBase(t, "llama")
	lc := loraConfig()
	lc.Dropout = 0.1
	trainSet, valSet := toyExamples(12), toyExamples(16)[12:]
	run := func(recompute bool) []byte {
		m, err := LoadQLoRA(base, tensor.NewCPU(2), lc, 1)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{MaxSteps: 4, BatchSize: 3, GradAccum: 2, SeqLen: 16, Seed: 11,
			Schedule: Schedule{Kind: "cosine", Peak: 2e-2, Warmup: 1}, MaxGradNorm: 1, ActivationCheckpointing: recompute}
		if _, err := Train(context.Background(), m, trainSet, valSet, opts); err != nil {
			t.Fatal(err)
		}
		d := t.TempDir()
		if err := m.Adapter().Save(d, "base"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(d, AdapterWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !bytes.Equal(run(false), run(true)) {
		t.Fatal("the adapter trained with activation checkpointing differs")
	}
}

// TestFrozenHeadAtLabelledPositionsOnly: QLoRA's frozen LM head, run only
// at the positions with a label, gives the loss and every adapter
// gradient of running it everywhere, bit for bit, also for a batch with
// no label at all; a trained head (pretraining) runs everywhere.
func TestFrozenHeadAtLabelledPositionsOnly(t *testing.T) {
	m, err := LoadQLoRA(writeBase(t, "llama"), tensor.NewCPU(1), loraConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	randomizeB(m)
	grads := func(b *Batch, all bool) (float64, int, [][]float32, *pass) {
		for _, p := range m.params {
			m.be.Write(p.G, make([]float32, p.G.Len()))
		}
		ps, s, c := m.forward(b, true, all, 1)
		scored := ps.scored
		m.backward(ps, 0.25)
		var out [][]float32
		for _, p := range m.params {
			g := make([]float32, p.G.Len())
			m.be.Read(p.G, g)
			out = append(out, g)
		}
		return s, c, out, &pass{scored: scored}
	}
	defer func(q int) { headRowQuantum = q }(headRowQuantum)
	headRowQuantum = 4 // tinyBatch: 9 labelled positions of 14, padded to 12
	unlabelled := makeBatch([][2][]int{{[]int{1, 5, 7}, []int{-100, -100, -100}}}, 0)
	for _, b := range []*Batch{tinyBatch(), unlabelled} {
		s1, c1, g1, _ := grads(b, true)
		s2, c2, g2, ps := grads(b, false)
		if want := (b.Trained() + 3) / 4 * 4; ps.scored == nil || len(ps.scored) != want {
			t.Fatalf("the head ran at %v, want the %d labelled positions and fillers up to %d", ps.scored, b.Trained(), want)
		}
		for i, r := range ps.scored {
			if labelled := b.Targets[r] != tensor.IgnoreIndex; labelled != (i < b.Trained()) {
				t.Fatalf("row %d of the head is position %d (labelled %v)", i, r, labelled)
			}
		}
		if s1 != s2 || c1 != c2 {
			t.Fatalf("loss %v over %d with the head everywhere, %v over %d at labelled positions", s1, c1, s2, c2)
		}
		for i := range g1 {
			for j := range g1[i] {
				if math.Float32bits(g1[i][j]) != math.Float32bits(g2[i][j]) {
					t.Fatalf("%s[%d]: %v with the head everywhere, %v at labelled positions", m.params[i].Name, j, g1[i][j], g2[i][j])
				}
			}
		}
	}
	pre := NewPretrain(tinyConfig(t, "llama", true), tensor.NewCPU(1), 3, 0.3)
	if ps, _, _ := pre.forward(tinyBatch(), true, false, 1); ps.scored != nil {
		t.Fatal("a trained head ran at the labelled positions only")
	}
}

// TestCacheDequantizedSameBits: training with the dequantized base kept
// between steps gives the adapter of dequantizing at every use, bit for
// bit; a budget below the copies' size keeps nothing.
func TestCacheDequantizedSameBits(t *testing.T) {
	dir := writeBase(t, "llama")
	ex := []Example{{IDs: []int{1, 5, 7, 9, 3, 4, 11, 6}, Labels: []int{-100, -100, 7, 9, 3, 4, 11, 6}}, {IDs: []int{1, 8, 2, 6, 10}, Labels: []int{-100, 8, 2, 6, 10}}}
	adapters := make([][][]float32, 2)
	for i, cache := range []bool{false, true} {
		m, err := LoadQLoRA(dir, tensor.NewCPU(1), loraConfig(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if bytes, kept := m.CacheDequantized(1 << 20); kept != true || bytes <= 0 {
			t.Fatalf("a %d-byte base not kept under 1 MiB", bytes)
		}
		if !cache {
			m.dequantized = nil
		}
		opts := Options{BatchSize: 2, SeqLen: 16, MaxSteps: 3, Seed: 4, Schedule: Schedule{Kind: "constant", Peak: 1e-2}}
		if _, err := Train(context.Background(), m, ex, nil, opts); err != nil {
			t.Fatal(err)
		}
		if cache && len(m.dequantized) == 0 {
			t.Fatal("nothing was kept")
		}
		adapters[i] = snapshot(m)
	}
	for p := range adapters[0] {
		for j := range adapters[0][p] {
			if math.Float32bits(adapters[0][p][j]) != math.Float32bits(adapters[1][p][j]) {
				t.Fatalf("parameter %d[%d]: %v dequantizing each time, %v kept", p, j, adapters[0][p][j], adapters[1][p][j])
			}
		}
	}
	m, _ := LoadQLoRA(dir, tensor.NewCPU(1), loraConfig(), 1)
	if _, kept := m.CacheDequantized(16); kept {
		t.Fatal("kept under a 16-byte budget")
	}
}
