package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/eval"
	"github.com/captionctl/captionctl/infer"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/metrics"
	"github.com/captionctl/captionctl/metrics/ptb"
	"github.com/captionctl/captionctl/model"
	"github.com/captionctl/captionctl/progress"
)

// evalOptions are the flags of `captionctl eval`, in one of two modes:
// --refs … --results … scores a results file; --model … --data …
// captions a split of a prepared dataset with a model and scores that.
type evalOptions struct {
	Refs             string
	Results          string
	JSON             bool
	PerImage         string
	Metrics          []metrics.Metric
	MeteorParaphrase string

	// Model mode (Model != "").
	Model  string
	Data   string
	Split  string
	Images string // images root; "" takes the dataset manifest's
	Out    string
	Search infer.Options
	Quiet  bool
}

// evalModelFlags are the flags of the --model mode only.
var evalModelFlags = []string{"data", "split", "images", "out", "beam", "max-len", "length-penalty", "no-repeat-ngram", "batch"}

func evalCommand() *cli.Command {
	def := infer.DefaultOptions()
	return &cli.Command{
		Name:  "eval",
		Usage: "caption a dataset split with a model and score it, or score a COCO results file (BLEU, METEOR, ROUGE-L, CIDEr-D)",
		UsageText: "captionctl eval --model MODEL.safetensors --data DIR [--split test] [--beam 3] [--max-len N] [--out RESULTS.json] [--json] [--per-image FILE] [--batch N]\n" +
			"captionctl eval --refs REFS.json --results RESULTS.json [--json] [--per-image FILE] [--metrics bleu,meteor,rouge,cider] [--meteor-paraphrase paraphrase-en.gz]",
		Description: "With --model and --data, captions every image of a prepared dataset's split (--split, default test)\n" +
			"by beam search, from the cached features in DIR/features when they were made by the model's encoder\n" +
			"(same architecture, weights, grid and preprocessing), otherwise from the images themselves with the\n" +
			"encoder stored in the model file; writes the captions as a COCO results file (--out) and scores them\n" +
			"against DIR/refs_SPLIT.json exactly as --refs/--results would.\n\n" +
			"Scores exactly as the COCO caption toolkit (pycocoevalcap with Stanford CoreNLP's PTBTokenizer\n" +
			"and Meteor 1.5) does: the same tokenization, BLEU-1..4 ('closest' reference length), METEOR 1.5\n" +
			"(-l en -norm), ROUGE-L (beta 1.2) and CIDEr-D (sigma 6). Scores are on a 0-1 scale, CIDEr-D on 0-10.\n\n" +
			"REFS is a COCO annotation file ({\"annotations\": [{\"image_id\", \"caption\"}, …]}; \"images\" optional).\n" +
			"RESULTS is a COCO results file ([{\"image_id\", \"caption\"}, …], one caption per image); the images\n" +
			"scored are the results' images.\n\n" +
			"METEOR uses the exact, stem and synonym modules; the canonical METEOR also matches paraphrases,\n" +
			"which needs Meteor's paraphrase-en.gz (--meteor-paraphrase).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "refs", Usage: "reference captions, COCO annotation format `FILE`", Category: "Input"},
			&cli.StringFlag{Name: "results", Usage: "candidate captions, COCO results format `FILE`", Category: "Input"},
			&cli.StringFlag{Name: "model", Usage: "caption with the model `FILE` (written by 'captionctl train') instead of reading --results", Category: "Model"},
			&cli.StringFlag{Name: "data", Usage: "prepared dataset `DIR` ('captionctl data prepare') whose split --model captions", Category: "Model"},
			&cli.StringFlag{Name: "split", Value: "test", Usage: "the dataset's `SPLIT` to caption: train, val or test", Category: "Model"},
			&cli.StringFlag{Name: "images", Usage: "images root `DIR` when captioning from images (default: the dataset manifest's)", Category: "Model"},
			&cli.StringFlag{Name: "out", Usage: "write the captions as a COCO results `FILE`", Category: "Model"},
			&cli.IntFlag{Name: "beam", Value: def.Beam, Usage: "beam width `K` (1: greedy)", Category: "Model"},
			&cli.IntFlag{Name: "max-len", Value: def.MaxLen, Usage: "at most `N` decoder steps per caption", Category: "Model"},
			&cli.Float64Flag{Name: "length-penalty", Value: def.LengthPenalty, Usage: "rank captions by log-prob / length^`A`", Category: "Model"},
			&cli.IntFlag{Name: "no-repeat-ngram", Usage: "never repeat an n-gram of `N` words (0: off)", Category: "Model"},
			&cli.IntFlag{Name: "batch", Value: def.Batch, Usage: "caption `N` images at once", Category: "Model"},
			&cli.StringFlag{Name: "metrics", Value: "bleu,meteor,rouge,cider", Usage: "comma-separated `LIST` of metrics to compute", Category: "Scoring"},
			&cli.StringFlag{Name: "meteor-paraphrase", Usage: "Meteor 1.5's paraphrase table `FILE` (paraphrase-en.gz) for canonical METEOR", Category: "Scoring"},
			&cli.BoolFlag{Name: "json", Usage: "print the scores as one JSON object", Category: "Output"},
			&cli.StringFlag{Name: "per-image", Usage: "write every image's scores to `FILE` as JSON lines", Category: "Output"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			opts, err := evalOptionsFrom(c)
			if err != nil {
				return err
			}
			if opts.Model != "" {
				return runEvalModel(c, opts)
			}
			return runEval(c, opts)
		},
	}
}

func evalOptionsFrom(c *cli.Context) (evalOptions, error) {
	opts := evalOptions{
		Refs:             c.String("refs"),
		Results:          c.String("results"),
		JSON:             c.Bool("json"),
		PerImage:         c.String("per-image"),
		MeteorParaphrase: c.String("meteor-paraphrase"),
		Model:            c.String("model"),
		Data:             c.String("data"),
		Split:            c.String("split"),
		Images:           c.String("images"),
		Out:              c.String("out"),
		Quiet:            c.Bool("quiet"),
	}
	if c.Args().Present() {
		return opts, usagef("eval takes no arguments, got %q: give files with --refs and --results, or --model and --data", c.Args().First())
	}
	modelMode := opts.Model != "" || opts.Data != ""
	scoreMode := opts.Refs != "" || opts.Results != ""
	switch {
	case modelMode && scoreMode:
		return opts, usagef("eval either scores a results file (--refs and --results) or captions a split with a model and scores it (--model and --data), not both: drop --refs/--results or --model/--data")
	case !modelMode && (opts.Refs == "" || opts.Results == ""):
		return opts, usagef("eval needs --refs REFS.json and --results RESULTS.json, or --model FILE and --data DIR to caption a split and score it")
	case modelMode && opts.Model == "":
		return opts, usagef("--data is given without --model: eval --model FILE --data DIR captions the dataset's split with the model")
	case modelMode && opts.Data == "":
		return opts, usagef("--model needs --data DIR, the prepared dataset whose split (--split, default test) it captions and scores")
	}
	if !modelMode {
		for _, name := range evalModelFlags {
			if c.IsSet(name) {
				return opts, usagef("--%s applies to eval --model only, not to --refs/--results", name)
			}
		}
	}
	if modelMode {
		if !slices.Contains(data.Splits, opts.Split) {
			return opts, usagef("--split must be one of %s, got %q", strings.Join(data.Splits, ", "), opts.Split)
		}
		opts.Search = infer.DefaultOptions()
		opts.Search.Beam = c.Int("beam")
		opts.Search.MaxLen = c.Int("max-len")
		opts.Search.LengthPenalty = c.Float64("length-penalty")
		opts.Search.NoRepeatNgram = c.Int("no-repeat-ngram")
		opts.Search.Batch = c.Int("batch")
		opts.Search.Top = 1
		if err := opts.Search.Validate(); err != nil {
			return opts, usageError{err}
		}
	}
	for _, name := range strings.Split(c.String("metrics"), ",") {
		name = strings.TrimSpace(strings.ToLower(name))
		if name == "" {
			continue
		}
		m, err := metrics.ParseMetric(name)
		if err != nil {
			return opts, usagef("--metrics: %v", err)
		}
		if !slices.Contains(opts.Metrics, m) {
			opts.Metrics = append(opts.Metrics, m)
		}
	}
	if len(opts.Metrics) == 0 {
		return opts, usagef("--metrics must name at least one of bleu, meteor, rouge, cider")
	}
	if opts.MeteorParaphrase != "" && !slices.Contains(opts.Metrics, metrics.METEOR) {
		return opts, usagef("--meteor-paraphrase is given but --metrics does not include meteor")
	}
	return opts, nil
}

func runEval(c *cli.Context, opts evalOptions) error {
	// The tokenizer's tables load while the two files are parsed side by
	// side.
	go ptb.Warm()
	var results []eval.Result
	var resultsErr error
	done := make(chan struct{})
	go func() {
		results, resultsErr = eval.ReadResults(opts.Results)
		close(done)
	}()
	refs, err := eval.ReadRefs(opts.Refs)
	<-done
	if err != nil {
		return err
	}
	if resultsErr != nil {
		return resultsErr
	}
	return scoreAndReport(c, opts, refs, results, opts.Results)
}

// scoreAndReport scores results (named resultsName in messages) against
// refs and prints the table or JSON, writing --per-image.
func scoreAndReport(c *cli.Context, opts evalOptions, refs *eval.Refs, results []eval.Result, resultsName string) error {
	rep, err := eval.ScoreResults(c.Context, refs, results, resultsName, eval.Options{
		Metrics:          opts.Metrics,
		MeteorParaphrase: opts.MeteorParaphrase,
	})
	if err != nil {
		return err
	}
	if opts.PerImage != "" {
		if err := atomicfile.Write(opts.PerImage, 0o644, func(w io.Writer) error { return writePerImage(w, rep) }); err != nil {
			return err
		}
	}
	stdout := c.App.Writer
	if opts.JSON {
		return writeScoresJSON(stdout, rep)
	}
	if rep.RefImages > len(rep.ImageIDs) {
		fmt.Fprintf(c.App.ErrWriter, "captionctl: note: %s has references for %d images; %s covers %d of them, and only those are scored\n",
			refs.File, rep.RefImages, resultsName, len(rep.ImageIDs))
	}
	return writeScoresTable(stdout, rep)
}

// scoreKeys lists the toolkit's score names for the metrics that ran.
func scoreKeys(rep *metrics.Report) []string {
	var keys []string
	for _, m := range rep.Metrics {
		switch m {
		case metrics.BLEU:
			keys = append(keys, "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")
		case metrics.METEOR:
			keys = append(keys, "METEOR")
		case metrics.ROUGE:
			keys = append(keys, "ROUGE_L")
		case metrics.CIDEr:
			keys = append(keys, "CIDEr")
		}
	}
	return keys
}

func scoreValue(s *metrics.Scores, key string) float64 {
	switch key {
	case "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4":
		return s.Bleu[key[5]-'1']
	case "METEOR":
		return s.Meteor
	case "ROUGE_L":
		return s.RougeL
	}
	return s.CIDEr
}

// jsonObject writes an object with keys in the given order.
type jsonObject struct {
	keys   []string
	values []any
}

func (o *jsonObject) set(key string, value any) {
	o.keys = append(o.keys, key)
	o.values = append(o.values, value)
}

func (o *jsonObject) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func writeScoresJSON(w io.Writer, rep *eval.Report) error {
	var obj jsonObject
	for _, k := range scoreKeys(rep.Report) {
		obj.set(k, scoreValue(&rep.Corpus, k))
	}
	obj.set("n_images", len(rep.ImageIDs))
	if rep.Has(metrics.METEOR) {
		obj.set("meteor_modules", rep.MeteorModules)
	}
	out, err := json.Marshal(&obj)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

func writePerImage(w io.Writer, rep *eval.Report) error {
	keys := scoreKeys(rep.Report)
	for i, id := range rep.ImageIDs {
		var obj jsonObject
		obj.set("image_id", id)
		for _, k := range keys {
			obj.set(k, scoreValue(&rep.PerImage[i], k))
		}
		out, err := json.Marshal(&obj)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", out); err != nil {
			return err
		}
	}
	return nil
}

func writeScoresTable(w io.Writer, rep *eval.Report) error {
	fmt.Fprintf(w, "%d images; scores on a 0-1 scale, CIDEr-D on 0-10\n", len(rep.ImageIDs))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, k := range scoreKeys(rep.Report) {
		note := ""
		if k == "METEOR" {
			note = "modules: " + strings.Join(rep.MeteorModules, ", ")
			if !slices.Contains(rep.MeteorModules, "paraphrase") {
				note += " (no paraphrase table: lower than canonical METEOR; see --meteor-paraphrase)"
			}
		}
		if note != "" {
			note = "\t" + note
		}
		fmt.Fprintf(tw, "%s\t%.6f%s\n", k, scoreValue(&rep.Corpus, k), note)
	}
	return tw.Flush()
}

// runEvalModel captions opts.Split of the dataset opts.Data with
// opts.Model, writes --out and scores the captions against the split's
// references.
func runEvalModel(c *cli.Context, opts evalOptions) error {
	go ptb.Warm()
	stderr := c.App.ErrWriter
	refs, err := eval.ReadRefs(filepath.Join(opts.Data, data.RefsFile(opts.Split)))
	if err != nil {
		return err
	}
	images, err := data.ReadSplit(filepath.Join(opts.Data, data.SplitFile(opts.Split)))
	if err != nil {
		return err
	}
	if len(images) == 0 {
		return badinput.Errorf(filepath.Join(opts.Data, data.SplitFile(opts.Split)), "split %q has no images", opts.Split)
	}
	captioner, err := infer.LoadCaptioner(opts.Model)
	if err != nil {
		return err
	}
	defer captioner.Close()
	rep := newReporter(stderr, opts.Quiet)
	var results []eval.Result
	fs, why := matchingFeatures(opts.Data, opts.Split, captioner.Model())
	if fs != nil {
		defer fs.Close()
		results, err = captionFromFeatures(c.Context, captioner, fs, images, opts, rep, stderr)
	} else {
		if _, encErr := captioner.Encoder(); encErr != nil {
			return fmt.Errorf("cannot caption split %q: %s, and %w; run 'captionctl data features' with the model's encoder", opts.Split, why, encErr)
		}
		fmt.Fprintf(stderr, "captionctl: note: %s; captioning the %d images of split %q from the image files\n", why, len(images), opts.Split)
		results, err = captionFromImages(c.Context, captioner, images, opts, rep, stderr)
	}
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no image of split %q could be captioned", opts.Split)
	}
	resultsName := fmt.Sprintf("the captions of split %q", opts.Split)
	if opts.Out != "" {
		if err := atomicfile.Write(opts.Out, 0o644, func(w io.Writer) error { return writeResults(w, results) }); err != nil {
			return err
		}
		resultsName = opts.Out
	}
	return scoreAndReport(c, opts, refs, results, resultsName)
}

// matchingFeatures opens the split's cached features when the dataset has
// them and they were made by the model's encoder; otherwise it returns
// nil and why not.
func matchingFeatures(dataDir, split string, m *model.ModelFile) (*data.FeatureSet, string) {
	manifestPath := filepath.Join(dataDir, data.FeaturesDir, "manifest.json")
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, fmt.Sprintf("%s has no cached features (%s)", dataDir, pathErrorReason(err))
	}
	var fm data.FeaturesManifest
	if err := json.Unmarshal(raw, &fm); err != nil || fm.Format != data.FeaturesFormat {
		return nil, fmt.Sprintf("%s is not a features manifest this captionctl reads", manifestPath)
	}
	if m.Encoder.Arch == "" {
		return nil, "the model file does not record which encoder its features came from, so the cached features cannot be trusted"
	}
	if fm.Identity != m.Encoder {
		return nil, fmt.Sprintf("the cached features in %s were made by another encoder (%s) than the model's (%s)",
			filepath.Dir(manifestPath), describeEncoder(fm.Identity), describeEncoder(m.Encoder))
	}
	fs, err := data.OpenFeatures(dataDir, split)
	if err != nil {
		return nil, fmt.Sprintf("the cached features cannot be used (%v)", err)
	}
	if fs.Cells != m.Config.GridCells || fs.Channels != m.Config.FeatureDim {
		fs.Close()
		return nil, fmt.Sprintf("the cached features are %d×%d, the model wants %d×%d", fs.Cells, fs.Channels, m.Config.GridCells, m.Config.FeatureDim)
	}
	return fs, ""
}

// pathErrorReason is err's reason without the path *os.PathError repeats.
func pathErrorReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// describeEncoder names an encoder identity for messages.
func describeEncoder(id data.EncoderIdentity) string {
	weights := id.WeightsSHA256
	if len(weights) > 12 && !strings.Contains(weights, ":") {
		weights = "weights " + weights[:12] + "…"
	}
	return fmt.Sprintf("%s, %s, grid %d, %d-pixel input", id.Arch, weights, id.Grid, id.Preprocess.ImageSize)
}

// evalChunk is how many batches of images are captioned per call, so that
// progress moves and memory stays bounded.
const evalChunk = 8

// captionFromFeatures captions the split's images that have cached
// features, in split order.
func captionFromFeatures(ctx context.Context, captioner *infer.Captioner, fs *data.FeatureSet, images []data.Image, opts evalOptions, rep progress.Reporter, stderr io.Writer) ([]eval.Result, error) {
	var ids []int64
	for _, im := range images {
		if fs.Has(im.ImageID) {
			ids = append(ids, im.ImageID)
		}
	}
	if missing := len(images) - len(ids); missing > 0 {
		fmt.Fprintf(stderr, "captionctl: note: %d of the %d images of split %q have no cached features (skipped by 'data features'); they are not captioned\n",
			missing, len(images), opts.Split)
	}
	rep.Start(fmt.Sprintf("captioning %s (features)", opts.Split), int64(len(ids)))
	defer rep.Done()
	size := fs.Size()
	chunk := opts.Search.Batch * evalChunk
	feats := make([]float32, min(chunk, len(ids))*size)
	results := make([]eval.Result, 0, len(ids))
	for lo := 0; lo < len(ids); lo += chunk {
		hi := min(lo+chunk, len(ids))
		for i, id := range ids[lo:hi] {
			if err := fs.Fill(feats[i*size:(i+1)*size], id); err != nil {
				return nil, err
			}
		}
		res, err := captioner.CaptionFeatures(ctx, feats[:(hi-lo)*size], hi-lo, opts.Search)
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			results = append(results, eval.Result{ImageID: ids[lo+i], Caption: r.Caption})
		}
		rep.Add(int64(hi - lo))
	}
	return results, nil
}

// captionFromImages decodes and captions the split's image files, in
// split order; an image that cannot be decoded is reported on stderr and
// left out.
func captionFromImages(ctx context.Context, captioner *infer.Captioner, images []data.Image, opts evalOptions, rep progress.Reporter, stderr io.Writer) ([]eval.Result, error) {
	root := opts.Images
	if root == "" {
		manifestPath := filepath.Join(opts.Data, data.ManifestFile)
		raw, err := os.ReadFile(manifestPath)
		if err != nil {
			return nil, &badinput.Error{File: manifestPath, Msg: "cannot read: " + pathErrorReason(err) + "; give the images root with --images", Err: err}
		}
		var m data.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, badinput.JSON(manifestPath, raw, err)
		}
		root = m.ImagesRoot
	}
	rep.Start(fmt.Sprintf("captioning %s (images)", opts.Split), int64(len(images)))
	defer rep.Done()
	chunk := opts.Search.Batch * evalChunk
	results := make([]eval.Result, 0, len(images))
	failed := 0
	var firstErr error
	for lo := 0; lo < len(images); lo += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+chunk, len(images))
		var batch []image.Image
		var ids []int64
		for _, im := range images[lo:hi] {
			img, err := data.DecodeImage(filepath.Join(root, im.File))
			if err != nil {
				fmt.Fprintf(stderr, "captionctl: image %d: %v; left out\n", im.ImageID, err)
				failed++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			batch = append(batch, img)
			ids = append(ids, im.ImageID)
		}
		res, err := captioner.CaptionImages(ctx, batch, opts.Search)
		if err != nil {
			return nil, err
		}
		for i, r := range res {
			results = append(results, eval.Result{ImageID: ids[i], Caption: r.Caption})
		}
		rep.Add(int64(hi - lo))
	}
	if len(results) == 0 && firstErr != nil {
		return nil, fmt.Errorf("none of the %d images of split %q could be read; the first: %w", len(images), opts.Split, firstErr)
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "captionctl: warning: %d of the %d images of split %q could not be read and are not scored\n", failed, len(images), opts.Split)
	}
	return results, nil
}

// writeResults writes results as a COCO results file, one result a line.
func writeResults(w io.Writer, results []eval.Result) error {
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	for i, r := range results {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		sep := ",\n "
		if i == 0 {
			sep = "\n "
		}
		if _, err := fmt.Fprintf(w, "%s%s", sep, b); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n]\n")
	return err
}
