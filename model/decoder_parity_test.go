package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"
)

// The PyTorch parity check at real sizes. tools/decoder_reference.py
// implements the decoder independently in PyTorch (LSTMCell on the
// concatenated input, cross_entropy over packed real tokens) and writes
// testdata/decoder/parity.json: the loss and, per parameter, the
// gradient's L2 norm, 64 sampled entries and its dot product with a
// generated vector. Weights, features, captions and dropout masks are not
// committed: both sides regenerate them from splitmix64, as specified in
// the script's docstring and implemented by decSplitMix below.
//
// Gorgonia's Slice bug (bounds hashed as bytes) only shows once a bound
// reaches 256, so this runs at B = 32, T = 16, all dimensions 512.

// decSplitMix is the splitmix64 stream of tools/decoder_reference.py.
func decSplitMix(seed uint64, n int) []uint64 {
	const gamma = 0x9E3779B97F4A7C15
	out := make([]uint64, n)
	for i := range out {
		z := seed + uint64(i+1)*gamma
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		out[i] = z ^ z>>31
	}
	return out
}

func decUnit(x uint64) float64 { return float64(x>>40) * 0x1p-24 }

// decUniform returns n values float32(lo + (hi−lo)·u) from stream seed.
func decUniform(seed uint64, n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i, x := range decSplitMix(seed, n) {
		out[i] = float32(lo + (hi-lo)*decUnit(x))
	}
	return out
}

// decFillFloats copies float32 values into a float32 or float64 tensor.
func decFillFloats(t *tensor.Dense, v []float32) {
	for i, x := range v {
		decSet(t, i, float64(x))
	}
}

type decParityParam struct {
	Name       string    `json:"name"`
	Shape      []int     `json:"shape"`
	Norm       float64   `json:"norm"`
	Projection float64   `json:"projection"`
	Indices    []int     `json:"indices"`
	Samples    []float64 `json:"samples"`
}

type decParityCase struct {
	Config       DecoderConfig    `json:"config"`
	Batch        int              `json:"batch"`
	Steps        int              `json:"steps"`
	Loss         float64          `json:"loss"`
	CrossEntropy float64          `json:"cross_entropy"`
	Penalty      float64          `json:"penalty"`
	Tokens       int              `json:"tokens"`
	Params       []decParityParam `json:"params"`
}

// decParityRun regenerates a case's inputs and returns the Go decoder's
// loss and gradients in dtype.
func decParityRun(t *testing.T, c decParityCase, dt tensor.Dtype) (DecoderLoss, []DecoderTensor) {
	t.Helper()
	cfg := c.Config
	B, T, P, F, H, V := c.Batch, c.Steps, cfg.GridCells, cfg.FeatureDim, cfg.HiddenDim, cfg.VocabSize
	p, err := NewDecoderParamsZero(cfg, dt)
	if err != nil {
		t.Fatal(err)
	}
	for k, nt := range p.Tensors() {
		decFillFloats(nt.Tensor, decUniform(1000+uint64(k), nt.Tensor.Shape().TotalSize(), -0.1, 0.1))
	}
	features := tensor.New(tensor.Of(dt), tensor.WithShape(B, P, F))
	decFillFloats(features, decUniform(2000, B*P*F, 0, 1))
	lens := decSplitMix(4000, B)
	captions := make([][]int, B)
	for b := range captions {
		n := T + 1
		if b > 0 {
			n = 2 + int(lens[b]%uint64(T))
		}
		caption := []int{1}
		for _, x := range decSplitMix(4001+uint64(b), n-2) {
			caption = append(caption, 4+int(x%uint64(V-4)))
		}
		captions[b] = append(caption, 2)
	}

	tg, err := NewDecoderTrainGraph(p, B, T)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	if err := tg.SetBatch(features, captions); err != nil {
		t.Fatal(err)
	}
	keep := 1 / (1 - cfg.Dropout)
	for step := range T {
		for i, x := range decSplitMix(3000+uint64(step), B*H) {
			v := keep
			if decUnit(x) < cfg.Dropout {
				v = 0
			}
			tg.setMask(step, i, v)
		}
	}
	loss, err := tg.Run()
	if err != nil {
		t.Fatal(err)
	}
	grads, err := tg.Grads()
	if err != nil {
		t.Fatal(err)
	}
	return loss, grads
}

func decFloat64s(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float64:
		return d
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	panic("not a float tensor")
}

// decParityCompare reports the worst agreement between the Go gradients
// and a case's reference, and fails above tol.
func decParityCompare(t *testing.T, c decParityCase, loss DecoderLoss, grads []DecoderTensor, tol float64) {
	t.Helper()
	rel := func(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }
	if loss.Tokens != c.Tokens {
		t.Errorf("tokens %d, reference %d", loss.Tokens, c.Tokens)
	}
	lossErr := rel(loss.Loss, c.Loss)
	if lossErr > tol || rel(loss.CrossEntropy, c.CrossEntropy) > tol {
		t.Errorf("loss %.9g (CE %.9g), reference %.9g (CE %.9g): relative error %.2g", loss.Loss, loss.CrossEntropy, c.Loss, c.CrossEntropy, lossErr)
	}
	if len(grads) != len(c.Params) {
		t.Fatalf("%d gradients, reference has %d", len(grads), len(c.Params))
	}
	minCos, maxNorm, maxSample, maxProj := 1.0, 0.0, 0.0, 0.0
	for k, ref := range c.Params {
		g := grads[k]
		if g.Name != ref.Name || !g.Tensor.Shape().Eq(tensor.Shape(ref.Shape)) {
			t.Fatalf("gradient %d is %s %v, reference %s %v", k, g.Name, g.Tensor.Shape(), ref.Name, ref.Shape)
		}
		data := decFloat64s(g.Tensor)
		var norm, proj float64
		r := decUniform(5000+uint64(k), len(data), -1, 1)
		var rNorm float64
		for i, v := range data {
			norm += v * v
			proj += v * float64(r[i])
			rNorm += float64(r[i]) * float64(r[i])
		}
		norm = math.Sqrt(norm)
		// Error of the projection relative to its typical size ‖g‖·rms(r).
		projErr := math.Abs(proj-ref.Projection) / (ref.Norm * math.Sqrt(rNorm/float64(len(data))))
		var dot, gg, rr, diff float64
		for j, i := range ref.Indices {
			got, want := data[i], ref.Samples[j]
			dot += got * want
			gg += got * got
			rr += want * want
			diff += (got - want) * (got - want)
		}
		if rr == 0 {
			t.Fatalf("%s: the reference's sampled entries are all zero; pick other indices", ref.Name)
		}
		cos := dot / math.Sqrt(gg*rr)
		sampleErr := math.Sqrt(diff / rr)
		if math.IsNaN(cos) || math.IsNaN(norm) || math.IsNaN(proj) {
			t.Fatalf("%s: NaN in the gradient", ref.Name)
		}
		normErr := rel(norm, ref.Norm)
		if cos < 1-tol || normErr > tol || sampleErr > tol || projErr > tol {
			t.Errorf("%s: cosine %.8f, norm %.6g vs %.6g (rel %.2g), samples rel %.2g, projection %.6g vs %.6g (rel %.2g)",
				ref.Name, cos, norm, ref.Norm, normErr, sampleErr, proj, ref.Projection, projErr)
		}
		minCos = math.Min(minCos, cos)
		maxNorm = math.Max(maxNorm, normErr)
		maxSample = math.Max(maxSample, sampleErr)
		maxProj = math.Max(maxProj, projErr)
	}
	t.Logf("%s %v: loss %.9g vs %.9g (rel %.2g); gradients of %d tensors: min cosine 1 − %.2g, max rel error: norm %.2g, samples %.2g, projection %.2g",
		c.Config.Arch, grads[0].Tensor.Dtype(), loss.Loss, c.Loss, lossErr, len(grads), 1-minCos, maxNorm, maxSample, maxProj)
}

func decLoadParity(t *testing.T) []decParityCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "decoder", "parity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []decParityCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

// TestDecoderPyTorchParity: float32 loss and gradients within 1e-4 of
// PyTorch's at B = 32, T = 16, dims 512, 7×7 grid, vocabulary 1000.
func TestDecoderPyTorchParity(t *testing.T) {
	for _, c := range decLoadParity(t) {
		t.Run(c.Config.Arch, func(t *testing.T) {
			loss, grads := decParityRun(t, c, tensor.Float32)
			decParityCompare(t, c, loss, grads, 1e-4)
		})
	}
}

// TestDecoderPyTorchParityFloat64 runs the same cases in float64, where
// any wrong gradient path shows far above rounding: agreement to 1e-9.
func TestDecoderPyTorchParityFloat64(t *testing.T) {
	if testing.Short() {
		t.Skip("float64 parity at real sizes: skipped with -short (the float32 check still runs)")
	}
	for _, c := range decLoadParity(t) {
		t.Run(c.Config.Arch, func(t *testing.T) {
			loss, grads := decParityRun(t, c, tensor.Float64)
			decParityCompare(t, c, loss, grads, 1e-9)
		})
	}
}
