package data

import (
	"image"
	"math"
)

// Pillow's Image.resize(size, Image.BILINEAR) for 8-bit RGB images, which is
// what torchvision's transforms.Resize applies to a PIL image (Pillow 9.4,
// src/libImaging/Resample.c). It is a separable convolution with a triangle
// filter whose support widens with the downscaling factor (antialiasing):
//
//	scale   = inSize / outSize,  fscale = max(scale, 1),  support = fscale
//	centre  = (o + 0.5)·scale                      for output pixel o
//	window  = [int(centre − support + 0.5), int(centre + support + 0.5)) ∩ [0, inSize)
//	w_i     = max(0, 1 − |(i − centre + 0.5)/fscale|),  normalised to sum 1
//	k_i     = round-half-away(w_i · 2²²)           (22-bit fixed point)
//	out     = clip((2²¹ + Σ k_i·in_i) >> 22, 0, 255)
//
// The horizontal pass runs first and is stored as uint8; the vertical pass
// reads it. A pass whose size does not change is skipped. Every output pixel
// depends only on its own row and column weights, so resizing and then
// cropping equals computing just the cropped pixels, which is what
// resizeCrop does.

const resamplePrecision = 22 // Pillow's PRECISION_BITS: 32 − 8 − 2

// resampleAxis holds the fixed-point weights of one axis for a run of
// output positions.
type resampleAxis struct {
	start  []int   // first input index of each output position's window
	count  []int   // window length
	ksize  int     // stride of weights
	weight []int32 // weights, ksize per output position
}

// bilinearAxis computes Pillow's BILINEAR weights for resizing inSize
// samples to outSize, for output positions first … first+n-1.
func bilinearAxis(inSize, outSize, first, n int) resampleAxis {
	scale := float64(inSize) / float64(outSize)
	fscale := max(scale, 1)
	support := fscale // the triangle filter's support is 1
	ksize := int(math.Ceil(support))*2 + 1
	ax := resampleAxis{
		start:  make([]int, n),
		count:  make([]int, n),
		ksize:  ksize,
		weight: make([]int32, n*ksize),
	}
	w := make([]float64, ksize)
	inv := 1 / fscale
	for j := range n {
		// float64(…) around products keeps the compiler from fusing them
		// into FMAs, which Pillow's C (built for baseline x86-64) does not.
		centre := float64((float64(first+j) + 0.5) * scale)
		lo := max(int(centre-support+0.5), 0)
		hi := min(int(centre+support+0.5), inSize)
		sum := 0.0
		for i := lo; i < hi; i++ {
			x := float64((float64(i) - centre + 0.5) * inv)
			if x < 0 {
				x = -x
			}
			v := 0.0
			if x < 1 {
				v = 1 - x
			}
			w[i-lo] = v
			sum += v
		}
		k := ax.weight[j*ksize : (j+1)*ksize]
		for i := range hi - lo {
			v := w[i]
			if sum != 0 {
				v /= sum
			}
			// Pillow rounds half away from zero; weights are never negative.
			k[i] = int32(float64(v*(1<<resamplePrecision)) + 0.5)
		}
		ax.start[j], ax.count[j] = lo, hi-lo
	}
	return ax
}

// clip8 turns a fixed-point sum into a byte as Pillow's clip8 does.
func clip8(v int32) uint8 {
	return uint8(min(max(v>>resamplePrecision, 0), 255))
}

// resampleScratch holds resizeCrop's buffers between calls.
type resampleScratch struct {
	tmp []uint8 // horizontally resampled rows
	acc []int32 // one row of vertical sums
}

// resizeCrop resizes img (bounds starting at (0, 0)) to outW×outH with
// Pillow's BILINEAR filter and returns the cropW×cropH region whose top-left
// corner is (left, top) in the resized image, as packed RGB (3 bytes a
// pixel, rows of 3·cropW bytes) in dst, which it returns, grown if needed.
func resizeCrop(dst []uint8, sc *resampleScratch, img *image.NRGBA, outW, outH, left, top, cropW, cropH int) []uint8 {
	inW, inH := img.Rect.Dx(), img.Rect.Dy()
	stride := 3 * cropW
	dst = grow(dst, stride*cropH)

	// The input rows the vertical pass reads.
	var vert resampleAxis
	rowLo, rowHi := top, top+cropH
	needV := outH != inH
	if needV {
		vert = bilinearAxis(inH, outH, top, cropH)
		rowLo = vert.start[0]
		rowHi = vert.start[cropH-1] + vert.count[cropH-1]
	}

	// Horizontal pass over those rows and the cropped columns, into tmp
	// (straight into dst when there is no vertical pass).
	rows := rowHi - rowLo
	tmp := dst
	if needV {
		sc.tmp = grow(sc.tmp, stride*rows)
		tmp = sc.tmp
	}
	if outW != inW {
		horiz := bilinearAxis(inW, outW, left, cropW)
		for r := range rows {
			resampleRow(tmp[stride*r:stride*(r+1)], img.Pix[(rowLo+r)*img.Stride:], &horiz)
		}
	} else {
		for r := range rows {
			src := img.Pix[(rowLo+r)*img.Stride+4*left:]
			out := tmp[stride*r : stride*(r+1)]
			for j := 0; j < len(out); j += 3 {
				p := src[4*j/3 : 4*j/3+3]
				out[j], out[j+1], out[j+2] = p[0], p[1], p[2]
			}
		}
	}
	if !needV {
		return dst
	}

	// Vertical pass: each output row is a weighted sum of tmp's rows.
	sc.acc = grow(sc.acc, stride)
	acc := sc.acc
	for r := range cropH {
		for c := range acc {
			acc[c] = 1 << (resamplePrecision - 1)
		}
		first := vert.start[r] - rowLo
		for i, kv := range vert.weight[r*vert.ksize:][:vert.count[r]] {
			src := tmp[(first+i)*stride:][:len(acc)]
			for c, v := range src {
				acc[c] += int32(v) * kv
			}
		}
		out := dst[r*stride:][:len(acc)]
		for c, v := range acc {
			out[c] = clip8(v)
		}
	}
	return dst
}

// resampleRow computes one row of horizontally resampled RGB from a row of
// NRGBA pixels.
func resampleRow(out, src []uint8, ax *resampleAxis) {
	for j := 0; j < len(out)/3; j++ {
		k := ax.weight[j*ax.ksize:][:ax.count[j]]
		px := src[4*ax.start[j]:][:4*len(k)]
		s0, s1, s2 := int32(1<<(resamplePrecision-1)), int32(1<<(resamplePrecision-1)), int32(1<<(resamplePrecision-1))
		for i, kv := range k {
			p := px[4*i : 4*i+3]
			s0 += int32(p[0]) * kv
			s1 += int32(p[1]) * kv
			s2 += int32(p[2]) * kv
		}
		o := out[3*j : 3*j+3]
		o[0], o[1], o[2] = clip8(s0), clip8(s1), clip8(s2)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
