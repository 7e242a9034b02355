package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/internal/pipeline"
	"github.com/captionctl/captionctl/progress"
	"github.com/captionctl/captionctl/train"
)

func demoCommand() *cli.Command {
	def := pipeline.DefaultConfig()
	return &cli.Command{
		Name:  "demo",
		Usage: "run the whole pipeline offline on synthetic data and compare the attention model with a blind baseline",
		UsageText: "captionctl demo [--dir DIR] [--images N] [--time-limit D] [--seed S]\n\n" +
			"   captionctl demo                                   # about 8 minutes on 2 cores\n" +
			"   captionctl demo --images 600 --time-limit 30s     # a quick look",
		Description: "Draws a synthetic dataset of coloured shapes (data synth), prepares it (data prepare), encodes every\n" +
			"image once with a seeded random ResNet-18 on a 7x7 grid (data features --weights random), trains the\n" +
			"attention decoder for --time-limit (train), trains the same decoder on all-zero features for as long (a\n" +
			"blind baseline: it can only learn which captions are likely, never what is in the picture), captions\n" +
			"the test split of both by beam search and scores them (eval --model), and captions three test images\n" +
			"from their files with the attention model file alone, drawing attention contact sheets (caption\n" +
			"--attention-dir). Prints the scores side by side, example captions and the paths of what it wrote.\n" +
			"Nothing is downloaded. DIR must be new or empty.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "captionctl-demo", Usage: "new or empty `DIR` to write everything to", Category: "Output"},
			&cli.IntFlag{Name: "images", Value: def.Images, Usage: "`N` synthetic images (80% train, 10% val, 10% test)", Category: "Data"},
			&cli.IntFlag{Name: "image-size", Value: def.ImageSize, Usage: "side of the images and of the encoder's crop in `PIXELS`", Category: "Data"},
			&cli.DurationFlag{Name: "time-limit", Value: def.TrainTime, Usage: "train each decoder for `DURATION`", Category: "Training"},
			&cli.IntFlag{Name: "epochs", Value: def.Epochs, Usage: "at most `N` epochs per decoder", Category: "Training"},
			&cli.IntFlag{Name: "dim", Value: def.HiddenDim, Usage: "decoder sizes `N` (embedding, attention, LSTM)", Category: "Training"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "`SEED` of the images, the encoder and the decoders", Category: "Training"},
			&cli.BoolFlag{Name: "showtell", Usage: "also train Show and Tell (--arch showtell) for as long as the attention decoder", Category: "Training"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("demo takes no arguments, got %q", c.Args().First())
			}
			cfg := def
			cfg.Dir, cfg.Images, cfg.ImageSize = c.String("dir"), c.Int("images"), c.Int("image-size")
			cfg.TrainTime, cfg.Epochs, cfg.Seed = c.Duration("time-limit"), c.Int("epochs"), c.Uint64("seed")
			d := c.Int("dim")
			cfg.EmbedDim, cfg.AttentionDim, cfg.HiddenDim = d, d, d
			cfg.ShowTell = c.Bool("showtell")
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 {
				return usagef("--dir %s is not empty: choose a new directory or remove it", cfg.Dir)
			}
			quiet := c.Bool("quiet")
			rep := &demoReporter{Reporter: newReporter(c.App.ErrWriter, quiet), stderr: c.App.ErrWriter, quiet: quiet}
			res, err := pipeline.Run(c.Context, cfg, rep)
			if err != nil {
				return err
			}
			return writeDemoSummary(c.App.Writer, res)
		},
	}
}

// demoReporter renders the pipeline's progress: a line per stage and per
// training epoch on stderr, and the bar.
type demoReporter struct {
	progress.Reporter
	stderr io.Writer
	quiet  bool
	stage  string
}

// Stage prints the stage's line (pipeline.StageReporter).
func (r *demoReporter) Stage(index, total int, name, what string) {
	r.stage = name
	if !r.quiet {
		fmt.Fprintf(r.stderr, "[%d/%d] %s\n", index, total, what)
	}
}

// Epoch prints the epoch's line (train.EpochReporter).
func (r *demoReporter) Epoch(st train.EpochStats) {
	if r.quiet {
		return
	}
	val := ""
	if st.Validated {
		val = fmt.Sprintf(", val CIDEr-D %.3f", st.CIDEr)
	}
	fmt.Fprintf(r.stderr, "      epoch %d: loss %.3f, top-5 %.1f%%, %.0fs (%.0f captions/s)%s\n",
		st.Epoch, st.Loss, 100*st.Top5, st.Seconds, st.CaptionsPerSecond, val)
}

// Describe forwards the running statistics to the bar (progress.Describer).
func (r *demoReporter) Describe(what string) { progress.Describe(r.Reporter, what) }

// writeDemoSummary prints the score table, the example captions and what
// the demo wrote.
func writeDemoSummary(w io.Writer, res *pipeline.Result) error {
	cfg := res.Config
	att, blind := res.Model(pipeline.ModelAttention), res.Model(pipeline.ModelBlind)
	fmt.Fprintf(w, "captionctl demo: %d synthetic images, random ResNet-18 features on a 7×7 grid, decoders of %d, up to %v of training each; %.0fs in all\n\n",
		cfg.Images, cfg.HiddenDim, cfg.TrainTime, res.Seconds)
	fmt.Fprintf(w, "test split, %d images, beam %d (BLEU-4 and METEOR 0-1, CIDEr-D 0-10):\n", len(att.Test.ImageIDs), cfg.Beam)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tBLEU-4\tMETEOR\tCIDEr-D\tepochs\ttraining")
	for _, m := range res.Models {
		s := m.Test.Corpus
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%d\t%.0fs\n", demoModelName(m.Name), s.Bleu[3], s.Meteor, s.CIDEr, m.Epochs, m.TrainSeconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if b := blind.Test.Corpus.CIDEr; b > 0 {
		fmt.Fprintf(w, "the attention model's CIDEr-D is %.1f× the blind baseline's\n", att.Test.Corpus.CIDEr/b)
	}
	if len(res.Examples) > 0 {
		fmt.Fprintln(w, "\nexamples (captioned from the image files with the attention model file alone):")
		for _, ex := range res.Examples {
			fmt.Fprintf(w, "%s\n  attention: %s\n  blind:     %s\n  reference: %s\n  sheet:     %s\n",
				ex.File, ex.Caption, ex.Blind, ex.Reference, ex.Sheet)
		}
	}
	fmt.Fprintf(w, "\nwrote:\n  dataset:   %s (features: %s)\n", res.Data, res.Features)
	for _, m := range res.Models {
		fmt.Fprintf(w, "  %-10s %s (curves %s, test captions %s)\n", m.Name+":", m.Model, m.Curves, m.Results)
	}
	fmt.Fprintf(w, "next: captionctl caption --model %s --attention-dir DIR IMAGE...\n", att.Model)
	return nil
}

func demoModelName(name string) string {
	switch name {
	case pipeline.ModelAttention:
		return "attention"
	case pipeline.ModelBlind:
		return "blind (zero features)"
	case pipeline.ModelShowTell:
		return "show and tell"
	}
	return name
}
