package infer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/model"
)

// The PyTorch parity check of beam search (issue 6 §1). The Go side
// generates a small model of each architecture and 50 images' features
// from splitmix64 (beamParityModel, beamParityFeatures); with
// -beam-parity-write DIR it writes them to DIR/ARCH/model.safetensors (a
// captionctl model file) and DIR/ARCH/features.safetensors (F32
// "features", (n, P, F)). tools/beam_reference.py reads those two files,
// runs the decoder step and beam search independently in PyTorch (float64
// on the float32 weights) and writes testdata/beam/ARCH.json: for K = 1,
// 3, 5 each image's caption (token ids) and score. The fixture also records
// the sha256 of the weights and features it read (beamParityDigests), so
// a change of the generator here cannot go unnoticed, while a change of
// the model file's metadata does not invalidate it. Regenerate:
//
//	go test ./infer -run TestBeamPyTorchParity -beam-parity-write /tmp/beam
//	for arch in attention showtell; do
//	  /usr/bin/python3 tools/beam_reference.py --model /tmp/beam/$arch/model.safetensors \
//	      --features /tmp/beam/$arch/features.safetensors --out infer/testdata/beam/$arch.json
//	done

var beamParityWrite = flag.String("beam-parity-write", "", "write the beam parity model and features to `DIR` (for tools/beam_reference.py)")

// beamParityConfig is the fixtures' decoder, but for its Arch: vocabulary
// 300, 7×7 grid of 64 channels, embedding and attention 64, LSTM 96.
var beamParityConfig = model.DecoderConfig{VocabSize: 300, FeatureDim: 64, GridCells: 49,
	EmbedDim: 64, AttentionDim: 64, HiddenDim: 96, Dropout: 0.5, AlphaC: 1}

// beamParityNearTie is the score gap below which the reference's ranking
// of two candidates may legitimately differ from the float32 search's.
const beamParityNearTie = 1e-4

// beamParityImages is the number of images of the fixture.
const beamParityImages = 50

// beamParityGain scales a parameter's U(−0.1, 0.1) draw so that the
// random model's captions are varied: peaked word distributions (output
// and embedding weights), a recurrence that depends on the words, and an
// <end> that wins at varied steps (see beamParityModel).
var beamParityGain = map[string]float64{
	"decoder.embedding.weight": 10,
	"decoder.output.weight":    15,
	"decoder.output.bias":      10,
	"decoder.image.weight":     10,
}

// beamParityEndBias, by architecture, is added to <end>'s output bias,
// and beamParityEndGain multiplies <end>'s column of the output weight, so
// that <end> wins at varied steps.
var beamParityEndBias = map[string]float32{model.ArchAttention: -1, model.ArchShowTell: -2.5}

const beamParityEndGain = 3.0

// beamSplitMix is the splitmix64 stream of tools/decoder_reference.py:
// the n first outputs from state seed.
func beamSplitMix(seed uint64, n int) []uint64 {
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

// beamUniform returns n values float32(lo + (hi−lo)·u), u = (x>>40)·2⁻²⁴.
func beamUniform(seed uint64, n int, lo, hi float64) []float32 {
	out := make([]float32, n)
	for i, x := range beamSplitMix(seed, n) {
		out[i] = float32(lo + (hi-lo)*float64(x>>40)*0x1p-24)
	}
	return out
}

// beamParityModel returns the fixture's model: parameter k (canonical
// order) from stream 1000+k, U(−0.1g, 0.1g) with g its gain (1 unless in
// beamParityGain), plus beamParityEndBias on <end>'s output bias; the
// vocabulary <pad> <start> <end> <unk> w000 … w295.
func beamParityModel(t testing.TB, arch string) *model.ModelFile {
	t.Helper()
	cfg := beamParityConfig
	cfg.Arch = arch
	p, err := model.NewDecoderParamsZero(cfg, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	for k, pt := range p.Tensors() {
		g, ok := beamParityGain[pt.Name]
		if !ok {
			g = 1
		}
		copy(pt.Tensor.Data().([]float32), beamUniform(1000+uint64(k), pt.Tensor.Shape().TotalSize(), -0.1*g, 0.1*g))
	}
	p.OutputBias.Data().([]float32)[data.EndID] += beamParityEndBias[arch]
	wo := p.Output.Data().([]float32) // (H, V)
	for h := range cfg.HiddenDim {
		wo[h*cfg.VocabSize+data.EndID] *= beamParityEndGain
	}
	words := make([]string, cfg.VocabSize-4)
	for i := range words {
		words[i] = fmt.Sprintf("w%03d", i)
	}
	vocab := data.BuildVocab([][]string{words}, 1)
	if vocab.Len() != cfg.VocabSize {
		t.Fatalf("vocabulary of %d tokens, want %d", vocab.Len(), cfg.VocabSize)
	}
	return &model.ModelFile{Config: cfg, Params: p, Vocab: vocab}
}

// beamParityFeatures returns the images' features (n, P, F): per image
// and channel a level from stream 2000, U(−1, 1), plus per cell U(−1, 1)
// from stream 2001, so that images differ in their mean feature (which
// sets the LSTM's initial state) as well as cell by cell.
func beamParityFeatures() []float32 {
	n, P, F := beamParityImages, beamParityConfig.GridCells, beamParityConfig.FeatureDim
	level := beamUniform(2000, n*F, -1, 1)
	cell := beamUniform(2001, n*P*F, -1, 1)
	out := make([]float32, n*P*F)
	for i := range n {
		for p := range P {
			for f := range F {
				j := (i*P+p)*F + f
				out[j] = level[i*F+f] + cell[j]
			}
		}
	}
	return out
}

// beamParityFiles writes the model and features files into dir.
func beamParityFiles(t testing.TB, dir string, m *model.ModelFile, feats []float32) {
	t.Helper()
	if err := model.SaveModel(filepath.Join(dir, "model.safetensors"), m); err != nil {
		t.Fatal(err)
	}
	cfg := m.Config
	ft := tensorfile.NewF32("features", []int{len(feats) / (cfg.GridCells * cfg.FeatureDim), cfg.GridCells, cfg.FeatureDim}, feats)
	if err := tensorfile.WriteSafetensors(filepath.Join(dir, "features.safetensors"), []*tensorfile.Tensor{ft}, nil); err != nil {
		t.Fatal(err)
	}
}

// beamParityDigests returns the sha256 of the decoder's weights (for each
// tensor in canonical order: its name, a zero byte, its float32 values
// little-endian) and of the features' float32 values, as
// tools/beam_reference.py computes them from the files it read. They
// depend on the numbers only, not on the model file's metadata.
func beamParityDigests(m *model.ModelFile, feats []float32) (weights, features string) {
	le := func(h hash.Hash, v []float32) {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		h.Write(b)
	}
	hw := sha256.New()
	for _, pt := range m.Params.Tensors() {
		hw.Write(append([]byte(pt.Name), 0))
		le(hw, pt.Tensor.Data().([]float32))
	}
	hf := sha256.New()
	le(hf, feats)
	return hex.EncodeToString(hw.Sum(nil)), hex.EncodeToString(hf.Sum(nil))
}

type beamParityImage struct {
	Tokens   []int   `json:"tokens"`
	Score    float64 `json:"score"`
	Complete bool    `json:"complete"`
	// Margin is the smallest gap the reference saw, over the search,
	// between two candidates on either side of a ranking decision.
	Margin float64 `json:"margin"`
}

type beamParityCase struct {
	Beam   int               `json:"beam"`
	Images []beamParityImage `json:"images"`
	// Sgrvinod holds the captions of the shrinking beam of sgrvinod's
	// caption.py (the beam loses a row per completed hypothesis), for
	// comparison only.
	Sgrvinod []beamParityImage `json:"sgrvinod"`
}

type beamParityFixture struct {
	Source         string           `json:"source"`
	WeightsSHA256  string           `json:"weights_sha256"`
	FeaturesSHA256 string           `json:"features_sha256"`
	MaxLen         int              `json:"max_len"`
	Cases          []beamParityCase `json:"cases"`
}

// TestBeamPyTorchParity: for both architectures and K = 1, 3, 5 on 50
// images, the Captioner's captions are the PyTorch reference's
// (testdata/beam/ARCH.json) token for token, with scores within 1e-4.
func TestBeamPyTorchParity(t *testing.T) {
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		t.Run(arch, func(t *testing.T) { beamParityCheck(t, arch) })
	}
}

func beamParityCheck(t *testing.T, arch string) {
	m := beamParityModel(t, arch)
	feats := beamParityFeatures()
	if dir := *beamParityWrite; dir != "" {
		dir = filepath.Join(dir, arch)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		beamParityFiles(t, dir, m, feats)
		t.Logf("wrote %s and %s; now run tools/beam_reference.py", filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "features.safetensors"))
	}
	weightsSHA, featSHA := beamParityDigests(m, feats)
	raw, err := os.ReadFile(filepath.Join("testdata", "beam", arch+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var fix beamParityFixture
	if err := json.Unmarshal(raw, &fix); err != nil {
		t.Fatal(err)
	}
	if fix.WeightsSHA256 != weightsSHA || fix.FeaturesSHA256 != featSHA {
		t.Fatalf("the fixture was made from other numbers (weights sha256 %.12s…, features %.12s…) than this test generates (weights %.12s…, features %.12s…): regenerate it (see the comment at the top of this file)",
			fix.WeightsSHA256, fix.FeaturesSHA256, weightsSHA, featSHA)
	}
	c, err := NewCaptioner(m)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(fix.Cases) == 0 {
		t.Fatal("the fixture has no cases")
	}
	for _, tc := range fix.Cases {
		t.Run(fmt.Sprintf("beam%d", tc.Beam), func(t *testing.T) {
			if len(tc.Images) != beamParityImages {
				t.Fatalf("the fixture has %d images, want %d", len(tc.Images), beamParityImages)
			}
			opt := Options{Beam: tc.Beam, MaxLen: fix.MaxLen, Top: 1, Batch: 16}
			res, err := c.CaptionFeatures(context.Background(), feats, beamParityImages, opt)
			if err != nil {
				t.Fatal(err)
			}
			maxDiff, sameAsSgrvinod, incomplete, lengths := 0.0, 0, 0, map[int]int{}
			for i, r := range res {
				want := tc.Images[i]
				got := m.Vocab.Encode(r.Tokens)
				if !slices.Equal(got, want.Tokens) || r.Complete != want.Complete {
					// float32 (here) and float64 (PyTorch) may order two
					// candidates differently only where their scores are
					// within rounding: accept a different caption where
					// the reference saw such a near tie and the scores agree.
					if want.Margin < beamParityNearTie && math.Abs(r.Score-want.Score) <= 1e-4 {
						t.Logf("image %d: %v (score %.6f), PyTorch %v (score %.6f): a near tie (margin %.2g)", i, got, r.Score, want.Tokens, want.Score, want.Margin)
						continue
					}
					t.Errorf("image %d: %v (complete %v, score %.6f), PyTorch %v (complete %v, score %.6f; smallest ranking margin %.2g)",
						i, got, r.Complete, r.Score, want.Tokens, want.Complete, want.Score, want.Margin)
					continue
				}
				d := math.Abs(r.Score - want.Score)
				maxDiff = max(maxDiff, d)
				if d > 1e-4 || math.Abs(r.LogProb-want.Score) > 1e-4 {
					t.Errorf("image %d: score %.8f, PyTorch %.8f", i, r.Score, want.Score)
				}
				if i < len(tc.Sgrvinod) && slices.Equal(tc.Sgrvinod[i].Tokens, want.Tokens) {
					sameAsSgrvinod++
				}
				if !r.Complete {
					incomplete++
				}
				lengths[len(got)]++
			}
			t.Logf("beam %d: %d images, max |score − PyTorch| %.2g; %d hit max-len %d without <end>; caption lengths %v; %d/%d as sgrvinod's shrinking beam",
				tc.Beam, len(res), maxDiff, incomplete, fix.MaxLen, lengths, sameAsSgrvinod, len(tc.Sgrvinod))
		})
	}
}
