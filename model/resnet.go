package model

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
)

// The frozen image encoder: torchvision's ResNet-18/34/50/101/152 in
// inference mode, batch norm folded into the convolutions at load time,
// the last stage's feature map average-pooled to a grid × grid of
// annotation vectors. See resnet_load.go for reading torchvision weights.

// EncoderConfig chooses the encoder. It is saved with features and models.
type EncoderConfig struct {
	// Arch is the torchvision architecture: resnet18, resnet34, resnet50,
	// resnet101 or resnet152.
	Arch string `json:"arch"`
	// Grid is the side of the pooled feature grid: features are
	// [n, Grid·Grid, Channels()]. 7 or 14 (for 224-pixel input the last
	// stage's map is 7×7; 14 repeats its pixels as PyTorch's
	// AdaptiveAvgPool2d((14, 14)) does).
	Grid int `json:"grid"`
	// ImageSize is the side of the square input images, in pixels.
	ImageSize int `json:"image_size"`
	// Threads is how many goroutines a forward pass uses; 0 means
	// GOMAXPROCS. Not saved: it does not change the result.
	Threads int `json:"-"`
}

// DefaultEncoderConfig is ResNet-101 (as in Show, Attend and Tell's
// PyTorch ports), a 14×14 grid and 224-pixel images.
func DefaultEncoderConfig() EncoderConfig {
	return EncoderConfig{Arch: "resnet101", Grid: 14, ImageSize: 224}
}

// Validate checks every field, naming the flag and value at fault.
func (c EncoderConfig) Validate() error {
	if _, ok := resnetArchs[c.Arch]; !ok {
		return fmt.Errorf("--encoder must be one of %v, got %q", EncoderArchs(), c.Arch)
	}
	if c.Grid != 7 && c.Grid != 14 {
		return fmt.Errorf("--grid must be 7 or 14, got %d", c.Grid)
	}
	if c.ImageSize < 32 || c.ImageSize > 2048 {
		return fmt.Errorf("--image-size must be between 32 and 2048 pixels, got %d", c.ImageSize)
	}
	if c.Threads < 0 {
		return fmt.Errorf("encoder threads must be ≥ 0 (0: GOMAXPROCS), got %d", c.Threads)
	}
	return nil
}

// resnetArch is one of torchvision's ResNets: block type and the number of
// blocks in layer1…layer4.
type resnetArch struct {
	name       string
	bottleneck bool // Bottleneck (1×1, 3×3, 1×1, expansion 4) or BasicBlock (3×3, 3×3)
	blocks     [4]int
}

var resnetArchs = map[string]resnetArch{
	"resnet18":  {"resnet18", false, [4]int{2, 2, 2, 2}},
	"resnet34":  {"resnet34", false, [4]int{3, 4, 6, 3}},
	"resnet50":  {"resnet50", true, [4]int{3, 4, 6, 3}},
	"resnet101": {"resnet101", true, [4]int{3, 4, 23, 3}},
	"resnet152": {"resnet152", true, [4]int{3, 8, 36, 3}},
}

// EncoderArchs lists the architecture names EncoderConfig.Arch accepts.
func EncoderArchs() []string {
	names := make([]string, 0, len(resnetArchs))
	for n := range resnetArchs {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return archDepth(a) - archDepth(b) })
	return names
}

func archDepth(name string) int {
	var d int
	fmt.Sscanf(name, "resnet%d", &d)
	return d
}

// channels is the number of channels of the last stage with blocks.
func (a resnetArch) channels() int {
	c := 64
	for l, nb := range a.blocks {
		if nb > 0 {
			c = 64 << l
			if a.bottleneck {
				c *= 4
			}
		}
	}
	return c
}

// resBlock is one BasicBlock (conv3 nil) or Bottleneck, with its optional
// downsample (1×1 conv + BN on the identity path).
type resBlock struct {
	conv1, conv2, conv3, down *convLayer
}

// Encoder runs a frozen ResNet over batches of images.
//
// Forward is safe for concurrent use: calls take turns (the encoder owns one
// set of activation buffers, sized by the largest batch seen and reused),
// and each call spreads its work over Threads goroutines.
type Encoder struct {
	cfg    EncoderConfig
	arch   resnetArch
	engine gemmEngine
	stem   *convLayer
	blocks []resBlock

	mu     sync.Mutex
	bufs   [numBufs][]float32
	runner *runner

	// trace, when set (by tests), sees the NHWC map after the stem
	// ("stem", after max-pooling) and after each of layer1…layer4.
	trace func(stage string, t activation)
}

// Activation buffers; a block reads bufX and writes bufY, then they swap.
const (
	bufInput = iota // the NHWC copy of the input
	bufStem         // stem convolution output, before max-pooling
	bufX
	bufY
	bufT1 // block internals
	bufT2
	bufDown // downsampled identity
	numBufs
)

// Channels is the length of each feature vector: 512 for ResNet-18/34,
// 2048 for ResNet-50/101/152.
func (e *Encoder) Channels() int { return e.arch.channels() }

// Grid is the side of the feature grid: Forward returns Grid()² vectors
// per image.
func (e *Encoder) Grid() int { return e.cfg.Grid }

// Config returns the configuration the encoder was built with.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// Backend names the matrix-product implementation in use: "avx512" (the
// default build's assembly kernel), "gonum" (pure Go: -tags purego, or a
// CPU without AVX-512) or "openblas" (-tags openblas).
func (e *Encoder) Backend() string { return e.engine.name() }

// FeatureLen is the number of floats Forward returns per image.
func (e *Encoder) FeatureLen() int { return e.cfg.Grid * e.cfg.Grid * e.Channels() }

// Forward encodes a batch of n images. input is NCHW float32, PyTorch's
// layout: [n, 3, S, S] with S = ImageSize, element (i, c, y, x) at
// ((i·3 + c)·S + y)·S + x, normalised as torchvision's ImageNet
// preprocessing does (data.Preprocess with the CHW layout). The result is
// [n, Grid², Channels()]: image i's vector at grid cell (y, x) starts at
// (i·Grid² + y·Grid + x)·Channels(), as PyTorch's
// feature_map.flatten(2).transpose(1, 2). It is newly allocated; see
// ForwardInto to reuse one.
func (e *Encoder) Forward(input []float32, n int) ([]float32, error) {
	if n < 0 {
		return nil, fmt.Errorf("encoder forward: batch size %d", n)
	}
	out := make([]float32, n*e.FeatureLen())
	if err := e.ForwardInto(out, input, n); err != nil {
		return nil, err
	}
	return out, nil
}

// ForwardInto is Forward writing the features into dst, which must hold
// n·FeatureLen() floats.
func (e *Encoder) ForwardInto(dst, input []float32, n int) error {
	s := e.cfg.ImageSize
	if n < 1 {
		return fmt.Errorf("encoder forward: batch size must be ≥ 1, got %d", n)
	}
	if len(input) != n*3*s*s {
		return fmt.Errorf("encoder forward: input has %d floats, want %d = %d images × 3 × %d × %d (NCHW)", len(input), n*3*s*s, n, s, s)
	}
	if len(dst) < n*e.FeatureLen() {
		return fmt.Errorf("encoder forward: output has room for %d floats, want %d = %d images × %d × %d", len(dst), n*e.FeatureLen(), n, e.cfg.Grid*e.cfg.Grid, e.Channels())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fmap := e.featureMap(input, n)
	adaptiveAvgPool(e.runner, fmap, e.cfg.Grid, dst)
	return nil
}

// workers is how many goroutines a forward pass uses.
func (e *Encoder) workers() int {
	if e.cfg.Threads > 0 {
		return e.cfg.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// buf returns buffer b with room for an NHWC tensor of the given pixels
// and channels, padded for the tiled GEMM. It grows (zeroed) only when a
// larger batch than before arrives.
func (e *Encoder) buf(b, pixels, channels int) []float32 {
	need := paddedRows(pixels) * channels
	if len(e.bufs[b]) < need {
		e.bufs[b] = make([]float32, need)
	}
	return e.bufs[b][:need]
}

// featureMap runs the network up to its last stage and returns the NHWC
// map, which lives in the encoder's buffers until the next call.
func (e *Encoder) featureMap(input []float32, n int) activation {
	if e.runner == nil || e.runner.workers != e.workers() {
		e.runner = newRunner(e.workers())
	}
	r := e.runner
	s := e.cfg.ImageSize
	x := activation{data: e.buf(bufInput, n*s*s, 3), n: n, h: s, w: s, c: 3}
	nchwToNHWC(r, input, x)

	oh, ow := e.stem.outSize(s, s)
	x = e.stem.forward(r, x, e.buf(bufStem, n*oh*ow, e.stem.cout), nil, true)
	x = maxPool3x3s2(r, x, e.buf(bufX, n*((oh-1)/2+1)*((ow-1)/2+1), x.c))
	e.emit("stem", x)
	out := bufY // x is in bufX; blocks alternate between the two
	for i, b := range e.blocks {
		x = e.block(r, b, x, out)
		out = bufX + bufY - out
		if i == len(e.blocks)-1 || stageOf(b) != stageOf(e.blocks[i+1]) {
			e.emit(stageOf(b), x)
		}
	}
	return x
}

func (e *Encoder) emit(stage string, t activation) {
	if e.trace != nil {
		e.trace(stage, t)
	}
}

// stageOf is "layerN" for a block named "layerN.B.convK".
func stageOf(b resBlock) string {
	name := b.conv1.name
	for i := range len(name) {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}

// block runs one residual block on x, writing its output into buffer out:
//
//	BasicBlock:  y = relu(bn2(conv2(relu(bn1(conv1(x))))) + id(x))
//	Bottleneck:  y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + id(x))
//
// with id the downsample (1×1 conv + BN, strided) or the identity, and
// every BN folded into its conv. The residual add and final ReLU run in the
// last conv's GEMM epilogue.
func (e *Encoder) block(r *runner, b resBlock, x activation, out int) activation {
	identity := x.data
	if b.down != nil {
		oh, ow := b.down.outSize(x.h, x.w)
		identity = b.down.forward(r, x, e.buf(bufDown, x.n*oh*ow, b.down.cout), nil, false).data
	}
	h1, w1 := b.conv1.outSize(x.h, x.w)
	t := b.conv1.forward(r, x, e.buf(bufT1, x.n*h1*w1, b.conv1.cout), nil, true)
	last := b.conv2
	if b.conv3 != nil {
		h2, w2 := b.conv2.outSize(t.h, t.w)
		t = b.conv2.forward(r, t, e.buf(bufT2, t.n*h2*w2, b.conv2.cout), nil, true)
		last = b.conv3
	}
	oh, ow := last.outSize(t.h, t.w)
	return last.forward(r, t, e.buf(out, t.n*oh*ow, last.cout), identity, true)
}

// nchwToNHWC copies the NCHW input into the NHWC activation x.
func nchwToNHWC(r *runner, input []float32, x activation) {
	plane := x.h * x.w
	r.rowTasks(x.n*x.h, 1, 8, func(_, r0, r1 int) {
		for row := r0; row < r1; row++ {
			n, y := row/x.h, row%x.h
			for c := range x.c {
				src := input[(n*x.c+c)*plane+y*x.w : (n*x.c+c)*plane+(y+1)*x.w]
				dst := x.data[(n*x.h+y)*x.w*x.c:]
				for xx, v := range src {
					dst[xx*x.c+c] = v
				}
			}
		}
	})
}
