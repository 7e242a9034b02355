package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// synthRun runs Synth and fails the test on error.
func synthRun(t testing.TB, cfg SynthConfig) *SynthResult {
	t.Helper()
	res, err := Synth(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Synth(%+v): %v", cfg, err)
	}
	return res
}

// synthFiles reads every file under dir, by path relative to dir.
func synthFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		files[rel] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestSynthDeterministic(t *testing.T) {
	cfg := SynthConfig{Images: 30, Seed: 7, Size: 64}
	cfg.Out = t.TempDir()
	synthRun(t, cfg)
	first := synthFiles(t, cfg.Out)
	if len(first) != cfg.Images+1 {
		t.Fatalf("wrote %d files, want %d PNGs and dataset.json", len(first), cfg.Images)
	}

	// Another directory, and a rerun over the first: the same bytes, and no
	// temporary files left behind.
	again := cfg
	again.Out = t.TempDir()
	for _, out := range []string{again.Out, cfg.Out} {
		again.Out = out
		synthRun(t, again)
		second := synthFiles(t, out)
		if len(second) != len(first) {
			t.Fatalf("%s: %d files, want %d", out, len(second), len(first))
		}
		for name, data := range first {
			if !bytes.Equal(second[name], data) {
				t.Errorf("%s: %s differs between runs with the same config", out, name)
			}
		}
	}

	other := cfg
	other.Seed = 8
	other.Out = t.TempDir()
	synthRun(t, other)
	third := synthFiles(t, other.Out)
	if bytes.Equal(third[SynthDatasetFile], first[SynthDatasetFile]) {
		t.Error("seeds 7 and 8 give the same dataset.json")
	}
	same := 0
	for name, data := range first {
		if bytes.Equal(third[name], data) {
			same++
		}
	}
	if same > 2 {
		t.Errorf("seeds 7 and 8 give %d identical files", same)
	}
}

// synthDataset mirrors dataset.json strictly: an unknown field fails.
type synthDataset struct {
	Dataset string `json:"dataset"`
	Images  []struct {
		FilePath  string `json:"filepath"`
		FileName  string `json:"filename"`
		ImgID     *int   `json:"imgid"`
		Split     string `json:"split"`
		SentIDs   []int  `json:"sentids"`
		Sentences []struct {
			Raw    string   `json:"raw"`
			Tokens []string `json:"tokens"`
			ImgID  *int     `json:"imgid"`
			SentID *int     `json:"sentid"`
		} `json:"sentences"`
	} `json:"images"`
}

func TestSynthStructure(t *testing.T) {
	cfg := SynthConfig{Out: t.TempDir(), Images: 45, Seed: 3, Size: 48}
	res := synthRun(t, cfg)
	// 45 images: ⌊45/10⌋ = 4 each for val and test, the rest train.
	want := SynthResult{
		Config: cfg, Dataset: filepath.Join(cfg.Out, "dataset.json"), ImagesDir: filepath.Join(cfg.Out, "images"),
		Images: 45, Captions: 225, Train: 37, Val: 4, Test: 4, ImagesBytes: res.ImagesBytes,
	}
	if *res != want {
		t.Errorf("result %+v, want %+v", *res, want)
	}

	raw, err := os.ReadFile(res.Dataset)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var ds synthDataset
	if err := dec.Decode(&ds); err != nil {
		t.Fatalf("dataset.json: %v", err)
	}
	if ds.Dataset != "synth" || len(ds.Images) != cfg.Images {
		t.Fatalf("dataset %q with %d images, want \"synth\" with %d", ds.Dataset, len(ds.Images), cfg.Images)
	}
	splits := map[string]int{}
	var pngBytes int64
	for i, im := range ds.Images {
		at := fmt.Sprintf("images[%d]", i)
		if im.ImgID == nil || *im.ImgID != i || im.FilePath != "images" || im.FileName != fmt.Sprintf("%06d.png", i) {
			t.Errorf("%s: imgid %v, filepath %q, filename %q", at, im.ImgID, im.FilePath, im.FileName)
		}
		splits[im.Split]++
		if want := []int{5 * i, 5*i + 1, 5*i + 2, 5*i + 3, 5*i + 4}; !slices.Equal(im.SentIDs, want) {
			t.Errorf("%s: sentids %v, want %v", at, im.SentIDs, want)
		}
		if len(im.Sentences) != 5 {
			t.Fatalf("%s: %d sentences, want 5", at, len(im.Sentences))
		}
		seen := map[string]bool{}
		for k, s := range im.Sentences {
			if s.ImgID == nil || *s.ImgID != i || s.SentID == nil || *s.SentID != 5*i+k {
				t.Errorf("%s.sentences[%d]: imgid %v, sentid %v", at, k, s.ImgID, s.SentID)
			}
			if seen[s.Raw] {
				t.Errorf("%s: caption %q twice", at, s.Raw)
			}
			seen[s.Raw] = true
			if r := []rune(s.Raw); !unicode.IsUpper(r[0]) || !strings.HasSuffix(s.Raw, ".") || strings.Contains(s.Raw, "  ") {
				t.Errorf("%s: caption %q is not one capitalised sentence", at, s.Raw)
			}
			// Karpathy's tokens: the raw words, lower-case, punctuation gone.
			var words []string
			for _, f := range strings.Fields(s.Raw) {
				words = append(words, strings.ToLower(strings.Trim(f, ".,:;")))
			}
			if !slices.Equal(s.Tokens, words) {
				t.Errorf("%s: tokens %q for %q", at, s.Tokens, s.Raw)
			}
		}

		path := filepath.Join(cfg.Out, im.FilePath, im.FileName)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		pngBytes += int64(len(data))
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if img.Bounds() != image.Rect(0, 0, cfg.Size, cfg.Size) {
			t.Errorf("%s: bounds %v, want %d×%d", path, img.Bounds(), cfg.Size, cfg.Size)
		}
		// PNG colour type 2: 8-bit RGB, no alpha.
		if data[25] != 2 || img.ColorModel() != color.RGBAModel {
			t.Errorf("%s: PNG colour type %d, want 2 (RGB)", path, data[25])
		}
	}
	if splits["train"] != res.Train || splits["val"] != res.Val || splits["test"] != res.Test || len(splits) != 3 {
		t.Errorf("splits %v, result says train %d val %d test %d", splits, res.Train, res.Val, res.Test)
	}
	if pngBytes != res.ImagesBytes {
		t.Errorf("PNG files hold %d bytes, result says %d", pngBytes, res.ImagesBytes)
	}
}

func TestSynthSplits(t *testing.T) {
	for _, n := range []int{10, 19, 20, 101, 3000} {
		splits := synthSplits(n, 1)
		count := map[string]int{}
		for _, s := range splits {
			count[s]++
		}
		// Hand computation: val and test get ⌊n/10⌋ each.
		if count["val"] != n/10 || count["test"] != n/10 || count["train"] != n-2*(n/10) {
			t.Errorf("n=%d: %v", n, count)
		}
		if !slices.Equal(synthSplits(n, 1), splits) {
			t.Errorf("n=%d: seed 1 gives different splits on two calls", n)
		}
		if n >= 100 && slices.Equal(synthSplits(n, 2), splits) {
			t.Errorf("n=%d: seeds 1 and 2 give the same splits", n)
		}
	}
}

func TestSynthConfigValidate(t *testing.T) {
	ok := DefaultSynthConfig()
	ok.Out = "out"
	if err := ok.Validate(); err != nil {
		t.Fatalf("default config with --out: %v", err)
	}
	if d := DefaultSynthConfig(); d.Images != 3000 || d.Seed != 1 || d.Size != 224 {
		t.Errorf("DefaultSynthConfig() = %+v", d)
	}
	for _, tc := range []struct {
		edit func(*SynthConfig)
		want string
	}{
		{func(c *SynthConfig) { c.Out = "" }, "--out"},
		{func(c *SynthConfig) { c.Images = 3 }, "--images must be ≥ 10, got 3"},
		{func(c *SynthConfig) { c.Images = 2_000_000 }, "--images must be ≤ 1000000, got 2000000"},
		{func(c *SynthConfig) { c.Size = 16 }, "--size must be ≥ 32, got 16"},
		{func(c *SynthConfig) { c.Size = 4096 }, "--size must be ≤ 1024, got 4096"},
	} {
		cfg := ok
		tc.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", cfg, err, tc.want)
		}
		if _, err := Synth(context.Background(), cfg, nil); err == nil {
			t.Errorf("Synth(%+v) accepted an invalid config", cfg)
		}
	}
}

// synthCancelAfter cancels a context after n images.
type synthCancelAfter struct {
	n      int64
	cancel context.CancelFunc
}

func (r *synthCancelAfter) Start(string, int64) {}
func (r *synthCancelAfter) Done()               {}
func (r *synthCancelAfter) Add(n int64) {
	if r.n -= n; r.n <= 0 {
		r.cancel()
	}
}

func TestSynthCancel(t *testing.T) {
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Synth(ctx, SynthConfig{Out: out, Images: 500, Seed: 1, Size: 32}, &synthCancelAfter{n: 5, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Synth after cancel: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(out, SynthDatasetFile)); !os.IsNotExist(err) {
		t.Errorf("dataset.json written by a cancelled run (stat: %v)", err)
	}
	files := synthFiles(t, out)
	if len(files) >= 500 {
		t.Errorf("cancelled after 5 images, yet %d files were written", len(files))
	}
	for name := range files {
		if !strings.HasSuffix(name, ".png") || strings.HasPrefix(filepath.Base(name), ".") {
			t.Errorf("left %s behind", name)
		}
	}
}

// synthArea is each shape's area in its own frame (radius 1), by hand:
// circle π·0.9²; ring π(0.91² − 0.57²); square 1.4²; triangle of
// circumradius 1, 3√3/4; diamond with half-diagonals 1 and 0.68, 2·0.68;
// cross of two 1.9×0.6 bars, 2·1.14 − 0.36; star of ten triangles with
// sides 1 and 0.42 at 36°, 10·½·0.42·sin 36°.
var synthArea = [synthNumShapes]float64{
	synthCircle:   math.Pi * 0.81,
	synthRing:     math.Pi * (0.91*0.91 - 0.57*0.57),
	synthSquare:   1.96,
	synthTriangle: 3 * math.Sqrt(3) / 4,
	synthDiamond:  1.36,
	synthCross:    1.92,
	synthStar:     5 * 0.42 * math.Sin(math.Pi/5),
}

// TestSynthShapes draws each shape large on a black background and checks
// its area (coverage summed over the pixels) against the hand-computed one,
// and that it stays inside its Radius however it is rotated.
func TestSynthShapes(t *testing.T) {
	const size = 400
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for shape := range synthNumShapes {
		for _, angle := range []float64{0, 0.26, -0.26} {
			s := synthScene{
				Background: synthBackground{Colour: 1, Texture: synthPlain},
				Objects:    []synthObject{{Shape: shape, Colour: 6, Large: true, X: 0.5, Y: 0.5, Radius: 0.3, Angle: angle}},
			}
			renderSynthScene(img, &s)
			r := 0.3 * size
			var area float64
			for y := range size {
				for x := range size {
					v := float64(img.Pix[y*img.Stride+4*x+1])
					a := (v - 28) / (248 - 28) // background black (28) → white (248)
					if a > 0.01 && math.Hypot(float64(x)+0.5-size/2, float64(y)+0.5-size/2) > r+1 {
						t.Fatalf("%s at %.2f rad: pixel (%d, %d) lies outside the radius", synthShapeWords[shape].singular[0], angle, x, y)
					}
					area += a
				}
			}
			area /= r * r
			if math.Abs(area-synthArea[shape]) > 0.01*synthArea[shape] {
				t.Errorf("%s at %.2f rad: area %.4f r², want %.4f r²", synthShapeWords[shape].singular[0], angle, area, synthArea[shape])
			}
		}
	}
}

// TestSynthLayout checks many scenes: objects inside the image, apart from
// one another, in the cells their captions use, with distinct (shape,
// colour) pairs and colours that stand out on the background.
func TestSynthLayout(t *testing.T) {
	counts := [4]int{}
	for i := range 3000 {
		s := newSynthScene(synthImageRNG(1, i))
		counts[len(s.Objects)]++
		bg := synthBackgroundColours[s.Background.Colour]
		for j, o := range s.Objects {
			if o.X-o.Radius < 0.005 || o.X+o.Radius > 0.995 || o.Y-o.Radius < 0.005 || o.Y+o.Radius > 0.995 {
				t.Fatalf("scene %d: object %d (%+v) touches the border", i, j, o)
			}
			if row, col := int(o.Y*3), int(o.X*3); row != o.Row || col != o.Col {
				t.Fatalf("scene %d: object %d at (%.3f, %.3f) lies in cell (%d, %d), not (%d, %d)", i, j, o.X, o.Y, row, col, o.Row, o.Col)
			}
			if slices.Contains(bg.excluded, synthObjectColours[o.Colour].name) {
				t.Fatalf("scene %d: %s object on %s background", i, synthObjectColours[o.Colour].name, bg.name)
			}
			for _, p := range s.Objects[:j] {
				if math.Hypot(o.X-p.X, o.Y-p.Y) < o.Radius+p.Radius+0.005 {
					t.Fatalf("scene %d: objects %+v and %+v overlap", i, o, p)
				}
				if o.Shape == p.Shape && o.Colour == p.Colour {
					t.Fatalf("scene %d: two objects of the same shape and colour", i)
				}
			}
		}
	}
	// 30/40/30 % of 3000, within a few standard deviations.
	for n, want := range []int{0, 900, 1200, 900} {
		if math.Abs(float64(counts[n]-want)) > 100 {
			t.Errorf("%d scenes with %d objects, want about %d", counts[n], n, want)
		}
	}
}

// synthWordTable gives each meaningful caption word its meaning, written
// out here apart from the generator's tables so that a wrong word there
// shows.
var (
	synthTestColours  = []string{"red", "green", "blue", "yellow", "purple", "orange", "white", "black", "grey"}
	synthTestSizes    = map[string]bool{"small": false, "little": false, "large": true, "big": true}
	synthTestNumbers  = map[string]int{"one": 1, "single": 1, "two": 2, "three": 3}
	synthTestTextures = map[string]synthTexture{
		"plain": synthPlain, "striped": synthStriped, "checkered": synthChecked, "chequered": synthChecked,
		"dotted": synthDotted, "spotted": synthDotted, "speckled": synthSpeckled, "shaded": synthShaded,
	}
	synthTestShapes = map[string]synthShape{
		"circle": synthCircle, "disc": synthCircle, "square": synthSquare, "triangle": synthTriangle,
		"star": synthStar, "diamond": synthDiamond, "rhombus": synthDiamond, "cross": synthCross, "ring": synthRing,
	}
	synthTestPlurals = map[string]synthShape{
		"circles": synthCircle, "discs": synthCircle, "squares": synthSquare, "triangles": synthTriangle,
		"stars": synthStar, "diamonds": synthDiamond, "rhombuses": synthDiamond, "crosses": synthCross, "rings": synthRing,
	}
	synthTestGeneric   = map[string]bool{"shape": false, "object": false, "shapes": true, "objects": true}
	synthTestPositions = map[string]bool{"top": true, "bottom": true, "left": true, "right": true, "centre": true, "middle": true, "corner": true, "side": true}
	// synthTestFiller are the words that carry no fact.
	synthTestFiller = map[string]bool{
		"a": true, "an": true, "the": true, "and": true, "of": true, "on": true, "in": true, "at": true, "with": true,
		"is": true, "are": true, "there": true, "only": true, "including": true, "picture": true, "image": true,
		"background": true, "to": true, "than": true, "others": true,
	}
)

// synthCaptionChecker checks one caption against a scene, reading it with a
// small parser of its own: noun phrases ([size] [colour] noun) must name
// objects the scene has; a count before one must match; a position, a
// relation or "is …" after one must hold for some object it names; a
// background phrase must name the scene's background. Every colour, shape,
// size, number, texture and position word must be part of one of these.
type synthCaptionChecker struct {
	s    *synthScene
	toks []string
	used []bool
}

// synthCell is the grid cell of o, from its geometry.
func synthCell(o *synthObject) (row, col int) { return int(o.Y * 3), int(o.X * 3) }

func checkSynthCaption(s *synthScene, caption string) error {
	c := &synthCaptionChecker{s: s, toks: synthTokens(caption)}
	c.used = make([]bool, len(c.toks))
	for i := 0; i < len(c.toks); i++ {
		if c.toks[i] == "background" {
			if err := c.background(i); err != nil {
				return err
			}
			continue
		}
		start := i
		count := -1
		if n, ok := synthTestNumbers[c.toks[i]]; ok {
			count, start = n, i+1
		} else if c.toks[i] == "only" && i+1 < len(c.toks) {
			if _, isNumber := synthTestNumbers[c.toks[i+1]]; !isNumber {
				count, start = 1, i+1
			}
		}
		cands, plural, end, ok := c.nounPhrase(start)
		if !ok {
			continue
		}
		if len(cands) == 0 {
			return fmt.Errorf("%q names an object the scene lacks", strings.Join(c.toks[start:end], " "))
		}
		if count >= 0 {
			if plural != (count > 1) || len(cands) != count {
				return fmt.Errorf("%q: the scene has %d", strings.Join(c.toks[i:end], " "), len(cands))
			}
			c.used[i] = true
		}
		if err := c.after(cands, end); err != nil {
			return fmt.Errorf("%q: %w", strings.Join(c.toks[start:], " "), err)
		}
		i = end - 1
	}
	for i, w := range c.toks {
		if !c.used[i] && !synthTestFiller[w] {
			return fmt.Errorf("word %d (%q) is not part of any fact checked", i, w)
		}
	}
	return nil
}

// background checks "[a] [texture] colour background" ending at i.
func (c *synthCaptionChecker) background(i int) error {
	bg := c.s.Background
	if i < 2 || c.toks[i-1] != synthBackgroundColours[bg.Colour].name {
		return fmt.Errorf("background word %d: want %q before it", i, synthBackgroundColours[bg.Colour].name)
	}
	texture, named := synthTestTextures[c.toks[i-2]]
	if named && texture != bg.Texture || !named && bg.Texture != synthPlain {
		return fmt.Errorf("background %q, scene has texture %d", strings.Join(c.toks[i-2:i+1], " "), bg.Texture)
	}
	c.used[i-2], c.used[i-1], c.used[i] = named, true, true
	return nil
}

// nounPhrase reads [size] [colour] noun at i and returns the objects it
// fits.
func (c *synthCaptionChecker) nounPhrase(i int) (cands []*synthObject, plural bool, end int, ok bool) {
	j := i
	size, hasSize := false, false
	if j < len(c.toks) {
		size, hasSize = synthTestSizes[c.toks[j]]
	}
	if hasSize {
		j++
	}
	colour := ""
	if j+1 < len(c.toks) && slices.Contains(synthTestColours, c.toks[j]) && c.toks[j+1] != "background" {
		colour = c.toks[j]
		j++
	}
	if j >= len(c.toks) {
		return nil, false, 0, false
	}
	shape, isShape := synthTestShapes[c.toks[j]]
	if !isShape {
		shape, isShape = synthTestPlurals[c.toks[j]]
		plural = isShape
	}
	generic, isGeneric := synthTestGeneric[c.toks[j]]
	if !isShape && !isGeneric {
		return nil, false, 0, false
	}
	plural = plural || generic
	for k := range c.s.Objects {
		o := &c.s.Objects[k]
		if (!hasSize || o.Large == size) && (colour == "" || synthObjectColours[o.Colour].name == colour) && (!isShape || o.Shape == shape) {
			cands = append(cands, o)
		}
	}
	for k := i; k <= j; k++ {
		c.used[k] = true
	}
	return cands, plural, j + 1, true
}

// after checks what follows a noun phrase ending before i: a position, a
// relation to another noun phrase, or "is" with a colour, a comparison or
// another noun phrase.
func (c *synthCaptionChecker) after(cands []*synthObject, i int) error {
	at := func(k int) string {
		if k < len(c.toks) {
			return c.toks[k]
		}
		return ""
	}
	mark := func(from, to int) {
		for k := from; k < to; k++ {
			c.used[k] = true
		}
	}
	if (at(i) == "in" || at(i) == "at" || at(i) == "on") && at(i+1) == "the" && synthTestPositions[at(i+2)] {
		row, col, j := 1, 1, i+2
		for ; synthTestPositions[at(j)]; j++ {
			switch at(j) {
			case "top":
				row = 0
			case "bottom":
				row = 2
			case "left":
				col = 0
			case "right":
				col = 2
			}
		}
		mark(i+2, j)
		cands = slices.DeleteFunc(slices.Clone(cands), func(o *synthObject) bool {
			r, cl := synthCell(o)
			return r != row || cl != col
		})
		if len(cands) == 0 {
			return fmt.Errorf("no such object in cell (%d, %d)", row, col)
		}
		i = j
		if at(i) == "of" && at(i+1) == "the" && (at(i+2) == "image" || at(i+2) == "picture") {
			i += 3
		}
	}

	switch {
	case at(i) == "is" && slices.Contains(synthTestColours, at(i+1)):
		c.used[i+1] = true
		for _, o := range cands {
			if synthObjectColours[o.Colour].name == at(i+1) {
				return nil
			}
		}
		return fmt.Errorf("not %s", at(i+1))

	case at(i) == "is" && (at(i+1) == "larger" || at(i+1) == "bigger") && at(i+2) == "than" && at(i+3) == "the":
		c.used[i+1] = true
		others, _, _, ok := c.nounPhrase(i + 4)
		if !ok {
			return errors.New("no noun phrase after than")
		}
		for _, a := range cands {
			for _, b := range others {
				if a.Large && !b.Large {
					return nil
				}
			}
		}
		return errors.New("not larger")

	case at(i) == "is" && (at(i+1) == "a" || at(i+1) == "an"):
		others, _, _, ok := c.nounPhrase(i + 2)
		if !ok {
			return errors.New("no noun phrase after is")
		}
		for _, o := range others {
			if slices.Contains(cands, o) {
				return nil
			}
		}
		return errors.New("the two noun phrases name different objects")
	}

	// Relations: (above|over|below|under|beneath) [and to the (left|right)
	// of], [to the] (left|right) of, next to, beside.
	j := i
	dRow, dCol, next := 0, 0, false
	switch at(j) {
	case "above", "over":
		dRow, j = -1, j+1
	case "below", "under", "beneath":
		dRow, j = 1, j+1
	case "beside":
		next, j = true, j+1
	case "next":
		if at(j+1) == "to" {
			next, j = true, j+2
		}
	}
	if dRow != 0 && at(j) == "and" {
		j++
	}
	if (dRow != 0 || j == i) && at(j) == "to" && at(j+1) == "the" {
		j += 2
	}
	if (at(j) == "left" || at(j) == "right") && at(j+1) == "of" {
		dCol = map[string]int{"left": -1, "right": 1}[at(j)]
		c.used[j] = true
		j += 2
	}
	if dRow == 0 && dCol == 0 && !next {
		return nil // nothing to check after this noun phrase
	}
	mark(i, j)
	if at(j) != "a" && at(j) != "an" {
		return fmt.Errorf("relation %q without an object", strings.Join(c.toks[i:j], " "))
	}
	others, _, _, ok := c.nounPhrase(j + 1)
	if !ok {
		return fmt.Errorf("relation %q without a noun phrase", strings.Join(c.toks[i:j], " "))
	}
	for _, a := range cands {
		for _, b := range others {
			ra, ca := synthCell(a)
			rb, cb := synthCell(b)
			sign := func(x int) int { return max(-1, min(1, x)) }
			switch {
			case a == b:
			case next && synthAbs(ra-rb)+synthAbs(ca-cb) == 1:
				return nil
			case !next && sign(ra-rb) == dRow && sign(ca-cb) == dCol:
				return nil
			}
		}
	}
	return fmt.Errorf("relation %q does not hold", strings.Join(c.toks[i:j], " "))
}

// TestSynthCaptionChecker makes sure the checker rejects false captions,
// so that TestSynthCaptionsTruthful means something.
func TestSynthCaptionChecker(t *testing.T) {
	// A small red circle in the top left cell, a large blue square in the
	// centre; on a striped grey background.
	s := synthScene{
		Background: synthBackground{Colour: 0, Texture: synthStriped},
		Objects: []synthObject{
			{Shape: synthCircle, Colour: 0, Row: 0, Col: 0, X: 0.17, Y: 0.17, Radius: 0.075},
			{Shape: synthSquare, Colour: 2, Large: true, Row: 1, Col: 1, X: 0.5, Y: 0.5, Radius: 0.135},
		},
	}
	for _, tc := range []struct {
		caption string
		ok      bool
	}{
		{"A small red circle above and to the left of a big blue square.", true},
		{"A red circle in the top left corner and a blue square in the middle of the image.", true},
		{"Two shapes: a blue square below and to the right of a red disc.", true},
		{"The blue square is larger than the red circle.", true},
		{"A circle and a square on a striped grey background.", true},
		{"There are two shapes, a red circle and a blue square.", true},
		{"The circle at the top left is red.", true},
		{"A red shape above and to the left of a blue shape.", true},
		{"A large red circle above and to the left of a blue square.", false}, // size
		{"A small green circle in the top left corner.", false},               // colour
		{"A small red star in the top left corner.", false},                   // shape
		{"A red circle at the top right.", false},                             // position
		{"A red circle to the left of a blue square.", false},                 // not the same row
		{"A red circle above a blue square.", false},                          // not the same column
		{"A red circle below and to the left of a blue square.", false},       // above, not below
		{"A red circle next to a blue square.", false},                        // diagonal, not neighbours
		{"The red circle is larger than the blue square.", false},             // the other way round
		{"Three shapes: a red circle and a blue square.", false},              // count
		{"Two circles on a striped grey background.", false},                  // count
		{"A circle and a square on a dotted grey background.", false},         // texture
		{"A circle and a square on a striped white background.", false},       // background colour
		{"A circle and a square on a grey background.", false},                // plain, but striped
		{"The circle at the top left is blue.", false},                        // colour
		{"A red circle and a purple thing.", false},                           // stray colour
	} {
		err := checkSynthCaption(&s, tc.caption)
		if (err == nil) != tc.ok {
			t.Errorf("checkSynthCaption(%q) = %v, want ok=%v", tc.caption, err, tc.ok)
		}
	}
}

// TestSynthCaptionsTruthful checks the captions of many scenes, and that
// each caption turns false when one fact in it is changed: a position or
// relation word swapped for its opposite, a count changed, or a colour or
// shape replaced by one the scene lacks.
func TestSynthCaptionsTruthful(t *testing.T) {
	swaps := map[string]string{
		"left": "right", "right": "left", "top": "bottom", "bottom": "top",
		"above": "below", "below": "above", "over": "under", "under": "over", "beneath": "above",
		"two": "three", "three": "two", "larger": "smaller", "bigger": "smaller",
	}
	mutated := 0
	for i := range 3000 {
		rng := synthImageRNG(11, i)
		s := newSynthScene(rng)
		captions := synthCaptions(&s, rng)
		if len(captions) != synthCaptionsPerImage || len(slices.Compact(slices.Sorted(slices.Values(captions)))) != len(captions) {
			t.Fatalf("scene %d: captions %q, want %d different ones", i, captions, synthCaptionsPerImage)
		}
		absent := ""
		for _, c := range synthObjectColours {
			if !slices.ContainsFunc(s.Objects, func(o synthObject) bool { return synthObjectColours[o.Colour].name == c.name }) {
				absent = c.name
			}
		}
		for _, caption := range captions {
			if err := checkSynthCaption(&s, caption); err != nil {
				t.Fatalf("scene %d %+v: caption %q: %v", i, s, caption, err)
			}
			words := strings.Fields(caption)
			for k, w := range words {
				bare := strings.ToLower(strings.Trim(w, ".,:;"))
				to, ok := swaps[bare]
				if !ok && slices.Contains(synthTestColours[:8], bare) && (k+1 == len(words) || strings.Trim(words[k+1], ".,:;") != "background") {
					to, ok = absent, true
				}
				if _, isShape := synthTestShapes[bare]; !ok && isShape {
					for name, shape := range synthTestShapes {
						if !slices.ContainsFunc(s.Objects, func(o synthObject) bool { return o.Shape == shape }) {
							to, ok = name, true
							break
						}
					}
				}
				if !ok {
					continue
				}
				changed := slices.Clone(words)
				changed[k] = strings.Replace(strings.ToLower(w), bare, to, 1)
				wrong := strings.Join(changed, " ")
				if checkSynthCaption(&s, wrong) == nil {
					t.Fatalf("scene %d %+v: %q passes, changed from %q", i, s, wrong, caption)
				}
				mutated++
			}
		}
	}
	t.Logf("%d changed captions rejected", mutated)
}

// TestSynthRelationWords pins the relation wording for pairs of cells (hand
// written).
func TestSynthRelationWords(t *testing.T) {
	object := func(row, col int) synthObject {
		return synthObject{Row: row, Col: col, X: synthCellCentres[col], Y: synthCellCentres[row], Radius: 0.075}
	}
	for _, tc := range []struct {
		a, b [2]int // row, col
		want []string
	}{
		{[2]int{1, 0}, [2]int{1, 1}, []string{"to the left of", "left of", "next to", "beside"}},
		{[2]int{1, 0}, [2]int{1, 2}, []string{"to the left of", "left of"}},
		{[2]int{2, 2}, [2]int{2, 0}, []string{"to the right of", "right of"}},
		{[2]int{0, 1}, [2]int{2, 1}, []string{"above", "over"}},
		{[2]int{2, 1}, [2]int{1, 1}, []string{"below", "under", "beneath", "next to", "beside"}},
		{[2]int{0, 0}, [2]int{1, 1}, []string{"above and to the left of"}},
		{[2]int{2, 0}, [2]int{0, 2}, []string{"below and to the left of"}},
		{[2]int{1, 2}, [2]int{0, 0}, []string{"below and to the right of"}},
	} {
		a, b := object(tc.a[0], tc.a[1]), object(tc.b[0], tc.b[1])
		w := &synthWriter{s: &synthScene{}, rng: synthImageRNG(1, 0)}
		seen := map[string]bool{}
		for range 200 {
			seen[w.relation(&a, &b)] = true
		}
		var got []string
		for r := range seen {
			got = append(got, r)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("cell %v relative to %v: %q, want %q", tc.a, tc.b, got, want)
		}
	}
}

// synthContentWords are a caption's words less the filler.
func synthContentWords(caption string) map[string]bool {
	words := map[string]bool{}
	for _, w := range synthTokens(caption) {
		if !synthTestFiller[w] && !synthTestGeneric[w] && w != "shape" {
			words[w] = true
		}
	}
	return words
}

func synthJaccard(a, b map[string]bool) float64 {
	inter := 0
	for w := range a {
		if b[w] {
			inter++
		}
	}
	union := len(a) + len(b) - inter
	if union == 0 {
		return 1
	}
	return float64(inter) / float64(union)
}

// TestSynthCaptionVariety checks that captions tell images apart: captions
// of different images share few content words, captions of one image share
// many, and every image's colours and shapes are named by most of its
// captions.
func TestSynthCaptionVariety(t *testing.T) {
	const n = 1000
	captions := make([][]string, n)
	scenes := make([]synthScene, n)
	for i := range n {
		rng := synthImageRNG(5, i)
		scenes[i] = newSynthScene(rng)
		captions[i] = synthCaptions(&scenes[i], rng)
	}
	var within, between float64
	var nWithin, nBetween int
	for i := range n {
		for k := range synthCaptionsPerImage {
			a := synthContentWords(captions[i][k])
			for l := k + 1; l < synthCaptionsPerImage; l++ {
				within += synthJaccard(a, synthContentWords(captions[i][l]))
				nWithin++
			}
			// Image i against image i+1 (scenes are independent draws).
			between += synthJaccard(a, synthContentWords(captions[(i+1)%n][k]))
			nBetween++
		}
	}
	within /= float64(nWithin)
	between /= float64(nBetween)
	t.Logf("mean content-word Jaccard: %.3f within an image, %.3f between images", within, between)
	if between > 0.15 || within < 3*between {
		t.Errorf("mean content-word Jaccard %.3f within an image, %.3f between images: want between ≤ 0.15 and within ≥ 3× between", within, between)
	}

	// Every object's colour is named in at least two of its image's five
	// captions, and so is its shape (any synonym, any number).
	for i, s := range scenes {
		for _, o := range s.Objects {
			colour := synthObjectColours[o.Colour].name
			var byColour, byShape int
			for _, c := range captions[i] {
				words := synthTokens(c)
				if slices.Contains(words, colour) {
					byColour++
				}
				if slices.ContainsFunc(words, func(w string) bool {
					sh, ok := synthTestShapes[w]
					if !ok {
						sh, ok = synthTestPlurals[w]
					}
					return ok && sh == o.Shape
				}) {
					byShape++
				}
			}
			if byColour < 2 || byShape < 2 {
				t.Errorf("scene %d: %s %s named by colour in %d and by shape in %d of %q", i, colour, synthShapeWords[o.Shape].singular[0], byColour, byShape, captions[i])
			}
		}
	}
}

func BenchmarkSynth(b *testing.B) {
	for _, size := range []int{224} {
		b.Run(fmt.Sprintf("images=100/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			cfg := SynthConfig{Out: b.TempDir(), Images: 100, Seed: 1, Size: size}
			for b.Loop() {
				synthRun(b, cfg)
			}
		})
	}
}

// BenchmarkSynthDraw is the CPU part of Synth for one image: scene,
// captions, drawing and PNG encoding, without the disk.
func BenchmarkSynthDraw(b *testing.B) {
	for _, size := range []int{64, 224} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			cfg := SynthConfig{Images: 100, Seed: 1, Size: size}
			img := image.NewRGBA(image.Rect(0, 0, size, size))
			encoder := &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &synthBufferPool{}}
			var buf bytes.Buffer
			i := 0
			for b.Loop() {
				buf.Reset()
				if _, err := synthDrawOne(cfg, i%cfg.Images, img, encoder, &buf); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
