package train

import (
	"context"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// benchConfig is the demo pipeline's base model shape.
func benchConfig(b *testing.B) *config.Config {
	cfg, err := config.Parse([]byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":256,"intermediate_size":688,
"num_hidden_layers":4,"num_attention_heads":4,"num_key_value_heads":4,"vocab_size":4096,"max_position_embeddings":1024,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":true}`))
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

func benchExamples(n, length int) []Example {
	var out []Example
	for i := 0; i < n; i++ {
		ids := make([]int, length)
		for j := range ids {
			ids[j] = 3 + (i*7+j*13)%4000
		}
		out = append(out, Example{IDs: ids, Labels: ids})
	}
	return out
}

// BenchmarkPretrainStep measures full training (every weight trainable).
func BenchmarkPretrainStep(b *testing.B) {
	cfg := benchConfig(b)
	m := NewPretrain(cfg, tensor.NewCPU(0), 1, 0.02)
	ex := benchExamples(8, 256)
	opts := Options{BatchSize: 8, SeqLen: 256, MaxSteps: 1, Schedule: Schedule{Kind: "constant", Peak: 1e-3}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Train(context.Background(), m, ex, nil, opts); err != nil {
			b.Fatal(err)
		}
	}
	tps := float64(8*256*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(tps, "tok/s")
	b.ReportMetric(tps*trainFLOPs(cfg, 256, false)/1e9, "GFLOP/s")
}

// trainFLOPs is the model FLOPs per token of a training step: 6 per
// parameter of every matrix (forward, input gradient, weight gradient)
// when all are trained, 4 for frozen ones (no weight gradient), plus
// attention's score and value products (forward 4·d per attended pair,
// backward twice that) at the mean causal span T/2. Embedding lookups and
// element-wise ops are not counted.
func trainFLOPs(cfg *config.Config, seq int, frozen bool) float64 {
	h, L := float64(cfg.HiddenSize), float64(cfg.NumHiddenLayers)
	lin := L * (2*h*float64(cfg.QDim()) + 2*h*float64(cfg.KVDim()) + 3*h*float64(cfg.IntermediateSize))
	head := float64(cfg.VocabSize) * h
	per := 6.0
	if frozen {
		per = 4
	}
	attn := 12 * float64(cfg.QDim()) * L * float64(seq) / 2
	return per*lin + 6*head + attn
}

// BenchmarkQLoRAStep measures QLoRA training of a 27M-parameter llama
// (hidden 512, 8 layers): NF4 base dequantized per layer, LoRA r=16 on
// every linear layer, micro-batches of 4×256 tokens.
func BenchmarkQLoRAStep(b *testing.B) {
	cfg, err := config.Parse([]byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":512,"intermediate_size":1376,
"num_hidden_layers":8,"num_attention_heads":8,"num_key_value_heads":8,"vocab_size":4096,"max_position_embeddings":1024,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":true}`))
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := WriteRandomModel(dir, cfg, 1); err != nil {
		b.Fatal(err)
	}
	m, err := LoadQLoRA(dir, tensor.NewCPU(0), LoRAConfig{R: 16, Alpha: 32, TargetModules: []string{"all-linear"}}, 1)
	if err != nil {
		b.Fatal(err)
	}
	ex := benchExamples(4, 256)
	opts := Options{BatchSize: 4, SeqLen: 256, MaxSteps: 1, Schedule: Schedule{Kind: "constant", Peak: 1e-3}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Train(context.Background(), m, ex, nil, opts); err != nil {
			b.Fatal(err)
		}
	}
	tps := float64(4*256*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(tps, "tok/s")
	b.ReportMetric(tps*trainFLOPs(cfg, 256, true)/1e9, "GFLOP/s")
}
