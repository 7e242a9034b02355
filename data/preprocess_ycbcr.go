package data

import (
	"image"
)

// JPEG colour conversion as libjpeg-turbo does it, which is what Pillow (and
// so torchvision's loader) gets from a JPEG file.
//
// Go's image/jpeg returns the decoded planes with the chroma planes still
// subsampled; libjpeg-turbo's default ("fancy") upsampling interpolates them
// with a triangle filter (jdsample.c: h2v1, h2v2 and h1v2 fancy upsampling;
// other ratios replicate samples) and then converts with the fixed-point
// tables of jdcolor.c. Doing both here makes Go's output equal libjpeg's up
// to the two decoders' inverse DCTs, which differ by one level on about 2%
// of samples (Go uses the MPEG reference IDCT, libjpeg its "islow" one).

// yccTables are libjpeg's YCbCr→RGB tables: 16-bit fixed point, rounded.
var yccTables = func() (t struct{ crR, cbB, crG, cbG [256]int32 }) {
	const scaleBits = 16
	const half = 1 << (scaleBits - 1)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		t.crR[i] = (fix(1.40200)*x + half) >> scaleBits
		t.cbB[i] = (fix(1.77200)*x + half) >> scaleBits
		t.crG[i] = -fix(0.71414) * x
		t.cbG[i] = -fix(0.34414)*x + half
	}
	return t
}()

func clampByte(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
}

// yccToRGB converts one sample as libjpeg's ycc_rgb_convert does.
func yccToRGB(y, cb, cr uint8) (r, g, b uint8) {
	t := &yccTables
	yy := int32(y)
	return clampByte(yy + t.crR[cr]),
		clampByte(yy + (t.cbG[cb]+t.crG[cr])>>16),
		clampByte(yy + t.cbB[cb])
}

// ycbcrToNRGBA converts a decoded JPEG to opaque RGB with libjpeg-turbo's
// upsampling and colour conversion.
func ycbcrToNRGBA(m *image.YCbCr) *image.NRGBA {
	b := m.Rect
	out := image.NewNRGBA(b)
	// hs, vs: luma samples per chroma sample, horizontally and vertically.
	hs, vs := 1, 1
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		hs = 2
	case image.YCbCrSubsampleRatio420:
		hs, vs = 2, 2
	case image.YCbCrSubsampleRatio440:
		vs = 2
	case image.YCbCrSubsampleRatio411:
		hs = 4
	case image.YCbCrSubsampleRatio410:
		hs, vs = 4, 2
	}
	// libjpeg interpolates only 2:1 ratios; others replicate samples.
	fancyH := hs == 2
	fancyV := vs == 2 && hs <= 2
	// Chroma sample c covers luma columns hs·c … hs·c+hs-1 (absolute
	// coordinates). These are the chroma rows and columns that cover the
	// image; libjpeg replicates the last of them past the edge (Go's planes
	// hold the JPEG's padding blocks there instead).
	cx0, cx1 := floorDiv(b.Min.X, hs), floorDiv(b.Max.X-1, hs)
	cy0, cy1 := floorDiv(b.Min.Y, vs), floorDiv(b.Max.Y-1, vs)
	ncx := cx1 - cx0 + 1
	chromaRow := func(plane []uint8, cy int) []uint8 {
		cy = min(max(cy, cy0), cy1)
		return plane[(cy-cy0)*m.CStride:][:ncx]
	}
	// sums hold, per chroma column, the vertically interpolated sample:
	// 3·nearer + further row when fancyV, else the sample itself.
	sums := make([]int32, ncx)
	var up [2][]uint8 // the upsampled Cb and Cr of one output row
	up[0], up[1] = make([]uint8, b.Dx()), make([]uint8, b.Dx())
	planes := [2][]uint8{m.Cb, m.Cr}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		cy := floorDiv(y, vs)
		upper := y-cy*vs == 0 // the upper output row of a pair
		for p, plane := range planes {
			near := chromaRow(plane, cy)
			if fancyV {
				far := chromaRow(plane, cy+1)
				if upper {
					far = chromaRow(plane, cy-1)
				}
				for i, v := range near {
					sums[i] = 3*int32(v) + int32(far[i])
				}
			} else {
				for i, v := range near {
					sums[i] = int32(v)
				}
			}
			upsampleChromaRow(up[p], sums, b.Min.X-cx0*hs, hs, fancyH, fancyV, upper)
		}
		yRow := m.Y[(y-b.Min.Y)*m.YStride:][:b.Dx()]
		o := out.Pix[(y-b.Min.Y)*out.Stride:][:4*b.Dx()]
		cb, cr := up[0][:len(yRow)], up[1][:len(yRow)]
		for i, yv := range yRow {
			p := o[4*i : 4*i+4]
			p[0], p[1], p[2] = yccToRGB(yv, cb[i], cr[i])
			p[3] = 255
		}
	}
	return out
}

// upsampleChromaRow fills dst, one output row of a chroma plane, from sums
// (see ycbcrToNRGBA); dst[i] lies at column phase+i of the chroma samples'
// grid, whose sample c covers columns hs·c … hs·c+hs-1.
func upsampleChromaRow(dst []uint8, sums []int32, phase, hs int, fancyH, fancyV, upper bool) {
	last := len(sums) - 1
	switch {
	case fancyH:
		// Triangle filter: the column pair of chroma sample c takes 3/4 of
		// c and 1/4 of its left (even column) or right (odd column)
		// neighbour, the edge sample standing in for the one past the edge.
		// Rounding biases are libjpeg's: 8 and 7 after h2v2's two steps
		// (sums scaled by 16), 1 and 2 for h2v1 (by 4).
		shift, biasEven, biasOdd := int32(2), int32(1), int32(2)
		if fancyV {
			shift, biasEven, biasOdd = 4, 8, 7
		}
		for i := range dst {
			x := phase + i
			c := x >> 1
			if x&1 == 0 {
				dst[i] = uint8((3*sums[c] + sums[max(c-1, 0)] + biasEven) >> shift)
			} else {
				dst[i] = uint8((3*sums[c] + sums[min(c+1, last)] + biasOdd) >> shift)
			}
		}
	case fancyV:
		// h1v2: bias 1 for the upper row of a pair, 2 for the lower.
		bias := int32(2)
		if upper {
			bias = 1
		}
		for i := range dst {
			dst[i] = uint8((sums[phase+i] + bias) >> 2)
		}
	default:
		for i := range dst {
			dst[i] = uint8(sums[(phase+i)/hs])
		}
	}
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
