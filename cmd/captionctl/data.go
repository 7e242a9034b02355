package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/data"
)

func dataCommand() *cli.Command {
	return &cli.Command{
		Name:            "data",
		Usage:           "prepare datasets: synthetic data, tokenized splits and vocabulary, image features",
		HideHelpCommand: true,
		Subcommands: []*cli.Command{
			dataSynthCommand(),
			dataPrepareCommand(),
			dataFeaturesCommand(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("unknown data command %q: run 'captionctl data --help'", c.Args().First())
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

func dataSynthCommand() *cli.Command {
	def := data.DefaultSynthConfig()
	return &cli.Command{
		Name:      "synth",
		Usage:     "write a synthetic captioning dataset (shapes on backgrounds) for offline demos and tests",
		UsageText: "captionctl data synth --out DIR [--images 3000] [--seed 1] [--size 224]",
		Description: "Draws PNG scenes of 1-3 shapes (circle, square, triangle, star, diamond, cross, ring) in several\n" +
			"colours, two sizes and several positions on plain or textured backgrounds, with five varied English\n" +
			"captions each, in Karpathy's dataset format with an 80/10/10 train/val/test split:\n" +
			"DIR/dataset.json and DIR/images/NNNNNN.png. The same seed gives byte-identical files. Then:\n\n" +
			"   captionctl data prepare --karpathy DIR/dataset.json --images DIR --out PREPARED",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "output `DIR`"},
			&cli.IntFlag{Name: "images", Value: def.Images, Usage: "number of `N` images"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "random `SEED`"},
			&cli.IntFlag{Name: "size", Value: def.Size, Usage: "image side in `PIXELS`"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("data synth takes no arguments, got %q", c.Args().First())
			}
			cfg := data.SynthConfig{Out: c.String("out"), Images: c.Int("images"), Seed: c.Uint64("seed"), Size: c.Int("size")}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			res, err := data.Synth(c.Context, cfg, newReporter(c.App.ErrWriter, c.Bool("quiet")))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(c.App.Writer, "wrote %s: %d images (%d train, %d val, %d test), %d captions\n",
				res.Dataset, res.Images, res.Train, res.Val, res.Test, res.Captions)
			return err
		},
	}
}

func dataPrepareCommand() *cli.Command {
	def := data.DefaultPrepareConfig()
	return &cli.Command{
		Name:  "prepare",
		Usage: "tokenize a COCO, Karpathy or Flickr caption dataset into splits and a vocabulary",
		UsageText: "captionctl data prepare (--coco-captions F[,F…] | --karpathy F) --images DIR --out DIR [options]\n\n" +
			"   captionctl data prepare --coco-captions captions_train2014.json,captions_val2014.json --images coco/ --out prepared/\n" +
			"   captionctl data prepare --karpathy dataset_flickr8k.json --images Flicker8k_Dataset/ --out prepared/",
		Description: "Reads raw COCO caption files (images of files named *train* form the train split; the others are\n" +
			"drawn into val and test, the rest joining train) or Karpathy's dataset_*.json (its splits; restval\n" +
			"joins train). Every caption is tokenized with the COCO caption toolkit's tokenizer, so training and\n" +
			"scoring see the same words. The vocabulary is built from the train split only and keeps words seen\n" +
			"at least --min-word-freq times; others become <unk>. Train captions longer than --max-len tokens are\n" +
			"dropped, and at most --captions-per-image are kept per train image (a seeded choice); val and test keep\n" +
			"every caption as a reference. Everything dropped is listed with its reason in manifest.json.\n\n" +
			"Writes vocab.json, train/val/test.jsonl, refs_<split>.json and manifest.json (see the README).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "coco-captions", Usage: "raw COCO caption `FILES`, comma-separated (captions_train2014.json,…)", Category: "Input"},
			&cli.StringFlag{Name: "karpathy", Usage: "Karpathy's dataset_coco.json, dataset_flickr8k.json or dataset_flickr30k.json `FILE`", Category: "Input"},
			&cli.StringFlag{Name: "images", Usage: "`DIR` the image files are under (COCO: DIR/file_name or DIR/<train2014|val2014|…>/file_name)", Category: "Input"},
			&cli.StringFlag{Name: "out", Usage: "output `DIR`", Category: "Output"},
			&cli.IntFlag{Name: "min-word-freq", Value: def.MinWordFreq, Usage: "keep training words seen at least `N` times; rarer words become <unk>", Category: "Vocabulary and captions"},
			&cli.IntFlag{Name: "max-len", Value: def.MaxLen, Usage: "drop train captions longer than `N` tokens (counted in the manifest)", Category: "Vocabulary and captions"},
			&cli.IntFlag{Name: "captions-per-image", Value: def.CaptionsPerImage, Usage: "keep at most `N` train captions per image, a seeded choice (0: all)", Category: "Vocabulary and captions"},
			&cli.IntFlag{Name: "val-images", Value: def.ValImages, Usage: "COCO: `N` images of the non-train files for val", Category: "Splits"},
			&cli.IntFlag{Name: "test-images", Value: def.TestImages, Usage: "COCO: `N` images of the non-train files for test", Category: "Splits"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "seed for the val/test draw and the caption choice", Category: "Splits"},
			&cli.BoolFlag{Name: "check-images", Usage: "read every image's header to catch corrupt or unsupported files (slower)", Category: "Images"},
			&cli.BoolFlag{Name: "skip-bad-images", Usage: "leave out missing or unreadable images (recorded in the manifest) instead of failing", Category: "Images"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("data prepare takes no arguments, got %q", c.Args().First())
			}
			cfg := data.PrepareConfig{
				Karpathy:         c.String("karpathy"),
				Images:           c.String("images"),
				Out:              c.String("out"),
				MinWordFreq:      c.Int("min-word-freq"),
				MaxLen:           c.Int("max-len"),
				CaptionsPerImage: c.Int("captions-per-image"),
				ValImages:        c.Int("val-images"),
				TestImages:       c.Int("test-images"),
				Seed:             c.Uint64("seed"),
				CheckImages:      c.Bool("check-images"),
				SkipBadImages:    c.Bool("skip-bad-images"),
			}
			for _, f := range strings.Split(c.String("coco-captions"), ",") {
				if f = strings.TrimSpace(f); f != "" {
					cfg.COCOCaptions = append(cfg.COCOCaptions, f)
				}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			res, err := data.Prepare(c.Context, cfg, newReporter(c.App.ErrWriter, c.Bool("quiet")))
			if err != nil {
				return err
			}
			return printPrepareSummary(c, cfg, res)
		},
	}
}

func printPrepareSummary(c *cli.Context, cfg data.PrepareConfig, res *data.PrepareResult) error {
	m := res.Manifest
	w := c.App.Writer
	fmt.Fprintf(w, "prepared %s\n", cfg.Out)
	for _, s := range data.Splits {
		n := m.Counts[s]
		fmt.Fprintf(w, "  %-5s %7d images %8d captions", s, n.Images, n.Captions)
		if n.DroppedImages+n.DroppedCaptions > 0 {
			fmt.Fprintf(w, "  (dropped: %d images, %d captions)", n.DroppedImages, n.DroppedCaptions)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  vocabulary %d tokens (words seen ≥ %d times in train; %.2f%% of train tokens are <unk>)\n",
		m.Vocab.Size, m.Vocab.MinWordFreq, 100*m.Vocab.UnkRate)
	fmt.Fprintf(w, "  splits: %s\n", m.SplitRule)
	if len(m.Dropped) > 0 {
		fmt.Fprintf(w, "  dropped %d images and %d captions, each listed with its reason in %s\n",
			m.DroppedImages, m.DroppedCaptions, filepath.Join(cfg.Out, data.ManifestFile))
	}
	if m.Counts["train"].Images == 0 {
		fmt.Fprintf(c.App.ErrWriter, "captionctl: warning: the train split is empty, so the vocabulary has only the special tokens\n")
	}
	return nil
}

func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"}
}
