package attnmap

import (
	"image"
	"image/color"
	"math"
	"testing"
)

// oneHot is a grid² attention vector with all weight on cell (x, y).
func oneHot(grid, x, y int) []float32 {
	a := make([]float32, grid*grid)
	a[y*grid+x] = 1
	return a
}

func uniformImage(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func TestHeatOneHot(t *testing.T) {
	// All weight on cell (5, 2) of a 7×7 grid over 70×70 pixels: 10 pixels a
	// cell, the cell's centre lies between pixels 54 and 55 (and rows 24
	// and 25), so pixel (54, 24) reads 0.95² = 0.9025; cells two away read 0.
	const grid, side = 7, 70
	heat := Heat(oneHot(grid, 5, 2), grid, side, side)
	at := func(x, y int) float32 { return heat[y*side+x] }
	if v := at(54, 24); math.Abs(float64(v)-0.9025) > 1e-5 {
		t.Errorf("heat next to the attended cell's centre %v, want 0.9025", v)
	}
	if v := at(5, 65); v != 0 {
		t.Errorf("heat far from the attended cell %v, want 0", v)
	}
	// The peak lies in the attended cell and the map falls off from it.
	best := 0
	for i, v := range heat {
		if v < 0 || v > 1 {
			t.Fatalf("heat[%d] = %v outside [0, 1]", i, v)
		}
		if v > heat[best] {
			best = i
		}
	}
	if x, y := best%side, best/side; x/10 != 5 || y/10 != 2 {
		t.Errorf("peak at pixel (%d, %d), not in cell (5, 2)", x, y)
	}
	if !(at(54, 24) > at(60, 24) && at(60, 24) > at(66, 24)) {
		t.Errorf("heat does not fall off to the right: %v %v %v", at(54, 24), at(60, 24), at(66, 24))
	}
}

func TestHeatSmooth(t *testing.T) {
	// Smooth upsampling: neighbouring pixels differ by at most one cell's
	// step spread over a cell's width (bilinear between centres), here
	// 1/16 for 16-pixel cells; nearest-neighbour would jump by 1.
	const grid, side = 7, 112
	heat := Heat(oneHot(grid, 3, 3), grid, side, side)
	for y := range side {
		for x := 1; x < side; x++ {
			if d := math.Abs(float64(heat[y*side+x] - heat[y*side+x-1])); d > 1.0/16+1e-6 {
				t.Fatalf("jump of %v between pixels (%d, %d) and (%d, %d)", d, x-1, y, x, y)
			}
		}
	}
}

func TestHeatNormalisation(t *testing.T) {
	cases := []struct {
		name  string
		alpha []float32
		want  float32 // every pixel
	}{
		{"uniform weights read 1 everywhere", []float32{0.25, 0.25, 0.25, 0.25}, 1},
		{"scale does not matter", []float32{3, 3, 3, 3}, 1},
		{"all zero reads 0", []float32{0, 0, 0, 0}, 0},
		{"NaN reads 0", []float32{float32(math.NaN()), 0, 0, 0}, 0},
	}
	for _, c := range cases {
		heat := Heat(c.alpha, 2, 9, 5)
		for i, v := range heat {
			if v != c.want {
				t.Errorf("%s: heat[%d] = %v, want %v", c.name, i, v, c.want)
				break
			}
		}
	}
}

func TestOverlayPixels(t *testing.T) {
	const grid, side = 7, 140
	grey := color.RGBA{100, 100, 100, 255}
	img := uniformImage(side, side, grey)
	out := Overlay(img, oneHot(grid, 6, 6), grid, "dog")
	if out.Bounds() != image.Rect(0, 0, side, side) {
		t.Fatalf("bounds %v", out.Bounds())
	}
	if img.RGBAAt(130, 130) != grey {
		t.Fatal("Overlay changed its input")
	}
	// Attended corner: red dominates; ignored region: blue dominates.
	// Expected values: blend of grey 100 with jet(1) = (128, 0, 0) and
	// jet(0) = (0, 0, 128) at Opacity 0.5.
	if c := out.RGBAAt(130, 130); c != (color.RGBA{114, 50, 50, 255}) {
		t.Errorf("attended pixel %v, want {114 50 50 255}", c)
	}
	if c := out.RGBAAt(40, 110); c != (color.RGBA{50, 50, 114, 255}) {
		t.Errorf("ignored pixel %v, want {50 50 114 255}", c)
	}
	// The word is written in the top-left corner: some white pixels there,
	// none in the image's bottom-left.
	white := func(x0, y0, x1, y1 int) int {
		n := 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if c := out.RGBAAt(x, y); c.R == 255 && c.G == 255 && c.B == 255 {
					n++
				}
			}
		}
		return n
	}
	if n := white(0, 0, 40, 20); n < 10 {
		t.Errorf("%d white label pixels in the top-left corner, want ≥ 10", n)
	}
	if n := white(0, 100, 40, 140); n != 0 {
		t.Errorf("%d white pixels away from the label", n)
	}
}

func TestOverlayOffsetBounds(t *testing.T) {
	// A sub-image (bounds not at the origin) draws as its own pixels.
	base := uniformImage(50, 50, color.RGBA{0, 0, 0, 255})
	sub := base.SubImage(image.Rect(10, 10, 30, 30)).(*image.RGBA)
	out := Overlay(sub, []float32{1}, 1, "")
	if out.Bounds() != image.Rect(0, 0, 20, 20) {
		t.Fatalf("bounds %v", out.Bounds())
	}
	if c := out.RGBAAt(10, 10); c != (color.RGBA{64, 0, 0, 255}) {
		t.Errorf("pixel %v, want black blended with dark red {64 0 0 255}", c)
	}
}

func TestSheetLayout(t *testing.T) {
	const grid, side = 2, 20
	img := uniformImage(side, side, color.RGBA{10, 200, 30, 255})
	alphas := make([][]float32, 6)
	words := make([]string, 6)
	for i := range alphas {
		alphas[i] = oneHot(grid, i%2, 0)
		words[i] = "w"
	}
	sheet := Sheet(img, alphas, grid, words)
	// 7 tiles: a row of 5, a row of 2.
	wantW := 5*(side+SheetGap) + SheetGap
	wantH := 2*(side+SheetGap) + SheetGap
	if b := sheet.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Fatalf("sheet %v, want %d×%d", b, wantW, wantH)
	}
	// The first tile is the image itself, unchanged.
	if c := sheet.RGBAAt(SheetGap+side/2, SheetGap+side/2); c != (color.RGBA{10, 200, 30, 255}) {
		t.Errorf("first tile centre %v, want the image's colour", c)
	}
	// Gaps and the unused tiles of the last row are white.
	for _, p := range []image.Point{{0, 0}, {SheetGap + side, 10}, {wantW - 1, wantH - 1}} {
		if c := sheet.RGBAAt(p.X, p.Y); c != (color.RGBA{255, 255, 255, 255}) {
			t.Errorf("gap pixel %v is %v, want white", p, c)
		}
	}
	// The second tile (first word) is the overlay of the first map.
	want := Overlay(img, alphas[0], grid, words[0])
	x0, y0 := 2*SheetGap+side, SheetGap
	for y := range side {
		for x := range side {
			if got, w := sheet.RGBAAt(x0+x, y0+y), want.RGBAAt(x, y); got != w {
				t.Fatalf("tile 2 pixel (%d, %d) = %v, want %v", x, y, got, w)
			}
		}
	}
}

func TestPanicsOnWrongLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for 5 weights on a 2×2 grid")
		}
	}()
	Heat(make([]float32, 5), 2, 4, 4)
}

func TestFileNames(t *testing.T) {
	cases := []struct {
		name  string
		index int
		word  string
		want  string
	}{
		{"cat", 1, "a", "cat_01_a.png"},
		{"cat", 12, "<unk>", "cat_12_unk.png"},
		{"IMG_0001", 3, "<end>", "IMG_0001_03_end.png"},
		{"x", 4, "../..", "x_04_x.png"},
		{"x", 5, "t-shirt", "x_05_t-shirt.png"},
		{"x", 6, "café", "x_06_caf.png"},
		{"x", 100, "a", "x_100_a.png"},
	}
	for _, c := range cases {
		if got := WordFileName(c.name, c.index, c.word); got != c.want {
			t.Errorf("WordFileName(%q, %d, %q) = %q, want %q", c.name, c.index, c.word, got, c.want)
		}
	}
	if got := SheetFileName("cat"); got != "cat_attention.png" {
		t.Errorf("SheetFileName = %q", got)
	}
}

func TestColormapEnds(t *testing.T) {
	// matplotlib's jet: 0 → (0, 0, 0.5), 0.5 → (0.5, 1, 0.5) at the green
	// peak (R and B at 1.5 − 4·0.25), 1 → (0.5, 0, 0).
	cases := []struct {
		v    float32
		want color.RGBA
	}{
		{0, color.RGBA{0, 0, 128, 255}},
		{0.5, color.RGBA{128, 255, 128, 255}},
		{1, color.RGBA{128, 0, 0, 255}},
		{-1, color.RGBA{0, 0, 128, 255}},
		{2, color.RGBA{128, 0, 0, 255}},
	}
	for _, c := range cases {
		if got := Colormap(c.v); got != c.want {
			t.Errorf("Colormap(%v) = %v, want %v", c.v, got, c.want)
		}
	}
}
