// Package attnmap draws a captioning model's attention as the Show, Attend
// and Tell paper shows it: for each generated word, the decoder's attention
// weights over the encoder's grid×grid feature cells, upsampled smoothly to
// the image, blended over it as a heat map and labelled with the word; and
// a contact sheet holding the image and every word's map.
//
// The image given is the one the grid covers: for captionctl's encoders,
// the centre crop the encoder saw (data.ResizeCrop), at any display size.
// Cell (x, y) of the grid covers the image's x-th of grid columns and y-th
// of grid rows; weights are indexed y·grid + x, the feature store's
// position order. The package only draws; it neither reads nor writes
// files and never prints.
package attnmap

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Opacity is the weight of the heat map's colour in a blended pixel; the
// image keeps 1 − Opacity.
const Opacity = 0.5

// Sheet layout: at most SheetColumns tiles a row, SheetGap pixels between
// tiles and around the sheet, on a white background.
const (
	SheetColumns = 5
	SheetGap     = 4
)

// Heat returns the attention weights alpha (grid² values, index y·grid + x)
// upsampled to a w×h map of values in [0, 1]: each weight is divided by the
// largest, so the most attended cell reads 1 and a cell the decoder ignores
// reads 0, then interpolated bilinearly between cell centres (constant
// beyond the outer centres), so the map is continuous, with no cell edges.
// All-zero or non-finite weights give an all-zero map.
//
// Heat panics if len(alpha) ≠ grid² or grid < 1, a programmer error.
func Heat(alpha []float32, grid, w, h int) []float32 {
	checkAlpha(alpha, grid)
	peak := float32(0)
	for _, a := range alpha {
		if a > peak && !math.IsInf(float64(a), 0) {
			peak = a
		}
	}
	norm := make([]float32, len(alpha))
	if peak > 0 {
		for i, a := range alpha {
			if v := a / peak; v > 0 && v <= 1 { // NaN and negatives drop to 0
				norm[i] = v
			}
		}
	}
	// Source coordinate of each output column and row, in cell units: pixel
	// centre (x+0.5) maps to (x+0.5)·grid/w − 0.5, clamped to the outer
	// centres (PyTorch's interpolate with align_corners=False).
	type tap struct {
		i0, i1 int
		f      float32
	}
	taps := func(n int) []tap {
		t := make([]tap, n)
		for x := range n {
			s := (float64(x)+0.5)*float64(grid)/float64(n) - 0.5
			s = max(0, min(s, float64(grid-1)))
			i0 := int(s)
			i1 := min(i0+1, grid-1)
			t[x] = tap{i0, i1, float32(s - float64(i0))}
		}
		return t
	}
	xs, ys := taps(w), taps(h)
	out := make([]float32, w*h)
	for y, ty := range ys {
		r0, r1 := norm[ty.i0*grid:], norm[ty.i1*grid:]
		for x, tx := range xs {
			top := r0[tx.i0] + (r0[tx.i1]-r0[tx.i0])*tx.f
			bottom := r1[tx.i0] + (r1[tx.i1]-r1[tx.i0])*tx.f
			out[y*w+x] = top + (bottom-top)*ty.f
		}
	}
	return out
}

// Overlay returns img with the heat map of alpha (see Heat) blended over
// it — colour Colormap(v) at Opacity — and word written in its top-left
// corner, white on a dark band. The result has img's size and bounds
// starting at (0, 0); img is not changed.
//
// Overlay panics if len(alpha) ≠ grid² or grid < 1.
func Overlay(img image.Image, alpha []float32, grid int, word string) *image.RGBA {
	out := toRGBA(img)
	b := out.Bounds()
	heat := Heat(alpha, grid, b.Dx(), b.Dy())
	for y := range b.Dy() {
		row := out.Pix[y*out.Stride:]
		for x := range b.Dx() {
			c := Colormap(heat[y*b.Dx()+x])
			p := row[4*x : 4*x+4]
			p[0] = blend(p[0], c.R)
			p[1] = blend(p[1], c.G)
			p[2] = blend(p[2], c.B)
			p[3] = 255
		}
	}
	Label(out, word)
	return out
}

// Sheet returns the contact sheet of a caption's attention: img first,
// then Overlay(img, alphas[i], grid, words[i]) for each word, in rows of
// at most SheetColumns tiles separated by SheetGap white pixels.
//
// Sheet panics if len(words) ≠ len(alphas) or any alpha has the wrong
// length.
func Sheet(img image.Image, alphas [][]float32, grid int, words []string) *image.RGBA {
	if len(words) != len(alphas) {
		panic(fmt.Sprintf("attnmap: %d words for %d attention maps", len(words), len(alphas)))
	}
	overlays := make([]*image.RGBA, len(alphas))
	for i, a := range alphas {
		overlays[i] = Overlay(img, a, grid, words[i])
	}
	return SheetOf(img, overlays)
}

// SheetOf is Sheet from overlays already drawn (Overlay's results, one
// per word), so that a caller writing them too draws each once.
func SheetOf(img image.Image, overlays []*image.RGBA) *image.RGBA {
	return Grid(append([]*image.RGBA{toRGBA(img)}, overlays...))
}

// Grid lays tiles, all of the first tile's size, out in rows of at most
// SheetColumns, SheetGap white pixels between them and around them.
func Grid(tiles []*image.RGBA) *image.RGBA {
	if len(tiles) == 0 {
		return image.NewRGBA(image.Rect(0, 0, 0, 0))
	}
	tw, th := tiles[0].Bounds().Dx(), tiles[0].Bounds().Dy()
	cols := min(len(tiles), SheetColumns)
	rows := (len(tiles) + cols - 1) / cols
	sheet := image.NewRGBA(image.Rect(0, 0, cols*(tw+SheetGap)+SheetGap, rows*(th+SheetGap)+SheetGap))
	draw.Draw(sheet, sheet.Bounds(), image.White, image.Point{}, draw.Src)
	for i, t := range tiles {
		x := SheetGap + (i%cols)*(tw+SheetGap)
		y := SheetGap + (i/cols)*(th+SheetGap)
		draw.Draw(sheet, image.Rect(x, y, x+tw, y+th), t, t.Bounds().Min, draw.Src)
	}
	return sheet
}

// Label writes text in dst's top-left corner in basicfont's 7×13 face,
// white on a band that darkens what is under it, so that it reads on any
// image. Text wider than dst is cut off at dst's edge.
func Label(dst *image.RGBA, text string) {
	if text == "" {
		return
	}
	face := basicfont.Face7x13
	const pad = 3
	d := &font.Drawer{Dst: dst, Src: image.White, Face: face}
	width := d.MeasureString(text).Ceil()
	metrics := face.Metrics()
	band := image.Rect(0, 0, width+2*pad, metrics.Height.Ceil()+2*pad).Add(dst.Bounds().Min).Intersect(dst.Bounds())
	draw.Draw(dst, band, image.NewUniform(color.RGBA{A: 160}), image.Point{}, draw.Over)
	d.Dot = fixed.P(dst.Bounds().Min.X+pad, dst.Bounds().Min.Y+pad+metrics.Ascent.Ceil())
	d.DrawString(text)
}

// Colormap maps v in [0, 1] to a colour of the "jet" scale: dark blue at 0
// through cyan, yellow and red to dark red at 1. Values outside [0, 1] are
// clamped.
func Colormap(v float32) color.RGBA {
	v = max(0, min(v, 1))
	// Piecewise-linear jet, as matplotlib defines it: each channel is a
	// trapezoid over [0, 1].
	ch := func(centre float32) uint8 {
		d := v - centre
		if d < 0 {
			d = -d
		}
		c := max(0, min(1.5-4*d, 1))
		return uint8(c*255 + 0.5)
	}
	return color.RGBA{R: ch(0.75), G: ch(0.5), B: ch(0.25), A: 255}
}

func blend(under, over uint8) uint8 {
	return uint8(float32(under)*(1-Opacity) + float32(over)*Opacity + 0.5)
}

// toRGBA copies img into a new opaque RGBA image with bounds at (0, 0).
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), image.Black, image.Point{}, draw.Src)
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Over)
	return out
}

func checkAlpha(alpha []float32, grid int) {
	if grid < 1 || len(alpha) != grid*grid {
		panic(fmt.Sprintf("attnmap: %d attention weights for a %d×%d grid, want %d", len(alpha), grid, grid, grid*grid))
	}
}

// WordFileName is the file name of the map of the index-th word (1-based)
// of image name's caption: "<name>_<NN>_<word>.png", with word reduced to
// ASCII letters, digits and '-' ("<unk>" becomes "unk") so that any token
// gives a portable name.
func WordFileName(name string, index int, word string) string {
	return fmt.Sprintf("%s_%02d_%s.png", name, index, sanitize(word))
}

// SheetFileName is the contact sheet's file name for image name:
// "<name>_attention.png".
func SheetFileName(name string) string { return name + "_attention.png" }

func sanitize(word string) string {
	out := make([]byte, 0, len(word))
	for _, r := range word {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			out = append(out, byte(r))
		}
		if len(out) == 32 {
			break
		}
	}
	if len(out) == 0 {
		return "x"
	}
	return string(out)
}
