package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/captionctl/captionctl/internal/tensorfile"
)

// relTol is the parity bound with PyTorch: max |Δ| ≤ relTol · max |ref|.
const relTol = 1e-4

// loadF32 reads a safetensors file into float32 slices and shapes.
func loadF32(t testing.TB, path string) (map[string][]float32, map[string][]int, map[string]*tensorfile.Tensor) {
	t.Helper()
	tensors, _, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	vals, shapes := map[string][]float32{}, map[string][]int{}
	for name, tt := range tensors {
		if tt.DType != tensorfile.F32 {
			continue
		}
		v, err := tt.Float32()
		if err != nil {
			t.Fatal(err)
		}
		vals[name], shapes[name] = v, tt.Shape
	}
	return vals, shapes, tensors
}

// nhwcFromNCHW converts a PyTorch NCHW reference to NHWC.
func nhwcFromNCHW(v []float32, shape []int) []float32 {
	n, c, h, w := shape[0], shape[1], shape[2], shape[3]
	out := make([]float32, len(v))
	for i := range n {
		for ch := range c {
			for y := range h {
				for x := range w {
					out[((i*h+y)*w+x)*c+ch] = v[((i*c+ch)*h+y)*w+x]
				}
			}
		}
	}
	return out
}

// relErr is max |got − want| / max |want|.
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	return d / m
}

// TestEncoderTruncatedParity runs the committed fixture: torchvision's
// resnet50 and resnet18 (random weights, random BN statistics, seed in
// tools/make_resnet_fixtures.py) cut after layer2.0, on a seeded 2×3×64×64
// input; every intermediate map and both pooled grids must match what
// PyTorch 1.13 computed, with every GEMM engine of this build. The 8×8 map
// pooled to 7×7 has overlapping windows, to 14×14 repeated pixels. A second
// input of 50 pixels makes every map after the stem odd-sized.
func TestEncoderTruncatedParity(t *testing.T) {
	refs, shapes, _ := loadF32(t, filepath.Join("testdata", "resnet", "trunc_ref.safetensors"))
	input := refs["input"]
	for _, tc := range []struct {
		arch   resnetArch
		grids  []int
		stages []string
	}{
		{resnetArch{"resnet50", true, [4]int{1, 1, 0, 0}}, []int{7}, []string{"stem", "out"}},
		{resnetArch{"resnet18", false, [4]int{2, 1, 0, 0}}, []int{7, 14}, []string{"stem", "layer1", "out"}},
	} {
		_, _, sd := loadF32(t, filepath.Join("testdata", "resnet", tc.arch.name+"_trunc.safetensors"))
		for _, engine := range gemmEngines() {
			for _, grid := range tc.grids {
				name := fmt.Sprintf("%s/grid=%d/gemm=%s", tc.arch.name, grid, engine.name())
				cfg := EncoderConfig{Arch: tc.arch.name, Grid: grid, ImageSize: 64, Threads: 2}
				e, err := newEncoder(cfg, tc.arch, sd, engine)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				got := map[string][]float32{}
				e.trace = func(stage string, a activation) {
					if stage == "layer2" {
						stage = "out"
					}
					got[stage] = append([]float32(nil), a.data[:a.pixels()*a.c]...)
				}
				feats, err := e.Forward(input, 2)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, stage := range tc.stages {
					key := tc.arch.name + "." + stage
					want := nhwcFromNCHW(refs[key], shapes[key])
					if len(got[stage]) != len(want) {
						t.Fatalf("%s: %s has %d values, PyTorch's %v", name, stage, len(got[stage]), shapes[key])
					}
					if r := relErr(got[stage], want); r > relTol {
						t.Errorf("%s: %s max|Δ|/max|ref| = %.3g > %g", name, stage, r, relTol)
					}
				}
				want := refs[fmt.Sprintf("%s.grid%d", tc.arch.name, grid)]
				if len(feats) != len(want) || e.FeatureLen()*2 != len(want) {
					t.Fatalf("%s: %d features, PyTorch %d", name, len(feats), len(want))
				}
				r := relErr(feats, want)
				if r > relTol {
					t.Errorf("%s: features max|Δ|/max|ref| = %.3g > %g", name, r, relTol)
				}
				t.Logf("%s: features max|Δ|/max|ref| = %.2g", name, r)
			}
			if tc.arch.name != "resnet18" {
				continue
			}
			// 50-pixel input: odd maps (13×13 after the stem, 7×7 after layer2.0).
			cfg := EncoderConfig{Arch: tc.arch.name, Grid: 7, ImageSize: 50, Threads: 2}
			e, err := newEncoder(cfg, tc.arch, sd, engine)
			if err != nil {
				t.Fatal(err)
			}
			var got []float32
			e.trace = func(stage string, a activation) {
				if stage == "layer2" {
					got = append([]float32(nil), a.data[:a.pixels()*a.c]...)
				}
			}
			if _, err := e.Forward(refs["input_odd"], 2); err != nil {
				t.Fatal(err)
			}
			want := nhwcFromNCHW(refs["resnet18.odd_out"], shapes["resnet18.odd_out"])
			if len(got) != len(want) {
				t.Fatalf("resnet18 on 50 pixels, gemm %s: %d values, PyTorch %v", engine.name(), len(got), shapes["resnet18.odd_out"])
			}
			if r := relErr(got, want); r > relTol {
				t.Errorf("resnet18 on 50 pixels, gemm %s: max|Δ|/max|ref| = %.3g > %g", engine.name(), r, relTol)
			}
		}
	}
}

// TestEncoderParityFull checks whole networks of every depth at grid 7 and
// 14 against PyTorch on two real photos. The weights are 45–240 MB each and
// not committed; make them (a few minutes) and run:
//
//	/usr/bin/python3 tools/make_resnet_fixtures.py --full /tmp/resnet-full
//	CAPTIONCTL_RESNET_DIR=/tmp/resnet-full go test ./model -run TestEncoderParityFull -v
func TestEncoderParityFull(t *testing.T) {
	dir := os.Getenv("CAPTIONCTL_RESNET_DIR")
	if dir == "" {
		t.Skip("CAPTIONCTL_RESNET_DIR not set: full-size parity needs tools/make_resnet_fixtures.py --full DIR (see the test's comment)")
	}
	for _, arch := range EncoderArchs() {
		sd, err := tensorfile.Load(filepath.Join(dir, arch+".pth"))
		if err != nil {
			t.Fatal(err)
		}
		refs, _, _ := loadF32(t, filepath.Join(dir, arch+"_ref.safetensors"))
		for _, engine := range gemmEngines() {
			cfg := EncoderConfig{Arch: arch, Grid: 7, ImageSize: 224}
			e, err := newEncoder(cfg, resnetArchs[arch], sd, engine)
			if err != nil {
				t.Fatal(err)
			}
			for _, grid := range []int{7, 14} {
				e.cfg.Grid = grid
				feats, err := e.Forward(refs["input"], 2)
				if err != nil {
					t.Fatal(err)
				}
				want := refs[fmt.Sprintf("grid%d", grid)]
				if len(feats) != len(want) {
					t.Fatalf("%s grid %d: %d features, PyTorch %d", arch, grid, len(feats), len(want))
				}
				r := relErr(feats, want)
				if r > relTol {
					t.Errorf("%s grid %d gemm %s: max|Δ|/max|ref| = %.3g > %g", arch, grid, engine.name(), r, relTol)
				}
				t.Logf("%s grid %2d gemm %-8s max|Δ|/max|ref| = %.2g", arch, grid, engine.name(), r)
			}
		}
	}
}

// smallEncoder is a seeded resnet18 on 64-pixel images, quick to run.
func smallEncoder(t testing.TB, seed uint64, threads int) *Encoder {
	t.Helper()
	cfg := EncoderConfig{Arch: "resnet18", Grid: 7, ImageSize: 64, Threads: threads}
	e, err := newEncoder(cfg, resnetArchs["resnet18"], seededResNet18(seed), selectGemm())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// seededResNet18 caches randomStateDict(resnet18) by seed: drawing 11M
// weights takes a good part of a second.
func seededResNet18(seed uint64) map[string]*tensorfile.Tensor {
	v, _ := stateDicts.LoadOrStore(seed, sync.OnceValue(func() map[string]*tensorfile.Tensor {
		return randomStateDict(resnetArchs["resnet18"], rand.New(rand.NewPCG(seed, 1)))
	}))
	return v.(func() map[string]*tensorfile.Tensor)()
}

var stateDicts sync.Map

// zeroStateDict has arch's keys and shapes with zero values: enough to
// test what NewEncoder says about keys and shapes, quickly.
func zeroStateDict(arch resnetArch) map[string]*tensorfile.Tensor {
	sd := map[string]*tensorfile.Tensor{}
	add := func(s *convSpec) {
		if s == nil {
			return
		}
		shape := []int{s.cout, s.cin, s.k, s.k}
		sd[s.conv+".weight"] = &tensorfile.Tensor{Name: s.conv + ".weight", DType: tensorfile.F32, Shape: shape, Data: make([]byte, 4*s.cout*s.cin*s.k*s.k)}
		for _, suffix := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
			sd[s.bn+suffix] = &tensorfile.Tensor{Name: s.bn + suffix, DType: tensorfile.F32, Shape: []int{s.cout}, Data: make([]byte, 4*s.cout)}
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

// TestEncoderBatchIndependence: an image's features do not depend on the
// batch it is in, on the batch sizes seen before (buffer reuse), on the
// number of threads, or on concurrent callers.
func TestEncoderBatchIndependence(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 3
	input := randSlice(rng, n*3*64*64)
	e := smallEncoder(t, 1, 2)
	batch, err := e.Forward(input, n)
	if err != nil {
		t.Fatal(err)
	}
	fl := e.FeatureLen()
	for i := range n {
		one, err := e.Forward(input[i*3*64*64:(i+1)*3*64*64], 1)
		if err != nil {
			t.Fatal(err)
		}
		if r := relErr(one, batch[i*fl:(i+1)*fl]); r > 1e-6 {
			t.Errorf("image %d alone vs in a batch of %d: max|Δ|/max = %.3g", i, n, r)
		}
	}
	e3 := smallEncoder(t, 1, 3)
	var wg sync.WaitGroup
	results := make([][]float32, 4)
	for g := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[g], _ = e3.Forward(input, n)
		}()
	}
	wg.Wait()
	for g, r := range results {
		if d := relErr(r, batch); d > 1e-6 {
			t.Errorf("3 threads, concurrent call %d vs 2 threads: max|Δ|/max = %.3g", g, d)
		}
	}
}

// TestRandomEncoderSeeded: same seed, same encoder; another seed, another.
func TestRandomEncoderSeeded(t *testing.T) {
	input := randSlice(rand.New(rand.NewPCG(5, 6)), 3*64*64)
	a, _ := smallEncoder(t, 7, 2).Forward(input, 1)
	b, _ := smallEncoder(t, 7, 2).Forward(input, 1)
	c, _ := smallEncoder(t, 8, 2).Forward(input, 1)
	if relErr(a, b) != 0 {
		t.Error("two encoders from seed 7 differ")
	}
	if relErr(a, c) < 1e-3 {
		t.Error("encoders from seeds 7 and 8 agree")
	}
}

// TestRandomEncoderInit checks the drawn weights against torchvision's
// kaiming_normal_(fan_out, relu): std √(2/(cout·k²)).
func TestRandomEncoderInit(t *testing.T) {
	sd := randomStateDict(resnetArchs["resnet18"], rand.New(rand.NewPCG(1, 1)))
	for _, name := range []string{"conv1.weight", "layer3.0.conv2.weight", "layer4.0.downsample.0.weight"} {
		w, err := sd[name].Float32()
		if err != nil {
			t.Fatal(err)
		}
		var ss float64
		for _, v := range w {
			ss += float64(v) * float64(v)
		}
		s := sd[name].Shape
		want := math.Sqrt(2 / float64(s[0]*s[2]*s[3]))
		if got := math.Sqrt(ss / float64(len(w))); math.Abs(got/want-1) > 0.05 {
			t.Errorf("%s: std %.4g, want %.4g", name, got, want)
		}
	}
	// torchvision's resnet18 state dict has 122 keys: these, the 20 batch
	// norms' num_batches_tracked and fc.weight, fc.bias.
	if len(sd) != 100 {
		t.Errorf("resnet18 random state dict: %d tensors, want 100", len(sd))
	}
}

// TestNewEncoderErrors: each way a state dict can be wrong gives a
// *WeightsError naming the tensor, with a hint where one can be given.
func TestNewEncoderErrors(t *testing.T) {
	r18 := zeroStateDict(resnetArchs["resnet18"])
	r50 := zeroStateDict(resnetArchs["resnet50"])
	edit := func(base map[string]*tensorfile.Tensor, f func(map[string]*tensorfile.Tensor)) map[string]*tensorfile.Tensor {
		sd := make(map[string]*tensorfile.Tensor, len(base))
		for k, v := range base {
			sd[k] = v
		}
		f(sd)
		return sd
	}
	cfg := func(arch string) EncoderConfig { return EncoderConfig{Arch: arch, Grid: 7, ImageSize: 224} }
	for _, tc := range []struct {
		name   string
		arch   string
		sd     map[string]*tensorfile.Tensor
		tensor string
		want   []string // substrings of the message; nil: must load
	}{
		{"resnet50 weights as resnet18", "resnet18", r50, "layer1.0.conv1.weight",
			[]string{"shape [64 64 1 1], want [64 64 3 3]", "the weights look like resnet50; use --encoder resnet50"}},
		{"resnet18 weights as resnet34", "resnet34", r18, "layer1.2.conv1.weight",
			[]string{"missing", "look like resnet18; use --encoder resnet18"}},
		{"resnet18 weights as resnet50", "resnet50", r18, "layer1.0.conv1.weight", []string{"use --encoder resnet18"}},
		{"missing BN stat", "resnet18", edit(r18, func(sd map[string]*tensorfile.Tensor) { delete(sd, "layer3.1.bn2.running_var") }),
			"layer3.1.bn2.running_var", []string{"missing from the weights"}},
		{"unexpected key", "resnet18", edit(r18, func(sd map[string]*tensorfile.Tensor) {
			sd["layer2.0.se.weight"] = tensorfile.NewF32("layer2.0.se.weight", []int{1}, []float32{1})
		}), "layer2.0.se.weight", []string{"no such tensor in resnet18"}},
		{"integer weights", "resnet18", edit(r18, func(sd map[string]*tensorfile.Tensor) {
			sd["layer4.1.bn1.bias"] = tensorfile.NewI64("layer4.1.bn1.bias", []int{512}, make([]int64, 512))
		}), "layer4.1.bn1.bias", []string{"dtype I64"}},
		{"NaN weight", "resnet18", edit(r18, func(sd map[string]*tensorfile.Tensor) {
			sd["layer4.1.bn1.bias"] = tensorfile.NewF32("layer4.1.bn1.bias", []int{512}, append(make([]float32, 511), float32(math.NaN())))
		}), "layer4.1.bn1.bias", []string{"element 511 is NaN"}},
		{"DataParallel prefix", "resnet18", func() map[string]*tensorfile.Tensor {
			sd := map[string]*tensorfile.Tensor{}
			for k, v := range r18 {
				sd["module."+k] = v
			}
			return sd
		}(), "conv1.weight", []string{`every key starts with "module."`}},
		{"classifier and num_batches_tracked ignored", "resnet18", edit(r18, func(sd map[string]*tensorfile.Tensor) {
			sd["fc.weight"] = tensorfile.NewF32("fc.weight", []int{1000, 512}, make([]float32, 512000))
			sd["fc.bias"] = tensorfile.NewF32("fc.bias", []int{1000}, make([]float32, 1000))
			sd["bn1.num_batches_tracked"] = tensorfile.NewI64("bn1.num_batches_tracked", nil, []int64{7})
			sd["layer1.0.bn1.weight"] = tensorfile.NewF16("layer1.0.bn1.weight", []int{64}, make([]float32, 64))
		}), "", nil},
	} {
		_, err := NewEncoder(cfg(tc.arch), tc.sd)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var we *WeightsError
		if !errors.As(err, &we) {
			t.Errorf("%s: error %v, want a *WeightsError", tc.name, err)
			continue
		}
		if we.Tensor != tc.tensor {
			t.Errorf("%s: error names %q, want %q (%v)", tc.name, we.Tensor, tc.tensor, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestEncoderConfigValidate(t *testing.T) {
	if err := DefaultEncoderConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  EncoderConfig
		want string
	}{
		{EncoderConfig{Arch: "resnet20", Grid: 7, ImageSize: 224}, `--encoder must be one of [resnet18 resnet34 resnet50 resnet101 resnet152], got "resnet20"`},
		{EncoderConfig{Arch: "resnet18", Grid: 5, ImageSize: 224}, "--grid must be 7 or 14, got 5"},
		{EncoderConfig{Arch: "resnet18", Grid: 7, ImageSize: 16}, "--image-size must be between 32 and 2048 pixels, got 16"},
		{EncoderConfig{Arch: "resnet18", Grid: 7, ImageSize: 224, Threads: -1}, "got -1"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestEncoderForwardErrors(t *testing.T) {
	e := smallEncoder(t, 1, 1)
	if _, err := e.Forward(make([]float32, 5), 1); err == nil || !strings.Contains(err.Error(), "want 12288") {
		t.Errorf("short input: %v", err)
	}
	if _, err := e.Forward(nil, 0); err == nil {
		t.Error("batch 0: no error")
	}
	if err := e.ForwardInto(make([]float32, 3), make([]float32, 3*64*64), 1); err == nil {
		t.Error("short output: no error")
	}
	if e.Channels() != 512 || e.Grid() != 7 || e.FeatureLen() != 49*512 {
		t.Errorf("resnet18: %d channels, grid %d", e.Channels(), e.Grid())
	}
}

// BenchmarkEncoder times a forward pass with random weights on 224-pixel
// images and the engine this build selects; GOMAXPROCS sets the threads.
// tools/bench_encoder.sh compares it with PyTorch at the same thread count.
func BenchmarkEncoder(b *testing.B) {
	for _, arch := range []string{"resnet50", "resnet18", "resnet101"} {
		for _, batch := range []int{8, 1, 2, 4, 16} {
			b.Run(fmt.Sprintf("arch=%s/batch=%d", arch, batch), func(b *testing.B) {
				benchEncoder(b, arch, batch, selectGemm())
			})
		}
	}
}

// BenchmarkEncoderEngines is BenchmarkEncoder with every engine of the
// build, e.g. gemm=openblas in the -tags openblas build.
func BenchmarkEncoderEngines(b *testing.B) {
	for _, arch := range []string{"resnet50"} {
		for _, batch := range []int{8} {
			for _, engine := range gemmEngines() {
				b.Run(fmt.Sprintf("arch=%s/batch=%d/gemm=%s", arch, batch, engine.name()), func(b *testing.B) {
					benchEncoder(b, arch, batch, engine)
				})
			}
		}
	}
}

func benchEncoder(b *testing.B, arch string, batch int, engine gemmEngine) {
	cfg := EncoderConfig{Arch: arch, Grid: 7, ImageSize: 224}
	e, err := newEncoder(cfg, resnetArchs[arch], randomStateDict(resnetArchs[arch], rand.New(rand.NewPCG(1, 1))), engine)
	if err != nil {
		b.Fatal(err)
	}
	input := randSlice(rand.New(rand.NewPCG(2, 2)), batch*3*224*224)
	out := make([]float32, batch*e.FeatureLen())
	if err := e.ForwardInto(out, input, batch); err != nil { // warm-up: buffers
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.ForwardInto(out, input, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
	b.Logf("gemm %s, %d threads", e.Backend(), e.workers())
}
