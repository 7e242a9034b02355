package meteor

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/captionctl/captionctl/internal/oracle"
)

// tolerance is the agreement required with the toolkit's METEOR.
const tolerance = 1e-6

var (
	sharedScorerOnce sync.Once
	sharedScorer     *Scorer
	sharedScorerErr  error
)

func testScorer(tb testing.TB) *Scorer {
	tb.Helper()
	sharedScorerOnce.Do(func() { sharedScorer, sharedScorerErr = New(Options{}) })
	if sharedScorerErr != nil {
		tb.Fatal(sharedScorerErr)
	}
	return sharedScorer
}

type mismatch struct {
	id        int64
	hyp       string
	refs      []string
	got, want float64
}

// TestOracleCases checks every per-image score and the corpus score of
// every oracle case against the COCO caption toolkit (pycocoevalcap's
// meteor.py driving Meteor 1.5 with -l en -norm -m 'exact stem synonym').
func TestOracleCases(t *testing.T) {
	s := testScorer(t)
	for _, name := range oracle.Cases {
		t.Run(name, func(t *testing.T) {
			c, err := oracle.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Expected.PerImage) != len(c.Results) {
				t.Fatalf("%d per-image scores for %d results", len(c.Expected.PerImage), len(c.Results))
			}
			stats := make([]Stats, len(c.Results))
			var bad []mismatch
			maxErr := 0.0
			for i, r := range c.Results {
				want := c.Expected.PerImage[i]
				if want.ImageID != r.ImageID {
					t.Fatalf("result %d is image %d, expected per-image entry is %d", i, r.ImageID, want.ImageID)
				}
				hyp, refs := c.ResTokenized(r.ImageID), c.RefsTokenized(r.ImageID)
				stats[i] = s.Stats(hyp, refs)
				got := stats[i].Score()
				d := math.Abs(got - want.Meteor)
				maxErr = math.Max(maxErr, d)
				if d > tolerance {
					bad = append(bad, mismatch{r.ImageID, hyp, refs, got, want.Meteor})
				}
			}
			corpus := CorpusScore(stats)
			corpusErr := math.Abs(corpus - c.Expected.Scores.Meteor)
			t.Logf("%d images: max per-image error %.3g, corpus %.17g (want %.17g, error %.3g)",
				len(stats), maxErr, corpus, c.Expected.Scores.Meteor, corpusErr)
			if len(bad) > 0 {
				sort.Slice(bad, func(i, j int) bool {
					return math.Abs(bad[i].got-bad[i].want) > math.Abs(bad[j].got-bad[j].want)
				})
				var b strings.Builder
				for _, m := range bad[:min(len(bad), 10)] {
					fmt.Fprintf(&b, "\n  image %d: got %.17g want %.17g\n    hyp:  %q\n    refs: %q", m.id, m.got, m.want, m.hyp, m.refs)
				}
				t.Errorf("%d of %d per-image scores differ by more than %g; worst:%s", len(bad), len(stats), tolerance, b.String())
			}
			if corpusErr > tolerance {
				t.Errorf("corpus METEOR %.17g, want %.17g", corpus, c.Expected.Scores.Meteor)
			}
		})
	}
}

// TestConcurrentStats scores one case from several goroutines and expects
// the sequential results (run with -race to check the Scorer's sharing).
func TestConcurrentStats(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := oracle.Load("coco_val2017_fakecap")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]Stats, len(c.Results))
	for i, r := range c.Results {
		want[i] = testScorer(t).Stats(c.ResTokenized(r.ImageID), c.RefsTokenized(r.ImageID))
	}
	got := make([]Stats, len(c.Results))
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(c.Results); i += 4 {
				r := c.Results[i]
				got[i] = s.Stats(c.ResTokenized(r.ImageID), c.RefsTokenized(r.ImageID))
			}
		}(w)
	}
	wg.Wait()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("image %d: concurrent %v, sequential %v", c.Results[i].ImageID, got[i], want[i])
		}
	}
}
