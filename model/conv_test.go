package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// directConv is the definition of a convolution with folded weights w
// (rows (ky·k + kx)·cin + ci, columns co), bias, optional residual and
// ReLU, in float64 on NHWC data: the reference for the fast paths.
func directConv(src activation, w, bias []float32, cout, k, stride, pad int, res []float32, relu bool) []float64 {
	oh, ow := (src.h+2*pad-k)/stride+1, (src.w+2*pad-k)/stride+1
	out := make([]float64, src.n*oh*ow*cout)
	for n := range src.n {
		for oy := range oh {
			for ox := range ow {
				o := out[((n*oh+oy)*ow+ox)*cout:]
				for co := range cout {
					v := float64(bias[co])
					for ky := range k {
						for kx := range k {
							y, x := oy*stride-pad+ky, ox*stride-pad+kx
							if y < 0 || y >= src.h || x < 0 || x >= src.w {
								continue
							}
							for ci := range src.c {
								v += float64(src.data[((n*src.h+y)*src.w+x)*src.c+ci]) * float64(w[((ky*k+kx)*src.c+ci)*cout+co])
							}
						}
					}
					if res != nil {
						v += float64(res[((n*oh+oy)*ow+ox)*cout+co])
					}
					if relu {
						v = math.Max(v, 0)
					}
					o[co] = v
				}
			}
		}
	}
	return out
}

// TestConvPaths checks each way a convolution can run — Winograd (3×3
// stride 1) by chunks and by phases, im2col (3×3 stride 2, 7×7), direct
// 1×1 and strided 1×1 — with every engine, on odd and even maps, with and
// without residual, against the float64 definition, with 1 and 3 threads.
func TestConvPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, engine := range gemmEngines() {
		for _, tc := range []struct{ cin, cout, k, stride, h, w int }{
			{16, 32, 3, 1, 7, 7}, {64, 64, 3, 1, 13, 9}, {32, 64, 3, 1, 2, 3}, {16, 32, 3, 1, 1, 1},
			{256, 256, 3, 1, 5, 6}, // by phases
			{32, 32, 3, 2, 7, 8}, {3, 64, 7, 2, 15, 12}, {64, 96, 1, 1, 5, 6}, {32, 64, 1, 2, 7, 7},
		} {
			for _, withRes := range []bool{false, true} {
				for _, threads := range []int{1, 3} {
					name := fmt.Sprintf("%s/cin=%d/cout=%d/k=%d/s=%d/%dx%d/res=%v/threads=%d", engine.name(), tc.cin, tc.cout, tc.k, tc.stride, tc.h, tc.w, withRes, threads)
					pad := tc.k / 2
					w := randSlice(rng, tc.k*tc.k*tc.cin*tc.cout)
					bias := randSlice(rng, tc.cout)
					l := newConvLayer("test", engine, tc.cin, tc.cout, tc.k, tc.k, tc.stride, pad, w, bias)
					const n = 2
					if (l.wino != nil) != (tc.k == 3 && tc.stride == 1) {
						t.Fatalf("%s: winograd %v", name, l.wino != nil)
					}
					if phases := l.wino != nil && winogradByPhases(n*((tc.h+1)/2)*((tc.w+1)/2), tc.cin, tc.cout); tc.cin == 256 && !phases || tc.h == 13 && phases {
						t.Fatalf("%s: schedule by phases %v", name, phases)
					}
					src := activation{data: randSlice(rng, paddedRows(n*tc.h*tc.w)*tc.cin), n: n, h: tc.h, w: tc.w, c: tc.cin}
					oh, ow := l.outSize(tc.h, tc.w)
					var res []float32
					if withRes {
						res = randSlice(rng, paddedRows(n*oh*ow)*tc.cout)
					}
					dst := randSlice(rng, paddedRows(n*oh*ow)*tc.cout)
					out := l.forward(newRunner(threads), src, dst, res, true)
					if out.h != oh || out.w != ow || out.c != tc.cout {
						t.Fatalf("%s: output %d×%d×%d", name, out.h, out.w, out.c)
					}
					want := directConv(src, w, bias, tc.cout, tc.k, tc.stride, pad, res, true)
					var worst, scale float64
					for i, v := range want {
						worst = math.Max(worst, math.Abs(float64(dst[i])-v))
						scale = math.Max(scale, math.Abs(v))
					}
					if worst > 1e-5*scale {
						t.Errorf("%s: max|Δ| %.3g of max %.3g", name, worst, scale)
					}
				}
			}
		}
	}
}

// TestMaxPool checks MaxPool2d(3, 2, 1) on even and odd maps against the
// definition, NaN included (PyTorch propagates it).
func TestMaxPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, c := range []int{16, 64, 3} { // 3: not whole vectors, the Go path
		for _, hw := range [][2]int{{8, 8}, {7, 9}, {1, 1}, {2, 3}} {
			src := activation{data: randSlice(rng, 2*hw[0]*hw[1]*c), n: 2, h: hw[0], w: hw[1], c: c}
			src.data[len(src.data)/2] = float32(math.NaN())
			oh, ow := (hw[0]-1)/2+1, (hw[1]-1)/2+1
			dst := make([]float32, 2*oh*ow*c)
			maxPool3x3s2(newRunner(2), src, dst)
			for n := range 2 {
				for oy := range oh {
					for ox := range ow {
						for ch := range c {
							want := math.Inf(-1)
							for y := 2*oy - 1; y <= 2*oy+1; y++ {
								for x := 2*ox - 1; x <= 2*ox+1; x++ {
									if y >= 0 && y < hw[0] && x >= 0 && x < hw[1] {
										v := float64(src.data[((n*hw[0]+y)*hw[1]+x)*c+ch])
										if math.IsNaN(v) || v > want {
											want = v
										}
										if math.IsNaN(want) {
											break
										}
									}
								}
							}
							got := float64(dst[((n*oh+oy)*ow+ox)*c+ch])
							if got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
								t.Fatalf("c=%d %dx%d: (%d,%d,%d,%d) = %v, want %v", c, hw[0], hw[1], n, oy, ox, ch, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestAdaptiveAvgPool pins PyTorch's window rule, start ⌊i·in/out⌋, end
// ⌈(i+1)·in/out⌉: on a 7×7 map, grid 14 repeats each pixel 2×2 times and
// grid 7 is the identity; 3×3 → 2×2 averages overlapping 2×2 windows.
func TestAdaptiveAvgPool(t *testing.T) {
	ramp := func(h, w int) activation {
		a := activation{data: make([]float32, h*w), n: 1, h: h, w: w, c: 1}
		for i := range a.data {
			a.data[i] = float32(i)
		}
		return a
	}
	r := newRunner(2)
	out := make([]float32, 14*14)
	adaptiveAvgPool(r, ramp(7, 7), 14, out)
	for y := range 14 {
		for x := range 14 {
			if want := float32((y/2)*7 + x/2); out[y*14+x] != want {
				t.Fatalf("7→14: (%d,%d) = %v, want %v", y, x, out[y*14+x], want)
			}
		}
	}
	adaptiveAvgPool(r, ramp(7, 7), 7, out[:49])
	for i := range 49 {
		if out[i] != float32(i) {
			t.Fatalf("7→7: %d = %v", i, out[i])
		}
	}
	adaptiveAvgPool(r, ramp(3, 3), 2, out[:4])
	if want := []float32{2, 3, 5, 6}; fmt.Sprint(out[:4]) != fmt.Sprint(want) {
		t.Fatalf("3→2: %v, want %v", out[:4], want)
	}
}
