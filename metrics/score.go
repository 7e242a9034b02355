package metrics

import (
	"context"
	"fmt"
	"math"

	"github.com/captionctl/captionctl/internal/parallel"
	"github.com/captionctl/captionctl/metrics/meteor"
	"slices"
	"sync"
)

// Metric names one metric family, as --metrics spells it.
type Metric string

// The metric families.
const (
	BLEU   Metric = "bleu"
	METEOR Metric = "meteor"
	ROUGE  Metric = "rouge"
	CIDEr  Metric = "cider"
)

// AllMetrics lists every metric family in the toolkit's reporting order.
var AllMetrics = []Metric{BLEU, METEOR, ROUGE, CIDEr}

// ParseMetric checks a metric name.
func ParseMetric(s string) (Metric, error) {
	for _, m := range AllMetrics {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown metric %q: choose from bleu, meteor, rouge, cider", s)
}

// Image is one image to score: its candidate and references, each already
// tokenized the toolkit's way (package metrics/ptb).
type Image struct {
	ID        int64
	Candidate string
	Refs      []string
}

// Scores are one set of scores on the toolkit's scales (0–1, CIDEr 0–10).
// Only the fields of the metrics that ran are meaningful.
type Scores struct {
	Bleu   [4]float64
	Meteor float64
	RougeL float64
	CIDEr  float64
}

// Options selects what [Score] computes.
type Options struct {
	Metrics []Metric       // nil: all
	Meteor  *meteor.Scorer // required when METEOR is selected
}

// Report is the outcome of [Score].
type Report struct {
	Metrics       []Metric // the metrics that ran, in AllMetrics order
	Corpus        Scores
	PerImage      []Scores // parallel to the images passed
	Bleu          BleuStats
	MeteorModules []string // when METEOR ran
}

// Has reports whether metric m ran.
func (r *Report) Has(m Metric) bool { return slices.Contains(r.Metrics, m) }

// Score computes the selected metrics for images, which must each have at
// least one reference.
func Score(ctx context.Context, images []Image, opts Options) (*Report, error) {
	if len(images) == 0 {
		return nil, fmt.Errorf("no images to score")
	}
	rep := &Report{PerImage: make([]Scores, len(images))}
	for _, m := range AllMetrics {
		if opts.Metrics == nil || slices.Contains(opts.Metrics, m) {
			rep.Metrics = append(rep.Metrics, m)
		}
	}
	for _, im := range images {
		if len(im.Refs) == 0 {
			return nil, fmt.Errorf("image %d has no references", im.ID)
		}
	}

	var wg sync.WaitGroup
	if rep.Has(METEOR) {
		if opts.Meteor == nil {
			return nil, fmt.Errorf("METEOR selected but no METEOR scorer given")
		}
		rep.MeteorModules = opts.Meteor.Modules()
		// METEOR runs beside the n-gram metrics: its alignment search is
		// the larger share of the work.
		wg.Add(1)
		go func() {
			defer wg.Done()
			scoreMeteor(opts.Meteor, images, rep)
		}()
	}
	if rep.Has(BLEU) || rep.Has(ROUGE) || rep.Has(CIDEr) {
		scoreNgramMetrics(images, rep)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

// scoreNgramMetrics computes BLEU, ROUGE-L and CIDEr-D.
func scoreNgramMetrics(images []Image, rep *Report) {
	prepared := prepare(images)
	var cider *ciderScorer
	if rep.Has(CIDEr) {
		countDocFreq(prepared)
		cider = &ciderScorer{refLen: math.Log(float64(len(images)))}
	}
	bleu := make([]BleuStats, len(images))
	parallel.For(len(prepared), func() func(int) {
		var lcsRow []int32
		var sc ciderScratch
		return func(i int) {
			im := &prepared[i]
			out := &rep.PerImage[i]
			if rep.Has(BLEU) {
				bleu[i] = bleuStats(im)
				out.Bleu = bleu[i].Scores()
			}
			if rep.Has(ROUGE) {
				if need := len(im.cand.split) + 1; cap(lcsRow) < need {
					lcsRow = make([]int32, need)
				}
				out.RougeL = rougeL(im, lcsRow)
			}
			if cider != nil {
				out.CIDEr = cider.ciderD(im, &sc)
			}
		}
	})
	if rep.Has(BLEU) {
		for _, st := range bleu {
			rep.Bleu.add(st)
		}
		rep.Corpus.Bleu = rep.Bleu.Scores()
	}
	per := make([]float64, len(images))
	if rep.Has(ROUGE) {
		for i := range per {
			per[i] = rep.PerImage[i].RougeL
		}
		rep.Corpus.RougeL = npMean(per)
	}
	if cider != nil {
		for i := range per {
			per[i] = rep.PerImage[i].CIDEr
		}
		rep.Corpus.CIDEr = npMean(per)
	}
}

// scoreMeteor computes METEOR per image and for the corpus (from the summed
// statistics, as Meteor's EVAL does).
func scoreMeteor(scorer *meteor.Scorer, images []Image, rep *Report) {
	stats := make([]meteor.Stats, len(images))
	parallel.For(len(images), func() func(int) {
		return func(i int) {
			stats[i] = scorer.Stats(images[i].Candidate, images[i].Refs)
			rep.PerImage[i].Meteor = stats[i].Score()
		}
	})
	rep.Corpus.Meteor = meteor.CorpusScore(stats)
}
