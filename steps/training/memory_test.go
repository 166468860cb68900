package training

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/train"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// smallDevice is the CPU backend reporting a fixed device memory, as the
// CUDA backend does: what activation_checkpointing = "auto" plans against.
type smallDevice struct {
	*tensor.CPU
	total int64
}

func (d smallDevice) Memory() tensor.MemoryInfo { return tensor.MemoryInfo{Total: d.total} }

// TestActivationCheckpointingAuto: "auto" leaves checkpointing off on the
// CPU and where the plan fits the device, turns it on where only the
// checkpointed plan fits, and fails at batch_size, with both plans, where
// neither does; "on" and "off" are obeyed.
func TestActivationCheckpointingAuto(t *testing.T) {
	cfg, err := config.Parse([]byte(`{"hidden_size":64,"intermediate_size":160,"num_hidden_layers":3,"num_attention_heads":4,
"num_key_value_heads":2,"vocab_size":300,"max_position_embeddings":64,"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,
"tie_word_embeddings":false,"architectures":["LlamaForCausalLM"],"model_type":"llama"}`))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "base")
	if err := train.WriteRandomModel(mkdir(t, base), cfg, 1); err != nil {
		t.Fatal(err)
	}
	decide := func(setting string, be tensor.Backend) (bool, error) {
		inv := steptest.Invocation(t, QLoRA{}, "qlora_train.t", nil, map[string]cty.Value{
			"activation_checkpointing": cty.StringVal(setting), "batch_size": cty.NumberIntVal(2), "seq_len": cty.NumberIntVal(32)})
		c, err := readQLoRA(inv)
		if err != nil {
			t.Fatal(err)
		}
		m, err := train.LoadQLoRA(base, be, c.lora, 1)
		if err != nil {
			t.Fatal(err)
		}
		return c.checkpointing(inv, m, be)
	}
	cpu := tensor.NewCPU(1)
	o := train.PlanOptions{Rows: 2, SeqLen: 32, WeightBytes: 4}
	lc := train.LoRAConfig{R: 16, Alpha: 32, Dropout: 0.05, TargetModules: []string{train.AllLinear}}
	plain, _ := train.PlanQLoRAMemory(cfg, lc, o)
	o.ActivationCheckpointing = true
	ck, _ := train.PlanQLoRAMemory(cfg, lc, o)
	for _, tc := range []struct {
		setting string
		be      tensor.Backend
		want    bool
		err     bool
	}{
		{"auto", cpu, false, false},
		{"on", cpu, true, false},
		{"auto", smallDevice{cpu, deviceReserve + plain.Total}, false, false},
		{"auto", smallDevice{cpu, deviceReserve + ck.Total}, true, false},
		{"off", smallDevice{cpu, deviceReserve + ck.Total}, false, false},
		{"auto", smallDevice{cpu, deviceReserve + ck.Total - 1}, false, true},
	} {
		got, err := decide(tc.setting, tc.be)
		var ae *steps.AttrError
		if tc.err {
			if !errors.As(err, &ae) || ae.Attr != "batch_size" || !strings.Contains(err.Error(), "does not fit in device memory") {
				t.Errorf("%s on %T: %v, want a batch_size error matching ErrDoesNotFit", tc.setting, tc.be, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s on %T: %v, %v; want %v", tc.setting, tc.be, got, err, tc.want)
		}
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
