// Package gemmblas binds OpenBLAS's cblas_sgemm for the encoder's matrix
// products when captionctl is built with -tags openblas (cgo, Debian's
// libopenblas-dev); without the tag it is empty. It lives apart from
// package model because a cgo package cannot also hold Go assembly, and
// model keeps its AVX-512 kernel in the openblas build too.
package gemmblas
