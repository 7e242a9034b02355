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
