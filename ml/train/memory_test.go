package train

import (
	"errors"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
)

// shapeConfigs are the published shapes of the models the GPU benchmark
// plans for (config.json's numbers; no weights needed).
var shapeConfigs = map[string]string{
	"Llama-3-8B": `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4096,"intermediate_size":14336,
"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":128256,"max_position_embeddings":8192,
"rms_norm_eps":1e-5,"rope_theta":500000,"tie_word_embeddings":false,"bos_token_id":128000,"eos_token_id":128001}`,
	"Mistral-7B": `{"architectures":["MistralForCausalLM"],"model_type":"mistral","hidden_size":4096,"intermediate_size":14336,
"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"vocab_size":32000,"max_position_embeddings":32768,
"rms_norm_eps":1e-5,"rope_theta":1000000,"tie_word_embeddings":false,"bos_token_id":1,"eos_token_id":2}`,
	"Phi-3-mini": `{"architectures":["Phi3ForCausalLM"],"model_type":"phi3","hidden_size":3072,"intermediate_size":8192,
"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":32,"vocab_size":32064,"max_position_embeddings":4096,
"rms_norm_eps":1e-5,"rope_theta":10000,"tie_word_embeddings":false,"bos_token_id":1,"eos_token_id":32000}`,
}

// TestPlansFor24GB plans QLoRA (r 16 on every linear, dropout 0.05, a
// bf16 base, the CUDA backend's cuBLASLt path) of the 7-8B shapes at
// sequence length 1024 on a 24 GiB device: one sequence per micro-batch
// fits without activation checkpointing, four need it and fit with it,
// thirty-two do not fit and say so. (gpu.TestMemoryPlanMatchesPeak holds the
// plan to measured peaks.)
func TestPlansFor24GB(t *testing.T) {
	const device = 24 << 30
	lc := LoRAConfig{R: 16, Alpha: 32, Dropout: 0.05, TargetModules: []string{AllLinear}}
	for _, name := range []string{"Llama-3-8B", "Mistral-7B", "Phi-3-mini"} {
		cfg, err := config.Parse([]byte(shapeConfigs[name]))
		if err != nil {
			t.Fatal(err)
		}
		o := PlanOptions{SeqLen: 1024, WeightBytes: 2, WidenGEMM: true, Workspace: 32 << 20}
		for _, rows := range []int{1, 4, 32} {
			o.Rows = rows
			p, err := PlanToFit(cfg, lc, o, device)
			t.Logf("%s, %d×1024: %v (%v)", name, rows, p, err)
			switch {
			case rows == 1 && (err != nil || p.Checkpointing):
				t.Errorf("%s, one sequence: %v, %v; want it to fit without checkpointing", name, p, err)
			case rows == 4 && (err != nil || !p.Checkpointing):
				t.Errorf("%s, four sequences: %v, %v; want it to fit with checkpointing", name, p, err)
			case rows == 32 && !errors.Is(err, ErrDoesNotFit):
				t.Errorf("%s, thirty-two sequences: %v, %v; want ErrDoesNotFit", name, p, err)
			}
		}
	}
}
