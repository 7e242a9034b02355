package model

import (
	"sync"
	"sync/atomic"
)

// Inference-mode convolution, pooling and the parallel loop they share.
// Activations are NHWC float32: element (n, y, x, c) at ((n·H + y)·W + x)·C + c,
// so that one pixel's channels are contiguous and a 1×1 convolution is a
// plain matrix product of the [n·H·W, C] activation matrix.

// activation is an NHWC tensor held in a workspace buffer. data may be
// longer than n·h·w·c: buffers carry padding rows for the tiled GEMM.
type activation struct {
	data       []float32
	n, h, w, c int
}

// pixels is the number of rows of the activation matrix, n·h·w.
func (t activation) pixels() int { return t.n * t.h * t.w }

// convLayer is a convolution with batch norm folded in: weights w
// (k = kh·kw·cin rows in (ky, kx, ci) order, cout columns) and one bias per
// output channel.
type convLayer struct {
	name              string // torchvision's name of the conv, e.g. "layer1.0.conv2"
	cin, cout, kh, kw int
	stride, pad       int
	w                 *weightsMat
	bias              []float32
	engine            gemmEngine
	direct            bool             // 1×1, stride 1, no padding: A is the input itself
	kdim              int              // kh·kw·cin
	wino              *winogradWeights // set for 3×3 stride-1 layers: forwardWinograd
}

func newConvLayer(name string, engine gemmEngine, cin, cout, kh, kw, stride, pad int, w, bias []float32) *convLayer {
	k := kh * kw * cin
	l := &convLayer{
		name: name, cin: cin, cout: cout, kh: kh, kw: kw, stride: stride, pad: pad,
		bias: bias, engine: engine,
		direct: kh == 1 && kw == 1 && stride == 1 && pad == 0,
		kdim:   k,
	}
	if kh == kw && useWinograd(cin, cout, kh, stride, pad) {
		l.wino = newWinogradWeights(engine, w, cin, cout)
	} else {
		l.w = engine.prepare(w, k, cout)
	}
	return l
}

// outSize is the spatial size of the output for an h×w input, PyTorch's
// floor((h + 2·pad − kh) / stride) + 1.
func (l *convLayer) outSize(h, w int) (int, int) {
	return (h+2*l.pad-l.kh)/l.stride + 1, (w+2*l.pad-l.kw)/l.stride + 1
}

// forward computes dst = act(conv(src) + bias [+ res]) and returns dst as
// an activation. dst must hold paddedRows(pixels)·cout floats; res, when not
// nil, is an NHWC tensor of the output's shape with the same padding.
func (l *convLayer) forward(r *runner, src activation, dst []float32, res []float32, relu bool) activation {
	if l.wino != nil {
		return l.forwardWinograd(r, src, dst, res, relu)
	}
	oh, ow := l.outSize(src.h, src.w)
	out := activation{data: dst, n: src.n, h: oh, w: ow, c: l.cout}
	m := out.pixels()
	r.rowTasks(m, gemmMR, l.engine.rowsPerTask(), func(worker, r0, r1 int) {
		ep := epilogue{bias: l.bias, relu: relu}
		if res != nil {
			ep.res, ep.ldr = res[r0*l.cout:], l.cout
		}
		c := dst[r0*l.cout:]
		if l.direct {
			l.engine.mul(r1-r0, src.data[r0*l.cin:], l.cin, l.w, c, l.cout, &ep)
			return
		}
		a := r.scratch(worker, paddedRows(r1-r0)*l.kdim)
		l.im2col(src, oh, ow, r0, r1, a)
		l.engine.mul(r1-r0, a, l.kdim, l.w, c, l.cout, &ep)
	})
	return out
}

// im2col writes rows [r0, r1) of the patch matrix into dst, row r − r0 at
// dst[(r−r0)·kdim:]: for output pixel (n, oy, ox), the input pixels
// (oy·stride − pad + ky, ox·stride − pad + kx) for ky, kx in the kernel,
// each with its cin channels, zero outside the image. In NHWC the kw pixels
// of one kernel row are contiguous, so each kernel row is one copy.
func (l *convLayer) im2col(src activation, oh, ow, r0, r1 int, dst []float32) {
	seg := l.kw * l.cin
	for r := r0; r < r1; r++ {
		row := dst[(r-r0)*l.kdim : (r-r0+1)*l.kdim]
		n, rem := r/(oh*ow), r%(oh*ow)
		oy, ox := rem/ow, rem%ow
		iy0, ix0 := oy*l.stride-l.pad, ox*l.stride-l.pad
		xlo, xhi := max(0, -ix0), min(l.kw, src.w-ix0) // kernel columns inside the image
		for ky := range l.kh {
			part := row[ky*seg : (ky+1)*seg]
			iy := iy0 + ky
			if iy < 0 || iy >= src.h || xhi <= xlo {
				clear(part)
				continue
			}
			clear(part[:xlo*l.cin])
			clear(part[xhi*l.cin:])
			base := ((n*src.h+iy)*src.w + ix0 + xlo) * l.cin
			copy(part[xlo*l.cin:xhi*l.cin], src.data[base:base+(xhi-xlo)*l.cin])
		}
	}
}

// maxPool3x3s2 is torchvision's stem pooling, MaxPool2d(3, stride 2,
// padding 1): padding never wins (PyTorch pads with −∞) and NaN propagates.
func maxPool3x3s2(r *runner, src activation, dst []float32) activation {
	oh, ow := (src.h-1)/2+1, (src.w-1)/2+1
	out := activation{data: dst, n: src.n, h: oh, w: ow, c: src.c}
	c := src.c
	r.rowTasks(src.n*oh, 1, 4, func(_, r0, r1 int) {
		for row := r0; row < r1; row++ {
			n, oy := row/oh, row%oh
			y0, y1 := max(0, 2*oy-1), min(src.h-1, 2*oy+1)
			for ox := range ow {
				x0, x1 := max(0, 2*ox-1), min(src.w-1, 2*ox+1)
				o := dst[((n*oh+oy)*ow+ox)*c : ((n*oh+oy)*ow+ox+1)*c]
				maxPoolWindow(o, src.data[((n*src.h+y0)*src.w+x0)*c:], src.w*c, c, y1-y0+1, x1-x0+1)
			}
		}
	})
	return out
}

// maxPoolWindow sets dst (c channels) to the channel-wise max over rows ×
// cols pixels of src, pixel (i, j) at src[i·rowStride + j·pixStride:].
var maxPoolWindow = maxPoolWindowGo

func maxPoolWindowGo(dst, src []float32, rowStride, pixStride, rows, cols int) {
	copy(dst, src[:len(dst)])
	for i := range rows {
		for j := range cols {
			in := src[i*rowStride+j*pixStride : i*rowStride+j*pixStride+len(dst)]
			for k, v := range in {
				dst[k] = max(dst[k], v) // NaN wins, as in PyTorch
			}
		}
	}
}

// adaptiveAvgPool is PyTorch's AdaptiveAvgPool2d((grid, grid)) followed by
// flatten(2).transpose(1, 2): dst[n][gy·grid + gx][c] is the mean of the
// input window rows [⌊gy·h/grid⌋, ⌈(gy+1)·h/grid⌉) × columns likewise. When
// grid exceeds the map size the windows overlap and repeat input pixels,
// as PyTorch's do.
func adaptiveAvgPool(r *runner, src activation, grid int, dst []float32) {
	c := src.c
	r.rowTasks(src.n*grid, 1, 2, func(_, r0, r1 int) {
		sum := make([]float64, c)
		for row := r0; row < r1; row++ {
			n, gy := row/grid, row%grid
			y0, y1 := gy*src.h/grid, ((gy+1)*src.h+grid-1)/grid
			for gx := range grid {
				x0, x1 := gx*src.w/grid, ((gx+1)*src.w+grid-1)/grid
				clear(sum)
				for y := y0; y < y1; y++ {
					for x := x0; x < x1; x++ {
						in := src.data[((n*src.h+y)*src.w+x)*c : ((n*src.h+y)*src.w+x+1)*c]
						for j, v := range in {
							sum[j] += float64(v)
						}
					}
				}
				inv := 1 / float64((y1-y0)*(x1-x0))
				o := dst[((n*grid+gy)*grid+gx)*c : ((n*grid+gy)*grid+gx+1)*c]
				for j := range o {
					o[j] = float32(sum[j] * inv)
				}
			}
		}
	})
}

// runner shares row ranges of one operation among a fixed number of
// goroutines and owns their scratch buffers (im2col patches), which grow
// to the largest size asked for and are then reused.
type runner struct {
	workers  int
	scratchs [][]float32
	shared   []float32
}

func newRunner(workers int) *runner {
	return &runner{workers: max(1, workers), scratchs: make([][]float32, max(1, workers))}
}

// scratch returns worker's buffer with at least n floats.
func (r *runner) scratch(worker, n int) []float32 {
	if len(r.scratchs[worker]) < n {
		r.scratchs[worker] = make([]float32, n)
	}
	return r.scratchs[worker][:n]
}

// sharedScratch returns a buffer of at least n floats that all workers of
// one operation share.
func (r *runner) sharedScratch(n int) []float32 {
	if len(r.shared) < n {
		r.shared = make([]float32, n)
	}
	return r.shared[:n]
}

// rowTasks calls body(worker, r0, r1) for consecutive ranges covering
// [0, m), on up to r.workers goroutines, and returns when all are done.
// With tile ≥ 1, every range but the last starts and ends on a multiple of
// tile rows and holds at most maxRows rows (when that is ≥ tile); the
// ranges are as even as the tiling allows and their count a multiple of
// the workers', so that the workers finish together. They are handed out
// from a shared counter, so a worker slowed down (by another process)
// takes fewer.
func (r *runner) rowTasks(m, tile, maxRows int, body func(worker, r0, r1 int)) {
	if m <= 0 {
		return
	}
	tiles := (m + tile - 1) / tile
	perTask := max(1, maxRows/tile)
	tasks := (tiles + perTask - 1) / perTask
	tasks = min(tiles, (tasks+r.workers-1)/r.workers*r.workers)
	workers := min(r.workers, tasks)
	var next atomic.Int64
	run := func(worker int) {
		for {
			t := int(next.Add(1)) - 1
			if t >= tasks {
				return
			}
			r0, r1 := t*tiles/tasks*tile, min(m, (t+1)*tiles/tasks*tile)
			body(worker, r0, r1)
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(w)
		}()
	}
	run(0)
	wg.Wait()
}
