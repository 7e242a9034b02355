//go:build !amd64 || purego

package model

// Without assembly every element-wise loop of the fused decoder runs in
// Go: vecPrefix hands the kernels nothing.

func vecPrefix(int) int { return 0 }

func reluDotVec(u, h, w []float32, m int) float32 { panic("model: no vector kernels") }

func reluBackVec(u, h, w []float32, de float32, du, dh, dw []float32, m int) {
	panic("model: no vector kernels")
}

func dotVec(x, y []float32, m int) float32 { panic("model: no vector kernels") }

func axpyVec(y, x []float32, a float32, m int) { panic("model: no vector kernels") }

func expShiftVec(dst, x []float32, m float32, n int) float32 { panic("model: no vector kernels") }
