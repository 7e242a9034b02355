//go:build !amd64 || purego

package model

// avx512Gemm is absent from this build: not amd64, or -tags purego.
var avx512Gemm gemmEngine

// isTiled reports whether e lays weights out in column panels; no engine
// of this build does.
func isTiled(gemmEngine) bool { return false }
