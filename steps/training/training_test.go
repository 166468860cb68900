package training

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/internal/tinymodel"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
	"github.com/mlbuild/mlbuild/steps/trainingdata"
)

func TestConfigsMatchSchemas(t *testing.T) {
	for _, c := range []struct {
		k   steps.Kind
		cfg any
	}{{Pretrain{}, &pretrainConfig{}}, {QLoRA{}, &qloraConfig{}}, {Merge{}, &threadsConfig{}}} {
		if err := steps.CheckConfig(c.k.Schema(), c.cfg); err != nil {
			t.Error(err)
		}
	}
}

// TestValidation checks attribute errors, and that a config with several
// wrong attributes reports the same one (the first in the schema) every
// time.
func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		k          steps.Kind
		cfg        map[string]cty.Value
		attr, want string
	}{
		{QLoRA{}, map[string]cty.Value{"r": cty.NumberIntVal(0)}, "r", "between 1 and 4096"},
		{QLoRA{}, map[string]cty.Value{"target_modules": cty.ListVal([]cty.Value{cty.StringVal("q_prj")})}, "target_modules", `unknown module "q_prj"`},
		{QLoRA{}, map[string]cty.Value{"target_modules": cty.ListVal([]cty.Value{cty.StringVal("all-linear"), cty.StringVal("q_proj")})}, "target_modules", "only entry"},
		{QLoRA{}, map[string]cty.Value{"modules_to_save": cty.ListVal([]cty.Value{cty.StringVal("norm")})}, "modules_to_save", "unknown module"},
		{QLoRA{}, map[string]cty.Value{"seq_len": cty.NumberFloatVal(1.5)}, "seq_len", "whole number"},
		{QLoRA{}, map[string]cty.Value{"adam_beta2": cty.NumberIntVal(1)}, "adam_beta2", "below 1"},
		{QLoRA{}, map[string]cty.Value{"lr_schedule": cty.StringVal("exp")}, "lr_schedule", ""},
		{QLoRA{}, map[string]cty.Value{"activation_checkpointing": cty.StringVal("yes")}, "activation_checkpointing", `"auto", "on" or "off"`},
		{Pretrain{}, map[string]cty.Value{"num_heads": cty.NumberIntVal(3)}, "num_heads", "even width"},
		{Pretrain{}, map[string]cty.Value{"seq_len": cty.NumberIntVal(4096)}, "seq_len", "exceeds max_position_embeddings"},
		{Pretrain{}, map[string]cty.Value{"conversations": cty.StringVal("some")}, "conversations", `got "some"`},
		// Several wrong: the first in the schema, every time.
		{QLoRA{}, map[string]cty.Value{"patience": cty.NumberIntVal(-1), "epochs": cty.NumberIntVal(0), "lora_dropout": cty.NumberIntVal(2)}, "lora_dropout", "[0, 1)"},
		{Pretrain{}, map[string]cty.Value{"init_std": cty.NumberIntVal(0), "hidden_size": cty.NumberIntVal(0), "batch_size": cty.NumberIntVal(0)}, "hidden_size", "between 1"},
	} {
		if err := steptest.FirstError(t, tc.k, tc.cfg, tc.attr); !strings.Contains(err, tc.want) {
			t.Fatalf("%s %v: got %v, want an error containing %q", tc.k.Schema().Kind, tc.cfg, err, tc.want)
		}
	}
	for _, k := range []steps.Kind{Pretrain{}, QLoRA{}} {
		if err := k.(steps.Validator).Validate(steptest.Invocation(t, k, "x.y", nil, nil)); err != nil {
			t.Errorf("%s defaults: %v", k.Schema().Kind, err)
		}
	}
}

// chars is the tiny model's character vocabulary: printable ASCII and the
// newline.
func chars() []string {
	cs := []string{"\n"}
	for c := ' '; c <= '~'; c++ {
		cs = append(cs, string(c))
	}
	return cs
}

// writeData writes prose and TwainBot conversations as JSONL files.
func writeData(ws *steptest.Workspace) {
	var prose strings.Builder
	for i := range 24 {
		fmt.Fprintf(&prose, `{"text":"The river was %d feet high on day %d, and the pilot said so."}`+"\n", i%7, i)
	}
	ws.Write("data/prose.jsonl", prose.String())
	ws.Write("data/chat.jsonl", conversations(24))
}

// conversations returns n TwainBot conversations as JSONL records.
func conversations(n int) string {
	var convs strings.Builder
	tb := chat.TwainBot()
	for i := range n {
		text := tb.Render([]chat.Message{
			{Role: chat.RoleUser, Content: fmt.Sprintf("How high is the river on day %d?", i)},
			{Role: chat.RoleAssistant, Content: fmt.Sprintf("%d feet, and rising.", i%7)},
		}, false)
		b, _ := json.Marshal(trainingdata.Record{Text: text})
		convs.Write(b)
		convs.WriteByte('\n')
	}
	return convs.String()
}

// TestPretrainQLoRAMerge trains a tiny base, fine-tunes a tiny model with
// QLoRA and merges the adapter, through the engine: the outputs are what
// the kinds promise, a rerun is cached, and a second workspace gets
// byte-identical artifacts.
func TestPretrainQLoRAMerge(t *testing.T) {
	var first map[string][]byte
	for round := range 2 {
		ws := steptest.New(t)
		writeData(ws)
		base := filepath.Join(ws.Dir, "base")
		if err := os.MkdirAll(base, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := tinymodel.Write(base, tinymodel.Spec{Seed: 3, VocabSize: 128, MaxPositions: 256, Chars: chars()}); err != nil {
			t.Fatal(err)
		}
		loop := map[string]cty.Value{"seq_len": cty.NumberIntVal(64), "batch_size": cty.NumberIntVal(4), "epochs": cty.NumberIntVal(1),
			"eval_every": cty.NumberIntVal(0), "checkpoint_every": cty.NumberIntVal(0), "threads": cty.NumberIntVal(2)}
		with := func(extra map[string]cty.Value) map[string]cty.Value {
			out := map[string]cty.Value{}
			for k, v := range loop {
				out[k] = v
			}
			for k, v := range extra {
				out[k] = v
			}
			return out
		}
		pre := steptest.Step{Name: "base", Inputs: map[string][]string{"tokenizer": {"base"}, "inputs": {"data/prose.jsonl"}},
			Config: with(map[string]cty.Value{"hidden_size": cty.NumberIntVal(32), "intermediate_size": cty.NumberIntVal(48),
				"num_layers": cty.NumberIntVal(1), "num_heads": cty.NumberIntVal(2), "num_kv_heads": cty.NumberIntVal(1),
				"max_position_embeddings": cty.NumberIntVal(128), "validation_fraction": cty.NumberFloatVal(0.2)})}
		p := ws.Run(Pretrain{}, pre)
		var cfg map[string]any
		p.JSON("output", &cfg, "config.json")
		if cfg["hidden_size"] != 32.0 || cfg["num_key_value_heads"] != 1.0 || cfg["vocab_size"] != 99.0 {
			t.Fatalf("pretrained config.json: %v", cfg)
		}
		var pm map[string]any
		p.JSON("metrics", &pm)
		if pm["train_records"] != 19.0 || pm["validation_records"] != 5.0 || pm["steps"] != 5.0 ||
			!(pm["best_val_loss"].(float64) < pm["initial_val_loss"].(float64)) {
			t.Fatalf("pretrain metrics (19 records trained, 5 held out, 5 steps, validation loss down): %v", pm)
		}
		if again := ws.Run(Pretrain{}, pre); again.Status != engine.StatusCached {
			t.Fatalf("a rerun of pretrain: %s", again.Status)
		}

		q := ws.Run(QLoRA{}, steptest.Step{Name: "tune", Inputs: map[string][]string{"base": {"base"}, "train": {"data/chat.jsonl"}, "validation": {"data/chat.jsonl"}},
			Config: with(map[string]cty.Value{"r": cty.NumberIntVal(2), "lora_alpha": cty.NumberIntVal(4), "target_modules": cty.ListVal([]cty.Value{cty.StringVal("q_proj"), cty.StringVal("v_proj")})})})
		var ac struct {
			R             int      `json:"r"`
			LoraAlpha     float64  `json:"lora_alpha"`
			TargetModules []string `json:"target_modules"`
			PeftType      string   `json:"peft_type"`
		}
		q.JSON("adapter", &ac, "adapter_config.json")
		if ac.R != 2 || ac.LoraAlpha != 4 || ac.PeftType != "LORA" || len(ac.TargetModules) != 2 {
			t.Fatalf("adapter_config.json: %+v", ac)
		}
		var qm map[string]any
		q.JSON("metrics", &qm)
		if qm["train_records"] != 24.0 || qm["validation_records"] != 24.0 {
			t.Fatalf("qlora metrics: %v", qm)
		}
		for _, f := range []string{"loss.csv", "loss.png"} {
			if len(q.Read("curves", f)) == 0 {
				t.Fatalf("curves/%s is empty", f)
			}
		}

		// merge takes the adapter from the workspace's build folder, as
		// qlora_train.tune.adapter would give it.
		m := ws.Run(Merge{}, steptest.Step{Name: "tuned", Inputs: map[string][]string{"base": {"base"}, "adapter": {q.Path("adapter")}},
			Config: map[string]cty.Value{"threads": cty.NumberIntVal(2)}})
		model, err := llama.Load(m.Path("output"), tensor.NewCPU(2))
		if err != nil {
			t.Fatalf("the merged model does not load: %v", err)
		}
		if model.Config.HiddenSize != 32 {
			t.Fatalf("merged model config: %+v", model.Config)
		}

		got := map[string][]byte{
			"pretrain":  p.Read("output", "model.safetensors"),
			"adapter":   q.Read("adapter", "adapter_model.safetensors"),
			"metrics":   q.Read("metrics"),
			"merged":    m.Read("output", "model.safetensors"),
			"configpre": p.Read("output", "config.json"),
		}
		if round == 0 {
			first = got
			continue
		}
		for name, b := range got {
			if string(b) != string(first[name]) {
				t.Errorf("%s differs between two workspaces", name)
			}
		}
	}
}
