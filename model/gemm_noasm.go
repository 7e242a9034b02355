//go:build !amd64 || purego

package model

// avx512Gemm is absent from this build: not amd64, or -tags purego.
var avx512Gemm gemmEngine
