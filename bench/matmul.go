package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// computeResult is the numerical core's speed beside the machine's
// measured peak (a tight, parallel loop of FMA instructions: ml/tensor's
// BenchmarkPeakFMA): fp32 GEMM, and greedy decoding of a random ~26M
// parameter llama (ml/llama's BenchmarkGreedyDecode), all from `go test
// -bench` runs in this one benchmark run.
type computeResult struct {
	// metrics maps a benchmark name to its best value per unit.
	metrics map[string]map[string]float64
}

var (
	benchLine   = regexp.MustCompile(`^Benchmark(\S+?)-\d+\s+\d+\s+\d+ ns/op\s+(.*)$`)
	benchMetric = regexp.MustCompile(`([0-9.]+) (\S+)`)
)

// benchCompute runs the benchmarks of ml/tensor and ml/llama.
func benchCompute() (*computeResult, error) {
	r := &computeResult{metrics: map[string]map[string]float64{}}
	runs := [][]string{
		{"github.com/mlbuild/mlbuild/ml/tensor", "^Benchmark(MatMul|PeakFMA)$", "20x", "3"},
		{"github.com/mlbuild/mlbuild/ml/llama", "^BenchmarkGreedyDecode$", "1x", "3"},
		{"github.com/mlbuild/mlbuild/ml/train", "^Benchmark(PretrainStep|QLoRAStep)$", "3x", "2"},
	}
	for _, run := range runs {
		cmd := exec.Command("go", "test", run[0], "-run", "^$", "-bench", run[1], "-benchtime", run[2], "-count", run[3])
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go test -bench %s: %w\n%s", run[0], err, tail(out.String()))
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			logf("compute: %s", strings.Join(strings.Fields(sc.Text()), " "))
			if r.metrics[m[1]] == nil {
				r.metrics[m[1]] = map[string]float64{}
			}
			for _, mm := range benchMetric.FindAllStringSubmatch(m[2], -1) {
				v, _ := strconv.ParseFloat(mm[1], 64)
				r.metrics[m[1]][mm[2]] = max(r.metrics[m[1]][mm[2]], v)
			}
		}
	}
	if r.peak() == 0 || r.metrics["MatMul/512x512x512/F32"]["GFLOP/s"] == 0 {
		return nil, fmt.Errorf("the benchmarks printed no GFLOP/s")
	}
	return r, nil
}

func (r *computeResult) peak() float64 {
	return max(r.metrics["PeakFMA/avx2-fma"]["GFLOP/s"], r.metrics["PeakFMA/go-scalar"]["GFLOP/s"])
}

func (r *computeResult) rows() []row {
	peak := r.peak()
	peer := fmt.Sprintf("measured peak (parallel FMA loop): %.1f GFLOP/s", peak)
	gemm := r.metrics["MatMul/512x512x512/F32"]["GFLOP/s"]
	rows := []row{{
		benchmark: "fp32 matmul 512×512×512, all cores (ml/tensor CPU backend; best of 3)",
		mlbuild:   fmt.Sprintf("%.1f GFLOP/s", gemm),
		peer:      peer,
		ratio:     fmt.Sprintf("%.0f%%", 100*gemm/peak),
		target:    "≥ 50% of peak",
		met:       yesNo(gemm/peak >= 0.5),
	}}
	for _, dt := range []string{"F32", "BF16"} {
		m := r.metrics["GreedyDecode/"+dt]
		if m == nil {
			continue
		}
		rows = append(rows, row{
			benchmark: fmt.Sprintf("Greedy decoding, random 26M-parameter llama (hidden 512, 6 layers), %s weights, 128 tokens after a 16-token prompt (best of 3)", dt),
			mlbuild:   fmt.Sprintf("%.0f tok/s; matmuls %.1f GFLOP/s", m["tok/s"], m["GFLOP/s"]),
			peer:      peer,
			ratio:     fmt.Sprintf("%.0f%%", 100*m["GFLOP/s"]/peak),
			target:    "— (one token at a time reads every weight: memory-bound)",
			met:       "—",
		})
	}
	for _, tr := range []struct{ name, desc string }{
		{"PretrainStep", "Pretraining, the demo's 4.2M-parameter base (hidden 256, 4 layers, vocab 4096), every weight trained, 8×256 tokens per step (best of 2)"},
		{"QLoRAStep", "QLoRA, random 27M-parameter llama (hidden 512, 8 layers): NF4 base dequantized per layer, LoRA r=16 all-linear, 4×256 tokens per step (best of 2)"},
	} {
		m := r.metrics[tr.name]
		if m == nil {
			continue
		}
		rows = append(rows, row{
			benchmark: tr.desc,
			mlbuild:   fmt.Sprintf("%.0f tok/s; %.1f GFLOP/s (model FLOPs)", m["tok/s"], m["GFLOP/s"]),
			peer:      peer,
			ratio:     fmt.Sprintf("%.0f%%", 100*m["GFLOP/s"]/peak),
			target:    "—",
			met:       "—",
		})
	}
	return rows
}
