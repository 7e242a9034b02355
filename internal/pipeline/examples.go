package pipeline

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/infer"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/attnmap"
)

// sheetSide is the side of each tile of an attention contact sheet, in
// pixels (as `captionctl caption --attention-dir` draws them).
const sheetSide = 336

// Example is one test image captioned from its file by the attention
// model, as `captionctl caption --attention-dir` does.
type Example struct {
	ImageID   int64
	File      string // the image file
	Caption   string // the attention model's caption
	Blind     string // the blind baseline's test caption of the image
	Reference string // the image's first reference caption
	Sheet     string // the attention contact sheet (PNG)
}

// examples captions the first Config.Examples test images from their
// files with the attention model file alone (its stored encoder) and
// draws their attention sheets.
func (r *runner) examples(ctx context.Context) error {
	if r.cfg.Examples == 0 {
		return nil
	}
	images, err := data.ReadSplit(filepath.Join(r.res.Data, data.SplitFile("test")))
	if err != nil {
		return err
	}
	images = images[:min(r.cfg.Examples, len(images))]
	attention := r.res.Model(ModelAttention)
	captioner, err := infer.LoadCaptioner(attention.Model)
	if err != nil {
		return err
	}
	defer captioner.Close()
	dir := r.path("examples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The region the encoder saw (the centre crop of the resized image),
	// drawn at sheetSide pixels.
	display := r.identity.Preprocess
	display.ResizeSize = (display.ShorterSide()*sheetSide + display.ImageSize/2) / display.ImageSize
	display.ImageSize = sheetSide
	display.ResizeSize = max(display.ResizeSize, display.ImageSize)

	var decoded []image.Image
	for _, im := range images {
		img, err := data.DecodeImage(filepath.Join(r.path("synth"), im.File))
		if err != nil {
			return err
		}
		decoded = append(decoded, img)
	}
	opt := r.searchOptions()
	opt.Attention = true
	r.rep.Start("captioning example images", int64(len(images)))
	defer r.rep.Done()
	results, err := captioner.CaptionImages(ctx, decoded, opt)
	if err != nil {
		return err
	}
	blind := r.res.Model(ModelBlind)
	for i, im := range images {
		res := results[i]
		words := append([]string(nil), res.Tokens...)
		if len(res.Alphas) == len(words)+1 {
			words = append(words, "<end>")
		}
		if len(res.Alphas) != len(words) {
			return fmt.Errorf("image %d: %d attention maps for %d words", im.ImageID, len(res.Alphas), len(res.Tokens))
		}
		shown, err := data.ResizeCrop(decoded[i], display)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(im.File), filepath.Ext(im.File))
		ex := Example{
			ImageID: im.ImageID, File: filepath.Join(r.path("synth"), im.File), Caption: res.Caption,
			Sheet: filepath.Join(dir, attnmap.SheetFileName(name)),
		}
		if blind != nil {
			ex.Blind = blind.Captions[im.ImageID]
		}
		if len(im.Captions) > 0 {
			ex.Reference = im.Captions[0]
		}
		sheet := attnmap.Sheet(shown, res.Alphas, encoderGrid, words)
		if err := atomicfile.Write(ex.Sheet, 0o644, func(w io.Writer) error { return png.Encode(w, sheet) }); err != nil {
			return err
		}
		r.res.Examples = append(r.res.Examples, ex)
		r.rep.Add(1)
	}
	return nil
}
