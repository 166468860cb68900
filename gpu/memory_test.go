package gpu

import (
	"context"
	"fmt"
	"testing"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/train"
)

// TestMemoryPlanMatchesPeak holds train.PlanQLoRAMemory to the CUDA
// backend's measured peak, byte for byte (on the interpreter, which
// allocates as a device does), for QLoRA runs of Llama and Phi-3 shapes,
// all or some modules adapted, with and without activation checkpointing
// and dropout.
func TestMemoryPlanMatchesPeak(t *testing.T) {
	for _, mc := range []struct {
		name, json string
		targets    []string
	}{
		{"llama", `"num_attention_heads":4,"num_key_value_heads":2,"tie_word_embeddings":false,"architectures":["LlamaForCausalLM"],"model_type":"llama"`,
			[]string{"all-linear"}},
		{"llama-some", `"num_attention_heads":4,"num_key_value_heads":2,"tie_word_embeddings":true,"architectures":["LlamaForCausalLM"],"model_type":"llama"`,
			[]string{"q_proj", "v_proj", "down_proj"}},
		{"phi3", `"num_attention_heads":4,"num_key_value_heads":4,"tie_word_embeddings":false,"architectures":["Phi3ForCausalLM"],"model_type":"phi3"`,
			[]string{"all-linear"}},
	} {
		t.Run(mc.name, func(t *testing.T) { memoryPlanMatchesPeak(t, mc.json, mc.targets) })
	}
}

func memoryPlanMatchesPeak(t *testing.T, arch string, targets []string) {
	cfg, err := config.Parse([]byte(`{"hidden_size":64,"intermediate_size":160,"num_hidden_layers":3,
"vocab_size":300,"max_position_embeddings":64,"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,` + arch + `}`))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := train.WriteRandomModel(base, cfg, 5); err != nil {
		t.Fatal(err)
	}
	const rows, seq = 2, 32
	var examples []train.Example
	for i := range 8 {
		ids := make([]int, seq)
		for j := range ids {
			ids[j] = 3 + (i*31+j*7)%290
		}
		examples = append(examples, train.Example{IDs: ids, Labels: ids})
	}
	for _, tc := range []struct {
		recompute bool
		dropout   float64
	}{{false, 0}, {true, 0}, {false, 0.1}, {true, 0.1}} {
		t.Run(fmt.Sprintf("checkpointing=%v,dropout=%v", tc.recompute, tc.dropout), func(t *testing.T) {
			be := interpreted(t)
			lc := train.LoRAConfig{R: 8, Alpha: 16, Dropout: tc.dropout, TargetModules: targets}
			m, err := train.LoadQLoRA(base, be, lc, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := train.Train(context.Background(), m, examples, nil, train.Options{
				MaxSteps: 1, BatchSize: rows, SeqLen: seq, Seed: 3, Schedule: train.Schedule{Kind: "constant", Peak: 1e-3},
				ActivationCheckpointing: tc.recompute,
			}); err != nil {
				t.Fatal(err)
			}
			plan, err := train.PlanQLoRAMemory(cfg, lc, train.PlanOptions{Rows: rows, SeqLen: seq, WeightBytes: 4, ActivationCheckpointing: tc.recompute})
			if err != nil {
				t.Fatal(err)
			}
			peak := be.Peak()
			t.Logf("measured peak %d bytes, plan %d", peak, plan.Total)
			if plan.Total != peak {
				t.Errorf("plan %d bytes is %+.3f%% off the measured peak %d (%+v)", plan.Total, 100*float64(plan.Total-peak)/float64(peak), peak, plan)
			}
		})
	}
}
