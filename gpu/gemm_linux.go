package gpu

import (
	"fmt"

	"github.com/mlbuild/mlbuild/gpu/cuda"
	"github.com/mlbuild/mlbuild/ml/tensor"
)

// blasWorkspace is cuBLASLt's workspace (NVIDIA suggests 32 MiB on Hopper).
const blasWorkspace = 32 << 20

// blasGEMM computes a real device's matrix products with cuBLASLt: fp32
// accumulation and fp32 operands (a BF16 or F16 operand is first widened
// on the device by the cast kernel, since cuBLASLt multiplies only equal
// operand types with an fp32 C).
type blasGEMM struct {
	lt *cuda.BLASLt
	ws cuda.DevicePtr
}

// openBLAS loads cuBLASLt for ctx and allocates its workspace.
func openBLAS(ctx cuda.Context) (GEMM, error) {
	lt, err := cuda.LoadBLASLt(ctx)
	if err != nil {
		return nil, err
	}
	ws, err := ctx.Alloc(blasWorkspace)
	if err != nil {
		_ = lt.Close()
		return nil, fmt.Errorf("gpu: cuBLASLt workspace: %w", err)
	}
	return &blasGEMM{lt: lt, ws: ws}, nil
}

// footprint says what the products hold on the device beyond their
// operands: a float32 copy of a 16-bit operand, and the workspace.
func (g *blasGEMM) footprint() (bool, int64) { return true, blasWorkspace }

// MatMul implements GEMM with tensor.Backend.MatMul's shapes.
func (g *blasGEMM) MatMul(be *Backend, dst, a, b *tensor.Tensor, transA, transB bool, alpha, beta float32) {
	const op = "MatMul"
	sh := gemmShapeOf(dst, a, b, transA, transB)
	s := be.scratch(op)
	defer s.release()
	wide := func(t *tensor.Tensor) cuda.DevicePtr {
		if t.DType() == tensor.F32 {
			return be.ptr(op, t)
		}
		p := s.alloc(4 * int64(t.Len()))
		n := int64(t.Len())
		be.launch(op, "cast", gridFor(n), elemBlock, p, int32(tensor.F32), be.ptr(op, t), int32(t.DType()), n)
		return p
	}
	err := g.lt.Matmul(0, cuda.Gemm{
		TransA: transA, TransB: transB, M: sh.m, N: sh.n, K: sh.k,
		A: wide(a), B: wide(b), C: be.f32(op, dst),
		AType: cuda.R32F, BType: cuda.R32F, CType: cuda.R32F,
		Alpha: alpha, Beta: beta, Batch: sh.batch,
		StrideA: sh.strideA, StrideB: sh.strideB, StrideC: int64(sh.m * sh.n),
	}, g.ws, blasWorkspace)
	be.check(op, "cublasLtMatmul", err)
}
