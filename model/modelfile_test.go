package model

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

func testModelFile(t *testing.T, arch string) *ModelFile {
	t.Helper()
	vocab := data.BuildVocab([][]string{{"a", "red", "circle"}, {"a", "blue", "square"}}, 1)
	cfg := DecoderConfig{Arch: arch, VocabSize: vocab.Len(), FeatureDim: 6, GridCells: 4,
		EmbedDim: 5, AttentionDim: 3, HiddenDim: 7, Dropout: 0.5, AlphaC: 1}
	params, err := NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return &ModelFile{
		Config: cfg, Params: params, Vocab: vocab,
		Encoder: data.EncoderIdentity{Arch: "resnet18", WeightsSHA256: "random:seed=1", Grid: 2, Channels: 6,
			Preprocess: data.DefaultPreprocessConfig()},
		Provenance: Provenance{DataManifestSHA256: "abc", Seed: 1, Epoch: 2, Steps: 10, Selection: "last",
			Metrics: map[string]float64{"loss": 3.25}},
	}
}

func TestModelFileRoundTrip(t *testing.T) {
	for _, arch := range []string{ArchAttention, ArchShowTell} {
		t.Run(arch, func(t *testing.T) {
			m := testModelFile(t, arch)
			path := filepath.Join(t.TempDir(), "model.safetensors")
			if err := SaveModel(path, m); err != nil {
				t.Fatal(err)
			}
			got, err := LoadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config != m.Config {
				t.Errorf("config %v, want %v", got.Config, m.Config)
			}
			if !reflect.DeepEqual(got.Vocab.Tokens, m.Vocab.Tokens) || !reflect.DeepEqual(got.Vocab.Counts, m.Vocab.Counts) ||
				got.Vocab.MinWordFreq != m.Vocab.MinWordFreq || got.Vocab.ID("circle") != m.Vocab.ID("circle") {
				t.Errorf("vocab %+v, want %+v", got.Vocab, m.Vocab)
			}
			if !reflect.DeepEqual(got.Encoder, m.Encoder) {
				t.Errorf("encoder %+v, want %+v", got.Encoder, m.Encoder)
			}
			if !reflect.DeepEqual(got.Provenance, m.Provenance) {
				t.Errorf("provenance %+v, want %+v", got.Provenance, m.Provenance)
			}
			want, have := m.Params.Tensors(), got.Params.Tensors()
			if len(want) != len(have) {
				t.Fatalf("%d tensors, want %d", len(have), len(want))
			}
			for i := range want {
				if have[i].Name != want[i].Name || !reflect.DeepEqual(have[i].Tensor.Data(), want[i].Tensor.Data()) ||
					!have[i].Tensor.Shape().Eq(want[i].Tensor.Shape()) {
					t.Errorf("tensor %s differs after the round trip", want[i].Name)
				}
			}
			// Saving what was loaded gives the same bytes.
			path2 := filepath.Join(t.TempDir(), "again.safetensors")
			if err := SaveModel(path2, got); err != nil {
				t.Fatal(err)
			}
			a, _, _ := tensorfile.LoadSafetensors(path)
			b, _, _ := tensorfile.LoadSafetensors(path2)
			if !reflect.DeepEqual(a, b) {
				t.Error("re-saved model differs")
			}
		})
	}
}

// rewrite saves m, then rewrites the file through edit.
func rewrite(t *testing.T, m *ModelFile, edit func(map[string]*tensorfile.Tensor, map[string]string)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	tensors, meta, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(tensors, meta)
	var list []*tensorfile.Tensor
	for _, t := range tensors {
		list = append(list, t)
	}
	if err := tensorfile.WriteSafetensors(path, list, meta); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadModelErrors(t *testing.T) {
	const out = "decoder.output.weight"
	cases := []struct {
		name string
		edit func(map[string]*tensorfile.Tensor, map[string]string)
		want []string
	}{
		{"missing tensor", func(ts map[string]*tensorfile.Tensor, _ map[string]string) { delete(ts, out) },
			[]string{out, "missing"}},
		{"wrong shape", func(ts map[string]*tensorfile.Tensor, _ map[string]string) {
			ts[out] = tensorfile.NewF32(out, []int{2, 2}, make([]float32, 4))
		}, []string{out, "shape [2 2]"}},
		{"extra tensor", func(ts map[string]*tensorfile.Tensor, _ map[string]string) {
			ts["decoder.bogus"] = tensorfile.NewF32("decoder.bogus", []int{1}, []float32{1})
		}, []string{"decoder.bogus", "unexpected"}},
		{"wrong format", func(_ map[string]*tensorfile.Tensor, meta map[string]string) { meta["format"] = "captionctl/9" },
			[]string{`"captionctl/9"`, `"captionctl/1"`}},
		{"foreign file", func(_ map[string]*tensorfile.Tensor, meta map[string]string) { delete(meta, "format") },
			[]string{"not a captionctl model file"}},
		{"missing vocab", func(_ map[string]*tensorfile.Tensor, meta map[string]string) { delete(meta, "vocab") },
			[]string{`"vocab" is missing`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := rewrite(t, testModelFile(t, ArchAttention), c.edit)
			_, err := LoadModel(path)
			if err == nil {
				t.Fatal("no error")
			}
			var bad *badinput.Error
			if !errors.As(err, &bad) {
				t.Errorf("error %v is %T, want *badinput.Error", err, err)
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := LoadModel(filepath.Join(t.TempDir(), "none.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
}

// testModelFileWithEncoder is a small decoder on a seeded random ResNet-18
// (32-pixel images, 7×7 grid) with its weights in the file.
func testModelFileWithEncoder(t *testing.T) (*ModelFile, *Encoder) {
	t.Helper()
	vocab := data.BuildVocab([][]string{{"a", "red", "circle"}}, 1)
	cfg := DecoderConfig{Arch: ArchAttention, VocabSize: vocab.Len(), FeatureDim: 512, GridCells: 49,
		EmbedDim: 4, AttentionDim: 3, HiddenDim: 5, Dropout: 0.5, AlphaC: 1}
	params, err := NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	pre := data.DefaultPreprocessConfig()
	pre.ImageSize, pre.ResizeSize = 32, 36
	id := data.EncoderIdentity{Arch: "resnet18", WeightsSHA256: "random:seed=3", Grid: 7, Channels: 512, Preprocess: pre}
	sd, err := EncoderStateDict(id, "")
	if err != nil {
		t.Fatal(err)
	}
	// The encoder 'data features --weights random --seed 3' builds.
	enc, err := RandomEncoder(EncoderConfig{Arch: "resnet18", Grid: 7, ImageSize: 32}, RandomEncoderRNG(3))
	if err != nil {
		t.Fatal(err)
	}
	return &ModelFile{Config: cfg, Params: params, Vocab: vocab, Encoder: id, EncoderWeights: sd}, enc
}

// TestModelFileEncoderRoundTrip: the encoder built from a loaded model file
// gives exactly the features of the encoder 'data features' used.
func TestModelFileEncoderRoundTrip(t *testing.T) {
	m, want := testModelFileWithEncoder(t)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.EncoderWeights) == 0 {
		t.Fatal("no encoder weights after loading")
	}
	for name := range got.EncoderWeights {
		if strings.HasPrefix(name, EncoderTensorPrefix) || strings.HasSuffix(name, "num_batches_tracked") {
			t.Errorf("encoder weight %q", name)
		}
	}
	enc, err := got.NewEncoder()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	input := make([]float32, 2*3*32*32)
	for i := range input {
		input[i] = float32(rng.NormFloat64())
	}
	a, err := want.Forward(input, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := enc.Forward(input, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("features of the loaded encoder differ from the original's")
	}
	// A weights file: accepted with its sha256, refused with another.
	wpath := filepath.Join(t.TempDir(), "resnet18.safetensors")
	var list []*tensorfile.Tensor
	for _, tt := range m.EncoderWeights {
		list = append(list, tt)
	}
	if err := tensorfile.WriteSafetensors(wpath, list, nil); err != nil {
		t.Fatal(err)
	}
	sum, err := data.SHA256File(wpath)
	if err != nil {
		t.Fatal(err)
	}
	id := m.Encoder
	id.WeightsSHA256 = sum
	if sd, err := EncoderStateDict(id, wpath); err != nil || len(sd) != len(m.EncoderWeights) {
		t.Errorf("weights file: %d tensors, %v", len(sd), err)
	}
	id.WeightsSHA256 = strings.Repeat("0", 64)
	if _, err := EncoderStateDict(id, wpath); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("wrong sha256: %v", err)
	}
	if _, err := EncoderStateDict(id, ""); err == nil || !strings.Contains(err.Error(), "weights file") {
		t.Errorf("no weights file: %v", err)
	}
}

// TestModelFileWithoutEncoder: an older file without encoder tensors loads,
// and building its encoder fails with ErrNoEncoderWeights.
func TestModelFileWithoutEncoder(t *testing.T) {
	m := testModelFile(t, ArchAttention)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	got, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.EncoderWeights != nil {
		t.Errorf("%d encoder weights", len(got.EncoderWeights))
	}
	_, err = got.NewEncoder()
	if !errors.Is(err, ErrNoEncoderWeights) || !strings.Contains(err.Error(), "retrain") {
		t.Errorf("NewEncoder: %v, want ErrNoEncoderWeights with a hint", err)
	}
}

func TestModelFileEncoderErrors(t *testing.T) {
	m, _ := testModelFileWithEncoder(t)
	const conv = EncoderTensorPrefix + "layer2.0.conv1.weight"
	for name, edit := range map[string]func(map[string]*tensorfile.Tensor, map[string]string){
		"missing": func(ts map[string]*tensorfile.Tensor, _ map[string]string) { delete(ts, conv) },
		"shape": func(ts map[string]*tensorfile.Tensor, _ map[string]string) {
			ts[conv] = tensorfile.NewF32(conv, []int{1}, []float32{0})
		},
	} {
		path := rewrite(t, m, edit)
		_, err := LoadModel(path)
		var bad *badinput.Error
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), conv) {
			t.Errorf("%s: %v, want a bad-input error naming %s", name, err, conv)
		}
	}
	// SaveModel refuses weights that do not fit the identity.
	m.Encoder.Arch = "resnet34"
	if err := SaveModel(filepath.Join(t.TempDir(), "m.safetensors"), m); err == nil {
		t.Error("resnet18 weights saved as resnet34")
	}
	if _, ok := RandomWeightsSeed("random:seed=12"); !ok {
		t.Error("random:seed=12 not parsed")
	}
	if s, ok := RandomWeightsSeed("random:7"); !ok || s != 7 {
		t.Error("random:7 not parsed")
	}
	if _, ok := RandomWeightsSeed(strings.Repeat("a", 64)); ok {
		t.Error("sha256 parsed as a seed")
	}
}

// TestNewEncoderBlindModel: a blind baseline's model file (trained on
// all-zero features) says so instead of calling itself an old file.
func TestNewEncoderBlindModel(t *testing.T) {
	m := &ModelFile{Encoder: data.EncoderIdentity{Arch: "resnet18", WeightsSHA256: BlindWeightsID, Grid: 7}}
	_, err := m.NewEncoder()
	if !errors.Is(err, ErrNoEncoderWeights) || !strings.Contains(err.Error(), "blind baseline") || strings.Contains(err.Error(), "older") {
		t.Fatalf("NewEncoder on a blind model: %v", err)
	}
}
