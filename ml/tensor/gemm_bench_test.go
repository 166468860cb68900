package tensor

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gemmBenchShape is one GEMM of BenchmarkGEMMShapes: c[m,n] = op(a)·op(b).
type gemmBenchShape struct {
	m, n, k        int
	transA, transB bool
}

func (s gemmBenchShape) String() string {
	op := func(t bool) string {
		if t {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%dx%dx%d_%s%s", s.m, s.n, s.k, op(s.transA), op(s.transB))
}

// gemmBenchShapes are the square products and the training's shapes
// (tokens 1024, hidden 576, intermediate 1536, vocab 4096): forward X·Wᵀ
// (NT), input gradient dY·W (NN), weight gradient dYᵀ·X (TN).
// MLBUILD_GEMM_SHAPES ("m,n,k,NT;...") replaces them.
func gemmBenchShapes(b *testing.B) []gemmBenchShape {
	if env := os.Getenv("MLBUILD_GEMM_SHAPES"); env != "" {
		var out []gemmBenchShape
		for _, f := range strings.Split(env, ";") {
			p := strings.Split(f, ",")
			if len(p) != 4 || len(p[3]) != 2 {
				b.Fatalf("MLBUILD_GEMM_SHAPES: bad shape %q", f)
			}
			var d [3]int
			for i := range d {
				v, err := strconv.Atoi(p[i])
				if err != nil {
					b.Fatalf("MLBUILD_GEMM_SHAPES: %v", err)
				}
				d[i] = v
			}
			out = append(out, gemmBenchShape{d[0], d[1], d[2], p[3][0] == 'T', p[3][1] == 'T'})
		}
		return out
	}
	const t, h, in, v = 1024, 576, 1536, 4096
	return []gemmBenchShape{
		{512, 512, 512, false, false},
		{1024, 1024, 1024, false, false},
		{2048, 2048, 2048, false, false},
		{t, h, h, false, true},
		{t, in, h, false, true},
		{t, h, in, false, true},
		{t, v, h, false, true},
		{t, h, in, false, false},
		{t, h, v, false, false},
		{h, h, t, true, false},
		{in, h, t, true, false},
		{v, h, t, true, false},
	}
}

// BenchmarkGEMMShapes reports fp32 GEMM throughput on one and two workers
// (bench/matmul.go runs it beside numpy/OpenBLAS on the same shapes).
//
// MLBUILD_GEMM_KERNEL=avx2 or avx512 overrides the kernel GEMMKernel
// chose, to compare them.
func BenchmarkGEMMShapes(b *testing.B) {
	chooseWideKernel()
	saved := gemmBlockWide
	defer func() { gemmBlockWide = saved }()
	switch os.Getenv("MLBUILD_GEMM_KERNEL") {
	case "avx2":
		gemmBlockWide = nil
	case "avx512":
		if gemmBlockWideCPU == nil {
			b.Skip("MLBUILD_GEMM_KERNEL=avx512: this CPU has no AVX-512")
		}
		gemmBlockWide = gemmBlockWideCPU
	}
	r := newRand(3)
	for _, s := range gemmBenchShapes(b) {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", s, workers), func(b *testing.B) {
				be := NewCPU(workers)
				ar, ac := s.m, s.k
				if s.transA {
					ar, ac = ac, ar
				}
				br, bc := s.k, s.n
				if s.transB {
					br, bc = bc, br
				}
				a := be.FromFloat32(randVec(r, ar*ac), ar, ac)
				w := be.FromFloat32(randVec(r, br*bc), br, bc)
				dst := be.Zeros(F32, s.m, s.n)
				be.MatMul(dst, a, w, s.transA, s.transB, 1, 0)
				best, bestCPU := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
				b.ResetTimer()
				for b.Loop() {
					t0, c0 := time.Now(), cpuTime()
					be.MatMul(dst, a, w, s.transA, s.transB, 1, 0)
					best = min(best, time.Since(t0))
					bestCPU = min(bestCPU, cpuTime()-c0)
				}
				flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				// The fastest call: on a shared machine, the one least
				// disturbed (numpy's side is timed the same way).
				b.ReportMetric(flops/best.Seconds()/1e9, "best-GFLOP/s")
				// Per CPU-second of the process: what the code does with the
				// time it is given (numpy's side: time.process_time).
				b.ReportMetric(flops/bestCPU.Seconds()/1e9, "cpu-GFLOP/s")
			})
		}
	}
}
