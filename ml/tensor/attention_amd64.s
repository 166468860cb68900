#include "textflag.h"

// Constants of the vectorised expf (see expNeg), each replicated 8 times.
DATA expc<>+0(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+8(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+16(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+24(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+32(SB)/8, $0x3f3180003f318000
DATA expc<>+40(SB)/8, $0x3f3180003f318000
DATA expc<>+48(SB)/8, $0x3f3180003f318000
DATA expc<>+56(SB)/8, $0x3f3180003f318000
DATA expc<>+64(SB)/8, $0xb95e8083b95e8083
DATA expc<>+72(SB)/8, $0xb95e8083b95e8083
DATA expc<>+80(SB)/8, $0xb95e8083b95e8083
DATA expc<>+88(SB)/8, $0xb95e8083b95e8083
DATA expc<>+96(SB)/8, $0x3950696739506967
DATA expc<>+104(SB)/8, $0x3950696739506967
DATA expc<>+112(SB)/8, $0x3950696739506967
DATA expc<>+120(SB)/8, $0x3950696739506967
DATA expc<>+128(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+136(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+144(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+152(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+160(SB)/8, $0x3c0889083c088908
DATA expc<>+168(SB)/8, $0x3c0889083c088908
DATA expc<>+176(SB)/8, $0x3c0889083c088908
DATA expc<>+184(SB)/8, $0x3c0889083c088908
DATA expc<>+192(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+200(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+208(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+216(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+224(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+232(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+240(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+248(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+256(SB)/8, $0x3f0000003f000000
DATA expc<>+264(SB)/8, $0x3f0000003f000000
DATA expc<>+272(SB)/8, $0x3f0000003f000000
DATA expc<>+280(SB)/8, $0x3f0000003f000000
DATA expc<>+288(SB)/8, $0x3f8000003f800000
DATA expc<>+296(SB)/8, $0x3f8000003f800000
DATA expc<>+304(SB)/8, $0x3f8000003f800000
DATA expc<>+312(SB)/8, $0x3f8000003f800000
DATA expc<>+320(SB)/8, $0xc2ae999ac2ae999a
DATA expc<>+328(SB)/8, $0xc2ae999ac2ae999a
DATA expc<>+336(SB)/8, $0xc2ae999ac2ae999a
DATA expc<>+344(SB)/8, $0xc2ae999ac2ae999a
DATA expc<>+352(SB)/8, $0x0000007f0000007f
DATA expc<>+360(SB)/8, $0x0000007f0000007f
DATA expc<>+368(SB)/8, $0x0000007f0000007f
DATA expc<>+376(SB)/8, $0x0000007f0000007f
GLOBL expc<>(SB), RODATA|NOPTR, $384

// func expSub8(x *float32, n int, m, scale float32) float64
// x[i] = exp((x[i]-m)*scale) for n (a multiple of 8) elements, x[i] <= m,
// returning their sum accumulated in float64 (two 4-lane accumulators).
TEXT ·expSub8(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y0
	VBROADCASTSS scale+20(FP), Y9
	VMOVUPS      expc<>+320(SB), Y10
	VXORPD       Y12, Y12, Y12
	VXORPD       Y13, Y13, Y13
	SHRQ         $3, CX
	JZ           expdone

exploop:
	VMOVUPS      (SI), Y1
	VSUBPS       Y0, Y1, Y1
	VMULPS       Y9, Y1, Y1
	VMAXPS       Y1, Y10, Y1 // max(lo, x): a NaN x stays NaN
	VMULPS       expc<>+0(SB), Y1, Y2
	VROUNDPS     $0, Y2, Y2
	VMOVAPS      Y1, Y3
	VFNMADD231PS expc<>+32(SB), Y2, Y3
	VFNMADD231PS expc<>+64(SB), Y2, Y3
	VMOVUPS      expc<>+96(SB), Y4
	VFMADD213PS  expc<>+128(SB), Y3, Y4
	VFMADD213PS  expc<>+160(SB), Y3, Y4
	VFMADD213PS  expc<>+192(SB), Y3, Y4
	VFMADD213PS  expc<>+224(SB), Y3, Y4
	VFMADD213PS  expc<>+256(SB), Y3, Y4
	VMULPS       Y3, Y3, Y5
	VFMADD213PS  Y3, Y5, Y4
	VADDPS       expc<>+288(SB), Y4, Y4
	VCVTPS2DQ    Y2, Y6
	VPADDD       expc<>+352(SB), Y6, Y6
	VPSLLD       $23, Y6, Y6
	VMULPS       Y6, Y4, Y4
	VMOVUPS      Y4, (SI)
	VCVTPS2PD    X4, Y7
	VADDPD       Y7, Y12, Y12
	VEXTRACTF128 $1, Y4, X8
	VCVTPS2PD    X8, Y8
	VADDPD       Y8, Y13, Y13
	ADDQ         $32, SI
	DECQ         CX
	JNZ          exploop

expdone:
	VADDPD       Y13, Y12, Y12
	VEXTRACTF128 $1, Y12, X13
	VADDPD       X13, X12, X12
	VHADDPD      X12, X12, X12
	MOVSD        X12, ret+24(FP)
	VZEROUPPER
	RET

// func max8(x *float32, n int) float32
// The maximum of n (a positive multiple of 8) elements.
TEXT ·max8(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ    $32, SI
	SHRQ    $3, CX
	DECQ    CX
	JZ      maxreduce

maxloop:
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNZ    maxloop

maxreduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	MOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// func scale8(x *float32, n int, s float32)
// x[i] *= s for n (a multiple of 8) elements.
TEXT ·scale8(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y0
	SHRQ         $3, CX
	JZ           scaledone

scaleloop:
	VMULPS  (SI), Y0, Y1
	VMOVUPS Y1, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     scaleloop

scaledone:
	VZEROUPPER
	RET

// func dsoftmax8(d, p *float32, n int, c, s float32)
// d[i] = s*(p[i]*(d[i]-c)) for n (a multiple of 8) elements.
TEXT ·dsoftmax8(SB), NOSPLIT, $0-32
	MOVQ         d+0(FP), DI
	MOVQ         p+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS c+24(FP), Y0
	VBROADCASTSS s+28(FP), Y1
	SHRQ         $3, CX
	JZ           dsdone

dsloop:
	VMOVUPS (DI), Y2
	VSUBPS  Y0, Y2, Y2
	VMULPS  (SI), Y2, Y2
	VMULPS  Y1, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     dsloop

dsdone:
	VZEROUPPER
	RET

// func kern6x16c(kc int, a, b, c *float32, ldc int, acc bool)
// kern6x16 that adds into (acc) or overwrites a 6×16 block of c whose rows
// are ldc elements apart: c[i,j] (+)= Σ_p a[p,i] b[p,j], p ascending.
TEXT ·kern6x16c(SB), NOSPLIT, $0-41
	MOVQ    kc+0(FP), CX
	MOVQ    a+8(FP), SI
	MOVQ    b+16(FP), DI
	MOVQ    c+24(FP), DX
	MOVQ    ldc+32(FP), R8
	SHLQ    $2, R8
	MOVBLZX acc+40(FP), AX
	TESTQ   AX, AX
	JZ      czero
	MOVQ    DX, R9
	VMOVUPS (R9), Y0
	VMOVUPS 32(R9), Y1
	ADDQ    R8, R9
	VMOVUPS (R9), Y2
	VMOVUPS 32(R9), Y3
	ADDQ    R8, R9
	VMOVUPS (R9), Y4
	VMOVUPS 32(R9), Y5
	ADDQ    R8, R9
	VMOVUPS (R9), Y6
	VMOVUPS 32(R9), Y7
	ADDQ    R8, R9
	VMOVUPS (R9), Y8
	VMOVUPS 32(R9), Y9
	ADDQ    R8, R9
	VMOVUPS (R9), Y10
	VMOVUPS 32(R9), Y11
	JMP     cstart

czero:
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

cstart:
	TESTQ CX, CX
	JLE   cstore

cloop:
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
	JNZ          cloop

cstore:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	ADDQ    R8, DX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET

// func axpy8(y, x *float32, n int, a float32)
// y[i] += a*x[i] (fused) for n (a multiple of 8) elements.
TEXT ·axpy8(SB), NOSPLIT, $0-28
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS a+24(FP), Y0
	SHRQ         $3, CX
	JZ           axdone

axloop:
	VMOVUPS     (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         axloop

axdone:
	VZEROUPPER
	RET
