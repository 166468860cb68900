#include "textflag.h"

// x = fmix32(x), eight lanes (C1 in Y10, C2 in Y9); clobbers t.
#define FMIX8(x, t) \
	VPSRLD  $16, x, t; \
	VPXOR   t, x, x; \
	VPMULLD Y10, x, x; \
	VPSRLD  $13, x, t; \
	VPXOR   t, x, x; \
	VPMULLD Y9, x, x; \
	VPSRLD  $16, x, t; \
	VPXOR   t, x, x

// func dropout8asm(d, x *float32, n, i0 int, seedLo, seedHi, thresh uint32, scale float32)
// d[j] = x[j]·scale, or 0 where dropoutBits(seed, i0+j) < thresh, for j in
// [0, n), n a multiple of 8 (> 0): dropoutRange's loop eight lanes at a
// time. Unsigned bits < thresh is a signed compare of both with the sign
// bit flipped.
TEXT ·dropout8asm(SB), NOSPLIT, $0-48
	MOVQ         d+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	SHRQ         $3, CX
	MOVQ         i0+24(FP), AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VPADDD       ·dropoutLanes(SB), Y15, Y15
	VPBROADCASTD ·dropoutConsts+16(SB), Y14
	VPBROADCASTD ·dropoutConsts+0(SB), Y13
	MOVL         seedLo+32(FP), AX
	VMOVD        AX, X12
	VPBROADCASTD X12, Y12
	MOVL         seedHi+36(FP), AX
	VMOVD        AX, X11
	VPBROADCASTD X11, Y11
	VPBROADCASTD ·dropoutConsts+4(SB), Y10
	VPBROADCASTD ·dropoutConsts+8(SB), Y9
	VPBROADCASTD ·dropoutConsts+12(SB), Y8
	MOVL         thresh+40(FP), AX
	VMOVD        AX, X7
	VPBROADCASTD X7, Y7
	VPXOR        Y8, Y7, Y7
	VBROADCASTSS scale+44(FP), Y6

droploop:
	VPMULLD  Y13, Y15, Y0
	VPADDD   Y12, Y0, Y0
	FMIX8(Y0, Y1)
	VPXOR    Y11, Y0, Y0
	FMIX8(Y0, Y1)
	VPXOR    Y8, Y0, Y0
	VPCMPGTD Y0, Y7, Y2
	VMULPS   (SI), Y6, Y3
	VANDNPS  Y3, Y2, Y3
	VMOVUPS  Y3, (DI)
	VPADDD   Y14, Y15, Y15
	ADDQ     $32, SI
	ADDQ     $32, DI
	DECQ     CX
	JNZ      droploop
	VZEROUPPER
	RET
