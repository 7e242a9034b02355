package infer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// writeFeatures writes a one-shard feature store of split "val" with n
// random images (ids 1..n) and returns it loaded.
func writeFeatures(t *testing.T, n, cells, channels int) (*data.FeatureSet, []int64) {
	t.Helper()
	dir := t.TempDir()
	fdir := filepath.Join(dir, data.FeaturesDir)
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	feats := make([]float32, n*cells*channels)
	for i := range feats {
		feats[i] = float32(rng.NormFloat64())
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	name := "val-00000.safetensors"
	if err := tensorfile.WriteSafetensors(filepath.Join(fdir, name), []*tensorfile.Tensor{
		tensorfile.NewF16("features", []int{n, cells, channels}, feats),
		tensorfile.NewI64("image_ids", []int{n}, ids),
	}, nil); err != nil {
		t.Fatal(err)
	}
	m := data.FeaturesManifest{Format: data.FeaturesFormat, DType: "F16",
		Shards: []data.ShardInfo{{File: name, Split: "val", Images: n}}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fdir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := data.LoadFeatures(dir, "val")
	if err != nil {
		t.Fatal(err)
	}
	return fs, ids
}

func tinyVocab(t *testing.T, words ...string) *data.Vocab {
	t.Helper()
	v := data.BuildVocab([][]string{words}, 1)
	if v.Len() != 4+len(words) {
		t.Fatalf("vocabulary of %d tokens, want %d", v.Len(), 4+len(words))
	}
	return v
}

// TestGreedyRigged rigs a decoder whose LSTM moves from word to word along
// the chain <start> → a → b → c → <end> (embedding = identity, the g gate
// maps each word to its successor's unit, the output layer reads units as
// words): greedy decoding must give "a b c", and stop at the max length.
func TestGreedyRigged(t *testing.T) {
	vocab := tinyVocab(t, "a", "b", "c")
	V := vocab.Len()
	cfg := model.DecoderConfig{Arch: model.ArchAttention, VocabSize: V, FeatureDim: 3, GridCells: 2,
		EmbedDim: V, AttentionDim: 4, HiddenDim: V, Dropout: 0.5, AlphaC: 1}
	p, err := model.NewDecoderParamsZero(cfg, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]string{data.StartToken: "a", "a": "b", "b": "c", "c": data.EndToken}
	emb, g, out := p.Embedding.Float32s(), p.LSTM[2].Input.Float32s(), p.Output.Float32s()
	for w := range V {
		emb[w*V+w] = 1
		out[w*V+w] = 10
		if n, ok := next[vocab.Tokens[w]]; ok {
			g[w*V+vocab.ID(n)] = 10
		}
	}
	fs, ids := writeFeatures(t, 5, 2, 3)
	for _, batch := range []int{1, 2, 8} {
		got, err := Greedy(p, fs, ids, vocab, 20, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if s := strings.Join(got[id], " "); s != "a b c" {
				t.Errorf("batch %d, image %d: %q, want \"a b c\"", batch, id, s)
			}
		}
	}
	got, err := Greedy(p, fs, ids[:2], vocab, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got[ids[1]], " "); s != "a b" || len(got) != 2 {
		t.Errorf("max length 2: %q (%d captions), want \"a b\"", s, len(got))
	}

	// <unk> is never chosen, even when it scores best.
	bias := p.OutputBias.Float32s()
	bias[data.UnkID] = 100
	bias[data.StartID] = 100
	got, err = Greedy(p, fs, ids[:1], vocab, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got[ids[0]], " "); s != "a b c" {
		t.Errorf("with <unk> and <start> favoured: %q, want \"a b c\"", s)
	}
	// A decoder that always says <end> gives empty captions.
	bias[data.EndID] = 100
	got, err = Greedy(p, fs, ids, vocab, 20, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if len(got[id]) != 0 {
			t.Errorf("image %d: %q, want an empty caption", id, got[id])
		}
	}
}

// TestGreedyBatchInvariant decodes random decoders batched and one image
// at a time: the captions must be identical.
func TestGreedyBatchInvariant(t *testing.T) {
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f")
	fs, ids := writeFeatures(t, 7, 4, 6)
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		cfg := model.DecoderConfig{Arch: arch, VocabSize: vocab.Len(), FeatureDim: 6, GridCells: 4,
			EmbedDim: 8, AttentionDim: 8, HiddenDim: 8, Dropout: 0.5, AlphaC: 1}
		p, err := model.NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(5, 6)))
		if err != nil {
			t.Fatal(err)
		}
		// Larger weights, so that captions differ between images.
		for _, pt := range p.Tensors() {
			for i, v := range pt.Tensor.Float32s() {
				pt.Tensor.Float32s()[i] = 8 * v
			}
		}
		one := map[int64][]string{}
		for _, id := range ids {
			got, err := Greedy(p, fs, []int64{id}, vocab, 12, 1)
			if err != nil {
				t.Fatal(err)
			}
			one[id] = got[id]
		}
		distinct := map[string]bool{}
		for _, c := range one {
			distinct[strings.Join(c, " ")] = true
		}
		t.Logf("%s: %d distinct captions: %v", arch, len(distinct), one)
		for _, batch := range []int{3, 7, 16} {
			got, err := Greedy(p, fs, ids, vocab, 12, batch)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, one) {
				t.Errorf("%s batch %d: %v, one by one %v", arch, batch, got, one)
			}
		}
	}
}

func TestGreedyErrors(t *testing.T) {
	vocab := tinyVocab(t, "a")
	fs, ids := writeFeatures(t, 2, 2, 3)
	cfg := model.DecoderConfig{Arch: model.ArchAttention, VocabSize: vocab.Len(), FeatureDim: 3, GridCells: 2,
		EmbedDim: 4, AttentionDim: 4, HiddenDim: 4, Dropout: 0, AlphaC: 1}
	p, err := model.NewDecoderParamsZero(cfg, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Greedy(p, fs, ids, vocab, 0, 1); err == nil {
		t.Error("max length 0 accepted")
	}
	if _, err := Greedy(p, fs, ids, vocab, 5, 0); err == nil {
		t.Error("batch 0 accepted")
	}
	if _, err := Greedy(p, fs, []int64{99}, vocab, 5, 1); err == nil {
		t.Error("an image without features accepted")
	}
	if _, err := Greedy(p, fs, ids, tinyVocab(t, "a", "b"), 5, 1); err == nil {
		t.Error("a vocabulary of the wrong size accepted")
	}
}
