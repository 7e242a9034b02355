package model

import "fmt"

// Winograd F(2×2, 3×3) for the 3×3 stride-1 convolutions, which carry
// about half of ResNet-50's arithmetic: each 2×2 block ("tile") of output
// pixels is computed from the 4×4 input patch d around it as
//
//	Y = Aᵀ [ Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
//	Bᵀ = [1  0 −1  0]   G = [1    0    0]   Aᵀ = [1  1  1  0]
//	     [0  1  1  0]       [1/2  1/2  1/2]       [0  1 −1 −1]
//	     [0 −1  1  0]       [1/2 −1/2  1/2]
//	     [0  1  0 −1]       [0    0    1]
//
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
// 2016): the sum over input channels becomes 16 independent matrix
// products V_ξ·U_ξ (ξ = 0…15, the 4×4 transform positions) of
// [tiles × cin] by [cin × cout], 16 multiplications per tile where direct
// convolution needs 36: 2.25× less arithmetic. U = G g Gᵀ is computed once
// at load time (in float64); the input transform V = Bᵀ d B and the output
// transform with bias, residual and ReLU run per tile, vectorised over
// channels (conv_winograd_amd64.s, or the Go loops below). All entries of
// Bᵀ and Aᵀ are 0 and ±1, so the transforms add no rounding beyond their
// sums; the error stays at the level of the direct convolution's (see
// TestWinogradMatchesDirect and the PyTorch parity tests).

// winogradWeights is U_ξ for ξ = 0…15, each cin×cout, prepared for the
// engine.
type winogradWeights struct {
	u [16]*weightsMat
}

// useWinograd says whether a convolution runs as Winograd F(2×2, 3×3):
// 3×3, stride 1, padding 1, channels in whole 16-lane vectors.
func useWinograd(cin, cout, k, stride, pad int) bool {
	return k == 3 && stride == 1 && pad == 1 && cin%16 == 0 && cout%16 == 0
}

// newWinogradWeights transforms the folded 3×3 weights w (rows
// (ky·3 + kx)·cin + ci, columns co) into U_ξ = (G g Gᵀ)_ξ.
func newWinogradWeights(engine gemmEngine, w []float32, cin, cout int) *winogradWeights {
	g := [4][3]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	var u [16][]float32
	for x := range u {
		u[x] = make([]float32, cin*cout)
	}
	for ci := range cin {
		for co := range cout {
			var kern [3][3]float64
			for ky := range 3 {
				for kx := range 3 {
					kern[ky][kx] = float64(w[((ky*3+kx)*cin+ci)*cout+co])
				}
			}
			var gk [4][3]float64 // G·g
			for i := range 4 {
				for j := range 3 {
					for k := range 3 {
						gk[i][j] += g[i][k] * kern[k][j]
					}
				}
			}
			for i := range 4 {
				for j := range 4 {
					var v float64 // (G·g·Gᵀ)[i][j]
					for k := range 3 {
						v += gk[i][k] * g[j][k]
					}
					u[4*i+j][ci*cout+co] = float32(v)
				}
			}
		}
	}
	ww := &winogradWeights{}
	for x := range u {
		ww.u[x] = engine.prepare(u[x], cin, cout)
	}
	return ww
}

// forwardWinograd is forward for a Winograd layer. The tiles of all images
// are numbered (n, ty, tx) row-major over the ⌈h/2⌉ × ⌈w/2⌉ tiles of each
// image. V is laid out [tile][ξ][cin], so that V_ξ is a matrix with row
// stride 16·cin, and M = V_ξ·U_ξ likewise [tile][ξ][cout].
//
// Two schedules, chosen by the memory traffic each implies:
//   - by chunks (large maps, few channels: layer1, layer2): each task
//     takes a run of tiles and does input transform, 16 products and
//     output transform on them while V and M sit in its L2; every task
//     streams all 16 U_ξ;
//   - by phases (small maps, many channels: layer3, layer4, where U_ξ is
//     large and the tiles few): input transform of all tiles, then the 16
//     products shared out by ξ (each U_ξ read once), then the output
//     transform.
func (l *convLayer) forwardWinograd(r *runner, src activation, dst, res []float32, relu bool) activation {
	out := activation{data: dst, n: src.n, h: src.h, w: src.w, c: l.cout}
	th, tw := (src.h+1)/2, (src.w+1)/2
	tiles := src.n * th * tw
	cin, cout := l.cin, l.cout
	chunk := winogradTiles(cin, cout)
	if !winogradByPhases(tiles, cin, cout) {
		r.rowTasks(tiles, gemmMR, chunk, func(worker, t0, t1 int) {
			rows := paddedRows(t1 - t0)
			buf := r.scratch(worker, rows*16*(cin+cout)+16*cin+4*cout)
			v, m := buf[:rows*16*cin], buf[rows*16*cin:rows*16*(cin+cout)]
			border := buf[rows*16*(cin+cout):]
			l.winogradIn(src, t0, t1, v, border)
			for x := range 16 {
				l.engine.mul(t1-t0, v[x*cin:], 16*cin, l.wino.u[x], m[x*cout:], 16*cout, &epilogue{})
			}
			l.winogradOut(src, t0, t1, m, dst, res, relu, border)
		})
		return out
	}
	rows := paddedRows(tiles)
	vm := r.sharedScratch(rows * 16 * (cin + cout))
	v, m := vm[:rows*16*cin], vm[rows*16*cin:]
	r.rowTasks(tiles, 1, 4*gemmMR, func(worker, t0, t1 int) {
		l.winogradIn(src, t0, t1, v[t0*16*cin:], r.scratch(worker, 16*cin+4*cout))
	})
	r.rowTasks(16, 1, 1, func(_, x, _ int) {
		l.engine.mul(tiles, v[x*cin:], 16*cin, l.wino.u[x], m[x*cout:], 16*cout, &epilogue{})
	})
	r.rowTasks(tiles, 1, 4*gemmMR, func(worker, t0, t1 int) {
		l.winogradOut(src, t0, t1, m[t0*16*cout:], dst, res, relu, r.scratch(worker, 16*cin+4*cout))
	})
	return out
}

// winogradByPhases chooses the schedule by the floats each moves through
// memory per ξ: the phases write and read V and M once, 2·tiles·(cin +
// cout); the chunks read U_ξ once per chunk, chunks·cin·cout.
func winogradByPhases(tiles, cin, cout int) bool {
	chunk := winogradTiles(cin, cout)
	chunks := (tiles + chunk - 1) / chunk
	return 2*tiles*(cin+cout) < chunks*cin*cout
}

// winogradTiles is how many tiles one task of the chunked schedule takes:
// V and M (16·(cin + cout) floats per tile) should stay in L2 — up to 1 MiB
// of them, at least 4 and at most 8 micro-kernel tiles (measured with the
// AVX-512 kernel: 0.5–2 MiB all did alike; the BLAS engines did no better
// with longer runs).
func winogradTiles(cin, cout int) int {
	t := (1 << 20) / 4 / (16 * (cin + cout)) / gemmMR * gemmMR
	return max(4*gemmMR, min(t, 8*gemmMR))
}

// winogradIn writes V for tiles [t0, t1) to v (tile t0 first). border
// holds at least 16·cin floats for patches that cross the image edge.
func (l *convLayer) winogradIn(src activation, t0, t1 int, v, border []float32) {
	cin := l.cin
	th, tw := (src.h+1)/2, (src.w+1)/2
	patch := border[:16*cin]
	for t := t0; t < t1; t++ {
		n, ty, tx := t/(th*tw), t%(th*tw)/tw, t%tw
		y0, x0 := 2*ty-1, 2*tx-1 // top-left input pixel of the 4×4 patch
		vt := v[(t-t0)*16*cin : (t-t0+1)*16*cin]
		if y0 >= 0 && x0 >= 0 && y0+4 <= src.h && x0+4 <= src.w {
			off := ((n*src.h+y0)*src.w + x0) * cin
			winogradInput(src.data[off:off+(3*src.w+4)*cin], src.w*cin, cin, vt, cin)
			continue
		}
		clear(patch) // zero padding
		for i := range 4 {
			for j := range 4 {
				if y, x := y0+i, x0+j; y >= 0 && y < src.h && x >= 0 && x < src.w {
					off := ((n*src.h+y)*src.w + x) * cin
					copy(patch[(4*i+j)*cin:(4*i+j+1)*cin], src.data[off:off+cin])
				}
			}
		}
		winogradInput(patch, 4*cin, cin, vt, cin)
	}
}

// winogradOut turns M for tiles [t0, t1) (tile t0 first in m) into output
// pixels with bias, residual and ReLU. border holds at least 4·cout floats
// for tiles that stick out of an odd-sized map.
func (l *convLayer) winogradOut(src activation, t0, t1 int, m, dst, res []float32, relu bool, border []float32) {
	cout := l.cout
	th, tw := (src.h+1)/2, (src.w+1)/2
	flags := gemmBias
	if res != nil {
		flags |= gemmResidual
	}
	if relu {
		flags |= gemmReLU
	}
	corner := border[:4*cout]
	for t := t0; t < t1; t++ {
		n, ty, tx := t/(th*tw), t%(th*tw)/tw, t%tw
		y0, x0 := 2*ty, 2*tx
		mt := m[(t-t0)*16*cout : (t-t0+1)*16*cout]
		off := ((n*src.h+y0)*src.w + x0) * cout
		if y0+2 <= src.h && x0+2 <= src.w {
			var rt []float32
			if res != nil {
				rt = res[off : off+(src.w+2)*cout]
			}
			winogradOutput(mt, cout, dst[off:off+(src.w+2)*cout], src.w*cout, cout, l.bias, rt, flags)
			continue
		}
		// A tile on an odd edge: transform into corner, keep what lies
		// inside the map; the residual and ReLU follow here.
		winogradOutput(mt, cout, corner, 2*cout, cout, l.bias, nil, gemmBias)
		for i := range 2 {
			for j := range 2 {
				if y0+i >= src.h || x0+j >= src.w {
					continue
				}
				o := off + (i*src.w+j)*cout
				d := dst[o : o+cout]
				for k, val := range corner[(2*i+j)*cout : (2*i+j+1)*cout] {
					if res != nil {
						val += res[o+k]
					}
					if relu && val < 0 {
						val = 0
					}
					d[k] = val
				}
			}
		}
	}
}

// winogradInput and winogradOutput are the per-tile transforms; the
// AVX-512 versions replace the Go ones where available.
var (
	winogradInput  = winogradInputGo
	winogradOutput = winogradOutputGo
)

// winogradInputGo writes V = Bᵀ d B for one tile, c channels at a time:
// d[i][j] (i, j = 0…3) is the c-vector at src[i·rowStride + j·pixStride],
// V_ξ goes to dst[ξ·xiStride:] for ξ = 4i + j.
func winogradInputGo(src []float32, rowStride, pixStride int, dst []float32, xiStride int) {
	c := xiStride
	checkWinograd(len(src), 3*rowStride+3*pixStride+c, len(dst), 15*xiStride+c)
	for k := range c {
		var d, t [4][4]float32
		for i := range 4 {
			for j := range 4 {
				d[i][j] = src[i*rowStride+j*pixStride+k]
			}
		}
		for j := range 4 {
			t[0][j] = d[0][j] - d[2][j]
			t[1][j] = d[1][j] + d[2][j]
			t[2][j] = d[2][j] - d[1][j]
			t[3][j] = d[1][j] - d[3][j]
		}
		for i := range 4 {
			dst[(4*i+0)*xiStride+k] = t[i][0] - t[i][2]
			dst[(4*i+1)*xiStride+k] = t[i][1] + t[i][2]
			dst[(4*i+2)*xiStride+k] = t[i][2] - t[i][1]
			dst[(4*i+3)*xiStride+k] = t[i][1] - t[i][3]
		}
	}
}

// winogradOutputGo writes the 2×2 outputs Y = Aᵀ M A of one tile, cout =
// xiStride channels: M_ξ at m[ξ·xiStride:], Y[a][b] to dst[a·rowStride +
// b·pixStride:]; flags as the GEMM kernel's (gemmBias, gemmResidual with
// res laid out as dst, gemmReLU).
func winogradOutputGo(m []float32, xiStride int, dst []float32, rowStride, pixStride int, bias, res []float32, flags int) {
	c := xiStride
	checkWinograd(len(m), 15*xiStride+c, len(dst), rowStride+pixStride+c)
	for k := range c {
		var s [2][4]float32
		for j := range 4 {
			s[0][j] = m[j*xiStride+k] + m[(4+j)*xiStride+k] + m[(8+j)*xiStride+k]
			s[1][j] = m[(4+j)*xiStride+k] - m[(8+j)*xiStride+k] - m[(12+j)*xiStride+k]
		}
		for a := range 2 {
			y := [2]float32{s[a][0] + s[a][1] + s[a][2], s[a][1] - s[a][2] - s[a][3]}
			for b := range 2 {
				v := y[b]
				o := a*rowStride + b*pixStride + k
				if flags&gemmBias != 0 {
					v += bias[k]
				}
				if flags&gemmResidual != 0 {
					v += res[o]
				}
				if flags&gemmReLU != 0 && v < 0 {
					v = 0
				}
				dst[o] = v
			}
		}
	}
}

// checkWinograd panics unless the transforms' operands are long enough:
// the assembly versions read and write them unchecked.
func checkWinograd(src, srcNeed, dst, dstNeed int) {
	if src < srcNeed || dst < dstNeed {
		panic(fmt.Sprintf("model: winograd transform: operands of %d and %d floats, need %d and %d", src, dst, srcNeed, dstNeed))
	}
}
