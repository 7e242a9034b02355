//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 kernels of the fused decoder (decoder_fused_amd64.go). Each
// handles n elements, a multiple of 16; the Go wrappers do the rest.

// func reluDotAVX512(u, h, w *float32, n int) float32
TEXT ·reluDotAVX512(SB), NOSPLIT, $0-36
	MOVQ   u+0(FP), SI
	MOVQ   h+8(FP), DI
	MOVQ   w+16(FP), DX
	MOVQ   n+24(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1

rdloop:
	CMPQ        CX, $16
	JL          rddone
	VMOVUPS     (SI), Z2
	VADDPS      (DI), Z2, Z2
	VMAXPS      Z1, Z2, Z2
	VFMADD231PS (DX), Z2, Z0
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, DX
	SUBQ        $16, CX
	JMP         rdloop

rddone:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+32(FP)
	RET

// func reluBackAVX512(u, h, w *float32, de float32, du, dh, dw *float32, n int)
TEXT ·reluBackAVX512(SB), NOSPLIT, $0-64
	MOVQ         u+0(FP), SI
	MOVQ         h+8(FP), DI
	MOVQ         w+16(FP), DX
	VBROADCASTSS de+24(FP), Z3
	MOVQ         du+32(FP), R8
	MOVQ         dh+40(FP), R9
	MOVQ         dw+48(FP), R10
	MOVQ         n+56(FP), CX
	VPXORD       Z1, Z1, Z1

rbloop:
	CMPQ        CX, $16
	JL          rbdone
	VMOVUPS     (SI), Z2
	VADDPS      (DI), Z2, Z2
	VCMPPS      $14, Z1, Z2, K1
	VMAXPS      Z1, Z2, Z4
	VMULPS.Z    (DX), Z3, K1, Z5
	VADDPS      (R8), Z5, Z6
	VMOVUPS     Z6, (R8)
	VADDPS      (R9), Z5, Z7
	VMOVUPS     Z7, (R9)
	VFMADD213PS (R10), Z3, Z4
	VMOVUPS     Z4, (R10)
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, DX
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	SUBQ        $16, CX
	JMP         rbloop

rbdone:
	VZEROUPPER
	RET

// func dotAVX512(x, y *float32, n int) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1

dloop:
	CMPQ        CX, $32
	JL          dtail
	VMOVUPS     (SI), Z2
	VFMADD231PS (DI), Z2, Z0
	VMOVUPS     64(SI), Z3
	VFMADD231PS 64(DI), Z3, Z1
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         dloop

dtail:
	CMPQ        CX, $16
	JL          ddone
	VMOVUPS     (SI), Z2
	VFMADD231PS (DI), Z2, Z0

ddone:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func axpyAVX512(y, x *float32, a float32, n int)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-32
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	VBROADCASTSS a+16(FP), Z3
	MOVQ         n+24(FP), CX

aloop:
	CMPQ        CX, $16
	JL          adone
	VMOVUPS     (DI), Z0
	VFMADD231PS (SI), Z3, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         aloop

adone:
	VZEROUPPER
	RET

// func expShiftAVX512(dst, x *float32, m float32, n int) float32
// dst[i] = exp(x[i] − m) for n (a multiple of 16) elements, x[i] ≤ m;
// returns their sum. Cephes' expf: 2^k·p(r) with r = y − k·ln 2 in two
// parts, k = round(y·log2 e), a degree-5 polynomial, VSCALEFPS for 2^k.
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-36
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	VBROADCASTSS m+16(FP), Z15
	MOVQ         n+24(FP), CX
	MOVL         $0x3fb8aa3b, AX
	VPBROADCASTD AX, Z14        // log2 e
	MOVL         $0x3f318000, AX
	VPBROADCASTD AX, Z13        // C1
	MOVL         $0xb95e8083, AX
	VPBROADCASTD AX, Z12        // C2
	MOVL         $0x39506967, AX
	VPBROADCASTD AX, Z11        // p0
	MOVL         $0x3ab743ce, AX
	VPBROADCASTD AX, Z10        // p1
	MOVL         $0x3c088908, AX
	VPBROADCASTD AX, Z9         // p2
	MOVL         $0x3d2aa9c1, AX
	VPBROADCASTD AX, Z8         // p3
	MOVL         $0x3e2aaaaa, AX
	VPBROADCASTD AX, Z7         // p4
	MOVL         $0x3f000000, AX
	VPBROADCASTD AX, Z6         // p5
	MOVL         $0xc2aeac50, AX
	VPBROADCASTD AX, Z5         // lowest argument
	MOVL         $0x3f800000, AX
	VPBROADCASTD AX, Z4         // 1
	VPXORD       Z0, Z0, Z0     // sum

eloop:
	CMPQ          CX, $16
	JL            edone
	VMOVUPS       (SI), Z1
	VSUBPS        Z15, Z1, Z1   // y = x − m
	VMAXPS        Z5, Z1, Z1
	VMULPS        Z14, Z1, Z2
	VRNDSCALEPS   $0, Z2, Z2    // k = round(y·log2 e)
	VFNMADD231PS  Z13, Z2, Z1   // r = y − k·C1
	VFNMADD231PS  Z12, Z2, Z1   // r −= k·C2
	VMOVAPS       Z11, Z3
	VFMADD213PS   Z10, Z1, Z3   // p = p0·r + p1
	VFMADD213PS   Z9, Z1, Z3
	VFMADD213PS   Z8, Z1, Z3
	VFMADD213PS   Z7, Z1, Z3
	VFMADD213PS   Z6, Z1, Z3    // … + p5
	VMULPS        Z1, Z1, Z16   // r²
	VFMADD213PS   Z1, Z16, Z3   // p·r² + r
	VADDPS        Z4, Z3, Z3    // + 1
	VSCALEFPS     Z2, Z3, Z3    // · 2^k
	VMOVUPS       Z3, (DI)
	VADDPS        Z3, Z0, Z0
	ADDQ          $64, SI
	ADDQ          $64, DI
	SUBQ          $16, CX
	JMP           eloop

edone:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+32(FP)
	RET
