package train

import (
	"bytes"
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/captionctl/captionctl/internal/atomicfile"
)

// Size of the curves image, in pixels.
const (
	CurvesWidth  = 800
	CurvesHeight = 900
)

// RenderCurves draws the training curves of epochs as a PNG of
// CurvesWidth × CurvesHeight pixels: the mean train loss per epoch on top
// and, when some epoch was validated, the val CIDEr-D and BLEU-4 below it
// (one panel each, as their scales differ).
func RenderCurves(epochs []EpochStats) ([]byte, error) {
	if len(epochs) == 0 {
		return nil, fmt.Errorf("curves: no epoch to plot")
	}
	var loss, cider, bleu plotter.XYs
	for _, e := range epochs {
		loss = append(loss, plotter.XY{X: float64(e.Epoch), Y: e.Loss})
		if e.Validated {
			cider = append(cider, plotter.XY{X: float64(e.Epoch), Y: e.CIDEr})
			bleu = append(bleu, plotter.XY{X: float64(e.Epoch), Y: e.Bleu4})
		}
	}
	type panel struct {
		title, ylabel string
		xys           plotter.XYs
		colour        color.Color
	}
	panels := []panel{{"train loss", "loss", loss, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}}}
	if len(cider) > 0 {
		panels = append(panels,
			panel{"val CIDEr-D", "CIDEr-D", cider, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
			panel{"val BLEU-4", "BLEU-4", bleu, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}})
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "epoch"
		p.Y.Label.Text = pn.ylabel
		p.Add(plotter.NewGrid())
		line, points, err := plotter.NewLinePoints(pn.xys)
		if err != nil {
			return nil, fmt.Errorf("curves: %s: %w", pn.title, err)
		}
		line.Color, points.Color = pn.colour, pn.colour
		points.Shape = draw.CircleGlyph{}
		p.Add(line, points)
		p.X.Min = 1
		p.X.Max = max(2, float64(epochs[len(epochs)-1].Epoch))
		plots[i] = []*plot.Plot{p}
	}
	// At 72 dpi one point is one pixel.
	img := vgimg.NewWith(vgimg.UseWH(vg.Length(CurvesWidth), vg.Length(CurvesHeight)), vgimg.UseDPI(72))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: 8, PadBottom: 8, PadLeft: 8, PadRight: 12, PadY: 12}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("curves: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteCurves renders epochs' curves (RenderCurves) and writes the PNG to
// path atomically.
func WriteCurves(path string, epochs []EpochStats) error {
	png, err := RenderCurves(epochs)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		_, err := w.Write(png)
		return err
	})
}
