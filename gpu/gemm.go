package gpu

import (
	"fmt"

	"github.com/mlbuild/mlbuild/ml/tensor"
)

// HostGEMM runs the CPU backend's GEMM on host copies of the operands:
// the matrix products of a Backend on the PTX interpreter, which has no
// cuBLAS (and a reference for the real one). Results are the CPU
// backend's, bit for bit.
type HostGEMM struct {
	// CPU computes the products (tensor.NewCPU).
	CPU *tensor.CPU
}

// MatMul implements GEMM.
func (h HostGEMM) MatMul(be *Backend, dst, a, b *tensor.Tensor, transA, transB bool, alpha, beta float32) {
	ha, hb, hd := h.host(be, a), h.host(be, b), h.host(be, dst)
	h.CPU.MatMul(hd, ha, hb, transA, transB, alpha, beta)
	out := make([]float32, hd.Len())
	h.CPU.Read(hd, out)
	be.Write(dst, out)
}

// host copies t to the CPU backend, keeping its type and shape.
func (h HostGEMM) host(be *Backend, t *tensor.Tensor) *tensor.Tensor {
	raw := make([]byte, t.Len()*t.DType().Size())
	be.check("MatMul", "cuMemcpyDtoH", be.ctx.CopyDtoH(0, raw, be.ptr("MatMul", t)))
	ht, err := h.CPU.FromRaw(t.DType(), raw, t.Shape()...)
	if err != nil {
		panic(fmt.Errorf("gpu: MatMul: %w", err))
	}
	return ht
}

// gemmShape is a MatMul's product dimensions and batch strides.
type gemmShape struct {
	batch, m, n, k   int
	strideA, strideB int64
}

// gemmShapeOf checks a MatMul's ranks and shapes as the CPU backend does:
// 2-D operands, or a 3-D a and dst with a shared 2-D b or a 3-D b of the
// same batch.
func gemmShapeOf(dst, a, b *tensor.Tensor, transA, transB bool) gemmShape {
	ad, bd, cd := len(a.Shape()), len(b.Shape()), len(dst.Shape())
	sh := gemmShape{batch: 1}
	switch {
	case ad == 2 && bd == 2 && cd == 2:
	case ad == 3 && (bd == 2 || bd == 3) && cd == 3 && a.Dim(0) == dst.Dim(0) && (bd == 2 || b.Dim(0) == a.Dim(0)):
		sh.batch = a.Dim(0)
	default:
		panic(fmt.Sprintf("gpu: MatMul: unsupported ranks a=%s b=%s dst=%s", a, b, dst))
	}
	m, k := a.Dim(-2), a.Dim(-1)
	if transA {
		m, k = k, m
	}
	kb, n := b.Dim(-2), b.Dim(-1)
	if transB {
		kb, n = n, kb
	}
	if kb != k || dst.Dim(-2) != m || dst.Dim(-1) != n {
		panic(fmt.Sprintf("gpu: MatMul: shapes a=%s b=%s dst=%s (transA=%v transB=%v) do not match", a, b, dst, transA, transB))
	}
	sh.m, sh.n, sh.k = m, n, k
	if ad == 3 {
		sh.strideA = int64(m * k)
	}
	if bd == 3 {
		sh.strideB = int64(k * n)
	}
	return sh
}
