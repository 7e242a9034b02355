//go:build !openblas

package model

// openblasGemm is absent from this build; -tags openblas brings it.
var openblasGemm gemmEngine
