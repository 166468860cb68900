#include "textflag.h"

// func kern6x16(kc int, a, b, tile *float32)
TEXT ·kern6x16(SB), NOSPLIT, $0-32
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ tile+24(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	TESTQ CX, CX
	JLE   store

loop:
	VMOVUPS      (DI), Y12
	VMOVUPS      32(DI), Y13
	VBROADCASTSS (SI), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS 4(SI), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS 8(SI), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS 16(SI), Y14
	VFMADD231PS  Y12, Y14, Y8
	VFMADD231PS  Y13, Y14, Y9
	VBROADCASTSS 20(SI), Y15
	VFMADD231PS  Y12, Y15, Y10
	VFMADD231PS  Y13, Y15, Y11
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VMOVUPS Y8, 256(DX)
	VMOVUPS Y9, 288(DX)
	VMOVUPS Y10, 320(DX)
	VMOVUPS Y11, 352(DX)
	VZEROUPPER
	RET

// func dot8x4(x, y *float32, n int) float32
TEXT ·dot8x4(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ   $5, CX
	JZ     reduce

dotloop:
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         dotloop

reduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	MOVSS        X0, ret+24(FP)
	VZEROUPPER
	RET

// func fmaPeak(n int)
// n iterations of 12 independent 8-lane FMAs (192 flops each): the
// machine's fp32 FMA throughput per core, for BenchmarkPeakFMA.
TEXT ·fmaPeak(SB), NOSPLIT, $0-8
	MOVQ   n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	TESTQ  CX, CX
	JLE    peakdone

peakloop:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ        CX
	JNZ         peakloop

peakdone:
	VZEROUPPER
	RET

// func dotBF16x4(x *float32, y *uint16, n int) float32
// Like dot8x4 with y in bfloat16, widened in registers (zero-extend to 32
// bits, shift left 16).
TEXT ·dotBF16x4(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ   $5, CX
	JZ     bfreduce

bfloop:
	VPMOVZXWD   (DI), Y4
	VPMOVZXWD   16(DI), Y5
	VPMOVZXWD   32(DI), Y6
	VPMOVZXWD   48(DI), Y7
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	VFMADD231PS 96(SI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         bfloop

bfreduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	MOVSS        X0, ret+24(FP)
	VZEROUPPER
	RET

// One k step of the 6×16 product: b row (DI) in Y12/Y13, a column (SI)
// broadcast; off is the step's byte offset into a (4·6 per step) and b
// (4·16 per step) as aoff and boff.
#define GEMM_STEP(aoff, boff) \
	VMOVUPS      boff(DI), Y12; \
	VMOVUPS      boff+32(DI), Y13; \
	VBROADCASTSS aoff(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y0; \
	VFMADD231PS  Y13, Y14, Y1; \
	VBROADCASTSS aoff+4(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y2; \
	VFMADD231PS  Y13, Y15, Y3; \
	VBROADCASTSS aoff+8(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y4; \
	VFMADD231PS  Y13, Y14, Y5; \
	VBROADCASTSS aoff+12(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y6; \
	VFMADD231PS  Y13, Y15, Y7; \
	VBROADCASTSS aoff+16(SI), Y14; \
	VFMADD231PS  Y12, Y14, Y8; \
	VFMADD231PS  Y13, Y14, Y9; \
	VBROADCASTSS aoff+20(SI), Y15; \
	VFMADD231PS  Y12, Y15, Y10; \
	VFMADD231PS  Y13, Y15, Y11

// c row (R9) = alpha·acc (mode 0) or fma(acc, alpha, beta·c) (mode 1);
// alpha in Y14, beta in Y15.
#define GEMM_ROW_SET(lo, hi) \
	VMULPS  lo, Y14, lo; \
	VMULPS  hi, Y14, hi; \
	VMOVUPS lo, (R9); \
	VMOVUPS hi, 32(R9); \
	ADDQ    R8, R9

#define GEMM_ROW_ACC(lo, hi) \
	VMULPS      (R9), Y15, Y12; \
	VMULPS      32(R9), Y15, Y13; \
	VFMADD231PS Y14, lo, Y12; \
	VFMADD231PS Y14, hi, Y13; \
	VMOVUPS     Y12, (R9); \
	VMOVUPS     Y13, 32(R9); \
	ADDQ        R8, R9

// func gemm6x16(kc int, a, b, c *float32, ldc int, alpha, beta float32, mode int)
// The GEMM's micro-kernel: acc[i,j] = Σ_p a[p·6+i]·b[p·16+j] over kc >= 0
// packed steps (p ascending, fused multiply-adds from zero), then the 6×16
// block of c (rows ldc elements apart) is set to alpha·acc (mode 0, c not
// read) or to fma(acc, alpha, beta·c) (mode 1).
TEXT ·gemm6x16(SB), NOSPLIT, $0-56
	MOVQ   kc+0(FP), CX
	MOVQ   a+8(FP), SI
	MOVQ   b+16(FP), DI
	MOVQ   c+24(FP), DX
	MOVQ   ldc+32(FP), R8
	SHLQ   $2, R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	// Touch the c rows now so that the epilogue finds them in cache.
	MOVQ        DX, R9
	PREFETCHT0  (R9)
	PREFETCHT0  60(R9)
	ADDQ        R8, R9
	PREFETCHT0  (R9)
	PREFETCHT0  60(R9)
	ADDQ        R8, R9
	PREFETCHT0  (R9)
	PREFETCHT0  60(R9)
	ADDQ        R8, R9
	PREFETCHT0  (R9)
	PREFETCHT0  60(R9)
	ADDQ        R8, R9
	PREFETCHT0  (R9)
	PREFETCHT0  60(R9)
	ADDQ        R8, R9
	PREFETCHT0  (R9)
	PREFETCHT0  60(R9)

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   gtail

gloop4:
	PREFETCHT0 320(SI)
	GEMM_STEP(0, 0)
	GEMM_STEP(24, 64)
	PREFETCHT0 384(SI)
	GEMM_STEP(48, 128)
	GEMM_STEP(72, 192)
	ADDQ $96, SI
	ADDQ $256, DI
	DECQ BX
	JNZ  gloop4

gtail:
	ANDQ $3, CX
	JZ   gepi

gloop1:
	GEMM_STEP(0, 0)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  gloop1

gepi:
	VBROADCASTSS alpha+40(FP), Y14
	VBROADCASTSS beta+44(FP), Y15
	MOVQ         DX, R9
	MOVQ         mode+48(FP), AX
	TESTQ        AX, AX
	JNZ          gacc
	GEMM_ROW_SET(Y0, Y1)
	GEMM_ROW_SET(Y2, Y3)
	GEMM_ROW_SET(Y4, Y5)
	GEMM_ROW_SET(Y6, Y7)
	GEMM_ROW_SET(Y8, Y9)
	GEMM_ROW_SET(Y10, Y11)
	VZEROUPPER
	RET

gacc:
	GEMM_ROW_ACC(Y0, Y1)
	GEMM_ROW_ACC(Y2, Y3)
	GEMM_ROW_ACC(Y4, Y5)
	GEMM_ROW_ACC(Y6, Y7)
	GEMM_ROW_ACC(Y8, Y9)
	GEMM_ROW_ACC(Y10, Y11)
	VZEROUPPER
	RET

// One k step of the 12×32 product: the step's b rows of the two column
// panels (DI, R11) in Z24/Z25, the a columns of the two row panels (SI,
// R10) broadcast in turn; aoff and boff are the step's byte offsets (4·6
// and 4·16 per step).
#define GEMM512_STEP(aoff, boff) \
	VMOVUPS      boff(DI), Z24; \
	VMOVUPS      boff(R11), Z25; \
	VBROADCASTSS aoff(SI), Z26; \
	VFMADD231PS  Z24, Z26, Z0; \
	VFMADD231PS  Z25, Z26, Z1; \
	VBROADCASTSS aoff+4(SI), Z27; \
	VFMADD231PS  Z24, Z27, Z2; \
	VFMADD231PS  Z25, Z27, Z3; \
	VBROADCASTSS aoff+8(SI), Z28; \
	VFMADD231PS  Z24, Z28, Z4; \
	VFMADD231PS  Z25, Z28, Z5; \
	VBROADCASTSS aoff+12(SI), Z29; \
	VFMADD231PS  Z24, Z29, Z6; \
	VFMADD231PS  Z25, Z29, Z7; \
	VBROADCASTSS aoff+16(SI), Z26; \
	VFMADD231PS  Z24, Z26, Z8; \
	VFMADD231PS  Z25, Z26, Z9; \
	VBROADCASTSS aoff+20(SI), Z27; \
	VFMADD231PS  Z24, Z27, Z10; \
	VFMADD231PS  Z25, Z27, Z11; \
	VBROADCASTSS aoff(R10), Z28; \
	VFMADD231PS  Z24, Z28, Z12; \
	VFMADD231PS  Z25, Z28, Z13; \
	VBROADCASTSS aoff+4(R10), Z29; \
	VFMADD231PS  Z24, Z29, Z14; \
	VFMADD231PS  Z25, Z29, Z15; \
	VBROADCASTSS aoff+8(R10), Z26; \
	VFMADD231PS  Z24, Z26, Z16; \
	VFMADD231PS  Z25, Z26, Z17; \
	VBROADCASTSS aoff+12(R10), Z27; \
	VFMADD231PS  Z24, Z27, Z18; \
	VFMADD231PS  Z25, Z27, Z19; \
	VBROADCASTSS aoff+16(R10), Z28; \
	VFMADD231PS  Z24, Z28, Z20; \
	VFMADD231PS  Z25, Z28, Z21; \
	VBROADCASTSS aoff+20(R10), Z29; \
	VFMADD231PS  Z24, Z29, Z22; \
	VFMADD231PS  Z25, Z29, Z23

// c row (R9, 32 columns) = alpha·acc (mode 0) or fma(acc, alpha, beta·c)
// (mode 1); alpha in Z26, beta in Z27: the arithmetic of GEMM_ROW_SET and
// GEMM_ROW_ACC, so that a 12×32 block equals its four 6×16 blocks.
#define GEMM512_ROW_SET(lo, hi) \
	VMULPS  lo, Z26, lo; \
	VMULPS  hi, Z26, hi; \
	VMOVUPS lo, (R9); \
	VMOVUPS hi, 64(R9); \
	ADDQ    R8, R9

#define GEMM512_ROW_ACC(lo, hi) \
	VMULPS      (R9), Z27, Z24; \
	VMULPS      64(R9), Z27, Z25; \
	VFMADD231PS Z26, lo, Z24; \
	VFMADD231PS Z26, hi, Z25; \
	VMOVUPS     Z24, (R9); \
	VMOVUPS     Z25, 64(R9); \
	ADDQ        R8, R9

#define GEMM512_PREFETCH_ROW \
	PREFETCHT0 (R9); \
	PREFETCHT0 64(R9); \
	PREFETCHT0 124(R9); \
	ADDQ       R8, R9

// func gemm12x32(kc int, a0, a1, b0, b1, c *float32, ldc int, alpha, beta float32, mode int)
// The AVX-512 GEMM micro-kernel: two packed 6-row panels of a (a0: rows
// 0–5, a1: rows 6–11) times two packed 16-column panels of b (b0: columns
// 0–15, b1: 16–31), in 24 accumulators; acc[i,j] = Σ_p a·b over kc >= 0
// steps (p ascending, fused multiply-adds from zero), then the 12×32 block
// of c (rows ldc elements apart) is set as gemm6x16 sets its block. Each
// element gets exactly gemm6x16's operations, in the same order.
TEXT ·gemm12x32(SB), NOSPLIT, $0-72
	MOVQ   kc+0(FP), CX
	MOVQ   a0+8(FP), SI
	MOVQ   a1+16(FP), R10
	MOVQ   b0+24(FP), DI
	MOVQ   b1+32(FP), R11
	MOVQ   c+40(FP), DX
	MOVQ   ldc+48(FP), R8
	SHLQ   $2, R8
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15
	VXORPS Z16, Z16, Z16
	VXORPS Z17, Z17, Z17
	VXORPS Z18, Z18, Z18
	VXORPS Z19, Z19, Z19
	VXORPS Z20, Z20, Z20
	VXORPS Z21, Z21, Z21
	VXORPS Z22, Z22, Z22
	VXORPS Z23, Z23, Z23

	// Touch the c rows now so that the epilogue finds them in cache.
	MOVQ DX, R9
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW
	GEMM512_PREFETCH_ROW

	MOVQ CX, BX
	SHRQ $2, BX
	JZ   ztail

zloop4:
	PREFETCHT0 384(SI)
	PREFETCHT0 384(R10)
	GEMM512_STEP(0, 0)
	GEMM512_STEP(24, 64)
	GEMM512_STEP(48, 128)
	GEMM512_STEP(72, 192)
	ADDQ $96, SI
	ADDQ $96, R10
	ADDQ $256, DI
	ADDQ $256, R11
	DECQ BX
	JNZ  zloop4

ztail:
	ANDQ $3, CX
	JZ   zepi

zloop1:
	GEMM512_STEP(0, 0)
	ADDQ $24, SI
	ADDQ $24, R10
	ADDQ $64, DI
	ADDQ $64, R11
	DECQ CX
	JNZ  zloop1

zepi:
	VBROADCASTSS alpha+56(FP), Z26
	VBROADCASTSS beta+60(FP), Z27
	MOVQ         DX, R9
	MOVQ         mode+64(FP), AX
	TESTQ        AX, AX
	JNZ          zacc
	GEMM512_ROW_SET(Z0, Z1)
	GEMM512_ROW_SET(Z2, Z3)
	GEMM512_ROW_SET(Z4, Z5)
	GEMM512_ROW_SET(Z6, Z7)
	GEMM512_ROW_SET(Z8, Z9)
	GEMM512_ROW_SET(Z10, Z11)
	GEMM512_ROW_SET(Z12, Z13)
	GEMM512_ROW_SET(Z14, Z15)
	GEMM512_ROW_SET(Z16, Z17)
	GEMM512_ROW_SET(Z18, Z19)
	GEMM512_ROW_SET(Z20, Z21)
	GEMM512_ROW_SET(Z22, Z23)
	VZEROUPPER
	RET

zacc:
	GEMM512_ROW_ACC(Z0, Z1)
	GEMM512_ROW_ACC(Z2, Z3)
	GEMM512_ROW_ACC(Z4, Z5)
	GEMM512_ROW_ACC(Z6, Z7)
	GEMM512_ROW_ACC(Z8, Z9)
	GEMM512_ROW_ACC(Z10, Z11)
	GEMM512_ROW_ACC(Z12, Z13)
	GEMM512_ROW_ACC(Z14, Z15)
	GEMM512_ROW_ACC(Z16, Z17)
	GEMM512_ROW_ACC(Z18, Z19)
	GEMM512_ROW_ACC(Z20, Z21)
	GEMM512_ROW_ACC(Z22, Z23)
	VZEROUPPER
	RET

// func fmaPeak512(n int)
// n iterations of 12 independent 16-lane FMAs (384 flops each): the
// machine's AVX-512 fp32 FMA throughput per core, for BenchmarkPeakFMA.
TEXT ·fmaPeak512(SB), NOSPLIT, $0-8
	MOVQ   n+0(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	TESTQ  CX, CX
	JLE    zpeakdone

zpeakloop:
	VFMADD231PS Z12, Z13, Z0
	VFMADD231PS Z12, Z13, Z1
	VFMADD231PS Z12, Z13, Z2
	VFMADD231PS Z12, Z13, Z3
	VFMADD231PS Z12, Z13, Z4
	VFMADD231PS Z12, Z13, Z5
	VFMADD231PS Z12, Z13, Z6
	VFMADD231PS Z12, Z13, Z7
	VFMADD231PS Z12, Z13, Z8
	VFMADD231PS Z12, Z13, Z9
	VFMADD231PS Z12, Z13, Z10
	VFMADD231PS Z12, Z13, Z11
	DECQ        CX
	JNZ         zpeakloop

zpeakdone:
	VZEROUPPER
	RET
