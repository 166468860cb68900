package llama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// tiny describes a small random model for the tests.
type tiny struct {
	arch       string // "llama", "mistral", "phi3"
	hidden     int
	inter      int
	layers     int
	heads      int
	kvHeads    int
	vocab      int
	tied       bool
	dtype      safetensors.DType
	theta      float64
	ropeLlama3 bool
	maxPos     int
	window     int
	seed       uint64
}

func defaultTiny(arch string) tiny {
	return tiny{arch: arch, hidden: 32, inter: 48, layers: 2, heads: 4, kvHeads: 2, vocab: 64,
		dtype: safetensors.F32, theta: 10000, maxPos: 256, seed: 1}
}

var archNames = map[string]string{"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "phi3": "Phi3ForCausalLM"}

// write stores the model in a new temporary directory and returns it with
// the weights (as float32 values after rounding to the stored dtype).
func (tm tiny) write(t testing.TB) (string, map[string][]float32) {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{
		"architectures":           []string{archNames[tm.arch]},
		"model_type":              tm.arch,
		"hidden_size":             tm.hidden,
		"intermediate_size":       tm.inter,
		"num_hidden_layers":       tm.layers,
		"num_attention_heads":     tm.heads,
		"num_key_value_heads":     tm.kvHeads,
		"vocab_size":              tm.vocab,
		"max_position_embeddings": tm.maxPos,
		"rms_norm_eps":            1e-5,
		"rope_theta":              tm.theta,
		"tie_word_embeddings":     tm.tied,
		"hidden_act":              "silu",
		"bos_token_id":            1,
		"eos_token_id":            2,
		"torch_dtype":             map[safetensors.DType]string{safetensors.F32: "float32", safetensors.BF16: "bfloat16", safetensors.F16: "float16"}[tm.dtype],
	}
	if tm.arch != "llama" {
		if tm.window > 0 {
			cfg["sliding_window"] = tm.window
		} else {
			cfg["sliding_window"] = nil
		}
	}
	if tm.ropeLlama3 {
		cfg["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 64}
	}
	data, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(tm.seed, 7))
	weights := map[string][]float32{}
	var tensors []safetensors.Tensor
	for _, spec := range c.Tensors() {
		n := 1
		for _, d := range spec.Shape {
			n *= d
		}
		v := make([]float32, n)
		scale := 1 / math.Sqrt(float64(spec.Shape[len(spec.Shape)-1]))
		if len(spec.Shape) == 1 { // norms: around 1
			for i := range v {
				v[i] = float32(1 + 0.2*rng.NormFloat64())
			}
		} else {
			if spec.Name == config.EmbedTokens {
				scale = 1
			}
			for i := range v {
				v[i] = float32(scale * rng.NormFloat64())
			}
		}
		var raw []byte
		switch tm.dtype {
		case safetensors.F32:
			raw = safetensors.F32Bytes(v)
		case safetensors.BF16:
			raw = safetensors.BF16Bytes(v)
		case safetensors.F16:
			raw = safetensors.F16Bytes(v)
		}
		v, err = safetensors.DecodeFloat32(tm.dtype, raw)
		if err != nil {
			t.Fatal(err)
		}
		weights[spec.Name] = v
		tensors = append(tensors, safetensors.Tensor{Name: spec.Name, DType: tm.dtype, Shape: spec.Shape, Data: raw})
	}
	if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFileName), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	return dir, weights
}

// refForward is an independent float64 implementation of the Hugging Face
// forward pass (naive loops, no ml/tensor): it returns the logits of every
// position of ids.
func refForward(c *config.Config, w map[string][]float32, ids []int) [][]float64 {
	H, nh, nkv, hd, I, V := c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.IntermediateSize, c.VocabSize
	T := len(ids)
	// linear: y[o] = sum_i W[o*in+i] x[i] for rows [r0, r0+out) of W.
	linear := func(W []float32, r0, out, in int, x []float64) []float64 {
		y := make([]float64, out)
		for o := 0; o < out; o++ {
			s := 0.0
			for i := 0; i < in; i++ {
				s += float64(W[(r0+o)*in+i]) * x[i]
			}
			y[o] = s
		}
		return y
	}
	rms := func(x []float64, wt []float32) []float64 {
		ss := 0.0
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+c.RMSNormEps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * inv * float64(wt[i])
		}
		return y
	}
	// inverse frequencies, float64, with llama3 scaling when configured.
	inv := make([]float64, hd/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))
		if rs := c.RopeScaling; rs != nil {
			old := float64(rs.OriginalMaxPositionEmbeddings)
			lowW, highW := old/rs.LowFreqFactor, old/rs.HighFreqFactor
			wl := 2 * math.Pi / inv[i]
			switch {
			case wl < highW:
			case wl > lowW:
				inv[i] /= rs.Factor
			default:
				s := (old/wl - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				inv[i] = (1-s)*inv[i]/rs.Factor + s*inv[i]
			}
		}
	}
	rope := func(x []float64, heads, pos int) {
		for h := 0; h < heads; h++ {
			b := x[h*hd : (h+1)*hd]
			rot := make([]float64, hd) // rotate_half: [-x2, x1]
			for i := 0; i < hd/2; i++ {
				rot[i] = -b[i+hd/2]
				rot[i+hd/2] = b[i]
			}
			for i := 0; i < hd; i++ {
				a := float64(pos) * inv[i%(hd/2)]
				b[i] = b[i]*math.Cos(a) + rot[i]*math.Sin(a)
			}
		}
	}
	xs := make([][]float64, T)
	emb := w[config.EmbedTokens]
	for t, id := range ids {
		xs[t] = make([]float64, H)
		for i := range xs[t] {
			xs[t][i] = float64(emb[id*H+i])
		}
	}
	qd, kvd := nh*hd, nkv*hd
	for l := 0; l < c.NumHiddenLayers; l++ {
		n := c.Layer(l)
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range xs {
			h := rms(xs[t], w[n.InputNorm])
			if c.FusedQKV {
				W := w[n.QKV]
				qs[t], ks[t], vs[t] = linear(W, 0, qd, H, h), linear(W, qd, kvd, H, h), linear(W, qd+kvd, kvd, H, h)
			} else {
				qs[t], ks[t], vs[t] = linear(w[n.Q], 0, qd, H, h), linear(w[n.K], 0, kvd, H, h), linear(w[n.V], 0, kvd, H, h)
			}
			rope(qs[t], nh, t)
			rope(ks[t], nkv, t)
		}
		for t := range xs {
			att := make([]float64, qd)
			for h := 0; h < nh; h++ {
				kh := h / (nh / nkv) // repeat_kv
				scores := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					s := 0.0
					for d := 0; d < hd; d++ {
						s += qs[t][h*hd+d] * ks[j][kh*hd+d]
					}
					scores[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, scores[j])
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					sum += scores[j]
				}
				for j := range scores {
					for d := 0; d < hd; d++ {
						att[h*hd+d] += scores[j] / sum * vs[j][kh*hd+d]
					}
				}
			}
			o := linear(w[n.O], 0, H, qd, att)
			for i := range o {
				xs[t][i] += o[i]
			}
			h := rms(xs[t], w[n.PostAttentionNorm])
			var g, u []float64
			if c.FusedGateUp {
				g, u = linear(w[n.GateUp], 0, I, H, h), linear(w[n.GateUp], I, I, H, h)
			} else {
				g, u = linear(w[n.Gate], 0, I, H, h), linear(w[n.Up], 0, I, H, h)
			}
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := linear(w[n.Down], 0, H, I, g)
			for i := range d {
				xs[t][i] += d[i]
			}
		}
	}
	head := w[config.LMHead]
	if c.TieWordEmbeddings {
		head = emb
	}
	out := make([][]float64, T)
	for t := range xs {
		out[t] = linear(head, 0, V, H, rms(xs[t], w[config.FinalNorm]))
	}
	return out
}

// relErr is max|a-b| / max|b|.
func relErr(a []float32, b []float64) float64 {
	num, den := 0.0, 0.0
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-b[i]))
		den = math.Max(den, math.Abs(b[i]))
	}
	return num / den
}

var testIDs = []int{1, 5, 17, 33, 2, 60, 41, 8, 8, 19, 63, 0}

func TestForwardMatchesReference(t *testing.T) {
	cases := map[string]tiny{}
	for _, a := range []string{"llama", "mistral", "phi3"} {
		cases[a] = defaultTiny(a)
	}
	tied := defaultTiny("llama")
	tied.tied = true
	cases["llama-tied"] = tied
	mha := defaultTiny("mistral")
	mha.kvHeads, mha.window = 4, 64
	cases["mistral-mha-window"] = mha
	phiGQA := defaultTiny("phi3")
	phiGQA.kvHeads = 1
	cases["phi3-mqa"] = phiGQA
	l3 := defaultTiny("llama")
	l3.ropeLlama3, l3.theta = true, 500000
	cases["llama3-rope-scaling"] = l3
	bf := defaultTiny("llama")
	bf.dtype = safetensors.BF16
	cases["llama-bf16"] = bf
	f16 := defaultTiny("phi3")
	f16.dtype = safetensors.F16
	cases["phi3-f16"] = f16
	for name, tm := range cases {
		t.Run(name, func(t *testing.T) {
			dir, w := tm.write(t)
			m, err := Load(dir, tensor.NewCPU(0))
			if err != nil {
				t.Fatal(err)
			}
			ref := refForward(m.Config, w, testIDs)
			cache, err := m.NewCache(len(testIDs))
			if err != nil {
				t.Fatal(err)
			}
			all, err := m.Forward(cache, testIDs, true)
			if err != nil {
				t.Fatal(err)
			}
			V := m.Config.VocabSize
			for p := range testIDs {
				if e := relErr(all[p*V:(p+1)*V], ref[p]); e > 1e-4 {
					t.Errorf("position %d: relative error %.3g > 1e-4", p, e)
				}
			}
			// Prefill part of the sequence, then decode one token at a
			// time: each step's logits equal the full recompute.
			cache.Reset()
			split := 5
			last, err := m.Forward(cache, testIDs[:split], false)
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(last, ref[split-1]); e > 1e-4 {
				t.Errorf("prefill: relative error %.3g", e)
			}
			for p := split; p < len(testIDs); p++ {
				step, err := m.Forward(cache, testIDs[p:p+1], false)
				if err != nil {
					t.Fatal(err)
				}
				if e := relErr(step, ref[p]); e > 1e-4 {
					t.Errorf("decode position %d: relative error %.3g vs reference", p, e)
				}
				full := all[p*V : (p+1)*V]
				for i := range step {
					if d := math.Abs(float64(step[i] - full[i])); d > 1e-5*(1+math.Abs(float64(full[i]))) {
						t.Fatalf("decode position %d: cached logit %d = %g, full recompute %g", p, i, step[i], full[i])
					}
				}
			}
			if _, err := m.Forward(cache, []int{3}, false); err == nil {
				t.Error("Forward past the cache capacity: no error")
			}
		})
	}
}

// uncachedGenerate recomputes the whole sequence for every token.
func uncachedGenerate(t *testing.T, m *Model, prompt []int, opts GenOptions) []int {
	s := NewSampler(opts)
	seq := append([]int(nil), prompt...)
	var out []int
	for len(out) < opts.MaxTokens {
		c, err := m.NewCache(len(seq))
		if err != nil {
			t.Fatal(err)
		}
		logits, err := m.Forward(c, seq, false)
		if err != nil {
			t.Fatal(err)
		}
		id := s.Sample(logits)
		out = append(out, id)
		seq = append(seq, id)
	}
	return out
}

func loadTiny(t *testing.T, tm tiny) *Model {
	dir, _ := tm.write(t)
	m, err := Load(dir, tensor.NewCPU(0))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGenerate(t *testing.T) {
	ctx := context.Background()
	for _, arch := range []string{"llama", "mistral", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			m := loadTiny(t, defaultTiny(arch))
			prompt := []int{1, 9, 30, 4}
			gen := func(o GenOptions) []int {
				var emitted []int
				out, err := m.Generate(ctx, prompt, o, func(id int) error { emitted = append(emitted, id); return nil })
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(out) != fmt.Sprint(emitted) {
					t.Fatalf("returned %v, emitted %v", out, emitted)
				}
				return out
			}
			greedy := gen(GenOptions{MaxTokens: 20})
			if len(greedy) != 20 {
				t.Fatalf("greedy generated %d tokens, want 20", len(greedy))
			}
			if u := uncachedGenerate(t, m, prompt, GenOptions{MaxTokens: 20}); fmt.Sprint(u) != fmt.Sprint(greedy) {
				t.Fatalf("greedy cached %v != uncached %v", greedy, u)
			}
			if k1 := gen(GenOptions{MaxTokens: 20, Temperature: 0.8, TopK: 1, Seed: 3}); fmt.Sprint(k1) != fmt.Sprint(greedy) {
				t.Errorf("top-k 1 %v != greedy %v", k1, greedy)
			}
			samp := GenOptions{MaxTokens: 20, Temperature: 1.5, TopK: 40, TopP: 0.95, Seed: 42}
			a, b := gen(samp), gen(samp)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Errorf("same seed, different samples: %v vs %v", a, b)
			}
			if u := uncachedGenerate(t, m, prompt, samp); fmt.Sprint(u) != fmt.Sprint(a) {
				t.Errorf("sampled cached %v != uncached %v", a, u)
			}
			samp.Seed = 43
			if c := gen(samp); fmt.Sprint(c) == fmt.Sprint(a) {
				t.Errorf("seeds 42 and 43 gave the same samples %v", a)
			}
			// Stop tokens: stop at the first occurrence of greedy's 4th token.
			stopAt := greedy[3]
			want := greedy[:3]
			for i, id := range greedy[:3] {
				if id == stopAt {
					want = greedy[:i]
					break
				}
			}
			if s := gen(GenOptions{MaxTokens: 20, StopTokens: []int{stopAt}}); fmt.Sprint(s) != fmt.Sprint(want) {
				t.Errorf("stop token %d: got %v, want %v", stopAt, s, want)
			}
			// emit returning ErrStop ends generation without an error.
			n := 0
			out, err := m.Generate(ctx, prompt, GenOptions{MaxTokens: 20}, func(int) error {
				n++
				if n == 2 {
					return ErrStop
				}
				return nil
			})
			if err != nil || len(out) != 2 {
				t.Errorf("ErrStop after 2 tokens: %v, %v", out, err)
			}
		})
	}
}

func TestSampler(t *testing.T) {
	logits := []float32{1, 3, 3, -2, 0.5}
	if got := Argmax(logits); got != 1 {
		t.Errorf("Argmax ties: got %d, want 1", got)
	}
	if got := NewSampler(GenOptions{Temperature: 0}).Sample(logits); got != 1 {
		t.Errorf("greedy: got %d", got)
	}
	// top-p small keeps only the best token (the lowest id among ties).
	s := NewSampler(GenOptions{Temperature: 1, TopP: 0.01, Seed: 1})
	for range 50 {
		if got := s.Sample(logits); got != 1 {
			t.Fatalf("top-p 0.01: got %d, want 1", got)
		}
	}
	// top-k 2 samples only ids 1 and 2, and both over many draws.
	s = NewSampler(GenOptions{Temperature: 1, TopK: 2, Seed: 5})
	seen := map[int]int{}
	for range 400 {
		seen[s.Sample(logits)]++
	}
	if len(seen) != 2 || seen[1] == 0 || seen[2] == 0 {
		t.Errorf("top-k 2 samples: %v", seen)
	}
	// Without truncation, the frequencies follow the softmax.
	s = NewSampler(GenOptions{Temperature: 1, Seed: 9})
	counts := make([]int, len(logits))
	const draws = 20000
	for range draws {
		counts[s.Sample(logits)]++
	}
	total := 0.0
	for _, l := range logits {
		total += math.Exp(float64(l))
	}
	for i, l := range logits {
		p := math.Exp(float64(l)) / total
		if got := float64(counts[i]) / draws; math.Abs(got-p) > 0.02 {
			t.Errorf("id %d: frequency %.3f, softmax %.3f", i, got, p)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	be := tensor.NewCPU(1)
	check := func(name, dir, want string) {
		t.Helper()
		_, err := Load(dir, be)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, want)
		}
		if err != nil && strings.Contains(strings.TrimSuffix(err.Error(), "\n"), "\n") {
			t.Errorf("%s: multi-line error %q", name, err)
		}
	}
	check("missing", filepath.Join(t.TempDir(), "nope"), "does not exist")
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(path string, b []byte) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	dir, _ := defaultTiny("llama").write(t)
	cfg := read(filepath.Join(dir, "config.json"))
	bad := strings.Replace(string(cfg), "LlamaForCausalLM", "GPT2LMHeadModel", 1)
	bad = strings.Replace(bad, `"model_type": "llama"`, `"model_type": "gpt2"`, 1)
	write(filepath.Join(dir, "config.json"), []byte(bad))
	check("gpt2", dir, "not supported")

	dir, _ = defaultTiny("llama").write(t)
	st := filepath.Join(dir, safetensors.SingleFileName)
	data := read(st)
	write(st, data[:len(data)/2])
	check("truncated", dir, "cannot load the weights")

	dir, _ = defaultTiny("llama").write(t)
	write(filepath.Join(dir, safetensors.SingleFileName), []byte("garbage"))
	check("garbage", dir, "cannot load the weights")

	// Weights of another shape than the config says.
	dir, _ = defaultTiny("llama").write(t)
	other, _ := defaultTiny("phi3").write(t)
	write(filepath.Join(dir, safetensors.SingleFileName), read(filepath.Join(other, safetensors.SingleFileName)))
	check("mismatch", dir, "do not match config.json")

	dir, _ = defaultTiny("llama").write(t)
	if err := os.Remove(filepath.Join(dir, safetensors.SingleFileName)); err != nil {
		t.Fatal(err)
	}
	check("no weights", dir, "holds neither")

	// Mistral's sliding window: contexts beyond it are refused.
	tm := defaultTiny("mistral")
	tm.window = 16
	m := loadTiny(t, tm)
	if _, err := m.Generate(context.Background(), []int{1, 2, 3}, GenOptions{MaxTokens: 20}, nil); err == nil || !strings.Contains(err.Error(), "sliding") {
		t.Errorf("beyond the sliding window: %v", err)
	}
	if _, err := m.Generate(context.Background(), []int{1, 2, 3}, GenOptions{MaxTokens: 14}, nil); err != nil {
		t.Errorf("within the sliding window: %v", err)
	}
	if _, err := m.Generate(context.Background(), []int{1, 200}, GenOptions{MaxTokens: 2}, nil); err == nil {
		t.Error("out-of-vocabulary prompt id: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, []int{1}, GenOptions{MaxTokens: 5}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// BenchmarkGreedyDecode measures greedy decoding on a random ~26M-parameter
// Llama (hidden 512, 6 layers, 8 heads, 4 kv heads, intermediate 1408,
// vocabulary 16384, tied embeddings): a 16-token prompt, then 128 tokens.
// It reports decode tokens/s (prefill excluded) and the GFLOP/s of its
// matrix products: 2 FLOPs per weight of every projection and of the
// output head per token (attention over the short cache is left out).
func BenchmarkGreedyDecode(b *testing.B) {
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		b.Run(string(dt), func(b *testing.B) {
			tm := tiny{arch: "llama", hidden: 512, inter: 1408, layers: 6, heads: 8, kvHeads: 4, vocab: 16384,
				tied: true, dtype: dt, theta: 10000, maxPos: 2048, seed: 1}
			dir, _ := tm.write(b)
			m, err := Load(dir, tensor.NewCPU(0))
			if err != nil {
				b.Fatal(err)
			}
			prompt := make([]int, 16)
			for i := range prompt {
				prompt[i] = 100 + 37*i
			}
			const steps = 128
			b.ResetTimer()
			var decode float64
			for range b.N {
				c, _ := m.NewCache(len(prompt) + steps)
				logits, err := m.Forward(c, prompt, false)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for range steps {
					if logits, err = m.Forward(c, []int{Argmax(logits)}, false); err != nil {
						b.Fatal(err)
					}
				}
				decode += time.Since(start).Seconds()
			}
			tps := float64(steps*b.N) / decode
			perLayer := tm.hidden*tm.hidden*2 + tm.hidden*(tm.hidden/tm.heads*tm.kvHeads)*2 + 3*tm.hidden*tm.inter
			weights := tm.layers*perLayer + tm.vocab*tm.hidden
			b.ReportMetric(tps, "tok/s")
			b.ReportMetric(2*float64(weights)*tps/1e9, "GFLOP/s")
		})
	}
}
