// Package tensor is mlbuild's numerical core: row-major tensors owned by a
// Backend, and the operations (forward and backward) that the llama-family
// model and the training loop are built from.
//
// A Tensor is a handle: its storage belongs to the backend that created it
// (host memory for the CPU backend, device memory for a GPU backend), and
// model code only ever passes handles to Backend methods. Activations are
// float32; weights may be stored as bf16 or fp16 and are widened to float32
// inside the operations that read them (MatMul, Embedding, RMSNorm).
//
// Operations write into a destination tensor that the caller allocates, so
// hot loops allocate no tensors (the CPU backend uses small per-call
// scratch). Shape mismatches are programming errors and
// panic with a message naming the operation and the shapes; inputs that come
// from users (files, configs) must be validated before they reach a Backend.
//
// Every operation is deterministic: the CPU backend splits work into chunks
// whose size does not depend on the number of workers, and each output
// element is computed by one chunk in a fixed order, so results are
// bit-identical whatever the worker count. (They may differ in the last bits
// between machines: amd64 CPUs with AVX2/FMA use fused multiply-adds in
// MatMul, others the portable Go kernel.)
package tensor

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/mlbuild/mlbuild/ml/nf4"
)

// DType is the element type of a tensor's storage.
type DType uint8

// Storage element types. Activations are always F32; BF16 and F16 are for
// weights that stay in their on-disk precision.
const (
	F32 DType = iota
	BF16
	F16
)

// String returns the safetensors spelling of the type.
func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case BF16:
		return "BF16"
	case F16:
		return "F16"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size is the number of bytes per element.
func (d DType) Size() int {
	if d == F32 {
		return 4
	}
	return 2
}

// Storage is a backend's memory behind one or more tensors. Only the backend
// that created it interprets it.
type Storage interface {
	// Backend returns the backend owning the memory.
	Backend() Backend
}

// Tensor is a handle to a contiguous row-major array of Len() elements
// starting Offset elements into its Storage. Several tensors (views) may
// share one Storage.
type Tensor struct {
	shape  []int
	dtype  DType
	store  Storage
	offset int
	// packed, set by CPU.Prepack, is this tensor as the CPU GEMM packs a
	// transposed right operand; nil otherwise.
	packed *packedB
}

// NewTensor makes a handle; backends use it when they allocate.
func NewTensor(store Storage, dt DType, offset int, shape ...int) *Tensor {
	return &Tensor{shape: slices.Clone(shape), dtype: dt, store: store, offset: offset}
}

// Shape returns the dimensions (do not modify).
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Storage returns the backing memory.
func (t *Tensor) Storage() Storage { return t.store }

// Offset is the index of the first element in the storage.
func (t *Tensor) Offset() int { return t.offset }

// Len is the number of elements.
func (t *Tensor) Len() int { return numel(t.shape) }

// Backend returns the owning backend.
func (t *Tensor) Backend() Backend { return t.store.Backend() }

// String describes the tensor, e.g. "F32[4 64]".
func (t *Tensor) String() string { return fmt.Sprintf("%s%v", t.dtype, t.shape) }

// Rows returns a view of rows [lo, hi) along the first dimension.
func (t *Tensor) Rows(lo, hi int) *Tensor {
	if len(t.shape) == 0 || lo < 0 || hi > t.shape[0] || lo > hi {
		panic(fmt.Sprintf("tensor: Rows(%d, %d) out of range for %s", lo, hi, t))
	}
	inner := numel(t.shape[1:])
	shape := slices.Clone(t.shape)
	shape[0] = hi - lo
	return &Tensor{shape: shape, dtype: t.dtype, store: t.store, offset: t.offset + lo*inner}
}

// Reshape returns a view with the same elements and a new shape; one
// dimension may be -1 and is inferred.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	shape = slices.Clone(shape)
	infer := -1
	prod := 1
	for i, d := range shape {
		if d == -1 {
			if infer >= 0 {
				panic("tensor: Reshape with two -1 dimensions")
			}
			infer = i
			continue
		}
		prod *= d
	}
	if infer >= 0 && prod > 0 {
		shape[infer] = t.Len() / prod
	}
	if numel(shape) != t.Len() {
		panic(fmt.Sprintf("tensor: cannot reshape %s to %v", t, shape))
	}
	return &Tensor{shape: shape, dtype: t.dtype, store: t.store, offset: t.offset}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// AttnParams describes one causal attention call over a (possibly cached)
// key/value sequence.
//
// Queries are [Batch*SeqQ, Heads*HeadDim] (row b*SeqQ+i is query i of
// sequence b, at position PosOffset+i). Keys and values are
// [Batch*KVStride, KVHeads*HeadDim]; rows [0, SeqKV) of each sequence's
// KVStride block are valid. Query head h reads key/value head
// h/(Heads/KVHeads) (grouped-query attention by repetition, as HF's
// repeat_kv). Query i attends to key j when j <= PosOffset+i, j < SeqKV, and,
// when Window > 0, PosOffset+i-j < Window. Scores are scaled by
// 1/sqrt(HeadDim).
type AttnParams struct {
	Batch, SeqQ, SeqKV, KVStride int
	Heads, KVHeads, HeadDim      int
	PosOffset                    int
	Window                       int
}

func (p AttnParams) check() {
	if p.Batch <= 0 || p.SeqQ <= 0 || p.SeqKV <= 0 || p.Heads <= 0 || p.KVHeads <= 0 || p.HeadDim <= 0 ||
		p.Heads%p.KVHeads != 0 || p.KVStride < p.SeqKV || p.PosOffset < 0 {
		panic(fmt.Sprintf("tensor: invalid attention parameters %+v", p))
	}
}

// Backend owns tensor memory and implements the operations. A GPU backend
// implements the same interface, so model code is backend-independent.
//
// Unless stated otherwise, destination and source tensors are F32, all
// shapes must match as documented, and dst may alias an input of an
// element-wise operation.
type Backend interface {
	// Name identifies the backend in logs and provenance ("cpu", "cuda").
	Name() string

	// Zeros allocates a zero-filled tensor.
	Zeros(dt DType, shape ...int) *Tensor
	// FromFloat32 allocates an F32 tensor holding a copy of data.
	FromFloat32(data []float32, shape ...int) *Tensor
	// FromRaw allocates a tensor of type dt from little-endian bytes (as
	// stored in safetensors files), copying them.
	FromRaw(dt DType, raw []byte, shape ...int) (*Tensor, error)
	// Read copies t (widened to float32) into dst, which must have t.Len()
	// elements.
	Read(t *Tensor, dst []float32)
	// Write copies src into the F32 tensor t.
	Write(t *Tensor, src []float32)
	// Copy copies src into dst (same shape; src may be any dtype).
	Copy(dst, src *Tensor)
	// Free releases the memory of t's storage (all views of it) early; the
	// CPU backend leaves it to the garbage collector.
	Free(t *Tensor)

	// MatMul computes dst = alpha*op(a)*op(b) + beta*dst, where op
	// transposes its argument when the flag is set. a and b are 2-D
	// ([M,K] and [K,N] before transposition) or 3-D with a leading batch
	// dimension (b may stay 2-D and is then shared by every batch). b may be
	// BF16 or F16 and is widened on the fly; a should be F32 (the CPU
	// backend accepts any dtype for either, which MatMulBackward relies on
	// when transA is set). With beta == 0 dst is overwritten (its old
	// contents are ignored, even NaN).
	MatMul(dst, a, b *Tensor, transA, transB bool, alpha, beta float32)
	// Add computes dst = a + b element-wise (same shapes).
	Add(dst, a, b *Tensor)
	// Mul computes dst = a * b element-wise (same shapes).
	Mul(dst, a, b *Tensor)
	// Scale computes dst = s * a.
	Scale(dst, a *Tensor, s float32)
	// Dropout computes dst = x ⊙ mask (inverted dropout): element i is 0
	// where DropoutKeeps(seed, i, p) is false, else x[i]·DropoutScale(p).
	// The mask depends on seed, i and p alone, so the backward pass of a
	// dropout is the same call on the gradient. p must be in [0, 1).
	Dropout(dst, x *Tensor, p float32, seed uint64)
	// AddScaled computes dst += s * a (an axpy, for gradient accumulation).
	AddScaled(dst, a *Tensor, s float32)

	// RMSNorm normalises each row of x [N,D] as HF's LlamaRMSNorm: in
	// float32, x * rsqrt(mean(x^2) + eps), then multiplied by w [D] (any
	// dtype).
	RMSNorm(dst, x, w *Tensor, eps float32)
	// RoPE rotates x [N, heads*headDim] in place-compatible fashion (dst may
	// be x) with rotary position embeddings in HF's rotate_half layout: the
	// first and second halves of each head form the (real, imaginary) pairs.
	// positions[r] is the position of row r.
	RoPE(dst, x *Tensor, positions []int, heads, headDim int, theta float64)
	// Attention computes causal softmax attention (see AttnParams); dst has
	// q's shape.
	Attention(dst, q, k, v *Tensor, p AttnParams)
	// SiLU computes dst = x * sigmoid(x).
	SiLU(dst, x *Tensor)
	// SwiGLU computes dst = silu(gate) * up.
	SwiGLU(dst, gate, up *Tensor)
	// Embedding gathers rows ids of table [V,D] (any dtype) into dst
	// [len(ids), D]. Ids must be in [0, V).
	Embedding(dst, table *Tensor, ids []int)
	// Softmax computes a row-wise softmax of x [N,V].
	Softmax(dst, x *Tensor)
	// CrossEntropy returns the summed negative log-likelihood of labels
	// under the row-wise softmax of logits [N,V], and the number of rows
	// whose label is not IgnoreIndex. Labels must be in [0, V) or
	// IgnoreIndex.
	CrossEntropy(logits *Tensor, labels []int) (sum float64, count int)

	// MatMul's gradients are MatMuls: for C = A·B, dA = dC·Bᵀ and
	// dB = Aᵀ·dC (see MatMulBackward).

	// RMSNormBackward writes dx and accumulates dw (F32, may be nil) for
	// y = RMSNorm(x, w).
	RMSNormBackward(dx, dw, dy, x, w *Tensor, eps float32)
	// RoPEBackward writes dx for y = RoPE(x) (the inverse rotation of dy).
	RoPEBackward(dx, dy *Tensor, positions []int, heads, headDim int, theta float64)
	// AttentionBackward writes dq, dk and dv (shapes of q, k, v) for
	// out = Attention(q, k, v). Rows of dk/dv outside [0, SeqKV) are zeroed.
	AttentionBackward(dq, dk, dv, dout, q, k, v *Tensor, p AttnParams)
	// SiLUBackward writes dx for y = SiLU(x).
	SiLUBackward(dx, dy, x *Tensor)
	// SwiGLUBackward writes dgate and dup for y = SwiGLU(gate, up).
	SwiGLUBackward(dgate, dup, dy, gate, up *Tensor)
	// EmbeddingBackward accumulates dy's rows into dtable [V,D] (F32) at ids.
	EmbeddingBackward(dtable, dy *Tensor, ids []int)
	// SoftmaxBackward writes dx for y = Softmax(x), given y.
	SoftmaxBackward(dx, dy, y *Tensor)
	// CrossEntropyBackward writes dlogits = scale*(softmax(logits) -
	// onehot(label)) for rows with a label and zero for ignored rows.
	CrossEntropyBackward(dlogits, logits *Tensor, labels []int, scale float32)

	// The optimizer's update runs where the parameters live (see
	// AdamWStep).

	// SumSquares returns acc + Σ x² over the F32 tensor t, in float64; a
	// global norm over several tensors chains acc through them. The CPU
	// adds in element order.
	SumSquares(t *Tensor, acc float64) float64
	// AdamW applies one AdamW update (see AdamWStep) to the parameter w
	// with gradient g and moments m and v (F32, the same length), then
	// zeroes g.
	AdamW(w, g, m, v *Tensor, s AdamWStep)

	// RoPEFreqs is RoPE (or, with inverse, RoPEBackward) with explicit
	// inverse frequencies, headDim/2 of them (Llama-3's scaled ones)
	// instead of a base theta: angles are float32(pos·freq), their cosine
	// and sine rounded to float32, as transformers computes them. dst may
	// be x.
	RoPEFreqs(dst, x *Tensor, positions []int, heads, headDim int, invFreq []float32, inverse bool)

	// DequantizeNF4 writes rows [lo, hi) of the NF4 weight q (double
	// quantization included), as float32, into dst, which holds exactly
	// those rows (F32, (hi-lo)·rowLen elements), bit-identical to
	// q.DequantizeRows. q must not change once a backend has read it: a
	// GPU backend keeps its codes and statistics in device memory.
	DequantizeNF4(dst *Tensor, q *nf4.Tensor, lo, hi int)
}

// AdamWStep holds the scalars of one AdamW update, which the optimizer
// computes once per step. Element-wise, in float32, with gj = g·Clip:
//
//	m ← Beta1·m + (1−Beta1)·gj
//	v ← Beta2·v + (1−Beta2)·gj²
//	w ← w·Decay − StepSize·m / (√v·InvBC2 + Eps)
//
// (√v in float64, rounded to float32.) StepSize is lr/(1−β₁ᵗ), InvBC2 is
// 1/√(1−β₂ᵗ) and Decay is 1−lr·weight_decay (1 for a parameter without
// decay): PyTorch's torch.optim.AdamW.
type AdamWStep struct {
	Clip, Beta1, Beta2, StepSize, InvBC2, Eps, Decay float32
}

// IgnoreIndex is the label that CrossEntropy skips (as PyTorch's -100).
const IgnoreIndex = -100

// MatMulBackward computes the gradients of C = op(A)·op(B) (alpha 1) with
// respect to A and B given dC, accumulating into da/db with beta (0 to
// overwrite, 1 to accumulate). Either gradient may be nil to skip it. b must
// be F32 when db is wanted; a frozen bf16 weight needs only da.
func MatMulBackward(be Backend, da, db, dc, a, b *Tensor, transA, transB bool, beta float32) {
	if da != nil {
		// C = op(A)·op(B)  =>  dop(A) = dC·op(B)ᵀ.
		if !transA {
			// dA = dC · op(B)ᵀ
			be.MatMul(da, dc, b, false, !transB, 1, beta)
		} else {
			// A is stored [K,M]: dA = op(B) · dCᵀ
			be.MatMul(da, b, dc, transB, true, 1, beta)
		}
	}
	if db != nil {
		if !transB {
			// dB = op(A)ᵀ · dC
			be.MatMul(db, a, dc, !transA, false, 1, beta)
		} else {
			// B stored [N,K]: dB = dCᵀ · op(A)
			be.MatMul(db, dc, a, true, transA, 1, beta)
		}
	}
}

// BF16ToFloat32 widens a bfloat16 bit pattern.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16ToFloat32 widens an IEEE half-precision bit pattern.
func F16ToFloat32(h uint16) float32 { return f16Table()[h] }

// f16Table maps every half-precision bit pattern to its value, built on
// first use (256 KiB a program that never reads f16 weights does not pay).
var f16Table = sync.OnceValue(func() []float32 {
	t := make([]float32, 1<<16)
	for i := range t {
		t[i] = f16Convert(uint16(i))
	}
	return t
})

func f16Convert(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: mant * 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}

// RoPEWithFreqs rotates t [N, heads*headDim] in place like Backend.RoPE,
// but with explicit inverse frequencies (headDim/2 of them, e.g. Llama-3's
// scaled ones) instead of a base theta; inverse rotates back (the backward
// pass). It is Backend.RoPEFreqs with dst = t.
func RoPEWithFreqs(be Backend, t *Tensor, positions []int, heads, headDim int, invFreq []float32, inverse bool) {
	be.RoPEFreqs(t, t, positions, heads, headDim, invFreq, inverse)
}
