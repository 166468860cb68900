package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	mlconfig "github.com/mlbuild/mlbuild/ml/config"
	"github.com/mlbuild/mlbuild/ml/llama"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/train"
)

// loraBaseConfig is the base of the LoRA row, beside PEFT: a random 29.5M
// parameter llama (hidden 512, 8 layers of 8 heads, intermediate 1376, a
// tied 8192-token vocabulary), the size issue 20 calls 27M with the demo's
// 4096-token vocabulary.
const loraBaseConfig = `{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":512,"intermediate_size":1376,
"num_hidden_layers":8,"num_attention_heads":8,"num_key_value_heads":8,"vocab_size":8192,"max_position_embeddings":1024,
"rms_norm_eps":1e-5,"bos_token_id":1,"eos_token_id":2,"tie_word_embeddings":true}`

// loraSettings are what both sides of the LoRA row train with. The child
// mlbuild process gets them as JSON (-lorachild), PEFT's script as
// arguments.
type loraSettings struct {
	Dir         string  `json:"dir"`
	Threads     int     `json:"threads"`
	Warmup      int     `json:"warmup"`
	Steps       int     `json:"steps"`
	Batch       int     `json:"batch"`
	Seq         int     `json:"seq"`
	R           int     `json:"r"`
	Alpha       float64 `json:"alpha"`
	Dropout     float64 `json:"dropout"`
	LR          float64 `json:"lr"`
	MaxGradNorm float64 `json:"max_grad_norm"`
	// Profile, when set, is where mlbuild's side writes a CPU profile of
	// its training.
	Profile string `json:"profile,omitempty"`
}

func defaultLoRASettings(steps int) loraSettings {
	return loraSettings{Threads: 2, Warmup: 2, Steps: max(steps, 1), Batch: 4, Seq: 256, R: 16, Alpha: 32, Dropout: 0.05, LR: 2e-4, MaxGradNorm: 1}
}

// loraSide is what one side's process reports (one JSON line on stdout),
// with its peak RSS from the parent's getrusage.
type loraSide struct {
	TokensPerSec float64   `json:"tokens_per_sec"`
	Seconds      float64   `json:"seconds"`
	Steps        int       `json:"steps"`
	Total        int64     `json:"total_params"`
	Trainable    int64     `json:"trainable_params"`
	Losses       []float64 `json:"losses"`
	Threads      int       `json:"threads"`
	// mlbuild only: the time one step spends dequantizing the NF4 base
	// (every linear twice per micro-batch, forward and backward), which
	// PEFT on a float32 base does not do.
	DequantMS float64 `json:"dequant_ms_per_step,omitempty"`
	// PEFT only: versions, attention implementation, and the BLAS library
	// torch loaded (from /proc/self/maps).
	Versions string `json:"versions,omitempty"`
	Attn     string `json:"attn,omitempty"`
	BLAS     string `json:"blas,omitempty"`

	peakRSS int64
}

type loraResult struct {
	s             loraSettings
	mlbuild, peft *loraSide
}

// findPython is the pinned environment's python: $MLBUILD_PYTHON, or what
// tools/python/env.sh prints. "" and a reason when there is none.
func findPython() (string, string) {
	if p := os.Getenv("MLBUILD_PYTHON"); p != "" {
		return p, ""
	}
	env := filepath.Join("tools", "python", "env.sh")
	if _, err := os.Stat(env); err != nil {
		return "", "MLBUILD_PYTHON is not set and there is no tools/python/env.sh here (run the bench from the repository root)"
	}
	var stderr bytes.Buffer
	cmd := exec.Command(env)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Sprintf("MLBUILD_PYTHON is not set and tools/python/env.sh failed (%v: %s)", err, strings.TrimSpace(tail(stderr.String())))
	}
	return strings.TrimSpace(string(out)), ""
}

// benchLoRA trains LoRA adapters on one random llama twice, each side in
// its own process, one after the other: mlbuild (this benchmark's binary
// rerun with -lorachild, calling train.LoadQLoRA and train.Train as
// qlora_train does) and PEFT on torch (bench/peft_lora.py). It returns a
// note instead of a result when the Python environment is absent.
func benchLoRA(cfg *config) (*loraResult, string, error) {
	py, why := findPython()
	if py == "" {
		return nil, "**The LoRA training row beside PEFT is left out**: " + why + ". Prepare the pinned environment (`export MLBUILD_PYTHON=$(tools/python/env.sh)`, see tools/python/) and rerun.\n\n", nil
	}
	script, err := filepath.Abs(filepath.Join("bench", "peft_lora.py"))
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, "**The LoRA training row beside PEFT is left out**: no bench/peft_lora.py here (run the bench from the repository root).\n\n", nil
	}
	s := defaultLoRASettings(cfg.loraSteps)
	s.Profile = cfg.loraProfile
	s.Dir = filepath.Join(cfg.tmp, "lora", "base")
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, "", err
	}
	mc, err := mlconfig.Parse([]byte(loraBaseConfig))
	if err != nil {
		return nil, "", err
	}
	if err := train.WriteRandomModel(s.Dir, mc, 1); err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	js, err := json.Marshal(s)
	if err != nil {
		return nil, "", err
	}
	r := &loraResult{s: s}
	logf("lora: mlbuild, %d+%d steps of %d×%d tokens on %d threads", s.Warmup, s.Steps, s.Batch, s.Seq, s.Threads)
	// GOMAXPROCS caps the Go runtime (the garbage collector included) at
	// the threads torch gets.
	if r.mlbuild, err = runLoRASide([]string{fmt.Sprintf("GOMAXPROCS=%d", s.Threads)}, self, "-lorachild", string(js)); err != nil {
		return nil, "", fmt.Errorf("mlbuild side: %w", err)
	}
	logf("lora: mlbuild %.0f tok/s, peak RSS %.0f MB", r.mlbuild.TokensPerSec, float64(r.mlbuild.peakRSS)/1e6)
	args := []string{script, s.Dir}
	for _, v := range []any{s.Threads, s.Warmup, s.Steps, s.Batch, s.Seq, s.R, s.Alpha, s.Dropout, s.LR, s.MaxGradNorm} {
		args = append(args, fmt.Sprint(v))
	}
	t := fmt.Sprint(s.Threads)
	// PyPI's torch carries its own BLAS (MKL, linked into libtorch_cpu);
	// the thread variables cap it and its OpenMP pool.
	env := []string{"OMP_NUM_THREADS=" + t, "MKL_NUM_THREADS=" + t}
	if r.peft, err = runLoRASide(env, py, args...); err != nil {
		return nil, "", fmt.Errorf("PEFT side (%s): %w", py, err)
	}
	logf("lora: PEFT %.0f tok/s, peak RSS %.0f MB", r.peft.TokensPerSec, float64(r.peft.peakRSS)/1e6)
	if r.mlbuild.Trainable != r.peft.Trainable || r.mlbuild.Total != r.peft.Total {
		return nil, "", fmt.Errorf("the two sides train different models: mlbuild %d trainable of %d parameters, PEFT %d of %d",
			r.mlbuild.Trainable, r.mlbuild.Total, r.peft.Trainable, r.peft.Total)
	}
	return r, "", nil
}

// runLoRASide runs one side (name with args, under the -peakrss helper)
// and reads its JSON line and peak RSS.
func runLoRASide(env []string, name string, args ...string) (*loraSide, error) {
	cmd, rssFile, err := peakRSSCommand(name, args...)
	if err != nil {
		return nil, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail(stderr.String()))
	}
	side := &loraSide{}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), side); err != nil {
		return nil, fmt.Errorf("its last line is not the expected JSON (%v):\n%s%s", err, tail(stdout.String()), tail(stderr.String()))
	}
	if side.peakRSS, err = peakRSS(rssFile); err != nil {
		return nil, err
	}
	return side, nil
}

// loraChild is mlbuild's side, in its own process: qlora_train's code
// (train.LoadQLoRA, which quantizes the base's linears to NF4 and adds the
// adapters, then train.Train) on the sequences peft_lora.py trains on.
func loraChild(arg string) error {
	var s loraSettings
	if err := json.Unmarshal([]byte(arg), &s); err != nil {
		return fmt.Errorf("-lorachild: %w", err)
	}
	lc := train.LoRAConfig{R: s.R, Alpha: s.Alpha, Dropout: s.Dropout, TargetModules: []string{train.AllLinear}}
	// The comparison is with PEFT on the CPU: mlbuild's side runs there too.
	be, _, err := tensor.OpenDevice(tensor.DeviceCPU, tensor.DeviceOptions{Threads: s.Threads})
	if err != nil {
		return err
	}
	m, err := train.LoadQLoRA(s.Dir, be, lc, 42)
	if err != nil {
		return err
	}
	m.CacheDequantized(train.CPUDequantizedCacheBytes) // as qlora_train does on the CPU
	vocab := m.Config.VocabSize
	ex := make([]train.Example, s.Batch)
	for i := range ex {
		ids := make([]int, s.Seq)
		for j := range ids {
			ids[j] = 3 + (i*7+j*13)%(vocab-3)
		}
		ex[i] = train.Example{IDs: ids, Labels: ids}
	}
	var t0, t1 time.Time
	var losses []float64
	opts := train.Options{
		BatchSize: s.Batch, SeqLen: s.Seq, GradAccum: 1, MaxSteps: s.Warmup + s.Steps,
		Schedule: train.Schedule{Kind: "constant", Peak: s.LR}, MaxGradNorm: s.MaxGradNorm, Seed: 42,
		Progress: func(st train.Status) {
			losses = append(losses, st.Loss)
			switch st.Step {
			case s.Warmup:
				t0 = time.Now()
			case s.Warmup + s.Steps:
				t1 = time.Now()
			}
		},
	}
	var profile *os.File
	if s.Profile != "" {
		if profile, err = os.Create(s.Profile); err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(profile); err != nil {
			return errors.Join(err, profile.Close())
		}
	}
	began := time.Now()
	_, err = train.Train(context.Background(), m, ex, nil, opts)
	if profile != nil {
		pprof.StopCPUProfile()
		err = errors.Join(err, profile.Close())
	}
	if err != nil {
		return err
	}
	if s.Warmup == 0 {
		t0 = began
	}
	if t1.IsZero() {
		return errors.New("training stopped before its last step")
	}
	total, trainable := m.NumParams()
	secs := t1.Sub(t0).Seconds()
	out := loraSide{
		TokensPerSec: float64(s.Steps*s.Batch*s.Seq) / secs, Seconds: secs, Steps: s.Steps,
		Total: total, Trainable: trainable, Losses: losses, Threads: s.Threads,
	}
	if out.DequantMS, err = dequantPerStep(s.Dir); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// dequantPerStep measures what the NF4 base costs mlbuild per step of one
// micro-batch: dequantizing every decoder linear and copying it to the
// backend twice (the forward and the backward pass each dequantize it, as
// Model.weight does). Best of 3, after training.
func dequantPerStep(dir string) (float64, error) {
	cfg, weights, err := llama.Open(dir, "base model")
	if err != nil {
		return 0, err
	}
	defer weights.Close()
	var qs []*nf4.Tensor
	most := 0
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		n := cfg.Layer(i)
		for _, name := range []string{n.Q, n.K, n.V, n.QKV, n.O, n.Gate, n.Up, n.GateUp, n.Down} {
			if name == "" {
				continue
			}
			v, err := weights.Float32(name)
			if err != nil {
				return 0, err
			}
			info, _ := weights.Info(name)
			q := nf4.Quantize(v, info.Shape...)
			qs = append(qs, q)
			most = max(most, len(v))
		}
	}
	host, dev := make([]float32, most), make([]float32, most)
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		for range 2 {
			for _, q := range qs {
				k := q.Shape[0] * q.Shape[1]
				q.DequantizeRows(host[:k], 0, q.Shape[0])
				copy(dev[:k], host[:k])
			}
		}
		best = min(best, time.Since(start))
	}
	return float64(best) / float64(time.Millisecond), nil
}

func (r *loraResult) row() row {
	s, m, p := r.s, r.mlbuild, r.peft
	speed, mem := m.TokensPerSec/p.TokensPerSec, float64(m.peakRSS)/float64(p.peakRSS)
	return row{
		benchmark: fmt.Sprintf("LoRA training beside PEFT, same run, each side its own process on %d threads: random %.1fM-parameter llama (hidden 512, 8 layers, 8 heads, intermediate 1376, vocab 8192, tied), fp32, "+
			"r=%d α=%g dropout %g on all 7 linear modules (%s trainable on both sides), batch %d × seq %d, AdamW lr %g, clip %g; %d warm-up + %d timed steps",
			s.Threads, float64(m.Total)/1e6, s.R, s.Alpha, s.Dropout, thousands64(m.Trainable), s.Batch, s.Seq, s.LR, s.MaxGradNorm, s.Warmup, s.Steps),
		mlbuild: fmt.Sprintf("%.0f tok/s, peak RSS %.0f MB (qlora_train's code: NF4 base, dequantized once and kept in float32, as qlora_train does on the CPU for a base this small; dequantizing per layer would cost %.0f ms a step)",
			m.TokensPerSec, float64(m.peakRSS)/1e6, m.DequantMS),
		peer: fmt.Sprintf("PEFT (%s, %s attention, BLAS %s): %.0f tok/s, peak RSS %.0f MB, fp32 base (PEFT's fast CPU setting: bitsandbytes' 4-bit layers dequantize in pure torch on the CPU)",
			p.Versions, p.Attn, p.BLAS, p.TokensPerSec, float64(p.peakRSS)/1e6),
		ratio:  fmt.Sprintf("%.2f× tok/s, %.2f× RSS", speed, mem),
		target: "≥ 1.5× tok/s, RSS ≤ PEFT's (issue 20)",
		met:    yesNo(speed >= 1.5 && mem <= 1),
	}
}

// contextText is the row's sanity check: both sides start from the same
// loss on the same model and data.
func (r *loraResult) contextText() string {
	f := func(l []float64) string {
		if len(l) == 0 {
			return "?"
		}
		return fmt.Sprintf("%.4f → %.4f", l[0], l[len(l)-1])
	}
	return fmt.Sprintf("LoRA beside PEFT, for context: training loss, first step → last, mlbuild %s, PEFT %s "+
		"(the same random model and sequences; mlbuild's base is its NF4 round trip, and the dropout masks differ); timed steps took mlbuild %.2f s, PEFT %.2f s.\n\n",
		f(r.mlbuild.Losses), f(r.peft.Losses), r.mlbuild.Seconds, r.peft.Seconds)
}

// addLoRA runs the LoRA row and adds it, or the line saying why it is
// missing, to rows and note; text is its context paragraph.
func addLoRA(cfg *config, rows []row, note string) (_ []row, _, text string) {
	r, why, err := benchLoRA(cfg)
	switch {
	case err != nil:
		logf("lora: %v", err)
		first, _, _ := strings.Cut(err.Error(), "\n")
		note += fmt.Sprintf("**The LoRA training row beside PEFT failed**: %s\n\n", first)
	case r == nil:
		logf("%s", why)
		note += why
	default:
		rows, text = append(rows, r.row()), r.contextText()
	}
	return rows, note, text
}

// runLoRAOnly is `bench -lora`: the LoRA row alone.
func runLoRAOnly(cfg *config, m machine, out, loadBefore string) error {
	rows, note, text := addLoRA(cfg, nil, "")
	report := m.markdown() + "\n" + note
	if len(rows) > 0 {
		report += renderTable(rows) + "\n" + text
	}
	report += fmt.Sprintf("Load average (1, 5, 15 min) before the run: %s; after: %s.\n", loadBefore, loadavg())
	fmt.Println()
	fmt.Print(report)
	if out != "" {
		return os.WriteFile(out, []byte(report), 0o644)
	}
	return nil
}
