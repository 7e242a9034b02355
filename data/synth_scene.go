package data

import (
	"math"
	"math/rand/v2"
	"slices"
)

// A synthetic scene is laid out on a 3×3 grid: every object sits in its own
// cell, near the cell's centre. Its position words ("in the top left
// corner", "above", "to the left of") follow from the cells, so they are
// never borderline, and the cell spacing keeps objects apart: the centres of
// two neighbouring cells are synthCellGap apart, two large objects need at
// most 2·synthLargeMax plus the jitter on both sides, which leaves a gap.
// All lengths are fractions of the image side, so a scene renders alike at
// any --size.
const (
	synthJitter   = 0.02 // how far a centre may move from its cell's centre
	synthSmallMin = 0.070
	synthSmallMax = 0.080
	synthLargeMin = 0.130
	synthLargeMax = 0.140
	synthCellGap  = 0.33
)

// synthCellCentres are the cell centres along either axis.
var synthCellCentres = [3]float64{0.5 - synthCellGap, 0.5, 0.5 + synthCellGap}

// synthShape is the kind of an object.
type synthShape int

const (
	synthCircle synthShape = iota
	synthSquare
	synthTriangle
	synthStar
	synthDiamond
	synthCross
	synthRing
	synthNumShapes
)

// synthShapeWords names each shape: singular forms (the first is the plain
// name) and the matching plurals.
var synthShapeWords = [synthNumShapes]struct{ singular, plural []string }{
	synthCircle:   {[]string{"circle", "disc"}, []string{"circles", "discs"}},
	synthSquare:   {[]string{"square"}, []string{"squares"}},
	synthTriangle: {[]string{"triangle"}, []string{"triangles"}},
	synthStar:     {[]string{"star"}, []string{"stars"}},
	synthDiamond:  {[]string{"diamond", "rhombus"}, []string{"diamonds", "rhombuses"}},
	synthCross:    {[]string{"cross"}, []string{"crosses"}},
	synthRing:     {[]string{"ring"}, []string{"rings"}},
}

// synthColour is an object colour: its name and sRGB value.
type synthColour struct {
	name string
	rgb  [3]uint8
}

// synthObjectColours are far apart in hue or lightness, so that each stays
// recognisable after the ±synthTint jitter.
var synthObjectColours = []synthColour{
	{"red", [3]uint8{215, 35, 35}},
	{"green", [3]uint8{35, 165, 55}},
	{"blue", [3]uint8{35, 80, 225}},
	{"yellow", [3]uint8{245, 215, 35}},
	{"purple", [3]uint8{140, 55, 185}},
	{"orange", [3]uint8{250, 135, 20}},
	{"white", [3]uint8{248, 248, 248}},
	{"black", [3]uint8{15, 15, 15}},
}

// synthTint is the largest per-channel change to an object's colour.
const synthTint = 10

// synthBackgroundColour is a background colour: its name, its base value,
// the second shade its textures use, and the object colours that would not
// stand out on it.
type synthBackgroundColour struct {
	name        string
	base, shade [3]uint8
	excluded    []string
}

var synthBackgroundColours = []synthBackgroundColour{
	{"grey", [3]uint8{128, 128, 128}, [3]uint8{155, 155, 155}, nil},
	{"black", [3]uint8{28, 28, 28}, [3]uint8{58, 58, 58}, []string{"black"}},
	{"white", [3]uint8{235, 235, 235}, [3]uint8{200, 200, 200}, []string{"white", "yellow"}},
}

// synthTexture is how the background is filled.
type synthTexture int

const (
	synthPlain    synthTexture = iota
	synthStriped               // bands of base and shade
	synthChecked               // a checkerboard of base and shade
	synthDotted                // shade dots on a regular grid
	synthSpeckled              // shade specks at random places
	synthShaded                // a linear gradient from base to shade
	synthNumTextures
)

// synthTextureWords are the adjectives for each texture; "" (plain only)
// means the caption may leave the texture out.
var synthTextureWords = [synthNumTextures][]string{
	synthPlain:    {"plain", ""},
	synthStriped:  {"striped"},
	synthChecked:  {"checkered", "chequered"},
	synthDotted:   {"dotted", "spotted"},
	synthSpeckled: {"speckled"},
	synthShaded:   {"shaded"},
}

// synthObject is one shape in a scene.
type synthObject struct {
	Shape  synthShape
	Colour int // index into synthObjectColours
	Large  bool
	Row    int     // grid cell: 0 top … 2 bottom
	Col    int     // grid cell: 0 left … 2 right
	X, Y   float64 // centre, from the top left corner
	Radius float64 // of the circle the shape fits in
	Angle  float64 // rotation in radians (0 for circles and rings)
	Tint   [3]int8 // per-channel change to the colour
}

// synthBackground is a scene's background.
type synthBackground struct {
	Colour  int // index into synthBackgroundColours
	Texture synthTexture
	Period  float64 // stripe, check or dot spacing
	Angle   float64 // stripe or gradient direction, radians
	Seed    uint64  // speckle positions
}

// synthScene is everything an image shows, and all its captions describe.
type synthScene struct {
	Background synthBackground
	Objects    []synthObject
}

// newSynthScene draws a scene: one to three objects (30/40/30 %) in distinct
// cells, each with a distinct (shape, colour) pair so that a caption naming
// colour and shape picks out one object.
func newSynthScene(rng *rand.Rand) synthScene {
	var s synthScene
	bg := &s.Background
	bg.Colour = rng.IntN(len(synthBackgroundColours))
	bg.Texture = synthTexture(rng.IntN(int(synthNumTextures)))
	bg.Period = 0.04 + 0.05*rng.Float64()
	bg.Angle = rng.Float64() * 2 * math.Pi
	if bg.Texture == synthStriped {
		bg.Angle = float64(rng.IntN(4)) * math.Pi / 4 // horizontal, vertical or diagonal
	}
	bg.Seed = rng.Uint64()

	var allowed []int
	for i, c := range synthObjectColours {
		if !slices.Contains(synthBackgroundColours[bg.Colour].excluded, c.name) {
			allowed = append(allowed, i)
		}
	}

	n := 1
	switch r := rng.IntN(10); {
	case r >= 7:
		n = 3
	case r >= 3:
		n = 2
	}
	cells := rng.Perm(9)[:n]
	for _, cell := range cells {
		var o synthObject
		for {
			o.Shape = synthShape(rng.IntN(int(synthNumShapes)))
			o.Colour = allowed[rng.IntN(len(allowed))]
			if !s.has(o.Shape, o.Colour) {
				break
			}
		}
		o.Large = rng.IntN(2) == 0
		o.Row, o.Col = cell/3, cell%3
		o.X = synthCellCentres[o.Col] + synthJitter*(2*rng.Float64()-1)
		o.Y = synthCellCentres[o.Row] + synthJitter*(2*rng.Float64()-1)
		if o.Large {
			o.Radius = synthLargeMin + (synthLargeMax-synthLargeMin)*rng.Float64()
		} else {
			o.Radius = synthSmallMin + (synthSmallMax-synthSmallMin)*rng.Float64()
		}
		if o.Shape != synthCircle && o.Shape != synthRing {
			o.Angle = (2*rng.Float64() - 1) * math.Pi / 12 // ±15°: a square stays a square
		}
		for c := range o.Tint {
			o.Tint[c] = int8(rng.IntN(2*synthTint+1) - synthTint)
		}
		s.Objects = append(s.Objects, o)
	}
	return s
}

func (s *synthScene) has(shape synthShape, colour int) bool {
	for _, o := range s.Objects {
		if o.Shape == shape && o.Colour == colour {
			return true
		}
	}
	return false
}
