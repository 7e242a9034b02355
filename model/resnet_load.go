package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/captionctl/captionctl/internal/tensorfile"
)

// bnEps is torchvision's BatchNorm2d epsilon.
const bnEps = 1e-5

// WeightsError says why a state dict does not fit the encoder: the tensor
// at fault, what is wrong and, when it can tell, what to do. Callers treat
// it as bad input (the weights file does not match --encoder).
type WeightsError struct {
	Arch   string // the architecture asked for, e.g. "resnet18"
	Tensor string // the state-dict key at fault
	Msg    string // what is wrong with it
	More   int    // further tensors with the same problem, not listed
	Hint   string // what to do; "" when there is no better advice
}

func (e *WeightsError) Error() string {
	s := fmt.Sprintf("%s weights: %s: %s", e.Arch, e.Tensor, e.Msg)
	if e.More > 0 {
		s += fmt.Sprintf(" (and %d more)", e.More)
	}
	if e.Hint != "" {
		s += " — " + e.Hint
	}
	return s
}

// NewEncoder builds the encoder cfg asks for from a torchvision ResNet
// state dict (tensorfile.Load of a .pth or safetensors file): conv weights
// [cout, cin, k, k] and, for every batch norm, weight, bias, running_mean
// and running_var [cout] (num_batches_tracked may be present or not). The
// classifier (fc.weight, fc.bias) is ignored; any other key that the
// architecture does not have is an error, as is a missing key, a wrong
// shape, a non-float dtype (F32, F16, BF16 and F64 are read) or a
// non-finite value: a *WeightsError naming the tensor, with a hint when the
// weights look like another depth. Batch norm is folded into the
// convolutions in float64: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε), ε = 1e-5.
func NewEncoder(cfg EncoderConfig, stateDict map[string]*tensorfile.Tensor) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newEncoder(cfg, resnetArchs[cfg.Arch], stateDict, selectGemm())
}

// RandomEncoder builds an encoder with torchvision's initialisation drawn
// from rng: convolutions kaiming_normal_(mode="fan_out",
// nonlinearity="relu"), i.e. N(0, 2/(cout·k·k)); batch norm weight 1, bias
// 0, running mean 0, running variance 1. For tests, benchmarks and
// pipelines run without real weights; the same rng state gives the same
// encoder.
func RandomEncoder(cfg EncoderConfig, rng *rand.Rand) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	arch := resnetArchs[cfg.Arch]
	return newEncoder(cfg, arch, randomStateDict(arch, rng), selectGemm())
}

// convSpec is one convolution of the architecture and the batch norm after
// it, by their state-dict names.
type convSpec struct {
	conv, bn                string
	cin, cout, k, stride, p int
}

// blockSpec is one residual block; conv3 is nil for a BasicBlock, down
// nil without a downsample.
type blockSpec struct {
	conv1, conv2, conv3, down *convSpec
}

// plan lays out the architecture as torchvision builds it: stem conv1
// (7×7, stride 2, pad 3) + bn1; layerL (L = 1…4, planes 64·2^(L−1), stride
// 1 for layer1 and 2 after) of blocks, the first carrying the stride (in
// the 3×3 conv: torchvision's "ResNet v1.5" Bottleneck) and a downsample
// (1×1 conv, stride, + BN) when the stride or width changes.
func (a resnetArch) plan() (convSpec, []blockSpec) {
	stem := convSpec{conv: "conv1", bn: "bn1", cin: 3, cout: 64, k: 7, stride: 2, p: 3}
	expansion := 1
	if a.bottleneck {
		expansion = 4
	}
	var blocks []blockSpec
	inplanes := 64
	for l, nb := range a.blocks {
		planes := 64 << l
		for bi := range nb {
			stride := 1
			if l > 0 && bi == 0 {
				stride = 2
			}
			pre := fmt.Sprintf("layer%d.%d.", l+1, bi)
			cs := func(i, cin, cout, k, stride int) *convSpec {
				return &convSpec{conv: pre + "conv" + strconv.Itoa(i), bn: pre + "bn" + strconv.Itoa(i), cin: cin, cout: cout, k: k, stride: stride, p: k / 2}
			}
			var b blockSpec
			if a.bottleneck {
				b = blockSpec{
					conv1: cs(1, inplanes, planes, 1, 1),
					conv2: cs(2, planes, planes, 3, stride),
					conv3: cs(3, planes, planes*expansion, 1, 1),
				}
			} else {
				b = blockSpec{conv1: cs(1, inplanes, planes, 3, stride), conv2: cs(2, planes, planes, 3, 1)}
			}
			if stride != 1 || inplanes != planes*expansion {
				b.down = &convSpec{conv: pre + "downsample.0", bn: pre + "downsample.1", cin: inplanes, cout: planes * expansion, k: 1, stride: stride}
			}
			blocks = append(blocks, b)
			inplanes = planes * expansion
		}
	}
	return stem, blocks
}

// newEncoder builds arch (possibly cut short, for tests) from sd.
func newEncoder(cfg EncoderConfig, arch resnetArch, sd map[string]*tensorfile.Tensor, engine gemmEngine) (*Encoder, error) {
	ld := &loader{arch: arch, sd: sd, used: map[string]bool{}, engine: engine}
	stem, blocks := arch.plan()
	e := &Encoder{cfg: cfg, arch: arch, engine: engine}
	var err error
	if e.stem, err = ld.conv(&stem); err != nil {
		return nil, err
	}
	for _, bs := range blocks {
		var b resBlock
		for _, p := range []struct {
			dst  **convLayer
			spec *convSpec
		}{{&b.conv1, bs.conv1}, {&b.conv2, bs.conv2}, {&b.conv3, bs.conv3}, {&b.down, bs.down}} {
			if p.spec == nil {
				continue
			}
			if *p.dst, err = ld.conv(p.spec); err != nil {
				return nil, err
			}
		}
		e.blocks = append(e.blocks, b)
	}
	if err := ld.checkUnused(); err != nil {
		return nil, err
	}
	return e, nil
}

// loader reads tensors out of a state dict, remembering which it used.
type loader struct {
	arch   resnetArch
	sd     map[string]*tensorfile.Tensor
	used   map[string]bool
	engine gemmEngine
}

func (ld *loader) errorf(tensor, format string, args ...any) *WeightsError {
	return &WeightsError{Arch: ld.arch.name, Tensor: tensor, Msg: fmt.Sprintf(format, args...), Hint: ld.hint()}
}

// tensor returns the named tensor's values, checking shape, dtype and
// finiteness.
func (ld *loader) tensor(name string, shape ...int) ([]float32, error) {
	t, ok := ld.sd[name]
	if !ok {
		return nil, ld.errorf(name, "missing from the weights")
	}
	ld.used[name] = true
	if !slices.Equal(t.Shape, shape) {
		return nil, ld.errorf(name, "shape %v, want %v", t.Shape, shape)
	}
	switch t.DType {
	case tensorfile.F32, tensorfile.F16, tensorfile.BF16, tensorfile.F64:
	default:
		return nil, ld.errorf(name, "dtype %s, want a floating-point type (F32, F16, BF16 or F64)", t.DType)
	}
	v, err := t.Float32()
	if err != nil {
		return nil, ld.errorf(name, "%v", err)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, ld.errorf(name, "element %d is %v", i, x)
		}
	}
	return v, nil
}

// conv reads one convolution and its batch norm and folds them.
func (ld *loader) conv(s *convSpec) (*convLayer, error) {
	w, err := ld.tensor(s.conv+".weight", s.cout, s.cin, s.k, s.k)
	if err != nil {
		return nil, err
	}
	var bn [4][]float32 // γ, β, μ, σ²
	for i, suffix := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
		if bn[i], err = ld.tensor(s.bn+suffix, s.cout); err != nil {
			return nil, err
		}
	}
	if _, ok := ld.sd[s.bn+".num_batches_tracked"]; ok {
		ld.used[s.bn+".num_batches_tracked"] = true // training bookkeeping; absent in old checkpoints
	}
	gamma, beta, mean, variance := bn[0], bn[1], bn[2], bn[3]
	for c, v := range variance {
		if v < 0 {
			return nil, ld.errorf(s.bn+".running_var", "element %d is negative (%v)", c, v)
		}
	}
	// Fold: w'[k][co] = w[co][ci][ky][kx]·scale[co] with k = (ky·K + kx)·cin + ci.
	kdim := s.k * s.k * s.cin
	folded := make([]float32, kdim*s.cout)
	bias := make([]float32, s.cout)
	for co := range s.cout {
		scale := float64(gamma[co]) / math.Sqrt(float64(variance[co])+bnEps)
		bias[co] = float32(float64(beta[co]) - float64(mean[co])*scale)
		for ci := range s.cin {
			for ky := range s.k {
				for kx := range s.k {
					v := w[((co*s.cin+ci)*s.k+ky)*s.k+kx]
					folded[((ky*s.k+kx)*s.cin+ci)*s.cout+co] = float32(float64(v) * scale)
				}
			}
		}
	}
	return newConvLayer(s.conv, ld.engine, s.cin, s.cout, s.k, s.k, s.stride, s.p, folded, bias), nil
}

// checkUnused reports keys that are neither used nor the classifier.
func (ld *loader) checkUnused() error {
	var extra []string
	for k := range ld.sd {
		if !ld.used[k] && k != "fc.weight" && k != "fc.bias" {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.SortFunc(extra, naturalCompare)
	err := ld.errorf(extra[0], "no such tensor in %s", ld.arch.name)
	err.More = len(extra) - 1
	return err
}

// hint guesses what went wrong when the weights do not fit.
func (ld *loader) hint() string {
	if guess := guessArch(ld.sd); guess != "" && guess != ld.arch.name {
		return fmt.Sprintf("the weights look like %s; use --encoder %s", guess, guess)
	}
	if _, ok := ld.sd["conv1.weight"]; !ok {
		for k := range ld.sd {
			if p, ok := strings.CutSuffix(k, "conv1.weight"); ok && p != "" && !strings.Contains(p, "layer") {
				if _, ok := ld.sd[p+"bn1.weight"]; ok {
					return fmt.Sprintf("every key starts with %q: save the bare torchvision model's state_dict() (e.g. model.module.state_dict())", p)
				}
			}
		}
		return "this does not look like a torchvision ResNet state dict"
	}
	return ""
}

// guessArch names the torchvision ResNet whose keys sd has: Bottleneck or
// BasicBlock from layer1.0.conv3, depth from the number of blocks per
// stage. "" when no architecture matches.
func guessArch(sd map[string]*tensorfile.Tensor) string {
	_, bottleneck := sd["layer1.0.conv3.weight"]
	var blocks [4]int
	for k := range sd {
		var l, b int
		if n, _ := fmt.Sscanf(k, "layer%d.%d.", &l, &b); n == 2 && l >= 1 && l <= 4 {
			blocks[l-1] = max(blocks[l-1], b+1)
		}
	}
	for _, a := range resnetArchs {
		if a.bottleneck == bottleneck && a.blocks == blocks {
			return a.name
		}
	}
	return ""
}

// naturalCompare orders keys with their numbers compared as numbers, so
// that layer3.2 comes before layer3.10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da > 0 && db > 0 {
			na, _ := strconv.Atoi(a[:da])
			nb, _ := strconv.Atoi(b[:db])
			if na != nb {
				return na - nb
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitsPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// randomStateDict is a torchvision state dict for arch with torchvision's
// initialisation drawn from rng (see RandomEncoder), in plan order.
func randomStateDict(arch resnetArch, rng *rand.Rand) map[string]*tensorfile.Tensor {
	sd := map[string]*tensorfile.Tensor{}
	add := func(s *convSpec) {
		if s == nil {
			return
		}
		std := math.Sqrt(2 / float64(s.cout*s.k*s.k))
		w := make([]float32, s.cout*s.cin*s.k*s.k)
		for i := range w {
			w[i] = float32(rng.NormFloat64() * std)
		}
		sd[s.conv+".weight"] = tensorfile.NewF32(s.conv+".weight", []int{s.cout, s.cin, s.k, s.k}, w)
		ones, zeros := make([]float32, s.cout), make([]float32, s.cout)
		for i := range ones {
			ones[i] = 1
		}
		for suffix, v := range map[string][]float32{".weight": ones, ".bias": zeros, ".running_mean": zeros, ".running_var": ones} {
			sd[s.bn+suffix] = tensorfile.NewF32(s.bn+suffix, []int{s.cout}, v)
		}
	}
	stem, blocks := arch.plan()
	add(&stem)
	for _, b := range blocks {
		add(b.conv1)
		add(b.conv2)
		add(b.conv3)
		add(b.down)
	}
	return sd
}
