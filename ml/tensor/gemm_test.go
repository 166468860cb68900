package tensor

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// gemmOperands returns random op(a) [m,k] and op(b) [k,n] as stored tensors.
func gemmOperands(be Backend, seed uint64, m, n, k int, ta, tb bool) (at, bt *Tensor, a, b []float32) {
	r := newRand(seed)
	a, b = randVec(r, m*k), randVec(r, k*n)
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	return be.FromFloat32(a, ar, ac), be.FromFloat32(b, br, bc), a, b
}

// TestGEMMEdges runs shapes around the tile (6×16), slab (256) and task
// (48/144 rows) boundaries, with both transposes, against float64, for
// beta 0 (c full of NaN, which must not be read) and beta != 0.
func TestGEMMEdges(t *testing.T) {
	be := NewCPU(2)
	ms := []int{5, 6, 7, 13, 97, 150}
	ns := []int{1, 15, 16, 17, 33}
	ks := []int{1, 7, 256, 257}
	if testing.Short() {
		ms, ks = []int{5, 7, 150}, []int{1, 257}
	}
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, m := range ms {
				for _, n := range ns {
					for _, k := range ks {
						name := fmt.Sprintf("ta=%v tb=%v m=%d n=%d k=%d", ta, tb, m, n, k)
						at, bt, a, b := gemmOperands(be, uint64(m*n+k), m, n, k, ta, tb)
						c := be.FromFloat32(slices.Repeat([]float32{float32(math.NaN())}, m*n), m, n)
						be.MatMul(c, at, bt, ta, tb, 1.5, 0)
						near(t, name, read(be, c), refMatMul(f64(a), f64(b), nil, m, n, k, ta, tb, 1.5, 0), 1e-5)
						c0 := read(be, c)
						be.MatMul(c, at, bt, ta, tb, -0.5, 0.75)
						near(t, name+" beta", read(be, c), refMatMul(f64(a), f64(b), f64(c0), m, n, k, ta, tb, -0.5, 0.75), 1e-5)
					}
				}
			}
		}
	}
	// One row and one column of a wide product (m <= 4 is the GEMV path).
	for _, s := range [][3]int{{1, 1030, 300}, {300, 1, 300}, {1030, 5, 1}} {
		m, n, k := s[0], s[1], s[2]
		at, bt, a, b := gemmOperands(be, 5, m, n, k, false, true)
		c := be.Zeros(F32, m, n)
		be.MatMul(c, at, bt, false, true, 1, 0)
		near(t, fmt.Sprint(s), read(be, c), refMatMul(f64(a), f64(b), nil, m, n, k, false, true, 1, 0), 1e-5)
	}
}

// TestGEMMThreadsBitIdentical checks that results do not depend on the
// number of workers (the task split changes with it) or on the run: every
// element must be bit-for-bit the same.
func TestGEMMThreadsBitIdentical(t *testing.T) {
	shapes := [][3]int{{300, 1100, 520}, {20, 700, 300}, {1030, 40, 260}, {8, 2100, 64}}
	if testing.Short() {
		shapes = shapes[1:]
	}
	for _, s := range shapes {
		m, n, k := s[0], s[1], s[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				var want []float32
				for _, workers := range []int{1, 2, 3, 7, 1} {
					be := NewCPU(workers)
					at, bt, _, _ := gemmOperands(be, 9, m, n, k, ta, tb)
					c := be.FromFloat32(randVec(newRand(4), m*n), m, n)
					be.MatMul(c, at, bt, ta, tb, 0.5, 1)
					be.MatMul(c, at, bt, ta, tb, 1, -2)
					got := read(be, c)
					if want == nil {
						want = got
						continue
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%v ta=%v tb=%v: %d workers: element %d = %g, 1 worker gave %g", s, ta, tb, workers, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestGEMMPortableKernel runs the GEMM on the portable kernel (what other
// architectures and CPUs without AVX2/FMA use).
func TestGEMMPortableKernel(t *testing.T) {
	chooseWideKernel()
	saved, savedWide := gemmBlock, gemmBlockWide
	gemmBlock, gemmBlockWide = gemmBlockGo, nil
	defer func() { gemmBlock, gemmBlockWide = saved, savedWide }()
	be := NewCPU(3)
	for _, s := range [][3]int{{7, 17, 1}, {97, 33, 257}, {150, 1030, 20}} {
		m, n, k := s[0], s[1], s[2]
		for _, tb := range []bool{false, true} {
			at, bt, a, b := gemmOperands(be, 6, m, n, k, true, tb)
			c0 := randVec(newRand(8), m*n)
			c := be.FromFloat32(c0, m, n)
			be.MatMul(c, at, bt, true, tb, 2, -1)
			near(t, fmt.Sprint(s, tb), read(be, c), refMatMul(f64(a), f64(b), f64(c0), m, n, k, true, tb, 2, -1), 1e-5)
		}
	}
}

// TestGEMMBlockKernels checks gemmBlock (the CPU's kernel) against
// gemmBlockGo on one block, both modes, with c's rows ldc apart and the
// elements between rows left alone.
func TestGEMMBlockKernels(t *testing.T) {
	r := newRand(12)
	const ldc = 21
	for _, kc := range []int{1, 2, 3, 4, 5, 255, 256} {
		a, b := randVec(r, kc*gemmMR), randVec(r, kc*gemmNR)
		c0 := randVec(r, gemmMR*ldc)
		for _, accum := range []bool{false, true} {
			got, want := slices.Clone(c0), slices.Clone(c0)
			if !accum {
				for i := range gemmMR {
					for j := range gemmNR {
						got[i*ldc+j] = float32(math.NaN())
					}
				}
			}
			gemmBlock(kc, a, b, got, ldc, 1.25, -0.5, accum)
			gemmBlockGo(kc, a, b, want, ldc, 1.25, -0.5, accum)
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 1e-5*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("kc=%d accum=%v: c[%d] = %g, want %g", kc, accum, i, got[i], want[i])
				}
			}
		}
	}
}
