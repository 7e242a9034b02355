//go:build openblas

package gemmblas

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lopenblas

// Declared here rather than through cblas.h, whose location varies between
// distributions; the enums are plain ints in the C ABI.
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);

// epilogue adds bias and residual to C and applies ReLU in one pass;
// written in C so that the compiler vectorises it (a Go loop costs a fifth
// of the forward pass). v < 0 ? 0 : v keeps NaN, as PyTorch's relu does.
static void epilogue(int m, int n, float *c, int ldc, const float *bias,
	const float *res, int ldr, int relu) {
	for (int i = 0; i < m; i++) {
		float *row = c + (long)i * ldc;
		const float *r = res ? res + (long)i * ldr : 0;
		if (bias && r && relu) {
			for (int j = 0; j < n; j++) {
				float v = row[j] + bias[j] + r[j];
				row[j] = v < 0 ? 0 : v;
			}
		} else if (bias && relu) {
			for (int j = 0; j < n; j++) {
				float v = row[j] + bias[j];
				row[j] = v < 0 ? 0 : v;
			}
		} else {
			for (int j = 0; j < n; j++) {
				float v = row[j];
				if (bias) v += bias[j];
				if (r) v += r[j];
				if (relu) v = v < 0 ? 0 : v;
				row[j] = v;
			}
		}
	}
}

// gemm computes C = epilogue(A·B) (row-major, B k×n with stride n) in
// blocks of rows, so that each block of C is still in cache when its
// epilogue runs.
static void gemm(int m, int n, int k, const float *a, int lda, const float *b,
	float *c, int ldc, const float *bias, const float *res, int ldr, int relu, int block) {
	for (int i = 0; i < m; i += block) {
		int mb = m - i < block ? m - i : block;
		cblas_sgemm(101, 111, 111, mb, n, k, 1, a + (long)i * lda, lda, b, n, 0, c + (long)i * ldc, ldc);
		epilogue(mb, n, c + (long)i * ldc, ldc, bias, res ? res + (long)i * ldr : 0, ldr, relu);
	}
}
*/
import "C"

import "unsafe"

// Available reports whether this build has OpenBLAS (true with -tags openblas).
const Available = true

// CoreName is the kernel set OpenBLAS chose for this CPU, e.g. "cooperlake".
func CoreName() string { return C.GoString(C.openblas_get_corename()) }

// SetThreads sets OpenBLAS's own thread count.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// Gemm computes C = act(A·B + bias + R) for row-major A (m×k, stride lda),
// B (k×n, stride n) and C (m×n, stride ldc): bias (n values) and res (m×n,
// stride ldr) may be nil, act is ReLU when relu is set. cblas_sgemm runs on
// blocks of blockRows rows, each followed by the epilogue. The caller
// guarantees the slices' lengths.
func Gemm(m, n, k int, a []float32, lda int, b []float32, c []float32, ldc int, bias, res []float32, ldr int, relu bool, blockRows int) {
	var biasp, resp *C.float
	if bias != nil {
		biasp = (*C.float)(unsafe.Pointer(&bias[0]))
	}
	if res != nil {
		resp = (*C.float)(unsafe.Pointer(&res[0]))
	}
	r := 0
	if relu {
		r = 1
	}
	C.gemm(C.int(m), C.int(n), C.int(k), (*C.float)(unsafe.Pointer(&a[0])), C.int(lda),
		(*C.float)(unsafe.Pointer(&b[0])), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc),
		biasp, resp, C.int(ldr), C.int(r), C.int(blockRows))
}
