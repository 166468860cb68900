package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// matmulResult is ml/tensor's fp32 GEMM beside the machine's measured
// peak: a tight, parallel loop of FMA instructions (ml/tensor's
// BenchmarkPeakFMA), both measured by one `go test -bench` run.
type matmulResult struct {
	gemm, peak float64 // GFLOP/s, best of the repetitions
	shape      string
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)-\d+\s+\d+\s+\d+ ns/op\s+([0-9.]+) GFLOP/s`)

// benchMatMul runs ml/tensor's GEMM and peak-FMA benchmarks.
func benchMatMul() (*matmulResult, error) {
	const shape = "512x512x512/F32"
	cmd := exec.Command("go", "test", "github.com/mlbuild/mlbuild/ml/tensor", "-run", "^$", "-bench", "^Benchmark(MatMul|PeakFMA)$", "-benchtime", "20x", "-count", "3")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go test -bench ml/tensor: %w\n%s", err, tail(out.String()))
	}
	r := &matmulResult{shape: shape}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[1] {
		case "MatMul/" + shape:
			r.gemm = max(r.gemm, v)
		case "PeakFMA/avx2-fma", "PeakFMA/go-scalar":
			r.peak = max(r.peak, v)
		}
		logf("matmul: %s", sc.Text())
	}
	if r.gemm == 0 || r.peak == 0 {
		return nil, fmt.Errorf("no GFLOP/s in the benchmark output:\n%s", tail(out.String()))
	}
	return r, nil
}

func (r *matmulResult) row() row {
	ratio := r.gemm / r.peak
	return row{
		benchmark: fmt.Sprintf("fp32 matmul %s, all cores (ml/tensor CPU backend; best of 3)", r.shape),
		mlbuild:   fmt.Sprintf("%.1f GFLOP/s", r.gemm),
		peer:      fmt.Sprintf("measured peak (parallel FMA loop): %.1f GFLOP/s", r.peak),
		ratio:     fmt.Sprintf("%.0f%%", 100*ratio),
		target:    "≥ 50% of peak",
		met:       yesNo(ratio >= 0.5),
	}
}
