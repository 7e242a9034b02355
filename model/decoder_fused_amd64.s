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
