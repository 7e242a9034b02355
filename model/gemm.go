package model

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The encoder's convolutions are matrix products
//
//	C = act(A·B + bias + R)
//
// with A the m×k activations (row-major, one row per output pixel: the NHWC
// input itself for a 1×1 stride-1 convolution, an im2col copy otherwise),
// B the k×n folded weights (k = kh·kw·cin, n = cout), bias one value per
// column, R an optional residual m×n matrix and act the identity or ReLU.
// (3×3 stride-1 convolutions become 16 such products of transformed
// tiles: conv_winograd.go.) A gemmEngine computes them; which one runs is
// decided once, at start-up, by the build and the CPU (selectGemm).

// Tile sizes of the tiled engine (the AVX-512 micro-kernel).
const (
	gemmMR = 12  // rows of A per micro-kernel call (24 accumulators of 16 lanes)
	gemmNR = 32  // columns of B per call: two 16-lane vectors
	gemmKC = 256 // k block: 12×256 floats of A (12 KiB) stay in L1
	gemmNC = 512 // n block: 256×512 floats of B (512 KiB) stay in L2
)

// Flags of the micro-kernel's epilogue.
const (
	gemmAccumulate = 1 << iota // add the product to C instead of overwriting it
	gemmBias                   // add bias[j] to column j
	gemmResidual               // add R
	gemmReLU                   // max(0, x), NaN kept
)

// epilogue is what is applied to A·B before it is stored.
type epilogue struct {
	bias []float32 // [n] added to every row; nil for none
	res  []float32 // residual R (m×n, row stride ldr); nil for none
	ldr  int
	relu bool
}

// weightsMat is a k×n weight matrix laid out the way its engine wants it.
type weightsMat struct {
	k, n int
	data []float32
}

// gemmEngine computes C = epilogue(A·B).
type gemmEngine interface {
	// name says which implementation this is (for logs and benchmarks).
	name() string
	// prepare lays out the row-major k×n matrix w; called once per layer
	// at load time.
	prepare(w []float32, k, n int) *weightsMat
	// mul computes the first m rows of C = epilogue(A·B); A has row
	// stride lda, C ldc. a, c and ep.res must hold paddedRows(m) rows: a
	// tiled engine reads and writes whole tiles of gemmMR rows, so rows up
	// to the next multiple of gemmMR may be read and overwritten.
	mul(m int, a []float32, lda int, b *weightsMat, c []float32, ldc int, ep *epilogue)
	// rowsPerTask is how many rows of A one parallel task should take at
	// most: small enough to share out, large enough to amortise B.
	rowsPerTask() int
}

// paddedRows is m rounded up to a whole number of micro-kernel tiles.
func paddedRows(m int) int { return (m + gemmMR - 1) / gemmMR * gemmMR }

// selectGemm returns the fastest engine this build and CPU offer: the
// AVX-512 kernel when the CPU has it (any build but -tags purego), else
// OpenBLAS (-tags openblas), else gonum's pure-Go Sgemm. The AVX-512 kernel
// comes before OpenBLAS because it is faster on the encoder's shapes: on
// this project's 2-core AMD EPYC, ResNet-50 (batch 8, 2 threads) ran at 43
// images/s with it and 19 with every product on OpenBLAS 0.3.21's
// cblas_sgemm, which repacks the weights on every call and runs the
// narrow products (64–128 columns) below half its peak.
func selectGemm() gemmEngine {
	switch {
	case avx512Gemm != nil:
		return avx512Gemm
	case openblasGemm != nil:
		return openblasGemm
	}
	return gonumGemm
}

// gemmEngines lists every engine this build can run on this CPU, the
// selected one first; tests run them all.
func gemmEngines() []gemmEngine {
	all := []gemmEngine{selectGemm()}
	for _, e := range []gemmEngine{avx512Gemm, openblasGemm, gonumGemm} {
		if e != nil && e.name() != all[0].name() {
			all = append(all, e)
		}
	}
	return all
}

// checkOperands panics unless the slices hold what mul may touch: a
// programmer error, and the tiled kernel reads them without bounds checks.
func checkOperands(m int, a []float32, lda int, b *weightsMat, c []float32, ldc int, ep *epilogue) {
	rows := paddedRows(m)
	need := func(what string, s []float32, ld, cols int) {
		if ld < cols || len(s) < (rows-1)*ld+cols {
			panic(fmt.Sprintf("model: gemm %s: %d elements, stride %d for %d×%d (padded %d rows)", what, len(s), ld, m, cols, rows))
		}
	}
	need("A", a, lda, b.k)
	need("C", c, ldc, b.n)
	if ep.res != nil {
		need("R", ep.res, ep.ldr, b.n)
	}
	if ep.bias != nil && len(ep.bias) < b.n {
		panic(fmt.Sprintf("model: gemm bias: %d elements for %d columns", len(ep.bias), b.n))
	}
}

// blasEngine computes the product with a BLAS sgemm on row-major
// matrices, then applies the epilogue in a second pass.
type blasEngine struct {
	id    string
	rows  int
	sgemm func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int)
}

func (e *blasEngine) name() string     { return e.id }
func (e *blasEngine) rowsPerTask() int { return e.rows }

func (e *blasEngine) prepare(w []float32, k, n int) *weightsMat {
	if len(w) != k*n {
		panic(fmt.Sprintf("model: prepare %d×%d weights from %d values", k, n, len(w)))
	}
	return &weightsMat{k: k, n: n, data: append([]float32(nil), w...)}
}

func (e *blasEngine) mul(m int, a []float32, lda int, b *weightsMat, c []float32, ldc int, ep *epilogue) {
	checkOperands(m, a, lda, b, c, ldc, ep)
	if m == 0 {
		return
	}
	e.sgemm(m, b.n, b.k, a, lda, b.data, b.n, c, ldc)
	applyEpilogue(m, b.n, c, ldc, ep)
}

// applyEpilogue adds bias and residual to C in place and applies ReLU, in
// one pass per row.
func applyEpilogue(m, n int, c []float32, ldc int, ep *epilogue) {
	if ep.bias == nil && ep.res == nil && !ep.relu {
		return
	}
	zeros := make([]float32, n) // stands in for a missing bias or residual
	bias := zeros
	if ep.bias != nil {
		bias = ep.bias[:n]
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		res := zeros
		if ep.res != nil {
			res = ep.res[i*ep.ldr : i*ep.ldr+n]
		}
		if ep.relu {
			for j, v := range row {
				v = v + bias[j] + res[j]
				if v < 0 { // NaN kept, as PyTorch's relu
					v = 0
				}
				row[j] = v
			}
		} else {
			for j, v := range row {
				row[j] = v + bias[j] + res[j]
			}
		}
	}
}

// gonumGemm is gonum's Sgemm (pure Go, with gonum's own SSE assembly for
// its inner loops on amd64 unless built with -tags noasm): the engine of
// last resort, about a tenth of the AVX-512 kernel's speed.
var gonumGemm gemmEngine = &blasEngine{
	id:   "gonum",
	rows: 384,
	sgemm: func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
		gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a[:(m-1)*lda+k], lda, b, ldb, 0, c[:(m-1)*ldc+n], ldc)
	},
}
