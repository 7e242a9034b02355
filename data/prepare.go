package data

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/captionctl/captionctl/internal/parallel"
	"github.com/captionctl/captionctl/metrics/ptb"
	"github.com/captionctl/captionctl/progress"
)

// PrepareConfig configures Prepare. Exactly one of COCOCaptions and Karpathy
// is set.
type PrepareConfig struct {
	COCOCaptions     []string // raw COCO captions_*.json files
	Karpathy         string   // Karpathy's dataset_*.json
	Images           string   // images root
	Out              string   // output directory
	MinWordFreq      int      // vocabulary keeps training words seen at least this often
	MaxLen           int      // training captions longer than this many tokens are dropped
	CaptionsPerImage int      // at most this many training captions per image (0: all)
	ValImages        int      // COCO: val images drawn from the non-train files
	TestImages       int      // COCO: test images drawn from the non-train files
	Seed             uint64   // for the val/test draw and the caption choice
	CheckImages      bool     // decode every image header
	SkipBadImages    bool     // drop missing or unreadable images instead of failing
}

// DefaultPrepareConfig returns the defaults of `captionctl data prepare`.
func DefaultPrepareConfig() PrepareConfig {
	return PrepareConfig{MinWordFreq: 5, MaxLen: 50, CaptionsPerImage: 5, ValImages: 5000, TestImages: 5000, Seed: 1}
}

// Validate checks the configuration; messages name the flag.
func (c PrepareConfig) Validate() error {
	switch {
	case len(c.COCOCaptions) == 0 && c.Karpathy == "":
		return fmt.Errorf("give the captions with --coco-captions FILE[,FILE…] or --karpathy FILE")
	case len(c.COCOCaptions) > 0 && c.Karpathy != "":
		return fmt.Errorf("--coco-captions and --karpathy cannot be combined: give one")
	case c.Images == "":
		return fmt.Errorf("--images DIR is required: the directory the image files are under")
	case c.Out == "":
		return fmt.Errorf("--out DIR is required")
	case c.MinWordFreq < 1:
		return fmt.Errorf("--min-word-freq must be ≥ 1, got %d", c.MinWordFreq)
	case c.MaxLen < 1:
		return fmt.Errorf("--max-len must be ≥ 1, got %d", c.MaxLen)
	case c.CaptionsPerImage < 0:
		return fmt.Errorf("--captions-per-image must be ≥ 0 (0 keeps all), got %d", c.CaptionsPerImage)
	case c.ValImages < 0:
		return fmt.Errorf("--val-images must be ≥ 0, got %d", c.ValImages)
	case c.TestImages < 0:
		return fmt.Errorf("--test-images must be ≥ 0, got %d", c.TestImages)
	}
	return nil
}

// Splits are the dataset splits, in output order.
var Splits = []string{"train", "val", "test"}

// Image is one image of a prepared split: one line of <split>.jsonl.
type Image struct {
	ImageID  int64      `json:"image_id"`
	File     string     `json:"file"`
	Captions []string   `json:"captions"`
	Tokens   [][]string `json:"tokens"`

	annIDs []int64 // annotation ids of Captions

	// The split's references for refs_<split>.json: every caption with at
	// least one token, whatever the training filters kept.
	refCaptions []string
	refAnnIDs   []int64
}

// sourceImage is an image as an input file describes it.
type sourceImage struct {
	id       int64
	file     string // relative to the images root
	split    string // train, val, test, or "" (to be drawn)
	captions []string
	annIDs   []int64
	input    string // the file it came from
	bad      string // why the image cannot be used, if it cannot
}

// Dropped records a caption or image left out, and why.
type Dropped struct {
	Kind    string `json:"kind"` // "caption" or "image"
	Split   string `json:"split,omitempty"`
	ImageID int64  `json:"image_id"`
	File    string `json:"file,omitempty"`
	Caption string `json:"caption,omitempty"`
	Reason  string `json:"reason"`
}

// PrepareResult summarises a prepared dataset.
type PrepareResult struct {
	Manifest *Manifest
}

// Prepare reads the inputs, tokenizes, splits, filters, builds the
// vocabulary and writes the prepared dataset to cfg.Out.
func Prepare(ctx context.Context, cfg PrepareConfig, rep progress.Reporter) (*PrepareResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep = progress.Or(rep)
	inputs, sources, err := readInputs(ctx, cfg, rep)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Format: ManifestFormat, Inputs: inputs, ImagesRoot: cfg.Images, Parameters: cfg.parameters()}

	// Images must exist (and, with --check-images, have a readable header).
	// Bad ones are left out before the split draw, so that val and test
	// get the sizes asked for.
	bad, err := checkImages(ctx, cfg, sources, rep)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		if !cfg.SkipBadImages {
			return nil, badImagesError(cfg, bad)
		}
		m.Dropped = append(m.Dropped, bad...)
		sources = slices.DeleteFunc(sources, func(s sourceImage) bool { return s.bad != "" })
	}
	if len(cfg.COCOCaptions) > 0 {
		m.SplitRule = drawSplits(sources, cfg)
	} else {
		m.SplitRule = "the splits of " + filepath.Base(cfg.Karpathy) + "; restval joins train"
	}

	tokens, err := tokenizeAll(ctx, sources, rep)
	if err != nil {
		return nil, err
	}
	splits := make(map[string][]Image)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed_cap5))
	for i, src := range sources {
		im, dropped := buildImage(src, tokens[i], cfg, rng)
		m.Dropped = append(m.Dropped, dropped...)
		if len(im.Captions) == 0 {
			m.Dropped = append(m.Dropped, Dropped{Kind: "image", Split: src.split, ImageID: src.id, File: src.file, Reason: "no caption left"})
			continue
		}
		splits[src.split] = append(splits[src.split], im)
	}
	var trainTokens [][]string
	for _, im := range splits["train"] {
		trainTokens = append(trainTokens, im.Tokens...)
	}
	vocab := BuildVocab(trainTokens, cfg.MinWordFreq)
	m.count(splits, vocab)
	if err := writeDataset(ctx, cfg.Out, splits, vocab, m, rep); err != nil {
		return nil, err
	}
	return &PrepareResult{Manifest: m}, nil
}

// buildImage tokenizes one image's captions and applies the training
// filters: captions that tokenize to nothing are dropped everywhere; in the
// training split, captions over MaxLen tokens are dropped and at most
// CaptionsPerImage are kept (a seeded choice).
func buildImage(src sourceImage, tokens [][]string, cfg PrepareConfig, rng *rand.Rand) (Image, []Dropped) {
	im := Image{ImageID: src.id, File: src.file}
	var dropped []Dropped
	drop := func(caption, reason string) {
		dropped = append(dropped, Dropped{Kind: "caption", Split: src.split, ImageID: src.id, Caption: caption, Reason: reason})
	}
	for j, c := range src.captions {
		if len(tokens[j]) == 0 {
			drop(c, "tokenizes to nothing")
			continue
		}
		im.refCaptions = append(im.refCaptions, c)
		im.refAnnIDs = append(im.refAnnIDs, src.annIDs[j])
		if src.split == "train" && len(tokens[j]) > cfg.MaxLen {
			drop(c, fmt.Sprintf("%d tokens, over --max-len %d", len(tokens[j]), cfg.MaxLen))
			continue
		}
		im.Captions = append(im.Captions, c)
		im.Tokens = append(im.Tokens, tokens[j])
		im.annIDs = append(im.annIDs, src.annIDs[j])
	}
	if src.split == "train" && cfg.CaptionsPerImage > 0 && len(im.Captions) > cfg.CaptionsPerImage {
		// Keep a seeded choice, in the original order. The choice is made
		// for every image with too many captions, in input order, so the
		// same inputs and seed give the same dataset.
		keep := rng.Perm(len(im.Captions))[:cfg.CaptionsPerImage]
		slices.Sort(keep)
		kept := Image{ImageID: im.ImageID, File: im.File, refCaptions: im.refCaptions, refAnnIDs: im.refAnnIDs}
		for _, k := range keep {
			kept.Captions = append(kept.Captions, im.Captions[k])
			kept.Tokens = append(kept.Tokens, im.Tokens[k])
			kept.annIDs = append(kept.annIDs, im.annIDs[k])
		}
		im = kept
	}
	return im, dropped
}

// tokenizeAll tokenizes every caption with the COCO toolkit's tokenizer.
func tokenizeAll(ctx context.Context, sources []sourceImage, rep progress.Reporter) ([][][]string, error) {
	rep.Start("tokenizing", int64(len(sources)))
	defer rep.Done()
	tokens := make([][][]string, len(sources))
	parallel.For(len(sources), func() func(int) {
		return func(i int) {
			if ctx.Err() != nil {
				return
			}
			caps := sources[i].captions
			tokens[i] = make([][]string, len(caps))
			for j, c := range caps {
				tokens[i][j] = ptb.Tokens(strings.ReplaceAll(c, "\n", " "))
			}
			if i%256 == 0 {
				rep.Add(256)
			}
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return tokens, nil
}

// drawSplits assigns the COCO images that are not in a train file to val
// and test: a seeded shuffle, then the first ValImages to val and the next
// TestImages to test; the rest join train (as Karpathy's "restval" does).
// With fewer images than asked for, val and test share them in the ratio
// asked. It returns the rule as stated in the manifest.
func drawSplits(sources []sourceImage, cfg PrepareConfig) string {
	var pool []int
	for i := range sources {
		if sources[i].split == "" {
			pool = append(pool, i)
		}
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed_5917))
	rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	nVal, nTest := cfg.ValImages, cfg.TestImages
	rule := fmt.Sprintf("images of files named *train* form train; of the other %d images, a shuffle seeded with %d puts %d in val and %d in test", len(pool), cfg.Seed, nVal, nTest)
	if nVal+nTest > len(pool) {
		asked := nVal + nTest
		if asked > 0 {
			nVal = len(pool) * cfg.ValImages / asked
		}
		nTest = len(pool) - nVal
		rule = fmt.Sprintf("images of files named *train* form train; only %d other images for --val-images %d and --test-images %d, so a shuffle seeded with %d splits them in that ratio: %d val, %d test",
			len(pool), cfg.ValImages, cfg.TestImages, cfg.Seed, nVal, nTest)
	} else if rest := len(pool) - nVal - nTest; rest > 0 {
		rule += fmt.Sprintf("; the remaining %d join train", rest)
	}
	for k, i := range pool {
		switch {
		case k < nVal:
			sources[i].split = "val"
		case k < nVal+nTest:
			sources[i].split = "test"
		default:
			sources[i].split = "train"
		}
	}
	return rule
}

// cocoFolders are the COCO image folders an images root may hold.
var cocoFolders = []string{"train2014", "val2014", "train2017", "val2017"}

// resolveImage finds an image's file under the root: ROOT/file, then, for
// COCO, ROOT/<COCO folder>/file. It returns the path relative to the root.
func resolveImage(files *dirIndex, file string, tryCOCOFolders bool) (string, bool) {
	if files.exists(file) {
		return file, true
	}
	if tryCOCOFolders {
		for _, d := range cocoFolders {
			if rel := d + "/" + file; files.exists(rel) {
				return rel, true
			}
		}
	}
	return file, false
}
