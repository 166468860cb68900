#include "textflag.h"

// The AVX2 twins of swiglu32 and swigluBackward32 (sigmoid.go) and of
// expSum (crossentropy.go): the same
// float32 operations in the same order, eight lanes at a time, so that both
// give the same bits. Constants from ·sigmoidConsts (see there): Y15 = 1,
// Y14 = log2 e, Y13 = ln2 high, Y12 = ln2 low, Y11 = lowest and Y10 =
// highest argument, Y9 = 127, Y8 = 0; the polynomial's coefficients are
// broadcast from memory into Y7 as they are needed.

#define SIGMOID_CONSTS \
	VBROADCASTSS ·sigmoidConsts+0(SB), Y14; \
	VBROADCASTSS ·sigmoidConsts+4(SB), Y13; \
	VBROADCASTSS ·sigmoidConsts+8(SB), Y12; \
	VBROADCASTSS ·sigmoidConsts+12(SB), Y11; \
	VBROADCASTSS ·sigmoidConsts+16(SB), Y10; \
	VBROADCASTSS ·sigmoidConsts+20(SB), Y15; \
	VBROADCASTSS ·sigmoidConsts+24(SB), Y9; \
	VXORPS       Y8, Y8, Y8

// One Horner step of expf32's polynomial: Y3 = Y3·r + c, r in Y1, c the
// constant at byte offset off of ·sigmoidConsts.
#define HORNER8(off) \
	VMULPS       Y1, Y3, Y3; \
	VBROADCASTSS ·sigmoidConsts+off(SB), Y7; \
	VADDPS       Y7, Y3, Y3

// Y1 = e^Y1, as expf32; clobbers Y2, Y3, Y7.
#define EXP8 \
	VMAXPS       Y11, Y1, Y1; \
	VMINPS       Y10, Y1, Y1; \
	VMULPS       Y14, Y1, Y2; \
	VROUNDPS     $0, Y2, Y2; \
	VMULPS       Y13, Y2, Y3; \
	VSUBPS       Y3, Y1, Y1; \
	VMULPS       Y12, Y2, Y3; \
	VSUBPS       Y3, Y1, Y1; \
	VBROADCASTSS ·sigmoidConsts+28(SB), Y3; \
	HORNER8(32); \
	HORNER8(36); \
	HORNER8(40); \
	HORNER8(44); \
	HORNER8(48); \
	VMULPS       Y1, Y1, Y7; \
	VMULPS       Y7, Y3, Y3; \
	VADDPS       Y1, Y3, Y3; \
	VADDPS       Y15, Y3, Y3; \
	VADDPS       Y9, Y2, Y2; \
	VCVTPS2DQ    Y2, Y2; \
	VPSLLD       $23, Y2, Y2; \
	VMULPS       Y2, Y3, Y1

// Y1 = σ(Y0) = 1 / (1 + e^−Y0), as sigmoid32; clobbers Y2, Y3, Y7.
#define SIGMOID8 \
	VSUBPS Y0, Y8, Y1; \
	EXP8; \
	VADDPS Y15, Y1, Y1; \
	VDIVPS Y1, Y15, Y1

// func swiglu8asm(y, gate, up *float32, n int)
// y = (g·σ(g))·up over n (a multiple of 8, > 0) elements.
TEXT ·swiglu8asm(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	SIGMOID_CONSTS

swloop:
	VMOVUPS (SI), Y0
	SIGMOID8
	VMULPS  Y1, Y0, Y1
	VMULPS  (DX), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     swloop
	VZEROUPPER
	RET

// func swigluBackward8asm(dgate, dup, dy, gate, up *float32, n int)
// dup = dy·(g·σ), dgate = (dy·up)·((g·σ)·(1 − σ) + σ) over n (a multiple
// of 8, > 0) elements.
TEXT ·swigluBackward8asm(SB), NOSPLIT, $0-48
	MOVQ dgate+0(FP), R8
	MOVQ dup+8(FP), R9
	MOVQ dy+16(FP), R10
	MOVQ gate+24(FP), SI
	MOVQ up+32(FP), DX
	MOVQ n+40(FP), CX
	SHRQ $3, CX
	SIGMOID_CONSTS

sbloop:
	VMOVUPS (SI), Y0
	SIGMOID8
	VMULPS  Y1, Y0, Y2
	VMOVUPS (R10), Y3
	VMULPS  Y2, Y3, Y4
	VMOVUPS Y4, (R9)
	VSUBPS  Y1, Y15, Y4
	VMULPS  Y4, Y2, Y4
	VADDPS  Y1, Y4, Y4
	VMULPS  (DX), Y3, Y5
	VMULPS  Y4, Y5, Y5
	VMOVUPS Y5, (R8)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, R8
	ADDQ    $32, R9
	ADDQ    $32, R10
	DECQ    CX
	JNZ     sbloop
	VZEROUPPER
	RET

// func expSum8asm(x *float32, n int, mx float32, out *float32, lanes *[8]float64)
// lanes[j] = Σ e^(x[i] − mx) over i ≡ j (mod 8), ascending, in float64
// (Y4: lanes 0–3, Y5: lanes 4–7), over n (a multiple of 8, > 0)
// elements; out, if not nil, gets each e.
TEXT ·expSum8asm(SB), NOSPLIT, $0-40
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	SHRQ         $3, CX
	MOVQ         out+24(FP), DI
	MOVQ         lanes+32(FP), R8
	SIGMOID_CONSTS
	VBROADCASTSS mx+16(FP), Y6
	VXORPD       Y4, Y4, Y4
	VXORPD       Y5, Y5, Y5

esloop:
	VMOVUPS (SI), Y1
	VSUBPS  Y6, Y1, Y1
	EXP8
	TESTQ   DI, DI
	JZ      esnostore
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI

esnostore:
	VCVTPS2PD    X1, Y2
	VADDPD       Y2, Y4, Y4
	VEXTRACTF128 $1, Y1, X3
	VCVTPS2PD    X3, Y3
	VADDPD       Y3, Y5, Y5
	ADDQ         $32, SI
	DECQ         CX
	JNZ          esloop
	VMOVUPD      Y4, (R8)
	VMOVUPD      Y5, 32(R8)
	VZEROUPPER
	RET
