// Package tensortest is the backend conformance suite: every
// tensor.Backend operation, forward and backward, on small shapes, against
// float64 references (and, for the backward passes, against central finite
// differences of those references). Any backend runs it:
//
//	func TestConformance(t *testing.T) { tensortest.Conformance(t, tensor.NewCPU(3)) }
//
// The tolerances are those of float32 arithmetic with float32 or float64
// accumulation, not bit-identity with the CPU backend: a GPU backend sums
// in other orders. The operations whose results are defined exactly
// (element-wise arithmetic, casts, NF4 dequantization, embedding
// gathers) are compared bit for bit; an axpy, which may be fused, within
// a rounding.
//
// The references are written independently of ml/tensor's kernels (they
// repeat ml/tensor's own test references, which are internal to its
// tests).
package tensortest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/safetensors"
	"github.com/mlbuild/mlbuild/ml/tensor"
	"github.com/mlbuild/mlbuild/ml/tensor/internal/tensorref"
)

// Conformance runs the suite against be, one subtest per operation.
func Conformance(t *testing.T, be tensor.Backend) {
	c := &suite{be: be, r: rand.New(rand.NewPCG(17, 99))}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"ReadWriteCopy", c.readWriteCopy},
		{"MatMul", c.matMul},
		{"MatMulHalf", c.matMulHalf},
		{"MatMulBatched", c.matMulBatched},
		{"Elementwise", c.elementwise},
		{"Dropout", c.dropout},
		{"RMSNorm", c.rmsNorm},
		{"RoPE", c.rope},
		{"RoPEFreqs", c.ropeFreqs},
		{"Attention", c.attention},
		{"SiLUSwiGLU", c.siluSwiGLU},
		{"Embedding", c.embedding},
		{"Softmax", c.softmax},
		{"CrossEntropy", c.crossEntropy},
		{"SumSquaresAdamW", c.adamW},
		{"DequantizeNF4", c.dequantizeNF4},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	be tensor.Backend
	r  *rand.Rand
}

func (c *suite) vec(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(c.r.Float64()*2 - 1)
	}
	return v
}

func (c *suite) up(v []float32, shape ...int) *tensor.Tensor { return c.be.FromFloat32(v, shape...) }

func (c *suite) read(x *tensor.Tensor) []float32 {
	out := make([]float32, x.Len())
	c.be.Read(x, out)
	return out
}

var f64 = tensorref.F64

var near = tensorref.Near

// exact fails unless got and want have the same bits.
func exact(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d = %v, want %v exactly", what, i, got[i], want[i])
		}
	}
}

var numGrad = tensorref.NumGrad

func (c *suite) readWriteCopy(t *testing.T) {
	v := c.vec(37)
	x := c.be.Zeros(tensor.F32, 37)
	c.be.Write(x, v)
	exact(t, "Write/Read", c.read(x), v)
	h := c.be.Zeros(tensor.BF16, 37)
	c.be.Copy(h, x)
	want := make([]float32, len(v))
	for i, f := range v {
		want[i] = tensor.BF16ToFloat32(safetensors.F32ToBF16(f))
	}
	exact(t, "Copy F32→BF16 (round to nearest even)", c.read(h), want)
	y := c.be.Zeros(tensor.F32, 37)
	c.be.Copy(y, h)
	exact(t, "Copy BF16→F32", c.read(y), want)
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		b := math.Float32bits(f)
		raw[4*i], raw[4*i+1], raw[4*i+2], raw[4*i+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
	}
	z, err := c.be.FromRaw(tensor.F32, raw, 37)
	if err != nil {
		t.Fatal(err)
	}
	exact(t, "FromRaw", c.read(z), v)
	exact(t, "Rows view", c.read(z.Rows(3, 9)), v[3:9])
}

var refMatMul = tensorref.MatMul

func (c *suite) matMul(t *testing.T) {
	const m, n, k = 5, 7, 6
	for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
		a, b, c0 := c.vec(m*k), c.vec(k*n), c.vec(m*n)
		as, bs := []int{m, k}, []int{k, n}
		if tr[0] {
			as = []int{k, m}
		}
		if tr[1] {
			bs = []int{n, k}
		}
		dst := c.up(c0, m, n)
		c.be.MatMul(dst, c.up(a, as...), c.up(b, bs...), tr[0], tr[1], 0.5, 0.25)
		near(t, "MatMul", c.read(dst), refMatMul(f64(a), f64(b), f64(c0), m, n, k, tr[0], tr[1], 0.5, 0.25), 1e-5)
	}
	// beta 0 ignores dst, even NaN.
	a, b := c.vec(m*k), c.vec(k*n)
	nan := make([]float32, m*n)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	dst := c.up(nan, m, n)
	c.be.MatMul(dst, c.up(a, m, k), c.up(b, k, n), false, false, 1, 0)
	near(t, "MatMul beta=0 over NaN", c.read(dst), refMatMul(f64(a), f64(b), nil, m, n, k, false, false, 1, 0), 1e-5)
}

func (c *suite) matMulHalf(t *testing.T) {
	const m, n, k = 4, 6, 8
	a, w := c.vec(m*k), c.vec(n*k)
	for _, dt := range []tensor.DType{tensor.BF16, tensor.F16} {
		raw := make([]byte, 2*len(w))
		wide := make([]float64, len(w))
		for i, f := range w {
			var h uint16
			if dt == tensor.BF16 {
				h = safetensors.F32ToBF16(f)
				wide[i] = float64(tensor.BF16ToFloat32(h))
			} else {
				h = safetensors.F32ToF16(f)
				wide[i] = float64(tensor.F16ToFloat32(h))
			}
			raw[2*i], raw[2*i+1] = byte(h), byte(h>>8)
		}
		wt, err := c.be.FromRaw(dt, raw, n, k)
		if err != nil {
			t.Fatal(err)
		}
		dst := c.be.Zeros(tensor.F32, m, n)
		c.be.MatMul(dst, c.up(a, m, k), wt, false, true, 1, 0)
		near(t, "MatMul x·Wᵀ, W "+dt.String(), c.read(dst), refMatMul(f64(a), wide, nil, m, n, k, false, true, 1, 0), 1e-5)
	}
}

func (c *suite) matMulBatched(t *testing.T) {
	const batch, m, n, k = 3, 4, 5, 6
	a, b, b3 := c.vec(batch*m*k), c.vec(k*n), c.vec(batch*k*n)
	dst := c.be.Zeros(tensor.F32, batch, m, n)
	c.be.MatMul(dst, c.up(a, batch, m, k), c.up(b, k, n), false, false, 1, 0)
	dst3 := c.be.Zeros(tensor.F32, batch, m, n)
	c.be.MatMul(dst3, c.up(a, batch, m, k), c.up(b3, batch, k, n), false, false, 1, 0)
	var want, want3 []float64
	for i := range batch {
		ai := f64(a[i*m*k : (i+1)*m*k])
		want = append(want, refMatMul(ai, f64(b), nil, m, n, k, false, false, 1, 0)...)
		want3 = append(want3, refMatMul(ai, f64(b3[i*k*n:(i+1)*k*n]), nil, m, n, k, false, false, 1, 0)...)
	}
	near(t, "MatMul batched, shared b", c.read(dst), want, 1e-5)
	near(t, "MatMul batched", c.read(dst3), want3, 1e-5)
}

func (c *suite) elementwise(t *testing.T) {
	const n = 53
	a, b := c.vec(n), c.vec(n)
	add, mul, sc, axpy := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range a {
		add[i], mul[i], sc[i] = a[i]+b[i], a[i]*b[i], 1.5*a[i]
		axpy[i] = b[i] + (-0.75)*a[i]
	}
	for _, tc := range []struct {
		name string
		run  func(dst, x, y *tensor.Tensor)
		want []float32
	}{
		{"Add", func(d, x, y *tensor.Tensor) { c.be.Add(d, x, y) }, add},
		{"Mul", func(d, x, y *tensor.Tensor) { c.be.Mul(d, x, y) }, mul},
		{"Scale", func(d, x, _ *tensor.Tensor) { c.be.Scale(d, x, 1.5) }, sc},
	} {
		dst := c.be.Zeros(tensor.F32, n)
		tc.run(dst, c.up(a, n), c.up(b, n))
		exact(t, tc.name, c.read(dst), tc.want)
	}
	// An axpy may be one fused multiply-add (GPUs contract it; Go does on
	// arm64), so it is compared within a rounding, not bit for bit.
	dst := c.up(b, n)
	c.be.AddScaled(dst, c.up(a, n), -0.75)
	near(t, "AddScaled", c.read(dst), f64(axpy), 1e-6)
}

// dropout checks Dropout against DropoutKeeps element by element (an odd
// length, so that a pair of elements straddles any split), in place, with
// p = 0 (the identity), and that it drops about p of the elements.
func (c *suite) dropout(t *testing.T) {
	const n, seed = 100_003, 0xC0FFEE
	x := c.vec(n)
	for _, p := range []float32{0, 0.05, 0.3} {
		want := make([]float32, n)
		dropped := 0
		for i, v := range x {
			if tensor.DropoutKeeps(seed, i, p) {
				want[i] = v * tensor.DropoutScale(p)
			} else {
				dropped++
			}
		}
		dst := c.be.Zeros(tensor.F32, n)
		c.be.Dropout(dst, c.up(x, n), p, seed)
		exact(t, fmt.Sprintf("Dropout p=%g", p), c.read(dst), want)
		inPlace := c.up(x, n)
		c.be.Dropout(inPlace, inPlace, p, seed)
		exact(t, fmt.Sprintf("Dropout p=%g in place", p), c.read(inPlace), want)
		// Binomial(n, p): 6 standard deviations is 0.0087 of n at p = 0.3.
		if frac := float64(dropped) / n; math.Abs(frac-float64(p)) > 6*math.Sqrt(float64(p)*(1-float64(p))/n) {
			t.Errorf("Dropout p=%g dropped %.4f of %d elements", p, frac, n)
		}
	}
	a, b := c.be.Zeros(tensor.F32, n), c.be.Zeros(tensor.F32, n)
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	c.be.Dropout(a, c.up(ones, n), 0.5, 1)
	c.be.Dropout(b, c.up(ones, n), 0.5, 2)
	same, rb := 0, c.read(b)
	for i, v := range c.read(a) {
		if v == rb[i] {
			same++
		}
	}
	if same > n*6/10 {
		t.Errorf("Dropout seeds 1 and 2 agree on %d of %d elements at p = 0.5", same, n)
	}
}

var refRMSNorm = tensorref.RMSNorm

func (c *suite) rmsNorm(t *testing.T) {
	const rows, d, eps = 4, 16, 1e-5
	x, w, dy := c.vec(rows*d), c.vec(d), c.vec(rows*d)
	y := c.be.Zeros(tensor.F32, rows, d)
	c.be.RMSNorm(y, c.up(x, rows, d), c.up(w, d), eps)
	near(t, "RMSNorm", c.read(y), refRMSNorm(f64(x), f64(w), d, eps), 1e-5)
	dx, dw := c.be.Zeros(tensor.F32, rows, d), c.be.Zeros(tensor.F32, d)
	c.be.RMSNormBackward(dx, dw, c.up(dy, rows, d), c.up(x, rows, d), c.up(w, d), eps)
	near(t, "RMSNormBackward dx", c.read(dx), numGrad(func(v []float64) []float64 { return refRMSNorm(v, f64(w), d, eps) }, f64(x), f64(dy)), 1e-4)
	near(t, "RMSNormBackward dw", c.read(dw), numGrad(func(v []float64) []float64 { return refRMSNorm(f64(x), v, d, eps) }, f64(w), f64(dy)), 1e-4)
}

var refRoPE = tensorref.RoPE

func (c *suite) rope(t *testing.T) {
	const heads, hd, theta = 2, 8, 10000.0
	pos := []int{0, 1, 5, 17, 300}
	n := len(pos) * heads * hd
	x, dy := c.vec(n), c.vec(n)
	y := c.be.Zeros(tensor.F32, len(pos), heads*hd)
	c.be.RoPE(y, c.up(x, len(pos), heads*hd), pos, heads, hd, theta)
	near(t, "RoPE", c.read(y), refRoPE(f64(x), pos, heads, hd, theta), 1e-5)
	dx := c.be.Zeros(tensor.F32, len(pos), heads*hd)
	c.be.RoPEBackward(dx, c.up(dy, len(pos), heads*hd), pos, heads, hd, theta)
	near(t, "RoPEBackward", c.read(dx), numGrad(func(v []float64) []float64 { return refRoPE(v, pos, heads, hd, theta) }, f64(x), f64(dy)), 1e-4)
}

// refRoPEFreqs is refRoPE with explicit frequencies, the angle
// float32(pos·freq) as the operation defines it.
func refRoPEFreqs(x []float64, positions []int, heads, hd int, inv []float32, sign float64) []float64 {
	y := make([]float64, len(x))
	half := hd / 2
	for r, pos := range positions {
		for h := range heads {
			base := r*heads*hd + h*hd
			for i := range half {
				ang := float64(float32(pos) * inv[i])
				cs, sn := math.Cos(ang), sign*math.Sin(ang)
				x0, x1 := x[base+i], x[base+i+half]
				y[base+i] = x0*cs - x1*sn
				y[base+i+half] = x1*cs + x0*sn
			}
		}
	}
	return y
}

func (c *suite) ropeFreqs(t *testing.T) {
	const heads, hd = 3, 8
	pos := []int{0, 2, 9, 4000}
	inv := []float32{1, 0.3, 0.01, 1e-4}
	n := len(pos) * heads * hd
	x := c.vec(n)
	for _, inverse := range []bool{false, true} {
		sign := 1.0
		if inverse {
			sign = -1
		}
		want := refRoPEFreqs(f64(x), pos, heads, hd, inv, sign)
		y := c.be.Zeros(tensor.F32, len(pos), heads*hd)
		c.be.RoPEFreqs(y, c.up(x, len(pos), heads*hd), pos, heads, hd, inv, inverse)
		near(t, "RoPEFreqs", c.read(y), want, 1e-5)
		inPlace := c.up(x, len(pos), heads*hd)
		c.be.RoPEFreqs(inPlace, inPlace, pos, heads, hd, inv, inverse)
		near(t, "RoPEFreqs in place", c.read(inPlace), want, 1e-5)
	}
}

func refAttention(q, k, v []float64, p tensor.AttnParams) []float64 {
	return tensorref.Attention(q, k, v, tensorref.AttnParams(p))
}

func (c *suite) attention(t *testing.T) {
	for _, p := range []tensor.AttnParams{
		{Batch: 2, SeqQ: 3, SeqKV: 5, KVStride: 6, Heads: 4, KVHeads: 2, HeadDim: 8, PosOffset: 2},
		{Batch: 1, SeqQ: 6, SeqKV: 6, KVStride: 6, Heads: 2, KVHeads: 2, HeadDim: 4, Window: 3},
	} {
		nq, nk := p.Batch*p.SeqQ*p.Heads*p.HeadDim, p.Batch*p.KVStride*p.KVHeads*p.HeadDim
		q, k, v, dout := c.vec(nq), c.vec(nk), c.vec(nk), c.vec(nq)
		qt, kt, vt := c.up(q, nq), c.up(k, nk), c.up(v, nk)
		out := c.be.Zeros(tensor.F32, nq)
		c.be.Attention(out, qt, kt, vt, p)
		near(t, "Attention", c.read(out), refAttention(f64(q), f64(k), f64(v), p), 1e-5)
		dq, dk, dv := c.be.Zeros(tensor.F32, nq), c.be.Zeros(tensor.F32, nk), c.be.Zeros(tensor.F32, nk)
		c.be.AttentionBackward(dq, dk, dv, c.up(dout, nq), qt, kt, vt, p)
		near(t, "AttentionBackward dq", c.read(dq), numGrad(func(x []float64) []float64 { return refAttention(x, f64(k), f64(v), p) }, f64(q), f64(dout)), 1e-4)
		near(t, "AttentionBackward dk", c.read(dk), numGrad(func(x []float64) []float64 { return refAttention(f64(q), x, f64(v), p) }, f64(k), f64(dout)), 1e-4)
		near(t, "AttentionBackward dv", c.read(dv), numGrad(func(x []float64) []float64 { return refAttention(f64(q), f64(k), x, p) }, f64(v), f64(dout)), 1e-4)
	}
}

var refSiLU = tensorref.SiLU

func (c *suite) siluSwiGLU(t *testing.T) {
	const n = 41
	x, u, dy := c.vec(n), c.vec(n), c.vec(n)
	for i := range x {
		x[i] *= 6 // reach the tails
	}
	y := c.be.Zeros(tensor.F32, n)
	c.be.SiLU(y, c.up(x, n))
	near(t, "SiLU", c.read(y), refSiLU(f64(x)), 1e-6)
	dx := c.be.Zeros(tensor.F32, n)
	c.be.SiLUBackward(dx, c.up(dy, n), c.up(x, n))
	near(t, "SiLUBackward", c.read(dx), numGrad(refSiLU, f64(x), f64(dy)), 1e-5)
	swiglu := func(g, up []float64) []float64 {
		y := refSiLU(g)
		for i := range y {
			y[i] *= up[i]
		}
		return y
	}
	c.be.SwiGLU(y, c.up(x, n), c.up(u, n))
	near(t, "SwiGLU", c.read(y), swiglu(f64(x), f64(u)), 1e-6)
	dg, du := c.be.Zeros(tensor.F32, n), c.be.Zeros(tensor.F32, n)
	c.be.SwiGLUBackward(dg, du, c.up(dy, n), c.up(x, n), c.up(u, n))
	near(t, "SwiGLUBackward dgate", c.read(dg), numGrad(func(g []float64) []float64 { return swiglu(g, f64(u)) }, f64(x), f64(dy)), 1e-5)
	near(t, "SwiGLUBackward dup", c.read(du), numGrad(func(v []float64) []float64 { return swiglu(f64(x), v) }, f64(u), f64(dy)), 1e-5)
}

func (c *suite) embedding(t *testing.T) {
	const vocab, d = 9, 6
	table, ids := c.vec(vocab*d), []int{3, 0, 8, 3, 3, 5}
	dst := c.be.Zeros(tensor.F32, len(ids), d)
	c.be.Embedding(dst, c.up(table, vocab, d), ids)
	var want []float32
	for _, id := range ids {
		want = append(want, table[id*d:id*d+d]...)
	}
	exact(t, "Embedding", c.read(dst), want)
	dy := c.vec(len(ids) * d)
	dt := c.be.Zeros(tensor.F32, vocab, d)
	c.be.EmbeddingBackward(dt, c.up(dy, len(ids), d), ids)
	wantG := make([]float64, vocab*d)
	for r, id := range ids {
		for j := range d {
			wantG[id*d+j] += float64(dy[r*d+j])
		}
	}
	near(t, "EmbeddingBackward (repeated ids)", c.read(dt), wantG, 1e-6)
}

var refSoftmax = tensorref.Softmax

func (c *suite) softmax(t *testing.T) {
	const rows, v = 3, 11
	x, dy := c.vec(rows*v), c.vec(rows*v)
	for i := range x {
		x[i] *= 8
	}
	y := c.be.Zeros(tensor.F32, rows, v)
	c.be.Softmax(y, c.up(x, rows, v))
	near(t, "Softmax", c.read(y), refSoftmax(f64(x), v), 1e-6)
	dx := c.be.Zeros(tensor.F32, rows, v)
	c.be.SoftmaxBackward(dx, c.up(dy, rows, v), y)
	near(t, "SoftmaxBackward", c.read(dx), numGrad(func(a []float64) []float64 { return refSoftmax(a, v) }, f64(x), f64(dy)), 1e-5)
}

func (c *suite) crossEntropy(t *testing.T) {
	const rows, v = 5, 13
	x := c.vec(rows * v)
	for i := range x {
		x[i] *= 5
	}
	labels := []int{2, tensor.IgnoreIndex, 12, 0, 7}
	logits := c.up(x, rows, v)
	sum, n := c.be.CrossEntropy(logits, labels)
	p := refSoftmax(f64(x), v)
	var want float64
	for r, l := range labels {
		if l != tensor.IgnoreIndex {
			want -= math.Log(p[r*v+l])
		}
	}
	if n != 4 || math.Abs(sum-want) > 1e-5*(1+math.Abs(want)) {
		t.Fatalf("CrossEntropy = %v over %d rows, want %v over 4", sum, n, want)
	}
	const scale = 0.25
	d := c.be.Zeros(tensor.F32, rows, v)
	c.be.CrossEntropyBackward(d, logits, labels, scale)
	wantD := make([]float64, rows*v)
	for r, l := range labels {
		if l == tensor.IgnoreIndex {
			continue
		}
		for j := range v {
			wantD[r*v+j] = scale * p[r*v+j]
		}
		wantD[r*v+l] -= scale
	}
	near(t, "CrossEntropyBackward", c.read(d), wantD, 1e-6)
}

func (c *suite) adamW(t *testing.T) {
	const n = 257
	w, g, m, v := c.vec(n), c.vec(n), c.vec(n), c.vec(n)
	for i := range v {
		v[i] = v[i] * v[i] * 1e-4
		m[i] *= 1e-2
	}
	var sq float64 = 2
	for _, x := range g {
		sq += float64(x) * float64(x)
	}
	gt := c.up(g, n)
	if got := c.be.SumSquares(gt, 2); math.Abs(got-sq) > 1e-9*sq {
		t.Fatalf("SumSquares = %v, want %v", got, sq)
	}
	s := tensor.AdamWStep{Clip: 0.5, Beta1: 0.9, Beta2: 0.999, StepSize: 1e-2, InvBC2: 1.5, Eps: 1e-8, Decay: 0.999}
	wt, mt, vt := c.up(w, n), c.up(m, n), c.up(v, n)
	c.be.AdamW(wt, gt, mt, vt, s)
	ww, wm, wv := make([]float64, n), make([]float64, n), make([]float64, n)
	for j := range w {
		gj := float64(g[j]) * float64(s.Clip)
		wm[j] = float64(s.Beta1)*float64(m[j]) + (1-float64(s.Beta1))*gj
		wv[j] = float64(s.Beta2)*float64(v[j]) + (1-float64(s.Beta2))*gj*gj
		ww[j] = float64(w[j])*float64(s.Decay) - float64(s.StepSize)*wm[j]/(math.Sqrt(wv[j])*float64(s.InvBC2)+float64(s.Eps))
	}
	near(t, "AdamW m", c.read(mt), wm, 1e-6)
	near(t, "AdamW v", c.read(vt), wv, 1e-6)
	near(t, "AdamW w", c.read(wt), ww, 1e-6)
	exact(t, "AdamW zeroes the gradient", c.read(gt), make([]float32, n))
}

func (c *suite) dequantizeNF4(t *testing.T) {
	const rows, cols = 23, 35 // rows straddle 64-blocks and bytes
	q := nf4.Quantize(c.vec(rows*cols), rows, cols)
	for _, rg := range [][2]int{{0, rows}, {3, 4}, {7, 20}} {
		want := make([]float32, (rg[1]-rg[0])*cols)
		q.DequantizeRows(want, rg[0], rg[1])
		dst := c.be.Zeros(tensor.F32, rg[1]-rg[0], cols)
		c.be.DequantizeNF4(dst, q, rg[0], rg[1])
		exact(t, "DequantizeNF4", c.read(dst), want)
	}
}
