package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	mlconfig "github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/train"
)

// memResult is the peak memory of a qlora_train step beside the size of
// its base model in float32.
type memResult struct {
	params   int64
	peakRSS  int64
	seconds  float64
	fp32Size int64
}

// memBaseConfig is the base model of the memory benchmark: a 155M
// parameter llama (hidden 1024, 12 layers, the demo's 4096-token
// vocabulary), big enough that the weights, not the activations of short
// sequences, dominate.
const memBaseConfig = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":1024,"intermediate_size":2752,
"num_hidden_layers":12,"num_attention_heads":16,"num_key_value_heads":16,"vocab_size":4096,"max_position_embeddings":1024,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":true}`

// benchQLoRAMemory runs a real qlora_train step (as its own mlbuild
// process) on a random 155M-parameter base with the twainbot workspace's
// tokenizer and its persona text (prose, so that every record trains at
// the short sequence length), and reads the process's peak resident set
// size.
func benchQLoRAMemory(cfg *config, twainbotWS string) (*memResult, error) {
	ws := filepath.Join(cfg.tmp, "qlora-mem")
	base := filepath.Join(ws, "base")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	mc, err := mlconfig.Parse([]byte(memBaseConfig))
	if err != nil {
		return nil, err
	}
	if err := train.WriteRandomModel(base, mc, 1); err != nil {
		return nil, err
	}
	tokDir := filepath.Join(twainbotWS, "build", "tokenizer_train.twain", "tokenizer")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
		data, err := os.ReadFile(filepath.Join(tokDir, f))
		if err != nil {
			return nil, fmt.Errorf("the twainbot workspace has no tokenizer (did its cold build run?): %w", err)
		}
		if err := os.WriteFile(filepath.Join(base, f), data, 0o644); err != nil {
			return nil, err
		}
	}
	persona := filepath.Join(twainbotWS, "build", "split.persona")
	pipeline := fmt.Sprintf(`step "qlora_train" "mem" {
  base       = "base"
  train      = [%q]
  validation = [%q]
  max_steps  = 4
  seq_len    = 64
  batch_size = 8
  grad_accum = 1
  eval_every = 0
}
`, filepath.Join(persona, "train.jsonl"), filepath.Join(persona, "validation.jsonl"))
	if err := os.WriteFile(filepath.Join(ws, "mem.hcl"), []byte(pipeline), 0o644); err != nil {
		return nil, err
	}
	cmd, rssFile, err := peakRSSCommand(cfg.mlbuild, "run", "mem.hcl")
	if err != nil {
		return nil, err
	}
	cmd.Dir = ws
	cmd.Env = append(os.Environ(), "MLBUILD_CACHE_DIR="+filepath.Join(ws, ".cache"))
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mlbuild run mem.hcl: %w\n%s", err, tail(string(out)))
	}
	r := &memResult{seconds: time.Since(start).Seconds()}
	if r.peakRSS, err = peakRSS(rssFile); err != nil {
		return nil, err
	}
	for _, s := range mc.Tensors() {
		n := int64(1)
		for _, d := range s.Shape {
			n *= int64(d)
		}
		r.params += n
	}
	r.fp32Size = 4 * r.params
	return r, nil
}

func (r *memResult) row() row {
	return row{
		benchmark: fmt.Sprintf("qlora_train peak memory (whole mlbuild process, peak RSS), random %.0fM-parameter llama base, LoRA r=16 all-linear, 4 steps of 8×64 tokens", float64(r.params)/1e6),
		mlbuild:   fmt.Sprintf("%.0f MB", float64(r.peakRSS)/1e6),
		peer:      fmt.Sprintf("base in fp32: %.0f MB", float64(r.fp32Size)/1e6),
		ratio:     fmt.Sprintf("%.2f×", float64(r.peakRSS)/float64(r.fp32Size)),
		target:    "— (the NF4 linears hold ~0.52 B/param; the rest is activations, the float32 embedding, the Go runtime)",
		met:       "—",
	}
}

// runTraining is `bench -training`: the compute rows and the training rows
// only, with the twainbot workspace built just up to its tokenizer.
func runTraining(cfg *config, m machine, out, loadBefore string) error {
	ws := filepath.Join(cfg.tmp, "twainbot")
	if err := os.CopyFS(ws, os.DirFS(cfg.pipelines)); err != nil {
		return fmt.Errorf("copy %s: %w", cfg.pipelines, err)
	}
	cmd := exec.Command(cfg.mlbuild, "run", "twainbot.hcl", "-var-file", "ownbase.vars.hcl", "--target", "tokenizer_train.twain", "--target", "split.persona")
	cmd.Dir = ws
	cmd.Env = append(os.Environ(), "MLBUILD_CACHE_DIR="+filepath.Join(ws, ".cache"))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the tokenizer: %w\n%s", err, tail(string(b)))
	}
	var rows []row
	c, err := benchCompute()
	if err != nil {
		return err
	}
	rows = append(rows, c.rows()...)
	mem, err := benchQLoRAMemory(cfg, ws)
	if err != nil {
		return err
	}
	rows = append(rows, mem.row())
	rows, note, loraText := addLoRA(cfg, rows, "")
	report := m.markdown() + "\n" + note + renderTable(rows) + "\n" + loraText +
		fmt.Sprintf("Load average (1, 5, 15 min) before the run: %s; after: %s.\n", loadBefore, loadavg())
	fmt.Println()
	fmt.Print(report)
	if out != "" {
		return os.WriteFile(out, []byte(report), 0o644)
	}
	return nil
}
