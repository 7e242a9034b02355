//go:build amd64 && !purego

package model

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The AVX-512 Winograd transforms and max-pooling, 16 channels per step
// (see conv_winograd.go and conv.go for what they compute; strides are in
// elements, the channel count a multiple of 16).
//
//go:noescape
func winogradInputAVX512(src *float32, rowStride int, pixStride int, dst *float32, xiStride int, groups int)

//go:noescape
func winogradOutputAVX512(m *float32, xiStride int, dst *float32, rowStride int, pixStride int, groups int, bias *float32, res *float32, flags int)

//go:noescape
func maxPoolAVX512(dst *float32, src *float32, rowStride int, pixStride int, rows int, cols int, groups int)

func init() {
	if !cpu.X86.HasAVX512F {
		return
	}
	maxPoolWindow = func(dst, src []float32, rowStride, pixStride, rows, cols int) {
		c := len(dst)
		if c%16 != 0 || rows < 1 || cols < 1 || len(src) < (rows-1)*rowStride+(cols-1)*pixStride+c {
			maxPoolWindowGo(dst, src, rowStride, pixStride, rows, cols)
			return
		}
		maxPoolAVX512(&dst[0], &src[0], rowStride, pixStride, rows, cols, c/16)
	}
	winogradInput = func(src []float32, rowStride, pixStride int, dst []float32, xiStride int) {
		checkWinograd(len(src), 3*rowStride+3*pixStride+xiStride, len(dst), 15*xiStride+xiStride)
		winogradInputAVX512(&src[0], rowStride, pixStride, &dst[0], xiStride, xiStride/16)
	}
	winogradOutput = func(m []float32, xiStride int, dst []float32, rowStride, pixStride int, bias, res []float32, flags int) {
		checkWinograd(len(m), 15*xiStride+xiStride, len(dst), rowStride+pixStride+xiStride)
		var resp *float32
		if flags&gemmResidual != 0 {
			checkWinograd(len(res), rowStride+pixStride+xiStride, len(bias), xiStride)
			resp = unsafe.SliceData(res)
		}
		winogradOutputAVX512(&m[0], xiStride, &dst[0], rowStride, pixStride, xiStride/16, unsafe.SliceData(bias), resp, flags)
	}
}
