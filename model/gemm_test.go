package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmEngines checks every engine of this build against a float64
// product computed here, at shapes that hit the edges of the tiling: m not
// a multiple of gemmMR, k not a multiple of 4 or spanning several gemmKC
// blocks, n spanning several gemmNC blocks, every epilogue.
func TestGemmEngines(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := []struct{ m, k, n int }{
		{1, 1, 32}, {12, 3, 32}, {13, 147, 64}, {25, 257, 96}, {50, 576, 64},
		{96, 1024, 64}, {37, 64, 1056}, {7, 4608, 32},
	}
	for _, e := range gemmEngines() {
		for _, s := range shapes {
			for ep := 0; ep < 8; ep++ {
				bias, resid, relu := ep&1 != 0, ep&2 != 0, ep&4 != 0
				name := fmt.Sprintf("%s/m=%d/k=%d/n=%d/bias=%v/res=%v/relu=%v", e.name(), s.m, s.k, s.n, bias, resid, relu)
				rows := paddedRows(s.m)
				lda, ldc, ldr := s.k+3, s.n+32, s.n+64 // strides wider than the matrices
				a := randSlice(rng, rows*lda)
				w := randSlice(rng, s.k*s.n)
				c := randSlice(rng, rows*ldc) // garbage that must be overwritten
				var eps epilogue
				if bias {
					eps.bias = randSlice(rng, s.n)
				}
				if resid {
					eps.res, eps.ldr = randSlice(rng, rows*ldr), ldr
				}
				eps.relu = relu
				b := e.prepare(w, s.k, s.n)
				e.mul(s.m, a, lda, b, c, ldc, &eps)
				var worst float64
				for i := range s.m {
					for j := range s.n {
						var want, scale float64
						for kk := range s.k {
							p := float64(a[i*lda+kk]) * float64(w[kk*s.n+j])
							want += p
							scale += math.Abs(p)
						}
						if bias {
							want += float64(eps.bias[j])
							scale += math.Abs(float64(eps.bias[j]))
						}
						if resid {
							want += float64(eps.res[i*ldr+j])
							scale += math.Abs(float64(eps.res[i*ldr+j]))
						}
						if relu {
							want = math.Max(want, 0)
						}
						d := math.Abs(float64(c[i*ldc+j])-want) / (scale + 1)
						worst = math.Max(worst, d)
					}
				}
				// float32 accumulation of k products, bias and residual:
				// error ≲ (k+2)·2⁻²⁴ of Σ|terms|.
				if tol := float64(s.k+2) * 0x1p-24; worst > tol {
					t.Errorf("%s: relative error %.3g > %.3g", name, worst, tol)
				}
			}
		}
	}
}

// TestGemmReLUKeepsNaN pins PyTorch's relu(NaN) = NaN in every engine.
func TestGemmReLUKeepsNaN(t *testing.T) {
	for _, e := range gemmEngines() {
		a := make([]float32, gemmMR)
		a[0] = float32(math.NaN())
		a[1] = -1
		w := make([]float32, gemmNR)
		for j := range w {
			w[j] = 1
		}
		c := make([]float32, gemmMR*gemmNR)
		e.mul(2, a, 1, e.prepare(w, 1, gemmNR), c, gemmNR, &epilogue{relu: true})
		if !math.IsNaN(float64(c[0])) || c[gemmNR] != 0 {
			t.Errorf("%s: relu(NaN) = %v, relu(-1) = %v; want NaN, 0", e.name(), c[0], c[gemmNR])
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// BenchmarkGemm measures the engines at the shapes of ResNet-50's layer1
// (3×3 conv as im2col, batch 8) and layer4 (3×3 conv, batch 8).
func BenchmarkGemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range []struct{ m, k, n int }{{25088, 576, 64}, {25088, 64, 256}, {392, 4608, 512}} {
		for _, e := range gemmEngines() {
			b.Run(fmt.Sprintf("m=%d/k=%d/n=%d/gemm=%s", s.m, s.k, s.n, e.name()), func(b *testing.B) {
				rows := paddedRows(s.m)
				a := randSlice(rng, rows*s.k)
				c := make([]float32, rows*s.n)
				w := e.prepare(randSlice(rng, s.k*s.n), s.k, s.n)
				bias := randSlice(rng, s.n)
				for b.Loop() {
					e.mul(s.m, a, s.k, w, c, s.n, &epilogue{bias: bias, relu: true})
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
