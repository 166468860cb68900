package tensor

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// cpu7 uses more workers than the test machine may have cores, so chunks
// really run concurrently and out of order.
var cpu7 = NewCPU(7)

func TestMatMul(t *testing.T) {
	be := cpu7
	r := newRand(1)
	sizes := []int{1, 3, 17, 64, 65}
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, m := range sizes {
				for _, n := range sizes {
					for _, k := range sizes {
						a, b := randVec(r, m*k), randVec(r, k*n)
						ar, ac := m, k
						if ta {
							ar, ac = k, m
						}
						br, bc := k, n
						if tb {
							br, bc = n, k
						}
						at, bt := be.FromFloat32(a, ar, ac), be.FromFloat32(b, br, bc)
						c := be.FromFloat32(slices.Repeat([]float32{float32(math.NaN())}, m*n), m, n)
						be.MatMul(c, at, bt, ta, tb, 1, 0)
						want := refMatMul(f64(a), f64(b), nil, m, n, k, ta, tb, 1, 0)
						name := fmt.Sprintf("MatMul ta=%v tb=%v m=%d n=%d k=%d", ta, tb, m, n, k)
						near(t, name, read(be, c), want, 1e-5)
						// alpha/beta accumulation
						c0 := read(be, c)
						be.MatMul(c, at, bt, ta, tb, -0.5, 2)
						want = refMatMul(f64(a), f64(b), f64(c0), m, n, k, ta, tb, -0.5, 2)
						near(t, name+" beta=2", read(be, c), want, 1e-5)
					}
				}
			}
		}
	}
}

// TestMatMulLarge crosses the K-slab (256) and N-block (1024) boundaries.
func TestMatMulLarge(t *testing.T) {
	be := cpu7
	r := newRand(2)
	m, n, k := 70, 1030, 300
	for _, tb := range []bool{false, true} {
		a, b := randVec(r, m*k), randVec(r, k*n)
		br, bc := k, n
		if tb {
			br, bc = n, k
		}
		c := be.Zeros(F32, m, n)
		be.MatMul(c, be.FromFloat32(a, m, k), be.FromFloat32(b, br, bc), false, tb, 1, 0)
		near(t, "MatMul large", read(be, c), refMatMul(f64(a), f64(b), nil, m, n, k, false, tb, 1, 0), 1e-5)
	}
}

// halfTensor stores v as dt and returns the tensor and the stored values
// widened back to float64 (the exact operand the kernel sees).
func halfTensor(t *testing.T, be Backend, dt DType, v []float32, shape ...int) (*Tensor, []float64) {
	t.Helper()
	var raw []byte
	switch dt {
	case F32:
		raw = safetensors.F32Bytes(v)
	case BF16:
		raw = safetensors.BF16Bytes(v)
	case F16:
		raw = safetensors.F16Bytes(v)
	}
	tt, err := be.FromRaw(dt, raw, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return tt, f64(read(be, tt))
}

func TestMatMulHalfWeights(t *testing.T) {
	be := cpu7
	r := newRand(3)
	for _, dt := range []DType{BF16, F16} {
		for _, m := range []int{1, 3, 65} {
			for _, tb := range []bool{false, true} {
				for _, ta := range []bool{false, true} {
					n, k := 33, 65
					a := randVec(r, m*k)
					br, bc := k, n
					if tb {
						br, bc = n, k
					}
					ar, ac := m, k
					if ta {
						ar, ac = k, m
					}
					bt, b64 := halfTensor(t, be, dt, randVec(r, k*n), br, bc)
					// a in half precision too (MatMulBackward passes weights as a).
					at, a64 := halfTensor(t, be, dt, a, ar, ac)
					c := be.Zeros(F32, m, n)
					be.MatMul(c, at, bt, ta, tb, 1, 0)
					near(t, fmt.Sprintf("MatMul %s m=%d ta=%v tb=%v", dt, m, ta, tb), read(be, c), refMatMul(a64, b64, nil, m, n, k, ta, tb, 1, 0), 1e-5)
				}
			}
		}
	}
}

func TestMatMulBatched(t *testing.T) {
	be := cpu7
	r := newRand(4)
	bs, m, n, k := 3, 5, 6, 7
	a := randVec(r, bs*m*k)
	b3 := randVec(r, bs*k*n)
	b2 := randVec(r, k*n)
	c := be.Zeros(F32, bs, m, n)
	be.MatMul(c, be.FromFloat32(a, bs, m, k), be.FromFloat32(b3, bs, k, n), false, false, 1, 0)
	var want []float64
	for i := range bs {
		want = append(want, refMatMul(f64(a[i*m*k:(i+1)*m*k]), f64(b3[i*k*n:(i+1)*k*n]), nil, m, n, k, false, false, 1, 0)...)
	}
	near(t, "batched 3-D b", read(be, c), want, 1e-5)
	// a transposed per batch ([B,K,M]), shared 2-D b transposed ([N,K]).
	be.MatMul(c, be.FromFloat32(a, bs, k, m), be.FromFloat32(b2, n, k), true, true, 1, 0)
	want = want[:0]
	for i := range bs {
		want = append(want, refMatMul(f64(a[i*m*k:(i+1)*m*k]), f64(b2), nil, m, n, k, true, true, 1, 0)...)
	}
	near(t, "batched shared b", read(be, c), want, 1e-5)
}

func TestMatMulBackward(t *testing.T) {
	be := cpu7
	r := newRand(5)
	m, n, k := 3, 5, 4
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			a, b, dc := randVec(r, m*k), randVec(r, k*n), randVec(r, m*n)
			ar, ac, br, bc := m, k, k, n
			if ta {
				ar, ac = k, m
			}
			if tb {
				br, bc = n, k
			}
			da, db := be.Zeros(F32, ar, ac), be.Zeros(F32, br, bc)
			at, bt := be.FromFloat32(a, ar, ac), be.FromFloat32(b, br, bc)
			MatMulBackward(be, da, db, be.FromFloat32(dc, m, n), at, bt, ta, tb, 0)
			fa := func(x []float64) []float64 { return refMatMul(x, f64(b), nil, m, n, k, ta, tb, 1, 0) }
			fb := func(x []float64) []float64 { return refMatMul(f64(a), x, nil, m, n, k, ta, tb, 1, 0) }
			name := fmt.Sprintf("ta=%v tb=%v", ta, tb)
			wantA, wantB := numGrad(fa, f64(a), f64(dc)), numGrad(fb, f64(b), f64(dc))
			near(t, "dA "+name, read(be, da), wantA, 1e-5)
			near(t, "dB "+name, read(be, db), wantB, 1e-5)
			// beta 1 accumulates; nil skips.
			MatMulBackward(be, da, nil, be.FromFloat32(dc, m, n), at, bt, ta, tb, 1)
			for i := range wantA {
				wantA[i] *= 2
			}
			near(t, "dA accumulated "+name, read(be, da), wantA, 1e-5)
			MatMulBackward(be, nil, db, be.FromFloat32(dc, m, n), at, bt, ta, tb, 1)
			for i := range wantB {
				wantB[i] *= 2
			}
			near(t, "dB accumulated "+name, read(be, db), wantB, 1e-5)
		}
	}
}

func TestElementwise(t *testing.T) {
	be := cpu7
	r := newRand(6)
	n := 100003
	a, b := randVec(r, n), randVec(r, n)
	at, bt, dt := be.FromFloat32(a, n), be.FromFloat32(b, n), be.Zeros(F32, n)
	want := make([]float64, n)
	be.Add(dt, at, bt)
	for i := range want {
		want[i] = float64(a[i]) + float64(b[i])
	}
	near(t, "Add", read(be, dt), want, 1e-7)
	be.Mul(dt, at, bt)
	for i := range want {
		want[i] = float64(a[i]) * float64(b[i])
	}
	near(t, "Mul", read(be, dt), want, 1e-7)
	be.Scale(dt, at, 3)
	for i := range want {
		want[i] = 3 * float64(a[i])
	}
	near(t, "Scale", read(be, dt), want, 1e-7)
	be.AddScaled(dt, bt, -2)
	for i := range want {
		want[i] += -2 * float64(b[i])
	}
	near(t, "AddScaled", read(be, dt), want, 1e-6)
}

func TestRMSNorm(t *testing.T) {
	be := cpu7
	r := newRand(7)
	n, d := 5, 64
	x := randVec(r, n*d)
	for _, dt := range []DType{F32, BF16, F16} {
		wt, w64 := halfTensor(t, be, dt, randVec(r, d), d)
		y := be.Zeros(F32, n, d)
		be.RMSNorm(y, be.FromFloat32(x, n, d), wt, 1e-5)
		near(t, "RMSNorm "+dt.String(), read(be, y), refRMSNorm(f64(x), w64, d, 1e-5), 1e-6)
	}
}

func TestRMSNormBackward(t *testing.T) {
	be := cpu7
	r := newRand(8)
	n, d := 3, 8
	x, w, dy := randVec(r, n*d), randVec(r, d), randVec(r, n*d)
	dx, dw := be.Zeros(F32, n, d), be.FromFloat32(slices.Repeat([]float32{1}, d), d)
	be.RMSNormBackward(dx, dw, be.FromFloat32(dy, n, d), be.FromFloat32(x, n, d), be.FromFloat32(w, d), 1e-5)
	near(t, "RMSNorm dx", read(be, dx), numGrad(func(v []float64) []float64 { return refRMSNorm(v, f64(w), d, 1e-5) }, f64(x), f64(dy)), 1e-5)
	wantW := numGrad(func(v []float64) []float64 { return refRMSNorm(f64(x), v, d, 1e-5) }, f64(w), f64(dy))
	for i := range wantW {
		wantW[i]++ // dw accumulates onto its initial ones
	}
	near(t, "RMSNorm dw", read(be, dw), wantW, 1e-5)
	be.RMSNormBackward(dx, nil, be.FromFloat32(dy, n, d), be.FromFloat32(x, n, d), be.FromFloat32(w, d), 1e-5)
}

func TestRoPE(t *testing.T) {
	be := cpu7
	r := newRand(9)
	heads, hd := 3, 16
	positions := []int{0, 1, 5, 17, 63}
	n := len(positions)
	x := randVec(r, n*heads*hd)
	xt := be.FromFloat32(x, n, heads*hd)
	y := be.Zeros(F32, n, heads*hd)
	be.RoPE(y, xt, positions, heads, hd, 10000)
	want := refRoPE(f64(x), positions, heads, hd, 10000)
	near(t, "RoPE", read(be, y), want, 1e-5)
	be.RoPE(xt, xt, positions, heads, hd, 500000) // in place, Llama-3 theta
	near(t, "RoPE in place", read(be, xt), refRoPE(f64(x), positions, heads, hd, 500000), 1e-5)
}

func TestRoPEBackward(t *testing.T) {
	be := cpu7
	r := newRand(10)
	heads, hd := 2, 8
	positions := []int{3, 0, 9}
	n := len(positions)
	dy := randVec(r, n*heads*hd)
	dx := be.Zeros(F32, n, heads*hd)
	be.RoPEBackward(dx, be.FromFloat32(dy, n, heads*hd), positions, heads, hd, 10000)
	f := func(v []float64) []float64 { return refRoPE(v, positions, heads, hd, 10000) }
	near(t, "RoPE dx", read(be, dx), numGrad(f, f64(randVec(r, n*heads*hd)), f64(dy)), 1e-5)
}

var attnCases = []AttnParams{
	{Batch: 2, SeqQ: 5, SeqKV: 5, KVStride: 5, Heads: 4, KVHeads: 2, HeadDim: 8},               // prefill, GQA
	{Batch: 2, SeqQ: 3, SeqKV: 7, KVStride: 9, Heads: 4, KVHeads: 1, HeadDim: 4, PosOffset: 4}, // KV cache, padded stride
	{Batch: 1, SeqQ: 1, SeqKV: 6, KVStride: 6, Heads: 2, KVHeads: 2, HeadDim: 6, PosOffset: 5}, // decode step
	{Batch: 1, SeqQ: 6, SeqKV: 6, KVStride: 6, Heads: 2, KVHeads: 1, HeadDim: 4, Window: 3},    // sliding window
	{Batch: 1, SeqQ: 2, SeqKV: 4, KVStride: 4, Heads: 2, KVHeads: 2, HeadDim: 4, PosOffset: 1}, // cache longer than positions
}

func TestAttention(t *testing.T) {
	be := cpu7
	r := newRand(11)
	for _, p := range attnCases {
		q := randVec(r, p.Batch*p.SeqQ*p.Heads*p.HeadDim)
		k := randVec(r, p.Batch*p.KVStride*p.KVHeads*p.HeadDim)
		v := randVec(r, len(k))
		out := be.Zeros(F32, p.Batch*p.SeqQ, p.Heads*p.HeadDim)
		kt := be.FromFloat32(k, p.Batch*p.KVStride, p.KVHeads*p.HeadDim)
		vt := be.FromFloat32(v, p.Batch*p.KVStride, p.KVHeads*p.HeadDim)
		be.Attention(out, be.FromFloat32(q, p.Batch*p.SeqQ, p.Heads*p.HeadDim), kt, vt, p)
		near(t, fmt.Sprintf("Attention %+v", p), read(be, out), refAttention(f64(q), f64(k), f64(v), p), 1e-5)
	}
}

func TestAttentionBackward(t *testing.T) {
	be := cpu7
	r := newRand(12)
	for _, p := range attnCases {
		q := randVec(r, p.Batch*p.SeqQ*p.Heads*p.HeadDim)
		k := randVec(r, p.Batch*p.KVStride*p.KVHeads*p.HeadDim)
		v := randVec(r, len(k))
		dout := randVec(r, len(q))
		qs := []int{p.Batch * p.SeqQ, p.Heads * p.HeadDim}
		ks := []int{p.Batch * p.KVStride, p.KVHeads * p.HeadDim}
		dq, dk, dv := be.Zeros(F32, qs...), be.FromFloat32(randVec(r, len(k)), ks...), be.FromFloat32(randVec(r, len(k)), ks...)
		be.AttentionBackward(dq, dk, dv, be.FromFloat32(dout, qs...), be.FromFloat32(q, qs...), be.FromFloat32(k, ks...), be.FromFloat32(v, ks...), p)
		name := fmt.Sprintf("%+v", p)
		// Rows at or past SeqKV get a zero gradient from the reference too.
		near(t, "dq "+name, read(be, dq), numGrad(func(x []float64) []float64 { return refAttention(x, f64(k), f64(v), p) }, f64(q), f64(dout)), 1e-5)
		near(t, "dk "+name, read(be, dk), numGrad(func(x []float64) []float64 { return refAttention(f64(q), x, f64(v), p) }, f64(k), f64(dout)), 1e-5)
		near(t, "dv "+name, read(be, dv), numGrad(func(x []float64) []float64 { return refAttention(f64(q), f64(k), x, p) }, f64(v), f64(dout)), 1e-5)
	}
}

func TestSiLUSwiGLU(t *testing.T) {
	be := cpu7
	r := newRand(13)
	n := 257
	g, u, dy := randVec(r, n), randVec(r, n), randVec(r, n)
	for i := range g {
		g[i] *= 8
	}
	gt, ut, dyt := be.FromFloat32(g, n), be.FromFloat32(u, n), be.FromFloat32(dy, n)
	y := be.Zeros(F32, n)
	be.SiLU(y, gt)
	near(t, "SiLU", read(be, y), refSiLU(f64(g)), 1e-6)
	be.SwiGLU(y, gt, ut)
	near(t, "SwiGLU", read(be, y), refSwiGLU(f64(g), f64(u)), 1e-6)
	dx, du := be.Zeros(F32, n), be.Zeros(F32, n)
	be.SiLUBackward(dx, dyt, gt)
	near(t, "SiLU dx", read(be, dx), numGrad(refSiLU, f64(g), f64(dy)), 1e-5)
	be.SwiGLUBackward(dx, du, dyt, gt, ut)
	near(t, "SwiGLU dgate", read(be, dx), numGrad(func(x []float64) []float64 { return refSwiGLU(x, f64(u)) }, f64(g), f64(dy)), 1e-5)
	near(t, "SwiGLU dup", read(be, du), numGrad(func(x []float64) []float64 { return refSwiGLU(f64(g), x) }, f64(u), f64(dy)), 1e-5)
}

func TestEmbedding(t *testing.T) {
	be := cpu7
	r := newRand(14)
	v, d := 11, 6
	ids := []int{3, 0, 10, 3, 7}
	for _, dt := range []DType{F32, BF16, F16} {
		tab, tab64 := halfTensor(t, be, dt, randVec(r, v*d), v, d)
		y := be.Zeros(F32, len(ids), d)
		be.Embedding(y, tab, ids)
		near(t, "Embedding "+dt.String(), read(be, y), refEmbedding(tab64, ids, d), 0)
	}
	dy := randVec(r, len(ids)*d)
	dtab := be.Zeros(F32, v, d)
	be.EmbeddingBackward(dtab, be.FromFloat32(dy, len(ids), d), ids)
	want := numGrad(func(x []float64) []float64 { return refEmbedding(x, ids, d) }, make([]float64, v*d), f64(dy))
	near(t, "Embedding dtable", read(be, dtab), want, 1e-6)
}

func TestSoftmax(t *testing.T) {
	be := cpu7
	r := newRand(15)
	n, v := 4, 37
	x, dy := randVec(r, n*v), randVec(r, n*v)
	for i := range x {
		x[i] *= 20
	}
	y := be.Zeros(F32, n, v)
	be.Softmax(y, be.FromFloat32(x, n, v))
	near(t, "Softmax", read(be, y), refSoftmax(f64(x), v), 1e-6)
	dx := be.Zeros(F32, n, v)
	be.SoftmaxBackward(dx, be.FromFloat32(dy, n, v), y)
	near(t, "Softmax dx", read(be, dx), numGrad(func(a []float64) []float64 { return refSoftmax(a, v) }, f64(x), f64(dy)), 1e-5)
}

func TestCrossEntropy(t *testing.T) {
	be := cpu7
	r := newRand(16)
	n, v := 6, 29
	x := randVec(r, n*v)
	for i := range x {
		x[i] *= 10
	}
	labels := []int{4, IgnoreIndex, 0, 28, IgnoreIndex, 4}
	xt := be.FromFloat32(x, n, v)
	sum, count := be.CrossEntropy(xt, labels)
	ws, wc := refCrossEntropy(f64(x), labels, v)
	if count != wc || math.Abs(sum-ws) > 1e-5*(1+ws) {
		t.Fatalf("CrossEntropy = %g/%d, want %g/%d", sum, count, ws, wc)
	}
	dl := be.FromFloat32(randVec(r, n*v), n, v)
	scale := float32(1) / float32(count)
	be.CrossEntropyBackward(dl, xt, labels, scale)
	f := func(a []float64) []float64 {
		s, _ := refCrossEntropy(a, labels, v)
		return []float64{s * float64(scale)}
	}
	near(t, "CrossEntropy dlogits", read(be, dl), numGrad(f, f64(x), []float64{1}), 1e-5)
	if s, c := be.CrossEntropy(xt, []int{IgnoreIndex, IgnoreIndex, IgnoreIndex, IgnoreIndex, IgnoreIndex, IgnoreIndex}); s != 0 || c != 0 {
		t.Fatalf("all ignored: %g/%d", s, c)
	}
}

// TestDeterminism runs every operation with 1 and 7 workers on shapes large
// enough to split into many chunks and requires bit-identical results.
func TestDeterminism(t *testing.T) {
	run := func(be *CPU) [][]float32 {
		r := newRand(17)
		var outs [][]float32
		keep := func(ts ...*Tensor) {
			for _, x := range ts {
				outs = append(outs, read(be, x))
			}
		}
		for _, sh := range [][3]int{{130, 200, 300}, {2, 2000, 300}} {
			m, n, k := sh[0], sh[1], sh[2]
			c := be.Zeros(F32, m, n)
			be.MatMul(c, be.FromFloat32(randVec(r, m*k), m, k), be.FromFloat32(randVec(r, n*k), n, k), false, true, 1, 0)
			keep(c)
			be.MatMul(c, be.FromFloat32(randVec(r, m*k), m, k), be.FromFloat32(randVec(r, n*k), k, n), false, false, 1, 0)
			keep(c)
		}
		n, d := 300, 256
		x, w, dy := be.FromFloat32(randVec(r, n*d), n, d), be.FromFloat32(randVec(r, d), d), be.FromFloat32(randVec(r, n*d), n, d)
		y, dx, dw := be.Zeros(F32, n, d), be.Zeros(F32, n, d), be.Zeros(F32, d)
		be.RMSNorm(y, x, w, 1e-5)
		be.RMSNormBackward(dx, dw, dy, x, w, 1e-5)
		keep(y, dx, dw)
		pos := make([]int, n)
		for i := range pos {
			pos[i] = i
		}
		be.RoPE(y, x, pos, 4, 64, 10000)
		keep(y)
		p := AttnParams{Batch: 2, SeqQ: 150, SeqKV: 150, KVStride: 150, Heads: 4, KVHeads: 2, HeadDim: 64}
		k := be.FromFloat32(randVec(r, n*128), n, 128)
		v := be.FromFloat32(randVec(r, n*128), n, 128)
		dk, dv := be.Zeros(F32, n, 128), be.Zeros(F32, n, 128)
		be.Attention(y, x, k, v, p)
		be.AttentionBackward(dx, dk, dv, dy, x, k, v, p)
		keep(y, dx, dk, dv)
		du := be.Zeros(F32, n, d)
		be.SwiGLU(y, x, dy)
		be.SwiGLUBackward(dx, du, dy, x, y)
		keep(y, dx, du)
		be.Softmax(y, x)
		be.SoftmaxBackward(dx, dy, y)
		keep(y, dx)
		labels := make([]int, n)
		for i := range labels {
			labels[i] = (i * 7) % d
		}
		labels[3] = IgnoreIndex
		sum, _ := be.CrossEntropy(x, labels)
		be.CrossEntropyBackward(dx, x, labels, 0.5)
		keep(dx)
		outs = append(outs, []float32{float32(sum), float32(sum - float64(float32(sum)))})
		ids := make([]int, 5000)
		for i := range ids {
			ids[i] = i % 7
		}
		dtab := be.Zeros(F32, 7, d)
		emb := be.Zeros(F32, len(ids), d)
		be.Embedding(emb, x, ids)
		be.EmbeddingBackward(dtab, emb, ids)
		keep(dtab)
		return outs
	}
	a, b := run(NewCPU(1)), run(NewCPU(7))
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				t.Fatalf("output %d element %d: %g with 1 worker, %g with 7", i, j, a[i][j], b[i][j])
			}
		}
	}
}

// TestPortableKernels reruns the GEMM tests with the pure-Go micro-kernel
// and dot product, which non-amd64 machines and CPUs without AVX2/FMA use.
func TestPortableKernels(t *testing.T) {
	mk, dk, bk := microKernel, dotKernel, dotBF16Kernel
	defer func() { microKernel, dotKernel, dotBF16Kernel = mk, dk, bk }()
	microKernel, dotKernel, dotBF16Kernel = kernelGo, dot, dotBF16
	TestMatMul(t)
	TestMatMulLarge(t)
	TestMatMulHalfWeights(t)
	TestMatMulBatched(t)
}

// TestMatMulEmpty covers k == 0 (dst = beta*dst) and empty outputs.
func TestMatMulEmpty(t *testing.T) {
	be := cpu7
	c := be.FromFloat32([]float32{1, 2, 3, float32(math.NaN())}, 2, 2)
	a, b := be.Zeros(F32, 2, 0), be.Zeros(F32, 0, 2)
	be.MatMul(c, a, b, false, false, 1, 0.5)
	near(t, "k=0 beta=0.5", read(be, c)[:3], []float64{0.5, 1, 1.5}, 0)
	be.MatMul(c, a, b, false, false, 1, 0)
	near(t, "k=0 beta=0", read(be, c), []float64{0, 0, 0, 0}, 0)
	be.MatMul(be.Zeros(F32, 0, 2), be.Zeros(F32, 0, 3), be.Zeros(F32, 3, 2), false, false, 1, 0)
}

// TestMatMulRowStable: up to RowStableRows rows, each row of a product has
// the bits it has alone, for float32 and bf16 weights, with and without
// accumulation into C, with any worker count.
func TestMatMulRowStable(t *testing.T) {
	r := newRand(5)
	n, k := 70, 131
	for _, be := range []*CPU{NewCPU(1), cpu7} {
		rows := be.RowStableRows()
		if rows < 1 {
			t.Fatalf("RowStableRows %d", rows)
		}
		a := randVec(r, rows*k)
		c0 := randVec(r, rows*n)
		for _, dt := range []DType{F32, BF16} {
			var w *Tensor
			if dt == F32 {
				w = be.FromFloat32(randVec(r, n*k), n, k)
			} else {
				w, _ = halfTensor(t, be, BF16, randVec(r, n*k), n, k)
			}
			for _, beta := range []float32{0, 1} {
				for m := 1; m <= rows; m++ {
					c := be.FromFloat32(c0[:m*n], m, n)
					be.MatMul(c, be.FromFloat32(a[:m*k], m, k), w, false, true, 1, beta)
					got := read(be, c)
					for i := range m {
						one := be.FromFloat32(c0[i*n:(i+1)*n], 1, n)
						be.MatMul(one, be.FromFloat32(a[i*k:(i+1)*k], 1, k), w, false, true, 1, beta)
						for j, v := range read(be, one) {
							if math.Float32bits(v) != math.Float32bits(got[i*n+j]) {
								t.Fatalf("%s beta %v, %d rows: row %d col %d is %v, alone %v", dt, beta, m, i, j, got[i*n+j], v)
							}
						}
					}
				}
			}
		}
	}
}

// TestPrepackSameBits: a product with a prepacked weight gives the bits
// of packing it per call, over several N blocks and K slabs, ragged edges,
// both dtypes and both betas; a view of the weight (Rows) is packed per
// call and still right.
func TestPrepackSameBits(t *testing.T) {
	r := newRand(8)
	be := NewCPU(2)
	for _, sh := range [][3]int{{7, 37, 20}, {30, 1100, 600}, {13, 2080, 257}} {
		m, n, k := sh[0], sh[1], sh[2]
		a := be.FromFloat32(randVec(r, m*k), m, k)
		c0 := randVec(r, m*n)
		for _, dt := range []DType{F32, BF16} {
			var w, wp *Tensor
			vals := randVec(r, n*k)
			if dt == F32 {
				w, wp = be.FromFloat32(vals, n, k), be.FromFloat32(vals, n, k)
			} else {
				w, _ = halfTensor(t, be, BF16, vals, n, k)
				wp, _ = halfTensor(t, be, BF16, vals, n, k)
			}
			be.Prepack(wp)
			for _, beta := range []float32{0, 1} {
				want, got := be.FromFloat32(c0, m, n), be.FromFloat32(c0, m, n)
				be.MatMul(want, a, w, false, true, 0.5, beta)
				be.MatMul(got, a, wp, false, true, 0.5, beta)
				g, wv := read(be, got), read(be, want)
				for i := range wv {
					if math.Float32bits(g[i]) != math.Float32bits(wv[i]) {
						t.Fatalf("%dx%dx%d %s beta %v: element %d is %v prepacked, %v packed per call", m, n, k, dt, beta, i, g[i], wv[i])
					}
				}
			}
			if wp.packed == nil || wp.Rows(0, 3).packed != nil {
				t.Fatal("the packing is not kept on the weight alone")
			}
		}
	}
}
