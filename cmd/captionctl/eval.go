package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/eval"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/metrics"
	"github.com/captionctl/captionctl/metrics/ptb"
)

// evalOptions are the flags of `captionctl eval --refs … --results …`.
type evalOptions struct {
	Refs             string
	Results          string
	JSON             bool
	PerImage         string
	Metrics          []metrics.Metric
	MeteorParaphrase string
}

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "score a COCO results file against reference captions (BLEU, METEOR, ROUGE-L, CIDEr-D)",
		UsageText: "captionctl eval --refs REFS.json --results RESULTS.json [--json] [--per-image FILE] [--metrics bleu,meteor,rouge,cider] [--meteor-paraphrase paraphrase-en.gz]",
		Description: "Scores exactly as the COCO caption toolkit (pycocoevalcap with Stanford CoreNLP's PTBTokenizer\n" +
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
			&cli.StringFlag{Name: "metrics", Value: "bleu,meteor,rouge,cider", Usage: "comma-separated `LIST` of metrics to compute", Category: "Scoring"},
			&cli.StringFlag{Name: "meteor-paraphrase", Usage: "Meteor 1.5's paraphrase table `FILE` (paraphrase-en.gz) for canonical METEOR", Category: "Scoring"},
			&cli.BoolFlag{Name: "json", Usage: "print the scores as one JSON object", Category: "Output"},
			&cli.StringFlag{Name: "per-image", Usage: "write every image's scores to `FILE` as JSON lines", Category: "Output"},
		},
		Action: func(c *cli.Context) error {
			opts, err := evalOptionsFrom(c)
			if err != nil {
				return err
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
	}
	if c.Args().Present() {
		return opts, usagef("eval takes no arguments, got %q: give files with --refs and --results", c.Args().First())
	}
	if opts.Refs == "" || opts.Results == "" {
		return opts, usagef("eval needs --refs REFS.json and --results RESULTS.json")
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
	rep, err := eval.ScoreResults(c.Context, refs, results, opts.Results, eval.Options{
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
			opts.Refs, rep.RefImages, opts.Results, len(rep.ImageIDs))
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
