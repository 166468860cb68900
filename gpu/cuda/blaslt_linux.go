//go:build linux

package cuda

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/ebitengine/purego"
)

// BLASLtLibraries are the cuBLASLt sonames LoadBLASLt tries, newest first.
var BLASLtLibraries = []string{"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"}

// DataType is a cudaDataType_t.
type DataType int32

// Data types of GEMM operands.
const (
	R32F  DataType = 0  // CUDA_R_32F
	R16F  DataType = 2  // CUDA_R_16F
	R16BF DataType = 14 // CUDA_R_16BF
)

// cuBLASLt enum values used (cublasLt.h, cublas_api.h).
const (
	computeType32F          = 68 // CUBLAS_COMPUTE_32F: fp32 accumulation, no TF32
	descTransA              = 3  // CUBLASLT_MATMUL_DESC_TRANSA
	descTransB              = 4  // CUBLASLT_MATMUL_DESC_TRANSB
	layoutBatchCount        = 5  // CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT
	layoutStridedBatch      = 6  // CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET
	prefMaxWorkspace        = 1  // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
	opN                     = 0  // CUBLAS_OP_N
	opT                     = 1  // CUBLAS_OP_T
	heuristicResultByteSize = 96 // sizeof(cublasLtMatmulHeuristicResult_t)
)

// heuristicResult is cublasLtMatmulHeuristicResult_t.
type heuristicResult struct {
	algo          [8]uint64
	workspaceSize uint64
	state         int32
	waves         float32
	reserved      [4]int32
}

// BLASLt is cuBLASLt loaded at run time, with a handle bound to one
// context of the real driver.
type BLASLt struct {
	ctx    *libContext
	path   string
	handle uintptr // cublasLtHandle_t
	fn     struct {
		create, destroy, statusName                                     uintptr
		descCreate, descSet, descDestroy                                uintptr
		layoutCreate, layoutSet, layoutDestroy                          uintptr
		prefCreate, prefSet, prefDestroy, heuristic, matmul, getVersion uintptr
	}
}

// LoadBLASLt opens cuBLASLt (the first of BLASLtLibraries that loads)
// and creates a handle for ctx, which must come from the real driver
// (Lib.NewContext); a PTX interpreter's GEMMs run on the CPU backend.
func LoadBLASLt(ctx Context) (*BLASLt, error) {
	c, ok := ctx.(*libContext)
	if !ok {
		return nil, fmt.Errorf("cuda: cuBLASLt needs a context of the real driver, not %T", ctx)
	}
	var h uintptr
	var lastErr error
	b := &BLASLt{ctx: c}
	for _, name := range BLASLtLibraries {
		var err error
		if h, err = purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_LOCAL); err == nil {
			b.path = name
			break
		}
		lastErr = err
	}
	if h == 0 {
		return nil, &LoadError{Library: "libcublasLt.so", Reason: "not found: install the CUDA toolkit's cuBLAS (libcublasLt)", Err: lastErr, missing: ErrNoDriver}
	}
	for _, s := range []struct {
		p        *uintptr
		name     string
		optional bool
	}{
		{&b.fn.create, "cublasLtCreate", false}, {&b.fn.destroy, "cublasLtDestroy", false},
		{&b.fn.statusName, "cublasLtGetStatusName", true}, {&b.fn.getVersion, "cublasLtGetVersion", false},
		{&b.fn.descCreate, "cublasLtMatmulDescCreate", false}, {&b.fn.descSet, "cublasLtMatmulDescSetAttribute", false},
		{&b.fn.descDestroy, "cublasLtMatmulDescDestroy", false},
		{&b.fn.layoutCreate, "cublasLtMatrixLayoutCreate", false}, {&b.fn.layoutSet, "cublasLtMatrixLayoutSetAttribute", false},
		{&b.fn.layoutDestroy, "cublasLtMatrixLayoutDestroy", false},
		{&b.fn.prefCreate, "cublasLtMatmulPreferenceCreate", false}, {&b.fn.prefSet, "cublasLtMatmulPreferenceSetAttribute", false},
		{&b.fn.prefDestroy, "cublasLtMatmulPreferenceDestroy", false},
		{&b.fn.heuristic, "cublasLtMatmulAlgoGetHeuristic", false}, {&b.fn.matmul, "cublasLtMatmul", false},
	} {
		p, err := purego.Dlsym(h, s.name)
		if err != nil || p == 0 {
			if s.optional {
				continue
			}
			_ = purego.Dlclose(h)
			return nil, &LoadError{Library: b.path, Reason: "is not a usable cuBLASLt: it has no " + s.name, Err: err}
		}
		*s.p = p
	}
	err := c.do(func() error { return b.call("cublasLtCreate", b.fn.create, uintptr(unsafe.Pointer(&b.handle))) })
	if err != nil {
		return nil, err
	}
	return b, nil
}

//go:uintptrescapes
func (b *BLASLt) call(name string, fn uintptr, args ...uintptr) error {
	r, _, _ := purego.SyscallN(fn, args...)
	s := BLASStatus(int32(r))
	if s == 0 {
		return nil
	}
	e := &BLASError{Call: name, Status: s, Name: s.Name()}
	if b.fn.statusName != 0 {
		if p, _, _ := purego.SyscallN(b.fn.statusName, uintptr(s)); p != 0 {
			e.Name = cStringAt(p)
		}
	}
	return e
}

// cStringAt copies the C string at address p, which C owns (a static
// string): it is read through a *byte the GC ignores.
func cStringAt(p uintptr) string {
	var bp *byte
	*(*uintptr)(unsafe.Pointer(&bp)) = p
	return cString(bp)
}

// Version is cublasLtGetVersion's number.
func (b *BLASLt) Version() int {
	v, _, _ := purego.SyscallN(b.fn.getVersion)
	return int(v)
}

// Gemm is one (batched) row-major matrix product with fp32 accumulation:
// C = Alpha·op(A)·op(B) + Beta·C for each of Batch matrices, where op
// transposes when TransA/TransB is set, A is [M,K] (stored [K,M] when
// TransA), B is [K,N] (stored [N,K] when TransB), C is [M,N] and
// Stride* are the distances in elements between batches (0 for an
// operand shared by every batch).
type Gemm struct {
	TransA, TransB      bool
	M, N, K             int
	A, B, C             DevicePtr
	AType, BType, CType DataType
	Alpha, Beta         float32
	Batch               int
	StrideA, StrideB    int64
	StrideC             int64
}

// Matmul runs g on stream s with up to wsBytes of workspace at ws.
//
// cuBLASLt is column-major: a row-major [r,c] matrix is a column-major
// [c,r] one, so the row-major C = op(A)·op(B) is computed as the
// column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, B first.
func (b *BLASLt) Matmul(s Stream, g Gemm, ws DevicePtr, wsBytes int64) error {
	if g.M <= 0 || g.N <= 0 || g.K <= 0 {
		return fmt.Errorf("cuda: Matmul: empty product %dx%dx%d", g.M, g.N, g.K)
	}
	batch := max(g.Batch, 1)
	return b.ctx.do(func() error {
		var desc, la, lb, lc, pref uintptr
		if err := b.call("cublasLtMatmulDescCreate", b.fn.descCreate, uintptr(unsafe.Pointer(&desc)), computeType32F, uintptr(R32F)); err != nil {
			return err
		}
		defer func() { _ = b.call("cublasLtMatmulDescDestroy", b.fn.descDestroy, desc) }()
		ta, tb := int32(opN), int32(opN)
		if g.TransB {
			ta = opT // B is the first operand
		}
		if g.TransA {
			tb = opT
		}
		if err := b.call("cublasLtMatmulDescSetAttribute", b.fn.descSet, desc, descTransA, uintptr(unsafe.Pointer(&ta)), 4); err != nil {
			return err
		}
		if err := b.call("cublasLtMatmulDescSetAttribute", b.fn.descSet, desc, descTransB, uintptr(unsafe.Pointer(&tb)), 4); err != nil {
			return err
		}
		// Column-major shapes of the stored operands.
		bRows, bCols := g.N, g.K
		if g.TransB {
			bRows, bCols = g.K, g.N
		}
		aRows, aCols := g.K, g.M
		if g.TransA {
			aRows, aCols = g.M, g.K
		}
		layouts := []struct {
			l              *uintptr
			dt             DataType
			rows, cols, ld int
			stride         int64
		}{
			{&lb, g.BType, bRows, bCols, bRows, g.StrideB},
			{&la, g.AType, aRows, aCols, aRows, g.StrideA},
			{&lc, g.CType, g.N, g.M, g.N, g.StrideC},
		}
		for _, l := range layouts {
			if err := b.call("cublasLtMatrixLayoutCreate", b.fn.layoutCreate, uintptr(unsafe.Pointer(l.l)), uintptr(l.dt), uintptr(l.rows), uintptr(l.cols), uintptr(l.ld)); err != nil {
				return err
			}
			defer func() { _ = b.call("cublasLtMatrixLayoutDestroy", b.fn.layoutDestroy, *l.l) }()
			if batch > 1 {
				n, st := int32(batch), l.stride
				if err := b.call("cublasLtMatrixLayoutSetAttribute", b.fn.layoutSet, *l.l, layoutBatchCount, uintptr(unsafe.Pointer(&n)), 4); err != nil {
					return err
				}
				if err := b.call("cublasLtMatrixLayoutSetAttribute", b.fn.layoutSet, *l.l, layoutStridedBatch, uintptr(unsafe.Pointer(&st)), 8); err != nil {
					return err
				}
			}
		}
		if err := b.call("cublasLtMatmulPreferenceCreate", b.fn.prefCreate, uintptr(unsafe.Pointer(&pref))); err != nil {
			return err
		}
		defer func() { _ = b.call("cublasLtMatmulPreferenceDestroy", b.fn.prefDestroy, pref) }()
		wsb := uint64(max(wsBytes, 0))
		if err := b.call("cublasLtMatmulPreferenceSetAttribute", b.fn.prefSet, pref, prefMaxWorkspace, uintptr(unsafe.Pointer(&wsb)), 8); err != nil {
			return err
		}
		var res heuristicResult
		var found int32
		if err := b.call("cublasLtMatmulAlgoGetHeuristic", b.fn.heuristic, b.handle, desc, lb, la, lc, lc, pref, 1,
			uintptr(unsafe.Pointer(&res)), uintptr(unsafe.Pointer(&found))); err != nil {
			return err
		}
		if found == 0 {
			return fmt.Errorf("cuda: cublasLtMatmulAlgoGetHeuristic: no algorithm for %+v: %w", g, ErrBLASNotSupported)
		}
		alpha, beta := g.Alpha, g.Beta
		err := b.call("cublasLtMatmul", b.fn.matmul, b.handle, desc,
			uintptr(unsafe.Pointer(&alpha)), uintptr(g.B), lb, uintptr(g.A), la,
			uintptr(unsafe.Pointer(&beta)), uintptr(g.C), lc, uintptr(g.C), lc,
			uintptr(unsafe.Pointer(&res.algo)), uintptr(ws), uintptr(wsb), uintptr(s))
		runtime.KeepAlive(&res)
		return err
	})
}

// Close destroys the handle.
func (b *BLASLt) Close() error {
	return b.ctx.do(func() error { return b.call("cublasLtDestroy", b.fn.destroy, b.handle) })
}

var _ = [1]struct{}{}[unsafe.Sizeof(heuristicResult{})-heuristicResultByteSize]
