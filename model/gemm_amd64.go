//go:build amd64 && !purego

package model

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

//go:generate go run gemm_amd64_gen.go

// gemmKernelAVX512 computes one gemmMR×gemmNR tile of C from k columns of
// A (rows a, a+lda, …, eleven strides on) and k rows of one B panel
// (gemmNR contiguous floats each), then applies the epilogue that flags
// ask for: gemmAccumulate adds C's current tile, gemmBias adds bias[0:32],
// gemmResidual adds the tile of res (row stride ldr), gemmReLU clamps at
// zero. Strides are in elements. Nothing is bounds-checked: tiledEngine.mul
// checks its operands first.
//
//go:noescape
func gemmKernelAVX512(k int, a *float32, lda int, b *float32, c *float32, ldc int, flags int, bias *float32, res *float32, ldr int)

// avx512Gemm is the tiled engine on CPUs with AVX-512F (nil elsewhere).
var avx512Gemm gemmEngine = func() gemmEngine {
	if !cpu.X86.HasAVX512F {
		return nil
	}
	return &tiledEngine{id: "avx512", kernel: gemmKernelAVX512}
}()

// tiledEngine runs a micro-kernel over gemmMR×gemmNR tiles of C, blocked
// Goto-style: for each block of gemmNC columns and each block of gemmKC
// steps of k, every row tile sweeps the block's column panels, so the
// tile's 12×256 floats of A stay in L1 and the 256×512 block of B in L2.
// B is laid out by prepare as n/gemmNR panels of k×gemmNR floats. A is read
// in place (no packing): one row per output pixel, contiguous in k.
type tiledEngine struct {
	id     string
	kernel func(k int, a *float32, lda int, b *float32, c *float32, ldc int, flags int, bias *float32, res *float32, ldr int)
}

func (e *tiledEngine) name() string     { return e.id }
func (e *tiledEngine) rowsPerTask() int { return 8 * gemmMR }

// prepare packs the row-major k×n matrix w into column panels of gemmNR:
// panel p holds w[kk][p·NR : p·NR+NR] for kk = 0…k-1, back to back, so that
// the kernel reads B sequentially. n must be a multiple of gemmNR (every
// ResNet layer's is).
func (e *tiledEngine) prepare(w []float32, k, n int) *weightsMat {
	if len(w) != k*n || n%gemmNR != 0 {
		panic(fmt.Sprintf("model: prepare %d×%d weights from %d values (n must be a multiple of %d)", k, n, len(w), gemmNR))
	}
	packed := make([]float32, k*n)
	for p := 0; p < n/gemmNR; p++ {
		panel := packed[p*k*gemmNR : (p+1)*k*gemmNR]
		for kk := range k {
			copy(panel[kk*gemmNR:(kk+1)*gemmNR], w[kk*n+p*gemmNR:])
		}
	}
	return &weightsMat{k: k, n: n, data: packed}
}

func (e *tiledEngine) mul(m int, a []float32, lda int, b *weightsMat, c []float32, ldc int, ep *epilogue) {
	checkOperands(m, a, lda, b, c, ldc, ep)
	k, n := b.k, b.n
	rows := paddedRows(m)
	var bias, res *float32
	for jc := 0; jc < n; jc += gemmNC {
		nc := min(gemmNC, n-jc)
		for kc := 0; kc < k; kc += gemmKC {
			kb := min(gemmKC, k-kc)
			flags := 0
			if kc > 0 {
				flags |= gemmAccumulate
			}
			last := kc+kb == k
			if last {
				if ep.bias != nil {
					flags |= gemmBias
				}
				if ep.res != nil {
					flags |= gemmResidual
				}
				if ep.relu {
					flags |= gemmReLU
				}
			}
			for i := 0; i < rows; i += gemmMR {
				ai := &a[i*lda+kc]
				for j := jc; j < jc+nc; j += gemmNR {
					if flags&gemmBias != 0 {
						bias = &ep.bias[j]
					}
					if flags&gemmResidual != 0 {
						res = &ep.res[i*ep.ldr+j]
					}
					e.kernel(kb, ai, lda, &b.data[j*k+kc*gemmNR], &c[i*ldc+j], ldc, flags, bias, res, ep.ldr)
				}
			}
		}
	}
}

// isTiled reports whether e is the tiled engine (weights in column panels
// of gemmNR, which a product may be split along).
func isTiled(e gemmEngine) bool {
	_, ok := e.(*tiledEngine)
	return ok
}
