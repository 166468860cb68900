package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/ml/train"
)

// evalModel is the part of eval's report.json this test reads.
type evalModel struct {
	ValLoss       *float64 `json:"val_loss"`
	PersonaLoss   *float64 `json:"persona_loss"`
	ChatLoss      *float64 `json:"chat_loss"`
	ToolCallRate  *float64 `json:"tool_call_rate"`
	ExactArgsRate *float64 `json:"exact_args_rate"`
	ToolPrompts   int      `json:"tool_prompts"`
}

// digests runs the pipeline cold in w and returns every step's output
// digests.
func (w *workspace) digests() (map[string]string, string) {
	w.t.Helper()
	out, stderr, err := w.mlbuild("run", "twainbot.hcl", "--json")
	if err != nil {
		w.t.Fatalf("mlbuild run: %v\n%s\n%s", err, out, stderr)
	}
	d := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev struct {
			Type, Step, Status string
			Outputs            map[string]struct{ Digest string }
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			w.t.Fatalf("not a JSON line: %q", line)
		}
		if ev.Type != "step" {
			continue
		}
		if ev.Status != "ran" {
			w.t.Fatalf("a cold build did not run %s: %s", ev.Step, line)
		}
		for name, o := range ev.Outputs {
			d[ev.Step+"."+name] = o.Digest
		}
	}
	return d, out
}

// TestTwainbotEndToEnd builds the whole TwainBot pipeline — data steps,
// tokenizer training, pretraining, QLoRA, merge and eval — in its reduced
// configuration (ci.vars.hcl) in two fresh workspaces, and checks that
// every artifact is bit-identical between them and that the metrics show
// real training.
func TestTwainbotEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and trains the whole pipeline twice (about two minutes)")
	}
	a, b := newWorkspace(t), newWorkspace(t)
	da, _ := a.digests()
	if len(da) < 15 {
		t.Fatalf("only %d outputs: %v", len(da), da)
	}

	human, _, err := a.mlbuild("run", "twainbot.hcl")
	if err != nil || !strings.Contains(human, "13 steps: 0 ran, 13 cached") ||
		!strings.Contains(human, "eval.twainbot report: build/eval.twainbot/report/report.html") {
		t.Fatalf("second run: %v\n%s", err, human)
	}

	db, _ := b.digests()
	for k, v := range da {
		if db[k] != v {
			t.Errorf("%s differs between two cold builds: %s vs %s", k, v, db[k])
		}
	}

	// The adapter is in PEFT's format and loads back.
	ad, err := train.LoadAdapter(filepath.Join(a.dir, "build/qlora_train.twainbot/adapter"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ad.Tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]; !ok || ad.Config.R != 16 {
		t.Fatalf("adapter: r=%d, %d tensors", ad.Config.R, len(ad.Tensors))
	}

	var qm struct {
		InitialValLoss float64 `json:"initial_val_loss"`
		BestValLoss    float64 `json:"best_val_loss"`
		NF4BytesPer    float64 `json:"nf4_bytes_per_parameter"`
	}
	readJSON(t, filepath.Join(a.dir, "build/qlora_train.twainbot/metrics.json"), &qm)
	if !(qm.BestValLoss < qm.InitialValLoss-1) || qm.NF4BytesPer < 0.5 || qm.NF4BytesPer > 0.6 {
		t.Fatalf("qlora_train metrics: %+v", qm)
	}
	for _, f := range []string{"curves/loss.csv", "curves/loss.png"} {
		if st, err := os.Stat(filepath.Join(a.dir, "build/qlora_train.twainbot", f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}

	var rep struct {
		Models map[string]evalModel `json:"models"`
	}
	readJSON(t, filepath.Join(a.dir, "build/eval.twainbot/report/report.json"), &rep)
	base, ft := rep.Models["base"], rep.Models["finetuned"]
	if base.ValLoss == nil || ft.ValLoss == nil || base.ChatLoss == nil || ft.ChatLoss == nil || base.ToolCallRate == nil {
		t.Fatalf("report lacks metrics: %+v %+v", base, ft)
	}
	if !(*ft.ChatLoss < *base.ChatLoss-1) || !(*ft.ValLoss < *base.ValLoss) {
		t.Errorf("fine-tuning did not lower the loss: base %v/%v, fine-tuned %v/%v", *base.ValLoss, *base.ChatLoss, *ft.ValLoss, *ft.ChatLoss)
	}
	if *base.ToolCallRate != 0 || base.ToolPrompts != 4 {
		t.Errorf("the base model, which never saw a conversation, called the tool: %v of %d", *base.ToolCallRate, base.ToolPrompts)
	}
	if html, err := os.ReadFile(filepath.Join(a.dir, "build/eval.twainbot/report/report.html")); err != nil || !strings.Contains(string(html), "data:image/png;base64,") {
		t.Fatalf("report.html: %v", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestPipelineVarFiles: every variable file beside twainbot.hcl loads with
// it (a file that sets a variable the pipeline does not declare, or gives
// one a value of the wrong type, fails here rather than in a user's run),
// and so does the pipeline with its defaults.
func TestPipelineVarFiles(t *testing.T) {
	t.Chdir(filepath.Join("..", "..", "pipelines"))
	files, err := filepath.Glob("*.vars.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no *.vars.hcl in pipelines/: %v", err)
	}
	if _, err := engine.Load("twainbot.hcl", engine.LoadOptions{}); err != nil {
		t.Errorf("twainbot.hcl with its defaults: %v", err)
	}
	for _, f := range files {
		opts := engine.LoadOptions{VarFiles: []string{f}}
		if _, err := engine.Load("twainbot.hcl", opts); err != nil {
			t.Errorf("twainbot.hcl with %s: %v", f, err)
		}
	}
}
