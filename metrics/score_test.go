package metrics

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/captionctl/captionctl/internal/oracle"
)

// oracleImages builds the scoring input of a case from the toolkit's own
// tokenization, so these tests isolate the metrics from the tokenizer.
func oracleImages(t testing.TB, c *oracle.Case) []Image {
	t.Helper()
	images := make([]Image, len(c.Results))
	for i, r := range c.Results {
		images[i] = Image{ID: r.ImageID, Candidate: c.ResTokenized(r.ImageID), Refs: c.RefsTokenized(r.ImageID)}
	}
	return images
}

// TestOracleNgramMetrics checks BLEU, ROUGE-L and CIDEr-D, corpus and per
// image, against the toolkit's expected.json for every case.
func TestOracleNgramMetrics(t *testing.T) {
	const tol = 1e-9
	for _, name := range oracle.Cases {
		t.Run(name, func(t *testing.T) {
			c, err := oracle.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Score(context.Background(), oracleImages(t, c), Options{Metrics: []Metric{BLEU, ROUGE, CIDEr}})
			if err != nil {
				t.Fatal(err)
			}
			want := c.Expected.BleuStats
			got := rep.Bleu
			if got.TestLen != want.TestLen || got.RefLen != want.RefLen ||
				fmt.Sprint(got.Guess[:]) != fmt.Sprint(want.Guess) || fmt.Sprint(got.Correct[:]) != fmt.Sprint(want.Correct) {
				t.Errorf("BLEU counts: got %+v, want %+v", got, want)
			}
			worst := map[string]float64{}
			check := func(what string, id int64, got, want float64) {
				d := math.Abs(got - want)
				if d > worst[what] {
					worst[what] = d
				}
				if d > tol || math.IsNaN(got) {
					t.Errorf("image %d %s: got %.17g, want %.17g (|Δ| %.3g)", id, what, got, want, d)
				}
			}
			compare := func(id int64, got Scores, want oracle.Scores) {
				check("Bleu_1", id, got.Bleu[0], want.Bleu1)
				check("Bleu_2", id, got.Bleu[1], want.Bleu2)
				check("Bleu_3", id, got.Bleu[2], want.Bleu3)
				check("Bleu_4", id, got.Bleu[3], want.Bleu4)
				check("ROUGE_L", id, got.RougeL, want.RougeL)
				check("CIDEr", id, got.CIDEr, want.CIDEr)
			}
			compare(-1, rep.Corpus, c.Expected.Scores)
			for i, want := range c.Expected.PerImage {
				if c.Results[i].ImageID != want.ImageID {
					t.Fatalf("per-image order: result %d is image %d, expected.json has %d", i, c.Results[i].ImageID, want.ImageID)
				}
				compare(want.ImageID, rep.PerImage[i], want)
			}
			t.Logf("worst |Δ|: %v", worst)
		})
	}
}

// BenchmarkNgramMetrics times BLEU, ROUGE-L and CIDEr-D on the 5,000-image
// case (toolkit: 0.4 s + 0.3 s + 2.0 s).
func BenchmarkNgramMetrics(b *testing.B) {
	c, err := oracle.Load("coco_val2017_human_loo")
	if err != nil {
		b.Fatal(err)
	}
	images := oracleImages(b, c)
	for _, m := range []Metric{BLEU, ROUGE, CIDEr} {
		b.Run(fmt.Sprintf("%s/images=%d", m, len(images)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Score(context.Background(), images, Options{Metrics: []Metric{m}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run(fmt.Sprintf("all/images=%d", len(images)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Score(context.Background(), images, Options{Metrics: []Metric{BLEU, ROUGE, CIDEr}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSplitLikePython checks the toolkit's two ways of splitting a caption:
// str.split() for BLEU and CIDEr, str.split(" ") for ROUGE-L (expected
// values from Python 3).
func TestSplitLikePython(t *testing.T) {
	cases := []struct {
		in           string
		words, split int
	}{
		{"a man", 2, 2},
		{"", 0, 1},                // "".split() == [], "".split(" ") == [""]
		{"3\u00a01/2 cups", 3, 2}, // no-break space: a separator for split() only
		{"a\x1cb", 2, 1},          // U+001C is whitespace to Python, not to Go
		{"a  b", 2, 3},
		{" a b", 2, 3},
		{"a b ", 2, 3},
		{"a\tb", 2, 1},
	}
	for _, c := range cases {
		cp := splitCaption(newVocab(), c.in)
		if len(cp.words) != c.words || len(cp.split) != c.split {
			t.Errorf("%q: %d words, %d split parts; want %d, %d", c.in, len(cp.words), len(cp.split), c.words, c.split)
		}
	}
}
