package infer

import (
	"context"
	"errors"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// Sizes of the small test decoders: P grid cells of F channels.
const testP, testF = 4, 6

// testCaptioner is a Captioner on a random decoder (weights scaled up, as
// randomDecoder does) without encoder weights, over the words a…f.
func testCaptioner(t *testing.T, arch string, seed uint64) *Captioner {
	t.Helper()
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f")
	p := randomDecoder(t, arch, vocab, testP, testF, seed)
	c, err := NewCaptioner(&model.ModelFile{Config: p.Config, Params: p, Vocab: vocab})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// randomFeatures returns n images' features (n, P, F), N(0, 1).
func randomFeatures(n, cells, channels int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	f := make([]float32, n*cells*channels)
	for i := range f {
		f[i] = float32(rng.NormFloat64())
	}
	return f
}

// referenceGreedy decodes one image's features by the textbook greedy
// loop on a one-row stepper, independently of the search code: the
// argmax of the raw logits over the allowed words (lowest id on a tie)
// until <end> or maxLen words. It returns the words and the sequence's
// log-probability.
func referenceGreedy(t *testing.T, p *model.DecoderParams, feat []float32, maxLen int) ([]int, float64, bool) {
	t.Helper()
	s, err := model.NewDecoderStepper(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := p.Config
	st, err := s.Start(tensor.New(tensor.WithShape(1, c.GridCells, c.FeatureDim), tensor.WithBacking(slices.Clone(feat))))
	if err != nil {
		t.Fatal(err)
	}
	var words []int
	prev, total := data.StartID, 0.0
	for range maxLen {
		out, err := s.Step(st, []int{prev})
		if err != nil {
			t.Fatal(err)
		}
		logits := out.Logits.Float32s()
		best := -1
		for w, v := range logits {
			if w == data.PadID || w == data.StartID || w == data.UnkID {
				continue
			}
			if best < 0 || v > logits[best] {
				best = w
			}
		}
		m, sum := math.Inf(-1), 0.0
		for _, v := range logits {
			m = max(m, float64(v))
		}
		for _, v := range logits {
			sum += math.Exp(float64(v) - m)
		}
		total += float64(logits[best]) - m - math.Log(sum)
		if best == data.EndID {
			return words, total, true
		}
		words = append(words, best)
		st, prev = out.State, best
	}
	return words, total, false
}

// scoreWords is the log-probability of words (then <end> when complete)
// for one image's features, from a one-row stepper.
func scoreWords(t *testing.T, c *Captioner, feat []float32, words []string, complete bool) float64 {
	t.Helper()
	p := c.Model().Params
	s, err := model.NewDecoderStepper(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cfg := p.Config
	st, err := s.Start(tensor.New(tensor.WithShape(1, cfg.GridCells, cfg.FeatureDim), tensor.WithBacking(slices.Clone(feat))))
	if err != nil {
		t.Fatal(err)
	}
	var seq []int
	for _, w := range words {
		seq = append(seq, c.Model().Vocab.ID(w))
	}
	if complete {
		seq = append(seq, data.EndID)
	}
	prev, total := data.StartID, 0.0
	for _, w := range seq {
		out, err := s.Step(st, []int{prev})
		if err != nil {
			t.Fatal(err)
		}
		total += logProbOf(t, out.Logits, cfg.VocabSize, w)
		st, prev = out.State, w
	}
	return total
}

func opts(beam, maxLen, top, batch int) Options {
	o := DefaultOptions()
	o.Beam, o.MaxLen, o.Top, o.Batch = beam, maxLen, top, batch
	return o
}

// TestCaptionerBeamOneIsGreedy: beam 1 gives the textbook greedy caption
// and its log-probability, for both architectures and several batches.
// Log-probs agree to 1e-5, not exactly: float32 products over a batch of
// rows round differently from one row.
func TestCaptionerBeamOneIsGreedy(t *testing.T) {
	const n = 6
	feats := randomFeatures(n, testP, testF, 1)
	size := testP * testF
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		for seed := uint64(1); seed <= 3; seed++ {
			c := testCaptioner(t, arch, seed)
			for _, maxLen := range []int{3, 12} {
				for _, batch := range []int{1, 4} {
					res, err := c.CaptionFeatures(context.Background(), feats, n, opts(1, maxLen, 1, batch))
					if err != nil {
						t.Fatal(err)
					}
					for i, r := range res {
						words, lp, complete := referenceGreedy(t, c.Model().Params, feats[i*size:(i+1)*size], maxLen)
						want := tokens(c.Model().Vocab, words)
						if !reflect.DeepEqual(r.Tokens, want) || r.Complete != complete || math.Abs(r.LogProb-lp) > 1e-5 {
							t.Errorf("%s seed %d max %d batch %d image %d: %q %v %g, greedy %q %v %g",
								arch, seed, maxLen, batch, i, r.Tokens, r.Complete, r.LogProb, want, complete, lp)
						}
						if r.Caption != strings.Join(r.Tokens, " ") || r.Score != r.LogProb || len(r.Alternatives) != 1 {
							t.Errorf("image %d: result %+v inconsistent", i, r)
						}
					}
				}
			}
		}
	}
}

// sameResults says whether a and b have the same captions (alternatives
// included) and scores within tol.
func sameResults(a, b []Result, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].Alternatives) != len(b[i].Alternatives) || len(a[i].Alphas) != len(b[i].Alphas) {
			return false
		}
		for j, x := range a[i].Alternatives {
			y := b[i].Alternatives[j]
			if x.Caption != y.Caption || !reflect.DeepEqual(x.Tokens, y.Tokens) || x.Complete != y.Complete ||
				math.Abs(x.Score-y.Score) > tol || math.Abs(x.LogProb-y.LogProb) > tol {
				return false
			}
		}
	}
	return true
}

// TestCaptionerDeterministic: the same call twice gives identical results
// (scores, alternatives and alphas included); other batch sizes give the
// same captions, with scores equal to 1e-5 (float32 products over more
// rows round differently).
func TestCaptionerDeterministic(t *testing.T) {
	const n = 7
	feats := randomFeatures(n, testP, testF, 2)
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		c := testCaptioner(t, arch, 9)
		for _, k := range []int{2, 4} {
			o := opts(k, 12, k, 1)
			o.Attention, o.LengthPenalty = true, 0.7
			want, err := c.CaptionFeatures(context.Background(), feats, n, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, batch := range []int{1, 3, 7, 16} {
				o.Batch = batch
				got, err := c.CaptionFeatures(context.Background(), feats, n, o)
				if err != nil {
					t.Fatal(err)
				}
				again, err := c.CaptionFeatures(context.Background(), feats, n, o)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, again) {
					t.Errorf("%s beam %d batch %d: two runs differ", arch, k, batch)
				}
				if !sameResults(got, want, 1e-5) {
					t.Errorf("%s beam %d batch %d differs from batch 1", arch, k, batch)
				}
			}
		}
	}
}

// TestCaptionerSpecialTokens: <pad>, <start> and <unk> are never emitted,
// even when the decoder favours them; --allow-unk lets <unk> through.
func TestCaptionerSpecialTokens(t *testing.T) {
	const n = 4
	feats := randomFeatures(n, testP, testF, 3)
	c := testCaptioner(t, model.ArchAttention, 5)
	bias := c.Model().Params.OutputBias.Float32s()
	bias[data.PadID], bias[data.StartID], bias[data.UnkID] = 30, 30, 30
	for _, k := range []int{1, 3} {
		res, err := c.CaptionFeatures(context.Background(), feats, n, opts(k, 8, k, 2))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			for _, alt := range r.Alternatives {
				for _, w := range alt.Tokens {
					if strings.HasPrefix(w, "<") {
						t.Errorf("beam %d image %d: %q emitted in %q", k, i, w, alt.Caption)
					}
				}
			}
		}
		o := opts(k, 8, 1, 2)
		o.AllowUnk = true
		res, err = c.CaptionFeatures(context.Background(), feats, n, o)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(res[0].Tokens, data.UnkToken) {
			t.Errorf("beam %d with --allow-unk and <unk> favoured: %q", k, res[0].Caption)
		}
	}
}

// TestCaptionerNoEnd: when <end> never wins, the best partial hypothesis
// of MaxLen words comes back (never an empty or missing result), the
// alternatives are partial too, ranked by log-prob.
func TestCaptionerNoEnd(t *testing.T) {
	const n, maxLen = 3, 5
	feats := randomFeatures(n, testP, testF, 4)
	size := testP * testF
	c := testCaptioner(t, model.ArchAttention, 6)
	c.Model().Params.OutputBias.Float32s()[data.EndID] = -1e4
	for _, k := range []int{1, 3} {
		res, err := c.CaptionFeatures(context.Background(), feats, n, opts(k, maxLen, k, 2))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != n {
			t.Fatalf("%d results for %d images", len(res), n)
		}
		for i, r := range res {
			if r.Complete || len(r.Tokens) != maxLen || len(r.Alternatives) != k {
				t.Errorf("beam %d image %d: %q complete %v, %d alternatives; want %d words, incomplete, %d alternatives",
					k, i, r.Caption, r.Complete, len(r.Alternatives), maxLen, k)
			}
			for j, alt := range r.Alternatives {
				if alt.Complete || (j > 0 && alt.LogProb > r.Alternatives[j-1].LogProb) {
					t.Errorf("beam %d image %d: alternative %d %+v out of order or complete", k, i, j, alt)
				}
				if want := scoreWords(t, c, feats[i*size:(i+1)*size], alt.Tokens, false); math.Abs(want-alt.LogProb) > 1e-6 {
					t.Errorf("beam %d image %d: %q log-prob %g, rescored %g", k, i, alt.Caption, alt.LogProb, want)
				}
			}
		}
	}
}

// TestCaptionerTop: the Top alternatives are distinct, the first is the
// result, complete ones come first by score, each log-prob is the
// sequence's own, and a wider beam never scores worse than greedy.
func TestCaptionerTop(t *testing.T) {
	const n = 7
	feats := randomFeatures(n, testP, testF, 5)
	size := testP * testF
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		c := testCaptioner(t, arch, 4)
		greedy, err := c.CaptionFeatures(context.Background(), feats, n, opts(1, 30, 1, 4))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []float64{0, 1} {
			o := opts(5, 30, 3, 4)
			o.LengthPenalty = a
			res, err := c.CaptionFeatures(context.Background(), feats, n, o)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				alts := r.Alternatives
				if len(alts) != 3 || alts[0].Caption != r.Caption || alts[0].Score != r.Score || alts[0].LogProb != r.LogProb {
					t.Fatalf("%s image %d: alternatives %+v do not start with the result %q", arch, i, alts, r.Caption)
				}
				seen := map[string]bool{}
				for j, alt := range alts {
					if seen[alt.Caption] {
						t.Errorf("%s image %d: %q twice", arch, i, alt.Caption)
					}
					seen[alt.Caption] = true
					if j > 0 && alt.Complete && (!alts[j-1].Complete || alt.Score > alts[j-1].Score) {
						t.Errorf("%s image %d: alternative %d (%q %g) ranked after %q %g", arch, i, j, alt.Caption, alt.Score, alts[j-1].Caption, alts[j-1].Score)
					}
					lp := scoreWords(t, c, feats[i*size:(i+1)*size], alt.Tokens, alt.Complete)
					steps := len(alt.Tokens)
					if alt.Complete {
						steps++
					}
					if math.Abs(lp-alt.LogProb) > 1e-6 || math.Abs(alt.Score-lp/math.Pow(float64(steps), a)) > 1e-6 {
						t.Errorf("%s image %d: %q log-prob %g score %g, rescored %g", arch, i, alt.Caption, alt.LogProb, alt.Score, lp)
					}
				}
				if g := greedy[i]; a == 0 && r.Complete && g.Complete && r.LogProb < g.LogProb-1e-9 {
					t.Errorf("%s image %d: beam %q %g worse than greedy %q %g", arch, i, r.Caption, r.LogProb, g.Caption, g.LogProb)
				}
			}
		}
	}
}

// rigged is TestBeamRigged's decoder: <start> leads a little more to "a"
// than to "b", "a" to six equally likely words that each lead to <end>,
// "b" straight to <end>.
func rigged(t *testing.T) *Captioner {
	t.Helper()
	p, vocab := riggedDecoder(t)
	c, err := NewCaptioner(&model.ModelFile{Config: p.Config, Params: p, Vocab: vocab})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCaptionerLengthPenalty: on the rigged decoder, beam 3 prefers the
// short, more probable "b" without a penalty; a length penalty A large
// enough that lp("a c")/3^A > lp("b")/2^A (computed here from the
// rescored log-probs) makes it choose "a c".
func TestCaptionerLengthPenalty(t *testing.T) {
	c := rigged(t)
	feat := randomFeatures(1, 2, 3, 6)
	lpB := scoreWords(t, c, feat, []string{"b"}, true)
	lpAC := scoreWords(t, c, feat, []string{"a", "c"}, true)
	if !(lpB > lpAC) {
		t.Fatalf("rigging failed: lp(b) %g, lp(a c) %g", lpB, lpAC)
	}
	// The A where both normalised scores are equal: lpAC/3^A = lpB/2^A.
	flip := math.Log(lpAC/lpB) / math.Log(3.0/2)
	t.Logf("lp(b) %g, lp(a c) %g, flip at A = %g", lpB, lpAC, flip)
	for _, tc := range []struct {
		a    float64
		want string
	}{{0, "b"}, {flip * 0.9, "b"}, {flip * 1.1, "a c"}, {flip * 2, "a c"}} {
		o := opts(3, 10, 2, 1)
		o.LengthPenalty = tc.a
		res, err := c.CaptionFeatures(context.Background(), feat, 1, o)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Caption != tc.want {
			t.Errorf("length penalty %g: %q (alternatives %+v), want %q", tc.a, res[0].Caption, res[0].Alternatives, tc.want)
		}
	}
}

// repeatsNgram says whether words hold some n-gram twice.
func repeatsNgram(words []string, n int) bool {
	seen := map[string]bool{}
	for i := 0; i+n <= len(words); i++ {
		key := strings.Join(words[i:i+n], " ")
		if seen[key] {
			return true
		}
		seen[key] = true
	}
	return false
}

// TestCaptionerNoRepeatNgram: a decoder that loves "a" repeats it; with
// --no-repeat-ngram N no caption or alternative holds an N-gram twice.
func TestCaptionerNoRepeatNgram(t *testing.T) {
	const n = 4
	feats := randomFeatures(n, testP, testF, 7)
	c := testCaptioner(t, model.ArchAttention, 3)
	bias := c.Model().Params.OutputBias.Float32s()
	bias[c.Model().Vocab.ID("a")] += 20
	bias[data.EndID] -= 20
	res, err := c.CaptionFeatures(context.Background(), feats, n, opts(1, 10, 1, 4))
	if err != nil {
		t.Fatal(err)
	}
	if !repeatsNgram(res[0].Tokens, 2) {
		t.Fatalf("rigging failed: %q repeats no bigram", res[0].Caption)
	}
	for _, ngram := range []int{1, 2, 3} {
		for _, k := range []int{1, 3} {
			o := opts(k, 10, k, 4)
			o.NoRepeatNgram = ngram
			res, err := c.CaptionFeatures(context.Background(), feats, n, o)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if len(r.Tokens) == 0 {
					t.Errorf("n %d beam %d image %d: empty caption", ngram, k, i)
				}
				for _, alt := range r.Alternatives {
					if repeatsNgram(alt.Tokens, ngram) {
						t.Errorf("--no-repeat-ngram %d beam %d image %d: %q", ngram, k, i, alt.Caption)
					}
				}
			}
		}
	}
	if got := repeatedNgramWords([]int{5, 6, 5, 7, 5}, 2); !reflect.DeepEqual(got, []int{6, 7}) {
		t.Errorf("after 5 6 5 7 5, bigrams ban %v, want [6 7]", got)
	}
}

// TestCaptionerAttention: with Attention, one α per word (none for
// <end>), each a distribution over the P cells; none for Show and Tell.
func TestCaptionerAttention(t *testing.T) {
	const n = 3
	feats := randomFeatures(n, testP, testF, 8)
	for _, arch := range []string{model.ArchAttention, model.ArchShowTell} {
		c := testCaptioner(t, arch, 2)
		for _, k := range []int{1, 3} {
			o := opts(k, 10, 1, 2)
			o.Attention = true
			res, err := c.CaptionFeatures(context.Background(), feats, n, o)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if arch == model.ArchShowTell {
					if r.Alphas != nil {
						t.Errorf("showtell image %d: alphas %v", i, r.Alphas)
					}
					continue
				}
				if len(r.Alphas) != len(r.Tokens) {
					t.Fatalf("beam %d image %d: %d alphas for %d words", k, i, len(r.Alphas), len(r.Tokens))
				}
				for j, a := range r.Alphas {
					sum := 0.0
					for _, v := range a {
						sum += float64(v)
					}
					if len(a) != testP || math.Abs(sum-1) > 1e-4 {
						t.Errorf("beam %d image %d word %d: α %v", k, i, j, a)
					}
				}
			}
			o.Attention = false
			res, err = c.CaptionFeatures(context.Background(), feats, n, o)
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Alphas != nil {
				t.Error("alphas without Options.Attention")
			}
		}
	}
}

func TestCaptionerErrors(t *testing.T) {
	c := testCaptioner(t, model.ArchAttention, 1)
	feats := randomFeatures(2, testP, testF, 1)
	for name, o := range map[string]Options{
		"beam 0":         opts(0, 5, 1, 1),
		"max length 0":   opts(3, 0, 1, 1),
		"top 4 > beam 3": opts(3, 5, 4, 1),
		"batch 0":        opts(3, 5, 1, 0),
		"penalty NaN":    {Beam: 3, MaxLen: 5, Top: 1, Batch: 1, LengthPenalty: math.NaN()},
		"ngram -1":       {Beam: 3, MaxLen: 5, Top: 1, Batch: 1, NoRepeatNgram: -1},
	} {
		if _, err := c.CaptionFeatures(context.Background(), feats, 2, o); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v, want an error naming the flag", name, err)
		}
	}
	if _, err := c.CaptionFeatures(context.Background(), feats, 3, DefaultOptions()); err == nil {
		t.Error("3 images of features for 2 accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.CaptionFeatures(ctx, feats, 2, DefaultOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if res, err := c.CaptionFeatures(context.Background(), nil, 0, DefaultOptions()); err != nil || len(res) != 0 {
		t.Errorf("no images: %v, %v", res, err)
	}
	// No encoder weights: features work, images fail clearly.
	_, err := c.CaptionImages(context.Background(), []image.Image{testImage(0)}, DefaultOptions())
	if !errors.Is(err, model.ErrNoEncoderWeights) {
		t.Errorf("images without encoder weights: %v, want ErrNoEncoderWeights", err)
	}
	if _, err := NewCaptioner(nil); err == nil {
		t.Error("nil model accepted")
	}
}

// testImage is a small picture that differs with i.
func testImage(i int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 36))
	for y := range 36 {
		for x := range 40 {
			img.Set(x, y, color.NRGBA{uint8(x*6 + i*50), uint8(y*7 - i*30), uint8((x + y + i*13) * 3), 255})
		}
	}
	return img
}

// TestCaptionerImages: a model file with a random ResNet-18 (32-pixel
// images, 7×7 grid) captions images after a save/load round trip exactly
// as the in-memory model does, and exactly as captioning the features
// made by the encoder of 'data features' (RandomEncoder, same seed) does.
func TestCaptionerImages(t *testing.T) {
	vocab := tinyVocab(t, "a", "b", "c", "d", "e", "f")
	p := randomDecoder(t, model.ArchAttention, vocab, 49, 512, 3)
	pre := data.DefaultPreprocessConfig()
	pre.ImageSize, pre.ResizeSize = 32, 36
	id := data.EncoderIdentity{Arch: "resnet18", WeightsSHA256: "random:seed=4", Grid: 7, Channels: 512, Preprocess: pre}
	sd, err := model.EncoderStateDict(id, "")
	if err != nil {
		t.Fatal(err)
	}
	m := &model.ModelFile{Config: p.Config, Params: p, Vocab: vocab, Encoder: id, EncoderWeights: sd}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := model.SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadCaptioner(path)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	imgs := []image.Image{testImage(0), testImage(1), testImage(2)}
	o := opts(3, 8, 2, 2)
	o.Attention = true
	got, err := loaded.CaptionImages(context.Background(), imgs, o)
	if err != nil {
		t.Fatal(err)
	}
	// The features 'data features --weights random --seed 4' computes.
	enc, err := model.RandomEncoder(model.EncoderConfig{Arch: "resnet18", Grid: 7, ImageSize: 32}, model.RandomEncoderRNG(4))
	if err != nil {
		t.Fatal(err)
	}
	var input []float32
	for _, img := range imgs {
		x, err := data.Preprocess(img, pre)
		if err != nil {
			t.Fatal(err)
		}
		input = append(input, x...)
	}
	feats, err := enc.Forward(input, len(imgs))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := NewCaptioner(m)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	want, err := mem.CaptionFeatures(context.Background(), feats, len(imgs), o)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("images through the loaded model: %+v\nfeatures through the in-memory model: %+v", got, want)
	}
	var caps []string
	for _, r := range got {
		caps = append(caps, r.Caption)
	}
	t.Logf("captions: %q", caps)
	if _, err := loaded.CaptionImages(context.Background(), []image.Image{nil}, o); err == nil {
		t.Error("nil image accepted")
	}
}
