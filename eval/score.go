package eval

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/metrics"
	"github.com/captionctl/captionctl/metrics/meteor"
	"github.com/captionctl/captionctl/metrics/ptb"
)

// Options selects what ScoreResults computes.
type Options struct {
	// Metrics to compute; nil means all.
	Metrics []metrics.Metric
	// MeteorParaphrase is Meteor's paraphrase-en.gz; empty runs METEOR with
	// the exact, stem and synonym modules only.
	MeteorParaphrase string
}

// Report is the outcome of scoring a results file.
type Report struct {
	*metrics.Report
	ImageIDs  []int64 // scored images in evaluation order (parallel to PerImage)
	RefImages int     // images with references in the reference file
}

// ScoreResults checks that results fit refs (every image has references,
// none is unknown), tokenizes every caption as the toolkit does and scores
// them. resultsFile names the results for messages.
//
// Images are scored in the toolkit's evaluation order: the order of the
// reference file's "images" section, then, for images it does not list (or
// when it has none), the order of the results.
func ScoreResults(ctx context.Context, refs *Refs, results []Result, resultsFile string, opts Options) (*Report, error) {
	if err := checkCoverage(refs, results, resultsFile); err != nil {
		return nil, err
	}
	results = evaluationOrder(refs, results)
	var meteorScorer *meteor.Scorer
	wantMeteor := opts.Metrics == nil || slices.Contains(opts.Metrics, metrics.METEOR)
	meteorReady := make(chan error, 1)
	if wantMeteor {
		// Load Meteor's resources while the captions are tokenized.
		go func() {
			var err error
			meteorScorer, err = meteor.New(meteor.Options{ParaphraseFile: opts.MeteorParaphrase})
			meteorReady <- err
		}()
	} else {
		meteorReady <- nil
	}
	images := tokenize(results, refs)
	if err := <-meteorReady; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep, err := metrics.Score(ctx, images, metrics.Options{Metrics: opts.Metrics, Meteor: meteorScorer})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(results))
	for i, r := range results {
		ids[i] = r.ImageID
	}
	return &Report{Report: rep, ImageIDs: ids, RefImages: len(refs.Captions)}, nil
}

// checkCoverage reports results for images the references do not have.
func checkCoverage(refs *Refs, results []Result, resultsFile string) error {
	var unknown, uncaptioned []int64
	listed := make(map[int64]bool, len(refs.Listed))
	for _, id := range refs.Listed {
		listed[id] = true
	}
	for _, r := range results {
		if len(refs.Captions[r.ImageID]) > 0 {
			continue
		}
		if listed[r.ImageID] {
			uncaptioned = append(uncaptioned, r.ImageID)
		} else {
			unknown = append(unknown, r.ImageID)
		}
	}
	if len(uncaptioned) > 0 {
		return badinput.Errorf(refs.File, "no reference captions for %s of %s: %s (listed in \"images\", but no annotation has the id); every scored image needs at least one",
			plural(len(uncaptioned), "image", "images"), resultsFile, firstIDs(uncaptioned))
	}
	if len(unknown) > 0 {
		return badinput.Errorf(resultsFile, "%s an image_id that %s does not have: %s; check that the results and references are for the same split",
			plural(len(unknown), "result has", "results have"), refs.File, firstIDs(unknown))
	}
	return nil
}

// evaluationOrder sorts results as pycocoevalcap evaluates them: loadRes
// keeps the reference file's "images" entries that have results, in file
// order, and COCOEvalCap.evaluate walks those.
func evaluationOrder(refs *Refs, results []Result) []Result {
	if len(refs.Listed) == 0 {
		return results
	}
	index := make(map[int64]int, len(results))
	for i, r := range results {
		index[r.ImageID] = i
	}
	ordered := make([]Result, 0, len(results))
	taken := make([]bool, len(results))
	for _, id := range refs.Listed {
		if i, ok := index[id]; ok && !taken[i] {
			ordered = append(ordered, results[i])
			taken[i] = true
		}
	}
	for i, r := range results {
		if !taken[i] {
			ordered = append(ordered, r)
		}
	}
	return ordered
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func firstIDs(ids []int64) string {
	const show = 5
	var b strings.Builder
	for i, id := range ids[:min(show, len(ids))] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, id)
	}
	if len(ids) > show {
		fmt.Fprintf(&b, ", … (first %d of %d)", show, len(ids))
	}
	return b.String()
}

// tokenize builds the scoring input as the toolkit does: its tokenizer
// runs once over all references (image by image in evaluation order, each
// image's captions in file order) and once over all candidates, and a
// caption's tokens can depend on the caption after it (ptb.TokenizeAll).
func tokenize(results []Result, refs *Refs) []metrics.Image {
	images := make([]metrics.Image, len(results))
	candidates := make([]string, len(results))
	var refCaptions []string
	for i, r := range results {
		candidates[i] = r.Caption
		refCaptions = append(refCaptions, refs.Captions[r.ImageID]...)
	}
	var tokRefs []string
	done := make(chan struct{})
	go func() {
		tokRefs = ptb.TokenizeAll(refCaptions)
		close(done)
	}()
	tokCands := ptb.TokenizeAll(candidates)
	<-done
	for i, r := range results {
		n := len(refs.Captions[r.ImageID])
		images[i] = metrics.Image{ID: r.ImageID, Candidate: tokCands[i], Refs: tokRefs[:n:n]}
		tokRefs = tokRefs[n:]
	}
	return images
}
