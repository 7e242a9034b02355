package infer

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// randomDecoder returns a random decoder of arch with weights scaled up, so
// that captions differ between images.
func randomDecoder(t *testing.T, arch string, vocab *data.Vocab, cells, channels int, seed uint64) *model.DecoderParams {
	t.Helper()
	cfg := model.DecoderConfig{Arch: arch, VocabSize: vocab.Len(), FeatureDim: channels, GridCells: cells,
		EmbedDim: 8, AttentionDim: 8, HiddenDim: 8, Dropout: 0.5, AlphaC: 1}
	p, err := model.NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(seed, 6)))
	if err != nil {
		t.Fatal(err)
	}
	for _, pt := range p.Tensors() {
		for i, v := range pt.Tensor.Float32s() {
			pt.Tensor.Float32s()[i] = 8 * v
		}
	}
	return p
}

// seqLogProb scores words (then <end>) for image id with the stepper: the
// sum of the words' log-probabilities.
func seqLogProb(t *testing.T, p *model.DecoderParams, fs *data.FeatureSet, id int64, vocab *data.Vocab, words []string) float64 {
	t.Helper()
	s, err := model.NewDecoderStepper(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := p.Config
	feat := make([]float32, fs.Size())
	if err := fs.Fill(feat, id); err != nil {
		t.Fatal(err)
	}
	st, err := s.Start(tensor.New(tensor.WithShape(1, c.GridCells, c.FeatureDim), tensor.WithBacking(feat)))
	if err != nil {
		t.Fatal(err)
	}
	seq := make([]int, 0, len(words)+1)
	for _, w := range words {
		seq = append(seq, vocab.ID(w))
	}
	seq = append(seq, data.EndID)
	prev, total := data.StartID, 0.0
	for _, w := range seq {
		out, err := s.Step(st, []int{prev})
		if err != nil {
			t.Fatal(err)
		}
		total += logProbOf(t, out.Logits, c.VocabSize, w)
		st, prev = out.State, w
	}
	return total
}

// logProbOf is word w's log-probability under a one-row step's logits.
func logProbOf(t *testing.T, logits *tensor.Dense, vocab, w int) float64 {
	t.Helper()
	lse := make([]float64, 1)
	if err := logSumExpRows(logits, 1, vocab, lse, make([]float32, vocab)); err != nil {
		t.Fatal(err)
	}
	f32, _ := logits.Data().([]float32)
	f64, _ := logits.Data().([]float64)
	return rowLogProbs{f32: f32, f64: f64, lse: lse[0]}.at(w)
}

// TestBeamWidthOneIsGreedy: beam search of width 1 gives greedy's captions
// on random decoders of both architectures, for several batch sizes.
func TestBeamWidthOneIsGreedy(t *testing.T) {
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f")
	fs, ids := writeFeatures(t, 7, 4, 6)
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		for seed := uint64(1); seed <= 3; seed++ {
			p := randomDecoder(t, arch, vocab, 4, 6, seed)
			for _, maxLen := range []int{3, 12} {
				want, err := Greedy(p, fs, ids, vocab, maxLen, 7)
				if err != nil {
					t.Fatal(err)
				}
				for _, batch := range []int{1, 3, 7} {
					got, err := Beam(p, fs, ids, vocab, maxLen, 1, batch)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%s seed %d max %d batch %d: beam 1 %v, greedy %v", arch, seed, maxLen, batch, got, want)
					}
				}
			}
		}
	}
}

// TestBeamBatchInvariant: beam search batched over images equals one image
// at a time, and is deterministic.
func TestBeamBatchInvariant(t *testing.T) {
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f")
	fs, ids := writeFeatures(t, 7, 4, 6)
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		p := randomDecoder(t, arch, vocab, 4, 6, 9)
		for _, k := range []int{2, 3, 5, 10} {
			one := map[int64][]string{}
			for _, id := range ids {
				got, err := Beam(p, fs, []int64{id}, vocab, 12, k, 1)
				if err != nil {
					t.Fatal(err)
				}
				one[id] = got[id]
			}
			for _, batch := range []int{1, 3, 7, 16} {
				for range 2 {
					got, err := Beam(p, fs, ids, vocab, 12, k, batch)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, one) {
						t.Errorf("%s beam %d batch %d: %v, one by one %v", arch, k, batch, got, one)
					}
				}
			}
		}
	}
}

// TestBeamNotWorseThanGreedy: on random decoders, beam search's caption
// scores at least as well as greedy's (beam search keeps greedy's path
// among its hypotheses until something better finishes).
func TestBeamNotWorseThanGreedy(t *testing.T) {
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f")
	fs, ids := writeFeatures(t, 7, 4, 6)
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		p := randomDecoder(t, arch, vocab, 4, 6, 4)
		greedy, err := Greedy(p, fs, ids, vocab, 30, 7)
		if err != nil {
			t.Fatal(err)
		}
		beam, err := Beam(p, fs, ids, vocab, 30, 3, 7)
		if err != nil {
			t.Fatal(err)
		}
		differ := 0
		for _, id := range ids {
			if len(greedy[id]) == 30 || len(beam[id]) == 30 {
				continue // unfinished
			}
			if !reflect.DeepEqual(greedy[id], beam[id]) {
				differ++
			}
			g := seqLogProb(t, p, fs, id, vocab, greedy[id])
			b := seqLogProb(t, p, fs, id, vocab, beam[id])
			if b < g-1e-9 {
				t.Errorf("%s image %d: beam %q scores %g, greedy %q %g", arch, id, beam[id], b, greedy[id], g)
			}
		}
		t.Logf("%s: beam 3 differs from greedy on %d of %d images: %v", arch, differ, len(ids), beam)
	}
}

// riggedDecoder is TestBeamRigged's decoder (see there), with its
// vocabulary.
func riggedDecoder(t *testing.T) (*model.DecoderParams, *data.Vocab) {
	t.Helper()
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f", "g", "h")
	V := vocab.Len()
	cfg := model.DecoderConfig{Arch: model.ArchAttention, VocabSize: V, FeatureDim: 3, GridCells: 2,
		EmbedDim: V, AttentionDim: 4, HiddenDim: V, Dropout: 0.5, AlphaC: 1}
	p, err := model.NewDecoderParamsZero(cfg, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	emb, g, out := p.Embedding.Float32s(), p.LSTM[2].Input.Float32s(), p.Output.Float32s()
	link := func(from, to string, w float32) { g[vocab.ID(from)*V+vocab.ID(to)] = w }
	for w := range V {
		emb[w*V+w] = 1
		out[w*V+w] = 20
	}
	link(data.StartToken, "a", 1)
	link(data.StartToken, "b", 0.8)
	link("b", data.EndToken, 10)
	for _, w := range []string{"c", "d", "e", "f", "g", "h"} {
		link("a", w, 10)
		link(w, data.EndToken, 10)
	}
	return p, vocab
}

// TestBeamRigged rigs a decoder (as TestGreedyRigged) where <start> leads a
// little more to "a" than to "b", "a" spreads over six equally likely words
// that each lead to <end>, and "b" leads straight to <end>: greedy says
// "a c", beam 3 finds the more probable "b".
func TestBeamRigged(t *testing.T) {
	p, vocab := riggedDecoder(t)
	fs, ids := writeFeatures(t, 3, 2, 3)
	greedy, err := Greedy(p, fs, ids, vocab, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 2, 3} {
		beam, err := Beam(p, fs, ids, vocab, 10, 3, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			gs, bs := strings.Join(greedy[id], " "), strings.Join(beam[id], " ")
			if gs != "a c" || bs != "b" {
				t.Errorf("batch %d image %d: greedy %q, beam %q; want \"a c\" and \"b\"", batch, id, gs, bs)
			}
			gl := seqLogProb(t, p, fs, id, vocab, greedy[id])
			bl := seqLogProb(t, p, fs, id, vocab, beam[id])
			if !(bl > gl) {
				t.Errorf("image %d: beam's log-probability %g not above greedy's %g", id, bl, gl)
			}
		}
	}
	// Beam 1 is greedy here too.
	one, err := Beam(p, fs, ids, vocab, 10, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(one, greedy) {
		t.Errorf("beam 1 %v, greedy %v", one, greedy)
	}
	// At the max length with nothing finished, the best live hypothesis;
	// a finished one (here the empty caption, whose <end> is in the top 3
	// at the first step) is preferred to any unfinished one.
	for k, want := range map[int]string{1: "a", 3: ""} {
		short, err := Beam(p, fs, ids[:1], vocab, 1, k, 1)
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.Join(short[ids[0]], " "); s != want {
			t.Errorf("beam %d, max length 1: %q, want %q", k, s, want)
		}
	}
	// <unk>, <start> and <pad> are never chosen, even when they score best
	// (they still count in the log-softmax, so beam 3 now prefers the
	// shortest caption).
	bias := p.OutputBias.Float32s()
	bias[data.UnkID], bias[data.StartID], bias[data.PadID] = 100, 100, 100
	greedy, err = Greedy(p, fs, ids, vocab, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3} {
		got, err := Beam(p, fs, ids, vocab, 10, k, 2)
		if err != nil {
			t.Fatal(err)
		}
		if k == 1 && !reflect.DeepEqual(got, greedy) {
			t.Errorf("favoured specials, beam 1 %v, greedy %v", got, greedy)
		}
		for _, id := range ids {
			for _, w := range got[id] {
				if w == data.UnkToken || w == data.StartToken || w == data.PadToken || w == data.EndToken {
					t.Errorf("beam %d image %d: %q chosen", k, id, w)
				}
			}
		}
	}
	if math.IsNaN(seqLogProb(t, p, fs, ids[0], vocab, nil)) {
		t.Error("log-probability NaN with large logits")
	}
}

// TestBeamWideVocabulary: a beam wider than the number of allowed words
// works and still equals one image at a time.
func TestBeamWide(t *testing.T) {
	vocab := tinyVocab(t, "a", "b")
	fs, ids := writeFeatures(t, 4, 4, 6)
	p := randomDecoder(t, model.ArchAttention, vocab, 4, 6, 2)
	want, err := Beam(p, fs, ids[:1], vocab, 6, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Beam(p, fs, ids, vocab, 6, 8, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[ids[0]], want[ids[0]]) || len(got) != len(ids) {
		t.Errorf("wide beam: %v, alone %v", got, want)
	}
}

func TestBeamErrors(t *testing.T) {
	vocab := tinyVocab(t, "a")
	fs, ids := writeFeatures(t, 2, 2, 3)
	cfg := model.DecoderConfig{Arch: model.ArchAttention, VocabSize: vocab.Len(), FeatureDim: 3, GridCells: 2,
		EmbedDim: 4, AttentionDim: 4, HiddenDim: 4, Dropout: 0, AlphaC: 1}
	p, err := model.NewDecoderParamsZero(cfg, tensor.Float32)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"max length 0": func() error { _, err := Beam(p, fs, ids, vocab, 0, 3, 1); return err },
		"beam 0":       func() error { _, err := Beam(p, fs, ids, vocab, 5, 0, 1); return err },
		"batch 0":      func() error { _, err := Beam(p, fs, ids, vocab, 5, 3, 0); return err },
		"no features":  func() error { _, err := Beam(p, fs, []int64{99}, vocab, 5, 3, 1); return err },
		"vocabulary":   func() error { _, err := Beam(p, fs, ids, tinyVocab(t, "a", "b"), 5, 3, 1); return err },
		"nil params":   func() error { _, err := Beam(nil, fs, ids, vocab, 5, 3, 1); return err },
	} {
		if f() == nil {
			t.Errorf("%s accepted", name)
		}
	}
	got, err := Beam(p, fs, nil, vocab, 5, 3, 1)
	if err != nil || len(got) != 0 {
		t.Errorf("no images: %v, %v", got, err)
	}
}
