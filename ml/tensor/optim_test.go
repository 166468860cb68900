package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlbuild/mlbuild/ml/nf4"
)

// TestAdamW checks the CPU's AdamW and SumSquares against the host loop
// the optimizer ran before they were backend operations, bit for bit,
// for several worker counts.
func TestAdamW(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 10007
	w, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range w {
		w[i], g[i], m[i], v[i] = float32(r.NormFloat64()), float32(r.NormFloat64()*1e-2), float32(r.NormFloat64()*1e-3), float32(r.Float64()*1e-5)
	}
	s := AdamWStep{Clip: 0.7, Beta1: 0.9, Beta2: 0.999, StepSize: float32(1e-3 / (1 - math.Pow(0.9, 3))), InvBC2: float32(1 / math.Sqrt(1-math.Pow(0.999, 3))), Eps: 1e-8, Decay: float32(1 - 1e-3*0.01)}

	// The reference: AdamW.Step's loop on the host.
	rw, rm, rv := append([]float32(nil), w...), append([]float32(nil), m...), append([]float32(nil), v...)
	var rsq float64 = 1.25
	for _, x := range g {
		rsq += float64(x) * float64(x)
	}
	b1, b2 := s.Beta1, s.Beta2
	for j := range rw {
		gj := g[j] * s.Clip
		rm[j] = b1*rm[j] + (1-b1)*gj
		rv[j] = b2*rv[j] + (1-b2)*gj*gj
		denom := float32(math.Sqrt(float64(rv[j])))*s.InvBC2 + s.Eps
		rw[j] = rw[j]*s.Decay - s.StepSize*rm[j]/denom
	}

	for _, workers := range []int{1, 3} {
		c := NewCPU(workers)
		tw, tg, tm, tv := c.FromFloat32(w, n), c.FromFloat32(g, n), c.FromFloat32(m, n), c.FromFloat32(v, n)
		if sq := c.SumSquares(tg, 1.25); sq != rsq {
			t.Errorf("workers %d: SumSquares = %v, want %v", workers, sq, rsq)
		}
		c.AdamW(tw, tg, tm, tv, s)
		for name, want := range map[string][]float32{"w": rw, "m": rm, "v": rv, "g": make([]float32, n)} {
			got := make([]float32, n)
			c.Read(map[string]*Tensor{"w": tw, "m": tm, "v": tv, "g": tg}[name], got)
			for j := range got {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("workers %d: %s[%d] = %v, want %v", workers, name, j, got[j], want[j])
				}
			}
		}
	}
}

// TestDequantizeNF4 checks the backend operation against
// nf4.Tensor.DequantizeRows bit for bit: rows of odd length (blocks and
// bytes straddle rows), sub-ranges, several worker counts.
func TestDequantizeNF4(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 97, 33
	data := make([]float32, rows*cols)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	q := nf4.Quantize(data, rows, cols)
	for _, workers := range []int{1, 3} {
		c := NewCPU(workers)
		for _, rg := range [][2]int{{0, rows}, {5, 6}, {3, 90}, {96, 97}} {
			lo, hi := rg[0], rg[1]
			want := make([]float32, (hi-lo)*cols)
			q.DequantizeRows(want, lo, hi)
			dst := c.Zeros(F32, hi-lo, cols)
			c.DequantizeNF4(dst, q, lo, hi)
			got := make([]float32, len(want))
			c.Read(dst, got)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("workers %d rows [%d,%d): element %d = %v, want %v", workers, lo, hi, i, got[i], want[i])
				}
			}
		}
	}
}

// TestRoPEFreqs checks the backend operation against the host loop
// RoPEWithFreqs ran before it was one, bit for bit.
func TestRoPEFreqs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const heads, headDim = 3, 16
	positions := []int{0, 1, 7, 100, 4095}
	invFreq := make([]float32, headDim/2)
	for i := range invFreq {
		invFreq[i] = float32(math.Pow(500000, -float64(2*i)/headDim)) * 0.7
	}
	x := make([]float32, len(positions)*heads*headDim)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, inverse := range []bool{false, true} {
		// The host loop, as it was.
		buf := append([]float32(nil), x...)
		half, w := headDim/2, heads*headDim
		sign := 1.0
		if inverse {
			sign = -1
		}
		for row, pos := range positions {
			for i, f := range invFreq[:half] {
				ang := float64(float32(pos) * f)
				c, s := float32(math.Cos(ang)), float32(sign*math.Sin(ang))
				for h := 0; h < heads; h++ {
					base := row*w + h*headDim
					x0, x1 := buf[base+i], buf[base+i+half]
					buf[base+i] = x0*c - x1*s
					buf[base+i+half] = x1*c + x0*s
				}
			}
		}
		for _, workers := range []int{1, 3} {
			c := NewCPU(workers)
			tt := c.FromFloat32(x, len(positions), w)
			RoPEWithFreqs(c, tt, positions, heads, headDim, invFreq, inverse)
			got := make([]float32, len(x))
			c.Read(tt, got)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(buf[i]) {
					t.Fatalf("inverse %v, workers %d: element %d = %v, want %v", inverse, workers, i, got[i], buf[i])
				}
			}
		}
	}
}
