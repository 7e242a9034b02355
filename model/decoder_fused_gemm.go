package model

import (
	"sync"
)

// Matrix products of the fused decoder (decoder_fused.go). The decoder's
// products are small in one dimension (a batch of 32 rows per time step)
// or have a transposed operand (backward passes), so they are run here on
// the encoder's engines with these conventions:
//
//   - Every matrix the products touch is row-major with a leading dimension
//     of pad32(columns) and paddedRows(rows) rows allocated, so the tiled
//     kernel may read and write whole tiles; padding columns of weights and
//     biases are zero, so padding columns of products are zero too.
//   - Weights (constant within a batch) are packed once per Run, both as W
//     and as Wᵀ; batch-dependent right operands (a gradient as the B of a
//     weight-gradient product) are packed when they are complete.
//   - A product is split over two goroutines by rows when it has many,
//     else by column panels: each element of C is summed in the same order
//     whichever way it is split, so results do not depend on the split.

// pad32 rounds n up to a whole number of gemmNR panels.
func pad32(n int) int { return (n + gemmNR - 1) / gemmNR * gemmNR }

// fusedGemm runs products on one engine with the conventions above.
type fusedGemm struct {
	e     gemmEngine
	tiled bool
}

func newFusedGemm() fusedGemm {
	e := selectGemm()
	return fusedGemm{e: e, tiled: isTiled(e)}
}

// pack lays out the k×n matrix src (row stride lds) for the engine, as
// k × pad32(n) with zero padding columns; trans packs srcᵀ instead, src
// being n×k. dst is reused when it has the right size.
func (g fusedGemm) pack(dst *weightsMat, src []float32, lds, k, n int, trans bool) *weightsMat {
	np := pad32(n)
	if dst == nil || cap(dst.data) < k*np {
		dst = &weightsMat{data: make([]float32, k*np)}
	}
	dst.k, dst.n, dst.data = k, np, dst.data[:k*np]
	out := dst.data
	if g.tiled {
		// Panel p holds rows kk = 0…k−1 of columns p·32 … p·32+31.
		parIf(k*np, np/gemmNR, func(p0, p1 int) {
			for p := p0; p < p1; p++ {
				packPanel(out[p*k*gemmNR:(p+1)*k*gemmNR], src, lds, k, n, p*gemmNR, trans)
			}
		})
		return dst
	}
	parIf(k*np, k, func(k0, k1 int) {
		for kk := k0; kk < k1; kk++ {
			row := out[kk*np : (kk+1)*np]
			if trans {
				for j := range n {
					row[j] = src[j*lds+kk]
				}
			} else {
				copy(row, src[kk*lds:kk*lds+n])
			}
			clear(row[n:])
		}
	})
	return dst
}

// packPanel fills one k×32 panel with columns j0 … j0+31 of src (or of
// srcᵀ), zero past column n.
func packPanel(panel, src []float32, lds, k, n, j0 int, trans bool) {
	cols := min(gemmNR, n-j0)
	if !trans {
		for kk := range k {
			row := panel[kk*gemmNR : (kk+1)*gemmNR]
			copy(row, src[kk*lds+j0:kk*lds+j0+cols])
			clear(row[cols:])
		}
		return
	}
	// srcᵀ[kk][j] = src[j][kk]: read 32 source rows side by side.
	for j := range gemmNR {
		if j >= cols {
			for kk := range k {
				panel[kk*gemmNR+j] = 0
			}
			continue
		}
		srow := src[(j0+j)*lds : (j0+j)*lds+k]
		for kk, v := range srow {
			panel[kk*gemmNR+j] = v
		}
	}
}

// parIf runs body over [0, n) on two goroutines when work (elements
// touched) is large enough to pay for the second one, else inline.
func parIf(work, n int, body func(lo, hi int)) {
	if work < 1<<16 || n < 2 {
		body(0, n)
		return
	}
	half := n / 2
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		body(0, half)
	}()
	body(half, n)
	wg.Wait()
}

// mul computes the first m rows of C = A·B + bias + R (bias and R
// optional) over all pad32 columns of B, on two goroutines when it is
// worth it.
func (g fusedGemm) mul(m int, a []float32, lda int, b *weightsMat, c []float32, ldc int, ep *epilogue) {
	if m == 0 {
		return
	}
	work := m * b.k * b.n
	const minSplit = 1 << 18
	if !g.tiled || work < minSplit {
		g.e.mul(m, a, lda, b, c, ldc, ep)
		return
	}
	var wg sync.WaitGroup
	if m >= 8*gemmMR {
		// By rows: halves rounded to whole tiles.
		half := (m/2 + gemmMR - 1) / gemmMR * gemmMR
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.e.mul(half, a, lda, b, c, ldc, ep)
		}()
		rest := *ep
		if rest.res != nil {
			rest.res = rest.res[half*rest.ldr:]
		}
		g.e.mul(m-half, a[half*lda:], lda, b, c[half*ldc:], ldc, &rest)
		wg.Wait()
		return
	}
	panels := b.n / gemmNR
	if panels < 2 {
		g.e.mul(m, a, lda, b, c, ldc, ep)
		return
	}
	// By column panels: the tiled layout stores panel p at data[p·k·32:].
	split := panels / 2 * gemmNR
	left := &weightsMat{k: b.k, n: split, data: b.data[:split*b.k]}
	right := &weightsMat{k: b.k, n: b.n - split, data: b.data[split*b.k:]}
	rightEp := *ep
	if rightEp.bias != nil {
		rightEp.bias = rightEp.bias[split:]
	}
	if rightEp.res != nil {
		rightEp.res = rightEp.res[split:]
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.e.mul(m, a, lda, left, c, ldc, ep)
	}()
	g.e.mul(m, a, lda, right, c[split:], ldc, &rightEp)
	wg.Wait()
}

// transpose writes srcᵀ (src is rows×cols with stride lds) into dst as
// cols rows of stride ldd.
func transpose(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	const blk = 32
	blocks := (cols + blk - 1) / blk
	parIf(rows*cols, blocks, func(b0, b1 int) {
		for i0 := 0; i0 < rows; i0 += blk {
			i1 := min(i0+blk, rows)
			for j0 := b0 * blk; j0 < min(b1*blk, cols); j0 += blk {
				j1 := min(j0+blk, cols)
				for i := i0; i < i1; i++ {
					srow := src[i*lds : i*lds+j1]
					for j := j0; j < j1; j++ {
						dst[j*ldd+i] = srow[j]
					}
				}
			}
		}
	})
}
