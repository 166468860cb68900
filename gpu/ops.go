package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/ml/nf4"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// The operations of tensor.Backend, each one or a few launches of the
// kernels in gpu/kernels (whose sources say how each matches the CPU
// backend). Shape checks are those of the CPU backend.

func sameLen(op string, ts ...*tensor.Tensor) int64 {
	for _, t := range ts[1:] {
		if t.Len() != ts[0].Len() {
			panic(fmt.Sprintf("gpu: %s: size mismatch %s vs %s", op, ts[0], t))
		}
	}
	return int64(ts[0].Len())
}

// rowsOf returns N for t viewed as [N, d], d its last dimension.
func rowsOf(op string, t *tensor.Tensor, d int) int {
	if d <= 0 || len(t.Shape()) == 0 || t.Dim(-1) != d || t.Len()%d != 0 {
		panic(fmt.Sprintf("gpu: %s: %s does not have rows of %d", op, t, d))
	}
	return t.Len() / d
}

// MatMul implements tensor.Backend through the backend's GEMM.
func (be *Backend) MatMul(dst, a, b *tensor.Tensor, transA, transB bool, alpha, beta float32) {
	be.gemm.MatMul(be, dst, a, b, transA, transB, alpha, beta)
}

// Add implements tensor.Backend.
func (be *Backend) Add(dst, a, b *tensor.Tensor) {
	n := sameLen("Add", dst, a, b)
	be.launch("Add", "add_f32", gridFor(n), elemBlock, be.f32("Add", dst), be.f32("Add", a), be.f32("Add", b), n)
}

// Mul implements tensor.Backend.
func (be *Backend) Mul(dst, a, b *tensor.Tensor) {
	n := sameLen("Mul", dst, a, b)
	be.launch("Mul", "mul_f32", gridFor(n), elemBlock, be.f32("Mul", dst), be.f32("Mul", a), be.f32("Mul", b), n)
}

// Scale implements tensor.Backend.
func (be *Backend) Scale(dst, a *tensor.Tensor, s float32) {
	n := sameLen("Scale", dst, a)
	be.launch("Scale", "scale_f32", gridFor(n), elemBlock, be.f32("Scale", dst), be.f32("Scale", a), s, n)
}

// AddScaled implements tensor.Backend.
func (be *Backend) AddScaled(dst, a *tensor.Tensor, s float32) {
	n := sameLen("AddScaled", dst, a)
	be.launch("AddScaled", "axpy_f32", gridFor(n), elemBlock, be.f32("AddScaled", dst), be.f32("AddScaled", a), s, n)
}

// Dropout implements tensor.Backend with tensor.DropoutKeeps' mask.
func (be *Backend) Dropout(dst, x *tensor.Tensor, p float32, seed uint64) {
	if !(p >= 0 && p < 1) {
		panic("gpu: Dropout probability must be in [0, 1)")
	}
	n := sameLen("Dropout", dst, x)
	be.launch("Dropout", "dropout_f32", gridFor(n), elemBlock, be.f32("Dropout", dst), be.f32("Dropout", x), n, int64(0),
		tensor.DropoutThreshold(p), tensor.DropoutScale(p), seed)
}

// SiLU implements tensor.Backend.
func (be *Backend) SiLU(dst, x *tensor.Tensor) {
	n := sameLen("SiLU", dst, x)
	be.launch("SiLU", "silu_f32", gridFor(n), elemBlock, be.f32("SiLU", dst), be.f32("SiLU", x), n)
}

// SiLUBackward implements tensor.Backend.
func (be *Backend) SiLUBackward(dx, dy, x *tensor.Tensor) {
	n := sameLen("SiLUBackward", dx, dy, x)
	be.launch("SiLUBackward", "silu_backward_f32", gridFor(n), elemBlock, be.f32("SiLUBackward", dx), be.f32("SiLUBackward", dy), be.f32("SiLUBackward", x), n)
}

// SwiGLU implements tensor.Backend.
func (be *Backend) SwiGLU(dst, gate, up *tensor.Tensor) {
	n := sameLen("SwiGLU", dst, gate, up)
	be.launch("SwiGLU", "swiglu_f32", gridFor(n), elemBlock, be.f32("SwiGLU", dst), be.f32("SwiGLU", gate), be.f32("SwiGLU", up), n)
}

// SwiGLUBackward implements tensor.Backend.
func (be *Backend) SwiGLUBackward(dgate, dup, dy, gate, up *tensor.Tensor) {
	const op = "SwiGLUBackward"
	n := sameLen(op, dgate, dup, dy, gate, up)
	be.launch(op, "swiglu_backward_f32", gridFor(n), elemBlock, be.f32(op, dgate), be.f32(op, dup), be.f32(op, dy), be.f32(op, gate), be.f32(op, up), n)
}

// RMSNorm implements tensor.Backend.
func (be *Backend) RMSNorm(dst, x, w *tensor.Tensor, eps float32) {
	sameLen("RMSNorm", dst, x)
	d := w.Len()
	rows := rowsOf("RMSNorm", x, d)
	be.launch("RMSNorm", "rmsnorm", cuda.Dim3{X: uint32(rows)}, rowBlock, be.f32("RMSNorm", dst), be.f32("RMSNorm", x),
		be.ptr("RMSNorm", w), int32(w.DType()), int32(d), eps)
}

// RMSNormBackward implements tensor.Backend: dx per row, then dw (when
// wanted) one column per thread over the rows in order.
func (be *Backend) RMSNormBackward(dx, dw, dy, x, w *tensor.Tensor, eps float32) {
	const op = "RMSNormBackward"
	sameLen(op, dx, dy, x)
	d := w.Len()
	rows := rowsOf(op, x, d)
	s := be.scratch(op)
	defer s.release()
	invs := s.alloc(8 * int64(rows))
	be.launch(op, "rmsnorm_backward", cuda.Dim3{X: uint32(rows)}, rowBlock, be.f32(op, dx), invs, be.f32(op, dy), be.f32(op, x),
		be.ptr(op, w), int32(w.DType()), int32(d), eps)
	if dw != nil {
		sameLen(op, dw, w)
		be.launch(op, "rmsnorm_weight_grad", gridFor(int64(d)), elemBlock, be.f32(op, dw), be.f32(op, dy), be.f32(op, x), invs, int32(rows), int32(d))
	}
}

// rope rotates with the cosines and sines of every row's angles, computed
// here as the CPU backend computes them (float64, rounded to float32; the
// sine negated for the inverse rotation).
func (be *Backend) rope(op string, dst, x *tensor.Tensor, positions []int, heads, headDim int, inv []float32, sign float64) {
	sameLen(op, dst, x)
	if headDim <= 0 || headDim%2 != 0 || heads <= 0 {
		panic(fmt.Sprintf("gpu: %s: heads=%d headDim=%d (headDim must be even)", op, heads, headDim))
	}
	rows := rowsOf(op, x, heads*headDim)
	if len(positions) != rows {
		panic(fmt.Sprintf("gpu: %s: %d positions for %d rows", op, len(positions), rows))
	}
	half := headDim / 2
	if len(inv) < half {
		panic(fmt.Sprintf("gpu: %s: %d frequencies for head dimension %d", op, len(inv), headDim))
	}
	cs, sn := make([]float32, rows*half), make([]float32, rows*half)
	for r, pos := range positions {
		for i, f := range inv[:half] {
			a := float64(float32(pos) * f)
			cs[r*half+i] = float32(math.Cos(a))
			sn[r*half+i] = float32(sign * float64(float32(math.Sin(a))))
		}
	}
	s := be.scratch(op)
	defer s.release()
	n := int64(rows * heads * half)
	be.launch(op, "rope_f32", gridFor(n), elemBlock, be.f32(op, dst), be.f32(op, x), s.put(f32Bytes(cs)), s.put(f32Bytes(sn)),
		int32(rows), int32(heads), int32(headDim))
}

// RoPE implements tensor.Backend.
func (be *Backend) RoPE(dst, x *tensor.Tensor, positions []int, heads, headDim int, theta float64) {
	be.rope("RoPE", dst, x, positions, heads, headDim, tensor.RoPEInvFreq(headDim, theta), 1)
}

// RoPEBackward implements tensor.Backend.
func (be *Backend) RoPEBackward(dx, dy *tensor.Tensor, positions []int, heads, headDim int, theta float64) {
	be.rope("RoPEBackward", dx, dy, positions, heads, headDim, tensor.RoPEInvFreq(headDim, theta), -1)
}

// RoPEFreqs implements tensor.Backend. The CPU backend rounds the sine
// after the sign; both give the same float32 (the sign is exact).
func (be *Backend) RoPEFreqs(dst, x *tensor.Tensor, positions []int, heads, headDim int, invFreq []float32, inverse bool) {
	sign := 1.0
	if inverse {
		sign = -1
	}
	be.rope("RoPEFreqs", dst, x, positions, heads, headDim, invFreq, sign)
}

// attnArgs are attention's scalar kernel arguments (ATTN_ARGS).
func attnArgs(p tensor.AttnParams) []any {
	return []any{int32(p.Batch), int32(p.SeqQ), int32(p.SeqKV), int32(p.KVStride), int32(p.Heads), int32(p.KVHeads),
		int32(p.HeadDim), int32(p.PosOffset), int32(p.Window), float32(1 / math.Sqrt(float64(p.HeadDim)))}
}

func checkAttn(op string, p tensor.AttnParams, q, k, v *tensor.Tensor) {
	if p.Batch <= 0 || p.SeqQ <= 0 || p.SeqKV <= 0 || p.Heads <= 0 || p.KVHeads <= 0 || p.HeadDim <= 0 ||
		p.Heads%p.KVHeads != 0 || p.KVStride < p.SeqKV || p.PosOffset < 0 {
		panic(fmt.Sprintf("gpu: %s: invalid attention parameters %+v", op, p))
	}
	if p.HeadDim > attnMaxDim {
		panic(fmt.Sprintf("gpu: %s: head dimension %d is above the kernels' %d", op, p.HeadDim, attnMaxDim))
	}
	if q.Len() != p.Batch*p.SeqQ*p.Heads*p.HeadDim || k.Len() != p.Batch*p.KVStride*p.KVHeads*p.HeadDim || v.Len() != k.Len() {
		panic(fmt.Sprintf("gpu: %s: q=%s k=%s v=%s do not match %+v", op, q, k, v, p))
	}
}

// attention runs the forward kernel into out with the log-sum-exps at lse.
func (be *Backend) attention(op string, out cuda.DevicePtr, lse cuda.DevicePtr, q, k, v *tensor.Tensor, p tensor.AttnParams) {
	args := append([]any{out, lse, be.f32(op, q), be.f32(op, k), be.f32(op, v)}, attnArgs(p)...)
	be.launch(op, "attention_forward", cuda.Dim3{X: uint32(p.Batch * p.SeqQ), Y: uint32(p.Heads)}, attnBlock, args...)
}

// Attention implements tensor.Backend.
func (be *Backend) Attention(dst, q, k, v *tensor.Tensor, p tensor.AttnParams) {
	checkAttn("Attention", p, q, k, v)
	sameLen("Attention", dst, q)
	s := be.scratch("Attention")
	defer s.release()
	be.attention("Attention", be.f32("Attention", dst), s.alloc(4*int64(p.Batch*p.SeqQ*p.Heads)), q, k, v, p)
}

// AttentionBackward implements tensor.Backend: the forward again (for the
// output and the log-sum-exps), then dq over the keys and dk, dv over the
// queries.
func (be *Backend) AttentionBackward(dq, dk, dv, dout, q, k, v *tensor.Tensor, p tensor.AttnParams) {
	const op = "AttentionBackward"
	checkAttn(op, p, q, k, v)
	sameLen(op, dq, q, dout)
	sameLen(op, dk, k, dv)
	s := be.scratch(op)
	defer s.release()
	rows := int64(p.Batch * p.SeqQ * p.Heads)
	out, lse, delta := s.alloc(4*int64(q.Len())), s.alloc(4*rows), s.alloc(4*rows)
	be.attention(op, out, lse, q, k, v, p)
	args := append([]any{be.f32(op, dq), delta, be.f32(op, dout), out, lse, be.f32(op, q), be.f32(op, k), be.f32(op, v)}, attnArgs(p)...)
	be.launch(op, "attention_backward_dq", cuda.Dim3{X: uint32(p.Batch * p.SeqQ), Y: uint32(p.Heads)}, attnBlock, args...)
	args = append([]any{be.f32(op, dk), be.f32(op, dv), be.f32(op, dout), lse, delta, be.f32(op, q), be.f32(op, k), be.f32(op, v)}, attnArgs(p)...)
	be.launch(op, "attention_backward_dkv", cuda.Dim3{X: uint32(p.Batch * p.KVStride), Y: uint32(p.KVHeads)}, attnBlock, args...)
}

func checkIDs(op string, ids []int, vocab int) {
	for i, id := range ids {
		if id < 0 || id >= vocab {
			panic(fmt.Sprintf("gpu: %s: id %d at %d outside [0,%d)", op, id, i, vocab))
		}
	}
}

// Embedding implements tensor.Backend.
func (be *Backend) Embedding(dst, table *tensor.Tensor, ids []int) {
	d := table.Dim(-1)
	checkIDs("Embedding", ids, table.Len()/d)
	if dst.Len() != len(ids)*d {
		panic(fmt.Sprintf("gpu: Embedding: %s for %d ids of %d", dst, len(ids), d))
	}
	if len(ids) == 0 {
		return
	}
	s := be.scratch("Embedding")
	defer s.release()
	be.launch("Embedding", "embedding", gridFor(int64(dst.Len())), elemBlock, be.f32("Embedding", dst), be.ptr("Embedding", table),
		int32(table.DType()), s.put(i32Bytes(ids)), int32(len(ids)), int32(d))
}

// EmbeddingBackward implements tensor.Backend.
func (be *Backend) EmbeddingBackward(dtable, dy *tensor.Tensor, ids []int) {
	d := dtable.Dim(-1)
	checkIDs("EmbeddingBackward", ids, dtable.Len()/d)
	if dy.Len() != len(ids)*d {
		panic(fmt.Sprintf("gpu: EmbeddingBackward: %s for %d ids of %d", dy, len(ids), d))
	}
	if len(ids) == 0 {
		return
	}
	s := be.scratch("EmbeddingBackward")
	defer s.release()
	be.launch("EmbeddingBackward", "embedding_backward_f32", gridFor(int64(d)), elemBlock, be.f32("EmbeddingBackward", dtable),
		be.f32("EmbeddingBackward", dy), s.put(i32Bytes(ids)), int32(len(ids)), int32(d))
}

// Softmax implements tensor.Backend.
func (be *Backend) Softmax(dst, x *tensor.Tensor) {
	sameLen("Softmax", dst, x)
	v := x.Dim(-1)
	rows := rowsOf("Softmax", x, v)
	be.launch("Softmax", "softmax", cuda.Dim3{X: uint32(rows)}, rowBlock, be.f32("Softmax", dst), be.f32("Softmax", x), int32(v))
}

// SoftmaxBackward implements tensor.Backend.
func (be *Backend) SoftmaxBackward(dx, dy, y *tensor.Tensor) {
	const op = "SoftmaxBackward"
	sameLen(op, dx, dy, y)
	v := y.Dim(-1)
	rows := rowsOf(op, y, v)
	be.launch(op, "softmax_backward", cuda.Dim3{X: uint32(rows)}, rowBlock, be.f32(op, dx), be.f32(op, dy), be.f32(op, y), int32(v))
}

func checkLabels(op string, logits *tensor.Tensor, labels []int) (rows, v int) {
	v = logits.Dim(-1)
	rows = rowsOf(op, logits, v)
	if len(labels) != rows {
		panic(fmt.Sprintf("gpu: %s: %d labels for %d rows", op, len(labels), rows))
	}
	for i, l := range labels {
		if l != tensor.IgnoreIndex && (l < 0 || l >= v) {
			panic(fmt.Sprintf("gpu: %s: label %d at %d outside [0,%d)", op, l, i, v))
		}
	}
	return rows, v
}

// CrossEntropy implements tensor.Backend: a loss per row on the device,
// summed here in row order.
func (be *Backend) CrossEntropy(logits *tensor.Tensor, labels []int) (sum float64, count int) {
	rows, v := checkLabels("CrossEntropy", logits, labels)
	if rows == 0 {
		return 0, 0
	}
	s := be.scratch("CrossEntropy")
	defer s.release()
	loss := s.alloc(8 * int64(rows))
	be.launch("CrossEntropy", "cross_entropy", cuda.Dim3{X: uint32(rows)}, rowBlock, loss, be.f32("CrossEntropy", logits), s.put(i32Bytes(labels)), int32(v))
	raw := make([]byte, 8*rows)
	s.get(raw, loss)
	for r, l := range labels {
		if l != tensor.IgnoreIndex {
			sum += math.Float64frombits(binary.LittleEndian.Uint64(raw[8*r:]))
			count++
		}
	}
	return sum, count
}

// CrossEntropyBackward implements tensor.Backend.
func (be *Backend) CrossEntropyBackward(dlogits, logits *tensor.Tensor, labels []int, scale float32) {
	const op = "CrossEntropyBackward"
	sameLen(op, dlogits, logits)
	rows, v := checkLabels(op, logits, labels)
	if rows == 0 {
		return
	}
	s := be.scratch(op)
	defer s.release()
	be.launch(op, "cross_entropy_backward", cuda.Dim3{X: uint32(rows)}, rowBlock, be.f32(op, dlogits), be.f32(op, logits), s.put(i32Bytes(labels)), int32(v), scale)
}

// sumSquaresChunk is the number of elements each block of SumSquares adds
// (fixed, so the order of the additions does not depend on the device).
const sumSquaresChunk = 1 << 14

// SumSquares implements tensor.Backend: float64 partial sums of fixed
// chunks on the device, added to acc here in chunk order.
func (be *Backend) SumSquares(t *tensor.Tensor, acc float64) float64 {
	n := int64(t.Len())
	if n == 0 {
		return acc
	}
	blocks := (n + sumSquaresChunk - 1) / sumSquaresChunk
	s := be.scratch("SumSquares")
	defer s.release()
	part := s.alloc(8 * blocks)
	be.launch("SumSquares", "sum_squares_f64", cuda.Dim3{X: uint32(blocks)}, rowBlock, part, be.f32("SumSquares", t), n, int64(sumSquaresChunk))
	raw := make([]byte, 8*blocks)
	s.get(raw, part)
	for i := range blocks {
		acc += math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	return acc
}

// AdamW implements tensor.Backend.
func (be *Backend) AdamW(w, g, m, v *tensor.Tensor, s tensor.AdamWStep) {
	n := sameLen("AdamW", w, g, m, v)
	be.launch("AdamW", "adamw_f32", gridFor(n), elemBlock, be.f32("AdamW", w), be.f32("AdamW", g), be.f32("AdamW", m), be.f32("AdamW", v), n,
		s.Clip, s.Beta1, s.Beta2, s.StepSize, s.InvBC2, s.Eps, s.Decay)
}

// nf4Buffers is a quantized weight's codes and statistics in device
// memory, uploaded on first use and kept for the backend's life (the
// tensor must not change, tensor.Backend.DequantizeNF4 says).
type nf4Buffers struct {
	packed, qabsmax, absmax2, rawabsmax cuda.DevicePtr
}

func (be *Backend) nf4Upload(q *nf4.Tensor) *nf4Buffers {
	be.mu.Lock()
	defer be.mu.Unlock()
	if b, ok := be.nf4[q]; ok {
		return b
	}
	what := fmt.Sprintf("NF4%v", q.Shape)
	b := &nf4Buffers{packed: be.upload("DequantizeNF4", what, q.Packed)}
	if q.QAbsmax != nil {
		b.qabsmax = be.upload("DequantizeNF4", what, q.QAbsmax)
		b.absmax2 = be.upload("DequantizeNF4", what, f32Bytes(q.Absmax2))
	} else {
		b.rawabsmax = be.upload("DequantizeNF4", what, f32Bytes(q.RawAbsmax))
	}
	be.nf4[q] = b
	return b
}

// DequantizeNF4 implements tensor.Backend.
func (be *Backend) DequantizeNF4(dst *tensor.Tensor, q *nf4.Tensor, lo, hi int) {
	if len(q.Shape) == 0 || lo < 0 || hi < lo || hi > q.Shape[0] {
		panic(fmt.Sprintf("gpu: DequantizeNF4: rows [%d,%d) of NF4%v", lo, hi, q.Shape))
	}
	rowLen := 1
	for _, d := range q.Shape[1:] {
		rowLen *= d
	}
	n := int64((hi - lo) * rowLen)
	if int64(dst.Len()) != n {
		panic(fmt.Sprintf("gpu: DequantizeNF4: %s for %d rows of %d", dst, hi-lo, rowLen))
	}
	if n == 0 {
		return
	}
	b := be.nf4Upload(q)
	bs2 := max(q.BlockSize2, 1)
	be.launch("DequantizeNF4", "dequantize_nf4", gridFor(n), elemBlock, be.f32("DequantizeNF4", dst), b.packed, b.qabsmax, b.absmax2,
		b.rawabsmax, be.nf4Tables, q.Offset, int64(lo*rowLen), n, int32(q.BlockSize), int32(bs2))
}
