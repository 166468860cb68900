package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	// gemm is the GEMM beside numpy/OpenBLAS (nil, with gemmNote saying
	// why, when there is no numpy).
	gemm     []gemmSide
	gemmNote string // why gemm is empty
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
	g, note, err := benchGEMM()
	if err != nil {
		return nil, fmt.Errorf("gemm beside numpy: %w", err)
	}
	r.gemm, r.gemmNote = g, note
	return r, nil
}

// gemmShapes are the shapes of the GEMM beside numpy: square, and the
// training's (tokens 1024, hidden 576, intermediate 1536, vocab 4096 and
// 49152): forward X·Wᵀ (NT), input gradient dY·W (NN), weight gradient
// dYᵀ·X (TN). They are ml/tensor's BenchmarkGEMMShapes's.
var gemmShapes = []string{
	"512,512,512,NN", "1024,1024,1024,NN", "2048,2048,2048,NN",
	"1024,576,576,NT", "1024,1536,576,NT", "1024,576,1536,NT", "1024,4096,576,NT", "1024,49152,576,NT",
	"1024,576,1536,NN", "1024,576,4096,NN",
	"576,576,1024,TN", "1536,576,1024,TN", "4096,576,1024,TN",
}

// gemmRounds is how many times each side runs each shape, alternating.
const gemmRounds = 3

// gemmSide is one shape on one thread count, both sides: the fastest
// call's GFLOP/s by wall time and by the process's CPU time (on a shared
// machine the second counts only the time each side was given).
type gemmSide struct {
	shape                        string
	threads                      int
	mlWall, mlCPU, npWall, npCPU float64
}

// numpyGEMM times numpy.matmul like BenchmarkGEMMShapes times MatMul:
// argv m n k ops reps; prints the fastest call's GFLOP/s by wall and by
// process CPU time.
const numpyGEMM = `
import sys, time, numpy as np
m, n, k, ops, reps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rng = np.random.default_rng(0)
a = rng.standard_normal((k, m) if ops[0] == 'T' else (m, k), dtype=np.float32)
b = rng.standard_normal((n, k) if ops[1] == 'T' else (k, n), dtype=np.float32)
A = a.T if ops[0] == 'T' else a
B = b.T if ops[1] == 'T' else b
c = np.empty((m, n), dtype=np.float32)
np.matmul(A, B, out=c)
best = bestc = 1e9
for _ in range(reps):
    t, tc = time.perf_counter(), time.process_time()
    np.matmul(A, B, out=c)
    best, bestc = min(best, time.perf_counter() - t), min(bestc, time.process_time() - tc)
f = 2*m*n*k/1e9
print("%.3f %.3f" % (f/best, f/max(bestc, 1e-9)))
`

var gemmMetric = regexp.MustCompile(`([0-9.]+) (best|cpu)-GFLOP/s`)

// benchGEMM runs ml/tensor's GEMM and numpy's (OpenBLAS, threads set by
// OPENBLAS_NUM_THREADS) on each shape on one and two threads, the two
// alternating gemmRounds times, each in its own process, keeping each
// side's best.
func benchGEMM() ([]gemmSide, string, error) {
	py, why := findPython()
	if py == "" {
		return nil, why, nil
	}
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		return nil, py + " has no numpy (" + strings.TrimSpace(tail(string(out))) + ")", nil
	}
	dir, err := os.MkdirTemp("", "mlbuild-gemm")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tensor.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "github.com/mlbuild/mlbuild/ml/tensor").CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("go test -c ml/tensor: %w\n%s", err, tail(string(out)))
	}
	var res []gemmSide
	for _, shape := range gemmShapes {
		var d [3]int
		f := strings.Split(shape, ",")
		for i := range d {
			d[i], _ = strconv.Atoi(f[i])
		}
		flops := 2 * float64(d[0]) * float64(d[1]) * float64(d[2])
		reps := max(3, min(30, int(8e9/flops)))
		name := fmt.Sprintf("%dx%dx%d_%s", d[0], d[1], d[2], f[3])
		for _, threads := range []int{1, 2} {
			s := gemmSide{shape: name, threads: threads}
			for range gemmRounds {
				cmd := exec.Command(py, "-c", numpyGEMM, f[0], f[1], f[2], f[3], strconv.Itoa(reps))
				cmd.Env = append(os.Environ(), fmt.Sprintf("OPENBLAS_NUM_THREADS=%d", threads))
				out, err := cmd.CombinedOutput()
				if err != nil {
					return nil, "", fmt.Errorf("numpy %s: %w\n%s", shape, err, tail(string(out)))
				}
				var w, c float64
				if _, err := fmt.Sscan(string(out), &w, &c); err != nil {
					return nil, "", fmt.Errorf("numpy %s printed %q", shape, out)
				}
				s.npWall, s.npCPU = max(s.npWall, w), max(s.npCPU, c)
				cmd = exec.Command(bin, "-test.run", "^$", "-test.bench", fmt.Sprintf("^BenchmarkGEMMShapes/%s/t%d$", name, threads), "-test.benchtime", fmt.Sprintf("%dx", reps))
				cmd.Env = append(os.Environ(), "MLBUILD_GEMM_SHAPES="+shape)
				out, err = cmd.CombinedOutput()
				if err != nil {
					return nil, "", fmt.Errorf("BenchmarkGEMMShapes %s: %w\n%s", shape, err, tail(string(out)))
				}
				for _, m := range gemmMetric.FindAllStringSubmatch(string(out), -1) {
					v, _ := strconv.ParseFloat(m[1], 64)
					if m[2] == "best" {
						s.mlWall = max(s.mlWall, v)
					} else {
						s.mlCPU = max(s.mlCPU, v)
					}
				}
			}
			if s.mlWall == 0 {
				return nil, "", fmt.Errorf("BenchmarkGEMMShapes %s printed no GFLOP/s", shape)
			}
			logf("gemm: %s on %d threads: mlbuild %.1f GFLOP/s (%.1f per CPU-s), numpy %.1f (%.1f)", name, threads, s.mlWall, s.mlCPU, s.npWall, s.npCPU)
			res = append(res, s)
		}
	}
	return res, "", nil
}

func (r *computeResult) peak() float64 {
	return max(r.metrics["PeakFMA/avx512-fma"]["GFLOP/s"], r.metrics["PeakFMA/avx2-fma"]["GFLOP/s"], r.metrics["PeakFMA/go-scalar"]["GFLOP/s"])
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
	if r.gemmNote != "" {
		rows = append(rows, row{
			benchmark: "fp32 GEMM beside numpy/OpenBLAS",
			mlbuild:   "left out: " + r.gemmNote,
			peer:      "—", ratio: "—", target: "≥ 0.8× OpenBLAS (issue 20)", met: "—",
		})
	}
	for _, g := range r.gemm {
		rows = append(rows, row{
			benchmark: fmt.Sprintf("fp32 GEMM %s (m×n×k, op(A)op(B)), %d thread(s); fastest call of %d alternating rounds each", g.shape, g.threads, gemmRounds),
			mlbuild:   fmt.Sprintf("%.1f GFLOP/s (%.1f per CPU-second)", g.mlWall, g.mlCPU),
			peer:      fmt.Sprintf("numpy/OpenBLAS: %.1f GFLOP/s (%.1f per CPU-second)", g.npWall, g.npCPU),
			ratio:     fmt.Sprintf("%.2f× (%.2f× per CPU-second)", g.mlWall/g.npWall, g.mlCPU/g.npCPU),
			target:    "≥ 0.8× OpenBLAS (issue 20)",
			met:       yesNo(g.mlWall/g.npWall >= 0.8),
		})
	}
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
