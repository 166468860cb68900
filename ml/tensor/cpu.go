package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// CPU is the host backend: float32 compute on all cores through a worker
// pool, with F32, BF16 and F16 storage. Results are bit-identical for every
// worker count (see the package comment).
type CPU struct {
	pool *workerPool
}

// NewCPU returns a CPU backend running on up to workers goroutines; workers
// <= 0 means runtime.GOMAXPROCS(0).
func NewCPU(workers int) *CPU {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &CPU{pool: &workerPool{workers: workers}}
}

// Workers returns the number of goroutines operations run on.
func (c *CPU) Workers() int { return c.pool.workers }

// cpuStorage is host memory: f32 for F32 tensors, u16 for BF16/F16 bits.
type cpuStorage struct {
	be  *CPU
	f32 []float32
	u16 []uint16
}

func (s *cpuStorage) Backend() Backend { return s.be }

var _ Backend = (*CPU)(nil)

// Name implements Backend.
func (c *CPU) Name() string { return "cpu" }

func checkShape(op string, shape []int) {
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: %s: negative dimension in %v", op, shape))
		}
	}
}

func checkDType(op string, dt DType) {
	if dt > F16 {
		panic(fmt.Sprintf("tensor: %s: unknown %s", op, dt))
	}
}

// Zeros implements Backend.
func (c *CPU) Zeros(dt DType, shape ...int) *Tensor {
	checkShape("Zeros", shape)
	checkDType("Zeros", dt)
	n := numel(shape)
	s := &cpuStorage{be: c}
	if dt == F32 {
		s.f32 = make([]float32, n)
	} else {
		s.u16 = make([]uint16, n)
	}
	return NewTensor(s, dt, 0, shape...)
}

// FromFloat32 implements Backend.
func (c *CPU) FromFloat32(data []float32, shape ...int) *Tensor {
	checkShape("FromFloat32", shape)
	if numel(shape) != len(data) {
		panic(fmt.Sprintf("tensor: FromFloat32: %d values for shape %v", len(data), shape))
	}
	s := &cpuStorage{be: c, f32: append([]float32(nil), data...)}
	return NewTensor(s, F32, 0, shape...)
}

// FromRaw implements Backend.
func (c *CPU) FromRaw(dt DType, raw []byte, shape ...int) (*Tensor, error) {
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("tensor: negative dimension in shape %v", shape)
		}
	}
	if dt > F16 {
		return nil, fmt.Errorf("tensor: unknown %s", dt)
	}
	n := numel(shape)
	if len(raw) != n*dt.Size() {
		return nil, fmt.Errorf("tensor: %d bytes for %s%v, want %d", len(raw), dt, shape, n*dt.Size())
	}
	t := c.Zeros(dt, shape...)
	s := t.store.(*cpuStorage)
	if dt == F32 {
		for i := range s.f32 {
			s.f32[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	} else {
		for i := range s.u16 {
			s.u16[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
	}
	return t, nil
}

// host returns t's storage, panicking if another backend owns it.
func (c *CPU) host(op string, t *Tensor) *cpuStorage {
	s, ok := t.store.(*cpuStorage)
	if !ok || s.be != c {
		panic(fmt.Sprintf("tensor: %s: %s does not belong to this CPU backend", op, t))
	}
	return s
}

// f32 returns the float32 elements of an F32 tensor.
func (c *CPU) f32(op string, t *Tensor) []float32 {
	s := c.host(op, t)
	if t.dtype != F32 {
		panic(fmt.Sprintf("tensor: %s: %s must be F32", op, t))
	}
	return s.f32[t.offset : t.offset+t.Len()]
}

// src describes t (any dtype) as a rows×cols GEMM operand.
func (c *CPU) src(op string, t *Tensor, rows, cols int, trans bool) *matSrc {
	s := c.host(op, t)
	m := &matSrc{dt: t.dtype, rows: rows, cols: cols, trans: trans}
	if trans && t.packed != nil && t.packed.rows == rows && t.packed.cols == cols {
		m.packed = t.packed
	}
	if t.dtype == F32 {
		m.f32 = s.f32[t.offset : t.offset+rows*cols]
	} else {
		m.u16 = s.u16[t.offset : t.offset+rows*cols]
	}
	return m
}

// widen returns t's elements as float32 (a copy unless t is F32).
func (c *CPU) widen(op string, t *Tensor) []float32 {
	if t.dtype == F32 {
		return c.f32(op, t)
	}
	out := make([]float32, t.Len())
	c.src(op, t, 1, t.Len(), false).loadRow(out, 0)
	return out
}

func sameLen(op string, ts ...*Tensor) {
	for _, t := range ts[1:] {
		if t.Len() != ts[0].Len() {
			panic(fmt.Sprintf("tensor: %s: size mismatch %s vs %s", op, ts[0], t))
		}
	}
}

// Read implements Backend.
func (c *CPU) Read(t *Tensor, dst []float32) {
	if len(dst) != t.Len() {
		panic(fmt.Sprintf("tensor: Read: %d values for %s", len(dst), t))
	}
	c.src("Read", t, 1, t.Len(), false).loadRow(dst, 0)
}

// Write implements Backend.
func (c *CPU) Write(t *Tensor, src []float32) {
	d := c.f32("Write", t)
	if len(src) != len(d) {
		panic(fmt.Sprintf("tensor: Write: %d values for %s", len(src), t))
	}
	copy(d, src)
}

// Copy implements Backend. A narrowing copy (F32 to BF16/F16) rounds to
// nearest even.
func (c *CPU) Copy(dst, src *Tensor) {
	sameLen("Copy", dst, src)
	ds, ss := c.host("Copy", dst), c.host("Copy", src)
	n := dst.Len()
	switch {
	case dst.dtype == src.dtype && dst.dtype == F32:
		copy(ds.f32[dst.offset:dst.offset+n], ss.f32[src.offset:src.offset+n])
	case dst.dtype == src.dtype:
		copy(ds.u16[dst.offset:dst.offset+n], ss.u16[src.offset:src.offset+n])
	case dst.dtype == F32:
		c.Read(src, ds.f32[dst.offset:dst.offset+n])
	default:
		v := c.widen("Copy", src)
		d := ds.u16[dst.offset : dst.offset+n]
		for i, f := range v {
			if dst.dtype == BF16 {
				d[i] = safetensors.F32ToBF16(f)
			} else {
				d[i] = safetensors.F32ToF16(f)
			}
		}
	}
}

// Free implements Backend; the garbage collector reclaims host memory.
func (c *CPU) Free(t *Tensor) { c.host("Free", t) }

// MatMul implements Backend. Both a and b may be of any dtype.
func (c *CPU) MatMul(dst, a, b *Tensor, transA, transB bool, alpha, beta float32) {
	ad, bd, cd := len(a.shape), len(b.shape), len(dst.shape)
	batch := 1
	switch {
	case ad == 2 && bd == 2 && cd == 2:
	case ad == 3 && (bd == 2 || bd == 3) && cd == 3 && a.shape[0] == dst.shape[0] && (bd == 2 || b.shape[0] == a.shape[0]):
		batch = a.shape[0]
	default:
		panic(fmt.Sprintf("tensor: MatMul: unsupported ranks a=%s b=%s dst=%s", a, b, dst))
	}
	ar, ac := a.Dim(-2), a.Dim(-1)
	br, bc := b.Dim(-2), b.Dim(-1)
	m, n, k := gemmShape("MatMul", ar, ac, br, bc, dst.Dim(-2), dst.Dim(-1), transA, transB)
	cs := c.f32("MatMul", dst)
	for i := range batch {
		av := a
		bv := b
		if ad == 3 {
			av = a.Rows(i, i+1)
		}
		if bd == 3 {
			bv = b.Rows(i, i+1)
		}
		gemm(c.pool, cs[i*m*n:(i+1)*m*n], c.src("MatMul", av, ar, ac, transA), c.src("MatMul", bv, br, bc, transB), m, n, k, alpha, beta)
	}
}

// elementwise runs fn over [0,n) in fixed chunks.
func (c *CPU) elementwise(n int, fn func(lo, hi int)) {
	c.pool.run(n, grainFor(n, 4), fn)
}

// Add implements Backend.
func (c *CPU) Add(dst, a, b *Tensor) {
	sameLen("Add", dst, a, b)
	d, x, y := c.f32("Add", dst), c.f32("Add", a), c.f32("Add", b)
	c.elementwise(len(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = x[i] + y[i]
		}
	})
}

// Mul implements Backend.
func (c *CPU) Mul(dst, a, b *Tensor) {
	sameLen("Mul", dst, a, b)
	d, x, y := c.f32("Mul", dst), c.f32("Mul", a), c.f32("Mul", b)
	c.elementwise(len(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = x[i] * y[i]
		}
	})
}

// Scale implements Backend.
func (c *CPU) Scale(dst, a *Tensor, s float32) {
	sameLen("Scale", dst, a)
	d, x := c.f32("Scale", dst), c.f32("Scale", a)
	c.elementwise(len(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = s * x[i]
		}
	})
}

// AddScaled implements Backend.
func (c *CPU) AddScaled(dst, a *Tensor, s float32) {
	sameLen("AddScaled", dst, a)
	d, x := c.f32("AddScaled", dst), c.f32("AddScaled", a)
	c.elementwise(len(d), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] += s * x[i]
		}
	})
}

// rowsOf returns N, D for a tensor viewed as [N, D] with D its last dim.
func rowsOf(op string, t *Tensor, d int) int {
	if d <= 0 || t.Len()%d != 0 || len(t.shape) == 0 || t.Dim(-1) != d {
		panic(fmt.Sprintf("tensor: %s: %s does not have rows of %d", op, t, d))
	}
	return t.Len() / d
}

// RMSNorm implements Backend.
func (c *CPU) RMSNorm(dst, x, w *Tensor, eps float32) {
	sameLen("RMSNorm", dst, x)
	d := w.Len()
	n := rowsOf("RMSNorm", x, d)
	y, xs, ws := c.f32("RMSNorm", dst), c.f32("RMSNorm", x), c.widen("RMSNorm", w)
	c.pool.run(n, grainFor(n, 3*d), func(lo, hi int) {
		rmsNormRows(y, xs, ws, d, float64(eps), lo, hi)
	})
}

// RMSNormBackward implements Backend.
func (c *CPU) RMSNormBackward(dx, dw, dy, x, w *Tensor, eps float32) {
	sameLen("RMSNormBackward", dx, dy, x)
	d := w.Len()
	n := rowsOf("RMSNormBackward", x, d)
	dxs, dys, xs, ws := c.f32("RMSNormBackward", dx), c.f32("RMSNormBackward", dy), c.f32("RMSNormBackward", x), c.widen("RMSNormBackward", w)
	c.pool.run(n, grainFor(n, 6*d), func(lo, hi int) {
		rmsNormBackwardRows(dxs, dys, xs, ws, d, float64(eps), lo, hi)
	})
	if dw == nil {
		return
	}
	sameLen("RMSNormBackward", dw, w)
	dws := c.f32("RMSNormBackward", dw)
	invs := make([]float64, n)
	c.pool.run(n, grainFor(n, 2*d), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			invs[r] = rmsInv(xs[r*d:r*d+d], float64(eps))
		}
	})
	c.pool.run(d, grainFor(d, 2*n), func(lo, hi int) {
		rmsNormWeightGradCols(dws, dys, xs, invs, d, lo, hi)
	})
}

func checkRoPE(op string, t *Tensor, positions []int, heads, headDim int) int {
	if headDim <= 0 || headDim%2 != 0 || heads <= 0 {
		panic(fmt.Sprintf("tensor: %s: heads=%d headDim=%d (headDim must be even)", op, heads, headDim))
	}
	n := rowsOf(op, t, heads*headDim)
	if len(positions) != n {
		panic(fmt.Sprintf("tensor: %s: %d positions for %d rows", op, len(positions), n))
	}
	return n
}

// RoPE implements Backend.
func (c *CPU) RoPE(dst, x *Tensor, positions []int, heads, headDim int, theta float64) {
	c.rope("RoPE", dst, x, positions, heads, headDim, theta, 1)
}

// RoPEBackward implements Backend.
func (c *CPU) RoPEBackward(dx, dy *Tensor, positions []int, heads, headDim int, theta float64) {
	c.rope("RoPEBackward", dx, dy, positions, heads, headDim, theta, -1)
}

func (c *CPU) rope(op string, dst, x *Tensor, positions []int, heads, headDim int, theta, sign float64) {
	sameLen(op, dst, x)
	n := checkRoPE(op, x, positions, heads, headDim)
	y, xs := c.f32(op, dst), c.f32(op, x)
	inv := ropeInvFreq(headDim, theta)
	c.pool.run(n, grainFor(n, 4*heads*headDim), func(lo, hi int) {
		ropeRows(y, xs, positions, heads, headDim, inv, sign, lo, hi)
	})
}

func checkAttn(op string, p AttnParams, q, k, v *Tensor) {
	p.check()
	if q.Len() != p.Batch*p.SeqQ*p.Heads*p.HeadDim || k.Len() != p.Batch*p.KVStride*p.KVHeads*p.HeadDim || v.Len() != k.Len() {
		panic(fmt.Sprintf("tensor: %s: q=%s k=%s v=%s do not match %+v", op, q, k, v, p))
	}
}

// Attention implements Backend.
func (c *CPU) Attention(dst, q, k, v *Tensor, p AttnParams) {
	checkAttn("Attention", p, q, k, v)
	sameLen("Attention", dst, q)
	out, qs, ks, vs := c.f32("Attention", dst), c.f32("Attention", q), c.f32("Attention", k), c.f32("Attention", v)
	c.attention(out, qs, ks, vs, p)
}

// AttentionBackward implements Backend.
func (c *CPU) AttentionBackward(dq, dk, dv, dout, q, k, v *Tensor, p AttnParams) {
	const op = "AttentionBackward"
	checkAttn(op, p, q, k, v)
	sameLen(op, dq, q, dout)
	sameLen(op, dk, k, dv)
	dqs, dks, dvs, dos := c.f32(op, dq), c.f32(op, dk), c.f32(op, dv), c.f32(op, dout)
	qs, ks, vs := c.f32(op, q), c.f32(op, k), c.f32(op, v)
	c.attentionBackward(dqs, dks, dvs, dos, qs, ks, vs, p)
}

// SiLU implements Backend.
func (c *CPU) SiLU(dst, x *Tensor) {
	sameLen("SiLU", dst, x)
	y, xs := c.f32("SiLU", dst), c.f32("SiLU", x)
	c.pool.run(len(y), grainFor(len(y), 20), func(lo, hi int) { siluRange(y, xs, lo, hi) })
}

// SiLUBackward implements Backend.
func (c *CPU) SiLUBackward(dx, dy, x *Tensor) {
	sameLen("SiLUBackward", dx, dy, x)
	d, g, xs := c.f32("SiLUBackward", dx), c.f32("SiLUBackward", dy), c.f32("SiLUBackward", x)
	c.pool.run(len(d), grainFor(len(d), 20), func(lo, hi int) { siluBackwardRange(d, g, xs, lo, hi) })
}

// SwiGLU implements Backend.
func (c *CPU) SwiGLU(dst, gate, up *Tensor) {
	sameLen("SwiGLU", dst, gate, up)
	y, g, u := c.f32("SwiGLU", dst), c.f32("SwiGLU", gate), c.f32("SwiGLU", up)
	c.pool.run(len(y), grainFor(len(y), 20), func(lo, hi int) { swiglu32(y, g, u, lo, hi) })
}

// SwiGLUBackward implements Backend.
func (c *CPU) SwiGLUBackward(dgate, dup, dy, gate, up *Tensor) {
	const op = "SwiGLUBackward"
	sameLen(op, dgate, dup, dy, gate, up)
	dg, du, d, g, u := c.f32(op, dgate), c.f32(op, dup), c.f32(op, dy), c.f32(op, gate), c.f32(op, up)
	c.pool.run(len(d), grainFor(len(d), 20), func(lo, hi int) { swigluBackward32(dg, du, d, g, u, lo, hi) })
}

func checkTable(op string, table, rows *Tensor, ids []int) (v, d int) {
	if len(table.shape) != 2 {
		panic(fmt.Sprintf("tensor: %s: table %s must be 2-D", op, table))
	}
	v, d = table.shape[0], table.shape[1]
	if rows.Len() != len(ids)*d {
		panic(fmt.Sprintf("tensor: %s: %s does not hold %d rows of %d", op, rows, len(ids), d))
	}
	for _, id := range ids {
		if id < 0 || id >= v {
			panic(fmt.Sprintf("tensor: %s: id %d out of range [0,%d)", op, id, v))
		}
	}
	return v, d
}

// Embedding implements Backend.
func (c *CPU) Embedding(dst, table *Tensor, ids []int) {
	v, d := checkTable("Embedding", table, dst, ids)
	out := c.f32("Embedding", dst)
	src := c.src("Embedding", table, v, d, false)
	c.pool.run(len(ids), grainFor(len(ids), d), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src.loadRow(out[r*d:r*d+d], ids[r]*d)
		}
	})
}

// EmbeddingBackward implements Backend. Repeated ids accumulate in the order
// they appear.
func (c *CPU) EmbeddingBackward(dtable, dy *Tensor, ids []int) {
	_, d := checkTable("EmbeddingBackward", dtable, dy, ids)
	dt, g := c.f32("EmbeddingBackward", dtable), c.f32("EmbeddingBackward", dy)
	c.pool.run(d, grainFor(d, len(ids)), func(lo, hi int) {
		for r, id := range ids {
			dst := dt[id*d+lo : id*d+hi]
			for j, x := range g[r*d+lo : r*d+hi] {
				dst[j] += x
			}
		}
	})
}

// Softmax implements Backend.
func (c *CPU) Softmax(dst, x *Tensor) {
	sameLen("Softmax", dst, x)
	v := x.Dim(-1)
	n := rowsOf("Softmax", x, v)
	y, xs := c.f32("Softmax", dst), c.f32("Softmax", x)
	c.pool.run(n, grainFor(n, 20*v), func(lo, hi int) { softmaxRows(y, xs, v, lo, hi) })
}

// SoftmaxBackward implements Backend.
func (c *CPU) SoftmaxBackward(dx, dy, y *Tensor) {
	sameLen("SoftmaxBackward", dx, dy, y)
	v := y.Dim(-1)
	n := rowsOf("SoftmaxBackward", y, v)
	d, g, ys := c.f32("SoftmaxBackward", dx), c.f32("SoftmaxBackward", dy), c.f32("SoftmaxBackward", y)
	c.pool.run(n, grainFor(n, 4*v), func(lo, hi int) { softmaxBackwardRows(d, g, ys, v, lo, hi) })
}

func checkLabels(op string, logits *Tensor, labels []int) (n, v int) {
	v = logits.Dim(-1)
	n = rowsOf(op, logits, v)
	if len(labels) != n {
		panic(fmt.Sprintf("tensor: %s: %d labels for %d rows", op, len(labels), n))
	}
	for _, l := range labels {
		if l != IgnoreIndex && (l < 0 || l >= v) {
			panic(fmt.Sprintf("tensor: %s: label %d out of range [0,%d)", op, l, v))
		}
	}
	return n, v
}

// CrossEntropy implements Backend. Per-row losses are computed in float64
// and summed in row order.
func (c *CPU) CrossEntropy(logits *Tensor, labels []int) (sum float64, count int) {
	n, v := checkLabels("CrossEntropy", logits, labels)
	xs := c.f32("CrossEntropy", logits)
	loss := make([]float64, n)
	c.pool.run(n, grainFor(n, 20*v), func(lo, hi int) { crossEntropyRows(loss, xs, labels, v, lo, hi) })
	for r, l := range loss {
		if labels[r] != IgnoreIndex {
			sum += l
			count++
		}
	}
	return sum, count
}

// CrossEntropyBackward implements Backend.
func (c *CPU) CrossEntropyBackward(dlogits, logits *Tensor, labels []int, scale float32) {
	sameLen("CrossEntropyBackward", dlogits, logits)
	n, v := checkLabels("CrossEntropyBackward", logits, labels)
	d, xs := c.f32("CrossEntropyBackward", dlogits), c.f32("CrossEntropyBackward", logits)
	c.pool.run(n, grainFor(n, 40*v), func(lo, hi int) {
		crossEntropyBackwardRows(d, xs, labels, v, float64(scale), lo, hi)
	})
}
