package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/progress"
)

// SynthConfig configures Synth, the built-in synthetic dataset
// (`captionctl data synth`).
type SynthConfig struct {
	// Out is the directory to write: Out/images/NNNNNN.png and
	// Out/dataset.json (--out).
	Out string `json:"out"`
	// Images is how many images to draw (--images).
	Images int `json:"images"`
	// Seed fixes every random choice: the same Seed, Images and Size give
	// byte-identical files (--seed).
	Seed uint64 `json:"seed"`
	// Size is the side of the square images in pixels (--size).
	Size int `json:"size"`
}

// Bounds on SynthConfig. At least 10 images give the 10 % val and test
// splits one image each; six digits number the files.
const (
	SynthMinImages = 10
	SynthMaxImages = 1_000_000
	SynthMinSize   = 32
	SynthMaxSize   = 1024
)

// DefaultSynthConfig gives 3000 images of 224×224 pixels with seed 1.
func DefaultSynthConfig() SynthConfig {
	return SynthConfig{Images: 3000, Seed: 1, Size: 224}
}

// Validate reports the first invalid field, naming its flag.
func (c SynthConfig) Validate() error {
	switch {
	case c.Out == "":
		return errors.New("--out must name the directory to write the dataset to")
	case c.Images < SynthMinImages:
		return fmt.Errorf("--images must be ≥ %d, got %d", SynthMinImages, c.Images)
	case c.Images > SynthMaxImages:
		return fmt.Errorf("--images must be ≤ %d, got %d", SynthMaxImages, c.Images)
	case c.Size < SynthMinSize:
		return fmt.Errorf("--size must be ≥ %d, got %d", SynthMinSize, c.Size)
	case c.Size > SynthMaxSize:
		return fmt.Errorf("--size must be ≤ %d, got %d", SynthMaxSize, c.Size)
	}
	return nil
}

// SynthResult says what Synth wrote.
type SynthResult struct {
	Config      SynthConfig // the effective configuration
	Dataset     string      // path of dataset.json
	ImagesDir   string      // directory of the PNG files
	Images      int
	Captions    int
	Train       int // images per split
	Val, Test   int
	ImagesBytes int64 // total size of the PNG files
}

// SynthDatasetFile and SynthImagesDir are where Synth writes, under Out.
const (
	SynthDatasetFile = "dataset.json"
	SynthImagesDir   = "images"
)

// Synth writes a synthetic image-captioning dataset: cfg.Images scenes of one
// to three coloured shapes (circle, square, triangle, star, diamond, cross,
// ring; small or large; in eight colours) on a plain or textured background,
// as Out/images/NNNNNN.png (RGB, Size×Size, NNNNNN the zero-padded image
// index), and Out/dataset.json in the format of Karpathy's dataset_coco.json:
//
//	{"dataset": "synth", "images": [{"filepath": "images", "filename": "000000.png",
//	  "imgid": 0, "split": "train", "sentids": [0, …, 4],
//	  "sentences": [{"raw": "A small red circle to the left of a blue square.",
//	    "tokens": ["a", "small", …], "imgid": 0, "sentid": 0}, …]}, …]}
//
// Each image has five captions from different templates, every one true of
// the picture: the colours, shapes, sizes, counts, background, positions and
// relations it names are the scene's, so a captioner must look to score
// well. Image i has sentences 5i … 5i+4. The splits are a seeded shuffle of
// the images cut into val (⌊Images/10⌋), test (⌊Images/10⌋) and train (the
// rest).
//
// Images are drawn and PNG-encoded GOMAXPROCS at a time (more goroutines
// wait on the disk), each from its own random stream derived from (Seed,
// index), so the output does not depend on scheduling or core count. Every file is written atomically; a rerun overwrites the files
// of the same names (PNGs of a larger earlier run stay, unlisted). When ctx
// is cancelled Synth stops, joins its goroutines and returns ctx's error
// without writing dataset.json. rep (may be nil) sees one unit per image.
func Synth(ctx context.Context, cfg SynthConfig, rep progress.Reporter) (*SynthResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep = progress.Or(rep)
	imagesDir := filepath.Join(cfg.Out, SynthImagesDir)
	if err := os.MkdirAll(imagesDir, 0o755); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}

	entries := make([]synthJSONImage, cfg.Images)
	sizes := make([]int64, cfg.Images)
	rep.Start("drawing synthetic images", int64(cfg.Images))
	err := synthDrawAll(ctx, cfg, imagesDir, entries, sizes, rep)
	rep.Done()
	if err != nil {
		return nil, err
	}

	res := &SynthResult{
		Config:    cfg,
		Dataset:   filepath.Join(cfg.Out, SynthDatasetFile),
		ImagesDir: imagesDir,
		Images:    cfg.Images,
		Captions:  cfg.Images * synthCaptionsPerImage,
	}
	for i, split := range synthSplits(cfg.Images, cfg.Seed) {
		entries[i].Split = split
		switch split {
		case "train":
			res.Train++
		case "val":
			res.Val++
		default:
			res.Test++
		}
		res.ImagesBytes += sizes[i]
	}
	file := synthJSONFile{Dataset: "synth", Images: entries}
	if err := atomicfile.Write(res.Dataset, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(&file)
	}); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return res, nil
}

// synthJSONFile and the types below are the Karpathy dataset_*.json layout.
type synthJSONFile struct {
	Dataset string           `json:"dataset"`
	Images  []synthJSONImage `json:"images"`
}

type synthJSONImage struct {
	FilePath  string              `json:"filepath"`
	FileName  string              `json:"filename"`
	ImgID     int                 `json:"imgid"`
	Split     string              `json:"split"`
	SentIDs   []int               `json:"sentids"`
	Sentences []synthJSONSentence `json:"sentences"`
}

type synthJSONSentence struct {
	Raw    string   `json:"raw"`
	Tokens []string `json:"tokens"`
	ImgID  int      `json:"imgid"`
	SentID int      `json:"sentid"`
}

// synthFileName is image index's file name under images/.
func synthFileName(index int) string { return fmt.Sprintf("%06d.png", index) }

// synthImageRNG is image index's own random stream: PCG seeded with Seed
// and a scrambled index, so neighbouring indexes give unrelated streams.
func synthImageRNG(seed uint64, index int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, synthMix(uint64(index)+1)))
}

// synthMix is SplitMix64's finaliser.
func synthMix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// synthSplits assigns each image a split: a shuffle of the indexes (its
// own stream, apart from every image's) whose first ⌊n/10⌋ go to val, the
// next ⌊n/10⌋ to test and the rest to train.
func synthSplits(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x73706c697473)) // "splits"
	splits := make([]string, n)
	held := n / 10
	for rank, i := range rng.Perm(n) {
		switch {
		case rank < held:
			splits[i] = "val"
		case rank < 2*held:
			splits[i] = "test"
		default:
			splits[i] = "train"
		}
	}
	return splits
}

// synthBufferPool lets PNG encoders reuse their buffers.
type synthBufferPool struct{ pool sync.Pool }

func (p *synthBufferPool) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *synthBufferPool) Put(b *png.EncoderBuffer) { p.pool.Put(b) }

// synthWritersPerCPU is how many goroutines per core draw and write images.
// Only GOMAXPROCS of them draw and encode at a time; the others wait for
// their files to reach the disk (atomicfile syncs each file and its
// directory), which takes longer than drawing and runs in parallel.
const synthWritersPerCPU = 8

// synthDrawAll draws and writes every image, filling entries[i] (captions;
// split left empty) and sizes[i] (PNG bytes). It returns after every
// goroutine has finished: the first error, or ctx's.
func synthDrawAll(parent context.Context, cfg SynthConfig, dir string, entries []synthJSONImage, sizes []int64, rep progress.Reporter) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	encoder := &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &synthBufferPool{}}
	cpus := runtime.GOMAXPROCS(0)
	drawing := make(chan struct{}, cpus) // a token per core
	workers := max(1, min(synthWritersPerCPU*cpus, cfg.Images))
	var next atomic.Int64
	// finished carries one result per image, so that only this goroutine
	// talks to rep.
	finished := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var img *image.RGBA
			var encoded bytes.Buffer
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.Images {
					return
				}
				drawing <- struct{}{}
				if img == nil {
					img = image.NewRGBA(image.Rect(0, 0, cfg.Size, cfg.Size))
				}
				encoded.Reset()
				var err error
				entries[i], err = synthDrawOne(cfg, i, img, encoder, &encoded)
				<-drawing
				if err == nil {
					sizes[i] = int64(encoded.Len())
					err = atomicfile.Write(filepath.Join(dir, entries[i].FileName), 0o644, func(w io.Writer) error {
						_, err := w.Write(encoded.Bytes())
						return err
					})
				}
				finished <- err
			}
		})
	}
	go func() {
		wg.Wait()
		close(finished)
	}()
	var first error
	for err := range finished {
		if err != nil {
			if first == nil {
				first = err
				cancel()
			}
			continue
		}
		rep.Add(1)
	}
	if first != nil {
		return fmt.Errorf("synth: %w", first)
	}
	if err := parent.Err(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// synthDrawOne draws image index into img, encodes it as PNG into encoded
// and returns its dataset entry (split left empty).
func synthDrawOne(cfg SynthConfig, index int, img *image.RGBA, encoder *png.Encoder, encoded *bytes.Buffer) (synthJSONImage, error) {
	rng := synthImageRNG(cfg.Seed, index)
	scene := newSynthScene(rng)
	captions := synthCaptions(&scene, rng)
	renderSynthScene(img, &scene)
	name := synthFileName(index)
	if err := encoder.Encode(encoded, img); err != nil {
		return synthJSONImage{}, fmt.Errorf("encode %s: %w", name, err)
	}
	entry := synthJSONImage{
		FilePath:  SynthImagesDir,
		FileName:  name,
		ImgID:     index,
		SentIDs:   make([]int, len(captions)),
		Sentences: make([]synthJSONSentence, len(captions)),
	}
	for k, raw := range captions {
		id := index*synthCaptionsPerImage + k
		entry.SentIDs[k] = id
		entry.Sentences[k] = synthJSONSentence{Raw: raw, Tokens: synthTokens(raw), ImgID: index, SentID: id}
	}
	return entry, nil
}
