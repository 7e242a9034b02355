//go:build openblas

package model

import "github.com/captionctl/captionctl/model/gemmblas"

// openblasGemm calls OpenBLAS's cblas_sgemm (through package gemmblas), one
// OpenBLAS thread per call: the encoder runs its own goroutines over row
// ranges (which also spreads the im2col copies and the epilogue), and a
// pthreads OpenBLAS pool on top of them would only contend for the same
// cores.
var openblasGemm gemmEngine = func() gemmEngine {
	gemmblas.SetThreads(1)
	return &openblasEngine{core: gemmblas.CoreName()}
}()

type openblasEngine struct {
	core string // OpenBLAS's kernel set, e.g. "cooperlake"
}

func (e *openblasEngine) name() string     { return "openblas" }
func (e *openblasEngine) rowsPerTask() int { return openblasTaskRows }

// Rows per parallel task, and per cblas_sgemm call within it: OpenBLAS
// repacks B on every call, so calls should be long; the epilogue wants
// C still in cache.
var openblasTaskRows, openblasBlockRows = 1024, 256

// prepare keeps B row-major: OpenBLAS packs it itself.
func (e *openblasEngine) prepare(w []float32, k, n int) *weightsMat {
	return (&blasEngine{}).prepare(w, k, n)
}

func (e *openblasEngine) mul(m int, a []float32, lda int, b *weightsMat, c []float32, ldc int, ep *epilogue) {
	checkOperands(m, a, lda, b, c, ldc, ep)
	if m == 0 {
		return
	}
	gemmblas.Gemm(m, b.n, b.k, a, lda, b.data, c, ldc, ep.bias, ep.res, ep.ldr, ep.relu, openblasBlockRows)
}
