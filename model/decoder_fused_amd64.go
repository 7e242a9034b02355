//go:build amd64 && !purego

package model

import "golang.org/x/sys/cpu"

// AVX-512 versions of the fused decoder's element-wise loops
// (decoder_fused_amd64.s), for n a multiple of 16.

//go:noescape
func reluDotAVX512(u, h, w *float32, n int) float32

//go:noescape
func reluBackAVX512(u, h, w *float32, de float32, du, dh, dw *float32, n int)

//go:noescape
func dotAVX512(x, y *float32, n int) float32

//go:noescape
func axpyAVX512(y, x *float32, a float32, n int)

var haveVecAVX512 = cpu.X86.HasAVX512F

// vecPrefix returns how many leading elements of an n-element loop the
// AVX-512 kernels take (0 without AVX-512).
func vecPrefix(n int) int {
	if !haveVecAVX512 {
		return 0
	}
	return n &^ 15
}

func reluDotVec(u, h, w []float32, m int) float32 { return reluDotAVX512(&u[0], &h[0], &w[0], m) }

func reluBackVec(u, h, w []float32, de float32, du, dh, dw []float32, m int) {
	reluBackAVX512(&u[0], &h[0], &w[0], de, &du[0], &dh[0], &dw[0], m)
}

func dotVec(x, y []float32, m int) float32 { return dotAVX512(&x[0], &y[0], m) }

func axpyVec(y, x []float32, a float32, m int) { axpyAVX512(&y[0], &x[0], a, m) }

//go:noescape
func expShiftAVX512(dst, x *float32, m float32, n int) float32

func expShiftVec(dst, x []float32, m float32, n int) float32 {
	return expShiftAVX512(&dst[0], &x[0], m, n)
}
