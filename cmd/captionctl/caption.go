package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/infer"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/attnmap"
	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/parallel"
	"github.com/captionctl/captionctl/model"
)

// imageExtensions are the file name extensions (lower-case) a directory
// walk takes: the formats data.DecodeImage reads. Files named on the
// command line or on stdin are tried whatever their name.
var imageExtensions = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true, ".tif": true, ".tiff": true,
}

// attentionSide is the side, in pixels, of the square each attention map
// is drawn on: the region the encoder saw, at 24 pixels a cell of a 14×14
// grid (48 of a 7×7 one), as the Show, Attend and Tell figures show it.
const attentionSide = 336

// captionOptions are the flags and arguments of `captionctl caption`.
type captionOptions struct {
	Model        string
	Inputs       []string // IMAGE, DIR or "-" (paths on stdin), as given
	JSON         bool
	AttentionDir string
	Quiet        bool
	Infer        infer.Options
}

func captionCommand() *cli.Command {
	def := infer.DefaultOptions()
	return &cli.Command{
		Name:  "caption",
		Usage: "caption images with a trained model (text, JSON lines, attention maps)",
		UsageText: "captionctl caption --model FILE [options] IMAGE|DIR|- ...\n\n" +
			"   captionctl caption --model runs/r1/model.safetensors photo.jpg holiday/\n" +
			"   find . -name '*.jpg' | captionctl caption --model m.safetensors --json -\n" +
			"   captionctl caption --model m.safetensors --attention-dir maps/ cat.jpg",
		Description: "Captions each IMAGE, every image under each DIR (files ending .jpg .jpeg .png .gif .bmp .tif .tiff,\n" +
			"any case, in sorted order; names starting with '.' are skipped) and every path read from stdin, one a\n" +
			"line, for '-'. The model file is all it needs: the encoder and decoder weights, vocabulary and\n" +
			"preprocessing are in it. Captions are found by beam search (--beam 1: greedy).\n\n" +
			"Output, on stdout, in input order: one line 'FILE<TAB>caption' per image; with --top N, N lines per\n" +
			"image, best first. --json prints one JSON object per line instead:\n" +
			"{\"file\", \"caption\", \"score\", \"tokens\", \"alternatives\": [{\"caption\", \"score\"}, …]}, where\n" +
			"alternatives holds the --top N best captions, best first (the first is the caption itself).\n" +
			"score is the ranking score, log-probability / length^A (--length-penalty A).\n\n" +
			"An image that cannot be read or decoded is named on stderr with the reason, the others are still\n" +
			"captioned, and the exit code is 3.\n\n" +
			"--attention-dir DIR writes, for each image NAME (its file name without extension), one PNG per\n" +
			"generated word, NAME_NN_WORD.png, showing where the model looked when it chose the word (its\n" +
			"attention weights over the encoder's grid, upsampled smoothly and blended over the image region\n" +
			"the encoder saw as a heat map, red where it looked most), plus NAME_attention.png, a contact sheet\n" +
			"of the image and every word's map. Images whose names repeat get NAME-2, NAME-3, … A showtell\n" +
			"model has no attention: --attention-dir with one is a usage error (exit 2) and nothing is captioned.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "model `FILE` written by 'captionctl train'", Category: "Input"},
			&cli.IntFlag{Name: "beam", Value: def.Beam, Usage: "beam width `K` (1: greedy decoding)", Category: "Decoding"},
			&cli.IntFlag{Name: "max-len", Value: def.MaxLen, Usage: "at most `N` words a caption", Category: "Decoding"},
			&cli.IntFlag{Name: "top", Value: def.Top, Usage: "give the `N` best captions of the beam (N ≤ --beam)", Category: "Decoding"},
			&cli.Float64Flag{Name: "length-penalty", Value: def.LengthPenalty, Usage: "rank finished captions by log-probability / length^`A` (0: raw log-probability)", Category: "Decoding"},
			&cli.IntFlag{Name: "no-repeat-ngram", Value: def.NoRepeatNgram, Usage: "never repeat an n-gram of `N` words within a caption (0: allow repeats)", Category: "Decoding"},
			&cli.BoolFlag{Name: "allow-unk", Usage: "let captions contain <unk> (by default it is never generated)", Category: "Decoding"},
			&cli.IntFlag{Name: "batch", Value: def.Batch, Usage: "caption `N` images at a time", Category: "Decoding"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per image", Category: "Output"},
			&cli.StringFlag{Name: "attention-dir", Usage: "write attention maps to `DIR` (created if needed)", Category: "Output"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			opts, err := captionOptionsFrom(c, def)
			if err != nil {
				return err
			}
			return runCaption(c.Context, opts, c.App.Reader, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func captionOptionsFrom(c *cli.Context, def infer.Options) (captionOptions, error) {
	opts := captionOptions{
		Model:        c.String("model"),
		Inputs:       c.Args().Slice(),
		JSON:         c.Bool("json"),
		AttentionDir: c.String("attention-dir"),
		Quiet:        c.Bool("quiet"),
		Infer:        def,
	}
	o := &opts.Infer
	o.Beam, o.MaxLen, o.Top = c.Int("beam"), c.Int("max-len"), c.Int("top")
	o.LengthPenalty, o.NoRepeatNgram = c.Float64("length-penalty"), c.Int("no-repeat-ngram")
	o.AllowUnk, o.Batch = c.Bool("allow-unk"), c.Int("batch")
	o.Attention = opts.AttentionDir != ""
	switch {
	case opts.Model == "":
		return opts, usagef("--model FILE is required: a model written by 'captionctl train'")
	case len(opts.Inputs) == 0:
		return opts, usagef("caption needs at least one IMAGE, DIR or '-' (paths on stdin)")
	}
	if err := o.Validate(); err != nil {
		return opts, usageError{err}
	}
	return opts, nil
}

// captionInput is one image to caption: its path as the user gave it (or
// as the walk found it), or why it cannot be captioned.
type captionInput struct {
	Path string
	Err  error
}

// collectImages expands IMAGE, DIR and "-" arguments into the images to
// caption, in order. stdin is read for the first "-" only.
func collectImages(args []string, stdin io.Reader) ([]captionInput, error) {
	var inputs []captionInput
	stdinRead := false
	for _, arg := range args {
		if arg == "-" {
			if stdinRead {
				continue
			}
			stdinRead = true
			if stdin == nil {
				stdin = os.Stdin
			}
			sc := bufio.NewScanner(stdin)
			sc.Buffer(make([]byte, 64*1024), 1<<20)
			for sc.Scan() {
				if p := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(p) != "" {
					inputs = append(inputs, captionInput{Path: p})
				}
			}
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("read image paths from stdin: %w", err)
			}
			continue
		}
		info, err := os.Stat(arg)
		switch {
		case err != nil:
			inputs = append(inputs, captionInput{Path: arg, Err: &badinput.Error{File: arg, Msg: "cannot open image: " + pathErrorText(err), Err: err}})
		case info.IsDir():
			inputs = append(inputs, walkImages(arg)...)
		default:
			inputs = append(inputs, captionInput{Path: arg})
		}
	}
	return inputs, nil
}

// walkImages lists the images under dir by extension, in sorted order,
// skipping names that start with '.'. A directory that cannot be read is an
// input error of its own.
func walkImages(dir string) []captionInput {
	var found []captionInput
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			found = append(found, captionInput{Path: path, Err: &badinput.Error{File: path, Msg: "cannot read directory: " + pathErrorText(err), Err: err}})
			return nil
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && imageExtensions[strings.ToLower(filepath.Ext(path))] {
			found = append(found, captionInput{Path: path})
		}
		return nil
	})
	return found
}

func pathErrorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// captionJSON is one line of --json output.
type captionJSON struct {
	File         string           `json:"file"`
	Caption      string           `json:"caption"`
	Score        float64          `json:"score"`
	Tokens       []string         `json:"tokens"`
	Alternatives []alternativeOut `json:"alternatives"`
}

type alternativeOut struct {
	Caption string  `json:"caption"`
	Score   float64 `json:"score"`
}

func runCaption(ctx context.Context, opts captionOptions, stdin io.Reader, stdout, stderr io.Writer) error {
	inputs, err := collectImages(opts.Inputs, stdin)
	if err != nil {
		return err
	}
	if len(inputs) == 0 {
		return usagef("no images to caption in %s (directories are searched for %s)", strings.Join(opts.Inputs, " "), extensionList())
	}
	captioner, err := infer.LoadCaptioner(opts.Model)
	if err != nil {
		return err
	}
	defer captioner.Close()
	if _, err := captioner.Encoder(); err != nil {
		return &badinput.Error{File: opts.Model, Msg: "cannot caption images: " + strings.TrimPrefix(err.Error(), opts.Model+": "), Err: err}
	}
	mf := captioner.Model()
	var maps *attentionWriter
	if opts.AttentionDir != "" {
		if mf.Config.Arch != model.ArchAttention {
			return usagef("%s is a %s model, which has no attention to show: drop --attention-dir, or use a model trained with --arch attention", opts.Model, mf.Config.Arch)
		}
		if maps, err = newAttentionWriter(opts.AttentionDir, mf.Encoder); err != nil {
			return err
		}
	}

	out := bufio.NewWriter(stdout)
	rep := newReporter(stderr, opts.Quiet)
	rep.Start("captioning", int64(len(inputs)))
	defer rep.Done()
	var failed []error
	for lo := 0; lo < len(inputs); lo += opts.Infer.Batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := inputs[lo:min(lo+opts.Infer.Batch, len(inputs))]
		bad, err := captionChunk(ctx, captioner, chunk, opts, maps, out, stderr)
		if err != nil {
			return err
		}
		failed = append(failed, bad...)
		rep.Add(int64(len(chunk)))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d images could not be captioned (each named above); the first: %w", len(failed), len(inputs), failed[0])
	}
	return nil
}

// captionChunk decodes and captions a chunk of images, writes their
// captions to out (flushed) and their attention maps, and names each image
// that cannot be read on stderr, returning those errors.
func captionChunk(ctx context.Context, captioner *infer.Captioner, chunk []captionInput, opts captionOptions,
	maps *attentionWriter, out *bufio.Writer, stderr io.Writer) ([]error, error) {
	imgs := decodeImages(chunk)
	var failed []error
	var decoded []image.Image
	var files []string
	for i, in := range chunk {
		if in.Err != nil {
			fmt.Fprintf(stderr, "captionctl: %v\n", in.Err)
			failed = append(failed, in.Err)
			continue
		}
		decoded = append(decoded, imgs[i])
		files = append(files, in.Path)
	}
	if len(decoded) == 0 {
		return failed, nil
	}
	results, err := captioner.CaptionImages(ctx, decoded, opts.Infer)
	if err != nil {
		return nil, err
	}
	if len(results) != len(decoded) {
		return nil, fmt.Errorf("caption: %d results for %d images", len(results), len(decoded))
	}
	for i, r := range results {
		if err := writeCaption(out, files[i], r, opts); err != nil {
			return nil, err
		}
		if maps != nil {
			if err := maps.write(files[i], decoded[i], r); err != nil {
				return nil, err
			}
		}
	}
	return failed, out.Flush()
}

// decodeImages decodes the chunk's images on up to GOMAXPROCS goroutines,
// setting Err on those that fail.
func decodeImages(chunk []captionInput) []image.Image {
	imgs := make([]image.Image, len(chunk))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range chunk {
		if chunk[i].Err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			img, err := data.DecodeImage(chunk[i].Path)
			if err != nil {
				chunk[i].Err = err
			} else {
				imgs[i] = img
			}
			<-sem
		}()
	}
	wg.Wait()
	return imgs
}

func writeCaption(w io.Writer, file string, r infer.Result, opts captionOptions) error {
	if opts.JSON {
		line := captionJSON{File: file, Caption: r.Caption, Score: r.Score, Tokens: r.Tokens, Alternatives: []alternativeOut{}}
		if line.Tokens == nil {
			line.Tokens = []string{}
		}
		for _, a := range r.Alternatives {
			line.Alternatives = append(line.Alternatives, alternativeOut{Caption: a.Caption, Score: a.Score})
		}
		b, err := json.Marshal(line)
		if err != nil {
			return fmt.Errorf("caption %s: %w", file, err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	captions := []string{r.Caption}
	if opts.Infer.Top > 1 && len(r.Alternatives) > 0 {
		captions = captions[:0]
		for _, a := range r.Alternatives {
			captions = append(captions, a.Caption)
		}
	}
	for _, caption := range captions {
		if _, err := fmt.Fprintf(w, "%s\t%s\n", file, caption); err != nil {
			return err
		}
	}
	return nil
}

func extensionList() string {
	return ".jpg .jpeg .png .gif .bmp .tif .tiff"
}

// attentionWriter writes the attention maps of each captioned image.
type attentionWriter struct {
	dir     string
	grid    int
	display data.PreprocessConfig // the encoder's resize and crop, at attentionSide
	names   map[string]int        // uses of each image name so far
}

func newAttentionWriter(dir string, enc data.EncoderIdentity) (*attentionWriter, error) {
	if enc.Grid < 1 {
		return nil, fmt.Errorf("attention maps: the model's encoder identity gives no grid size (%d)", enc.Grid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--attention-dir: %w", err)
	}
	// The encoder saw the centre ImageSize square of the image resized to
	// ShorterSide: the same region, resized to attentionSide instead.
	display := enc.Preprocess
	display.ResizeSize = (display.ShorterSide()*attentionSide + display.ImageSize/2) / display.ImageSize
	display.ImageSize = attentionSide
	display.ResizeSize = max(display.ResizeSize, display.ImageSize)
	if err := display.Validate(); err != nil {
		return nil, fmt.Errorf("attention maps: model's preprocessing: %w", err)
	}
	return &attentionWriter{dir: dir, grid: enc.Grid, display: display, names: map[string]int{}}, nil
}

// write draws the maps of one image's caption r: one per word (and one
// for <end> should r carry its weights too), and the contact sheet.
func (a *attentionWriter) write(file string, img image.Image, r infer.Result) error {
	words := append([]string(nil), r.Tokens...)
	switch len(r.Alphas) {
	case len(words):
	case len(words) + 1:
		words = append(words, "<end>")
	default:
		return fmt.Errorf("attention maps for %s: %d attention maps for %d words", file, len(r.Alphas), len(r.Tokens))
	}
	for i, alpha := range r.Alphas {
		if len(alpha) != a.grid*a.grid {
			return fmt.Errorf("attention maps for %s: word %d has %d attention weights, want %d for the model's %d×%d grid", file, i+1, len(alpha), a.grid*a.grid, a.grid, a.grid)
		}
	}
	name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	a.names[name]++
	if n := a.names[name]; n > 1 {
		name += "-" + strconv.Itoa(n)
		a.names[name]++
	}
	shown, err := data.ResizeCrop(img, a.display)
	if err != nil {
		return err
	}
	// Overlays are drawn once (for their files and the sheet); PNG
	// encoding, most of the time, runs on every core.
	overlays := make([]*image.RGBA, len(r.Alphas))
	jobs := make([]func() error, 0, len(r.Alphas)+1)
	for i, alpha := range r.Alphas {
		overlays[i] = attnmap.Overlay(shown, alpha, a.grid, words[i])
		path, img := filepath.Join(a.dir, attnmap.WordFileName(name, i+1, words[i])), overlays[i]
		jobs = append(jobs, func() error { return writePNG(path, img) })
	}
	sheet := attnmap.SheetOf(shown, overlays)
	jobs = append(jobs, func() error { return writePNG(filepath.Join(a.dir, attnmap.SheetFileName(name)), sheet) })
	errs := make([]error, len(jobs))
	parallel.Each(len(jobs), func(i int) { errs[i] = jobs[i]() })
	return errors.Join(errs...)
}

// writePNG writes img atomically, with zlib's fastest level: three times
// faster to write than the default for a few percent more bytes.
func writePNG(path string, img image.Image) error {
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return enc.Encode(w, img) })
}
