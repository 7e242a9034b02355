package eval

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/captionctl/captionctl/internal/oracle"
	"github.com/captionctl/captionctl/metrics"
)

// readCase returns a committed oracle case's refs.json and res.json
// (gunzipped where stored gzipped).
func readCase(tb testing.TB, name string) (refs, res []byte) {
	tb.Helper()
	read := func(base string) []byte {
		path := filepath.Join(oracle.Dir(), name, base)
		if data, err := os.ReadFile(path); err == nil {
			return data
		}
		data, err := os.ReadFile(path + ".gz")
		if err != nil {
			tb.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			tb.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			tb.Fatal(err)
		}
		return out
	}
	return read("refs.json"), read("res.json")
}

// TestScoreResultsOracle runs the whole chain — reading, the toolkit's
// tokenization, every metric — on every oracle case and compares with the
// toolkit's expected.json.
func TestScoreResultsOracle(t *testing.T) {
	for _, name := range oracle.Cases {
		t.Run(name, func(t *testing.T) {
			c, err := oracle.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			refsData, resData := readCase(t, name)
			refs, err := ParseRefs("refs.json", refsData)
			if err != nil {
				t.Fatal(err)
			}
			results, err := ParseResults("res.json", resData)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := ScoreResults(context.Background(), refs, results, "res.json", Options{})
			if err != nil {
				t.Fatal(err)
			}
			check := func(id int64, what string, got, want, tol float64) {
				if math.Abs(got-want) > tol {
					t.Errorf("image %d %s: got %.17g, want %.17g", id, what, got, want)
				}
			}
			for i, want := range append([]oracle.Scores{c.Expected.Scores}, c.Expected.PerImage...) {
				got := rep.Corpus
				id := int64(-1) // corpus
				if i > 0 {
					got, id = rep.PerImage[i-1], rep.ImageIDs[i-1]
					if id != want.ImageID {
						t.Fatalf("image %d scored in place of %d", id, want.ImageID)
					}
				}
				for k, w := range []float64{want.Bleu1, want.Bleu2, want.Bleu3, want.Bleu4} {
					check(id, fmt.Sprintf("Bleu_%d", k+1), got.Bleu[k], w, 1e-9)
				}
				check(id, "METEOR", got.Meteor, want.Meteor, 1e-6)
				check(id, "ROUGE_L", got.RougeL, want.RougeL, 1e-9)
				check(id, "CIDEr", got.CIDEr, want.CIDEr, 1e-9)
			}
		})
	}
}

// BenchmarkEval times what `captionctl eval` does for the 5,000-image case
// after the files are read: parsing, tokenizing, every metric (the toolkit:
// 6.9 s).
func BenchmarkEval(b *testing.B) {
	refsData, resData := readCase(b, "coco_val2017_human_loo")
	b.Run("images=5000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			refs, err := ParseRefs("refs.json", refsData)
			if err != nil {
				b.Fatal(err)
			}
			results, err := ParseResults("res.json", resData)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ScoreResults(context.Background(), refs, results, "res.json", Options{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The toolkit evaluates images in the order of the reference file's "images"
// section (loadRes filters it to the results' images); images it does not
// list follow in results order.
func TestEvaluationOrder(t *testing.T) {
	refs, err := ParseRefs("refs.json", []byte(`{"images": [{"id": 3}, {"id": 1}, {"id": 2}],
		"annotations": [{"image_id": 1, "caption": "a dog"}, {"image_id": 2, "caption": "a cat"},
		{"image_id": 3, "caption": "a cow"}, {"image_id": 4, "caption": "a pig"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	results := []Result{{4, "a pig"}, {1, "a dog"}, {2, "a cat"}, {3, "a cow"}}
	rep, err := ScoreResults(context.Background(), refs, results, "res.json", Options{Metrics: []metrics.Metric{metrics.BLEU}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rep.ImageIDs); got != "[3 1 2 4]" {
		t.Errorf("evaluation order %s, want [3 1 2 4]", got)
	}
	for i, s := range rep.PerImage {
		if math.Abs(s.Bleu[0]-1) > 1e-8 {
			t.Errorf("image %d: Bleu_1 %v, want 1 (scores not aligned with ids?)", rep.ImageIDs[i], s.Bleu[0])
		}
	}
}
