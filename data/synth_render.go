package data

import (
	"image"
	"math"
	"math/rand/v2"
)

// Shapes are drawn from signed distance functions: a pixel's coverage is
// clamp(0.5 − d, 0, 1) where d is the signed distance in pixels from the
// pixel's centre to the shape's edge (negative inside). That gives
// anti-aliased edges at one evaluation per pixel, at any --size.

// synthPoint is a point in an object's own frame: the unit circle the shape
// fits in, y pointing down.
type synthPoint struct{ x, y float64 }

// synthPolygons are the outlines of the polygonal shapes, each inside the
// unit circle so that an object never leaves its Radius.
var synthPolygons = [synthNumShapes][]synthPoint{
	synthSquare:   synthRegular(4, 0.7*math.Sqrt2, 0.7*math.Sqrt2, math.Pi/4),
	synthTriangle: synthRegular(3, 1, 1, -math.Pi/2),
	synthStar:     synthRegular(5, 1, 0.42, -math.Pi/2),
	synthDiamond:  {{0, -1}, {0.68, 0}, {0, 1}, {-0.68, 0}},
	synthCross: {
		{-0.3, -0.95}, {0.3, -0.95}, {0.3, -0.3}, {0.95, -0.3}, {0.95, 0.3}, {0.3, 0.3},
		{0.3, 0.95}, {-0.3, 0.95}, {-0.3, 0.3}, {-0.95, 0.3}, {-0.95, -0.3}, {-0.3, -0.3},
	},
}

// synthRegular returns a regular polygon with n corners at radius outer,
// first at angle start, and, when inner differs from outer, n more corners
// at radius inner halfway between them (a star).
func synthRegular(n int, outer, inner, start float64) []synthPoint {
	var pts []synthPoint
	for i := range n {
		a := start + 2*math.Pi*float64(i)/float64(n)
		pts = append(pts, synthPoint{outer * math.Cos(a), outer * math.Sin(a)})
		if inner != outer {
			a += math.Pi / float64(n)
			pts = append(pts, synthPoint{inner * math.Cos(a), inner * math.Sin(a)})
		}
	}
	return pts
}

// synthShapeDistance is the signed distance from p to the edge of shape, in
// the object's frame.
func synthShapeDistance(shape synthShape, p synthPoint) float64 {
	switch shape {
	case synthCircle:
		return math.Hypot(p.x, p.y) - 0.9
	case synthRing:
		return math.Abs(math.Hypot(p.x, p.y)-0.74) - 0.17
	default:
		return synthPolygonDistance(p, synthPolygons[shape])
	}
}

// synthPolygonDistance is the signed distance from p to a simple polygon:
// the distance to the nearest edge, negative when p is inside (crossing
// number). After Inigo Quilez, "2D distance functions".
func synthPolygonDistance(p synthPoint, v []synthPoint) float64 {
	d := (p.x-v[0].x)*(p.x-v[0].x) + (p.y-v[0].y)*(p.y-v[0].y)
	sign := 1.0
	for i, j := 0, len(v)-1; i < len(v); j, i = i, i+1 {
		ex, ey := v[j].x-v[i].x, v[j].y-v[i].y
		wx, wy := p.x-v[i].x, p.y-v[i].y
		t := min(max((wx*ex+wy*ey)/(ex*ex+ey*ey), 0), 1)
		bx, by := wx-ex*t, wy-ey*t
		d = min(d, bx*bx+by*by)
		above, below, left := p.y >= v[i].y, p.y < v[j].y, ex*wy > ey*wx
		if (above && below && left) || (!above && !below && !left) {
			sign = -sign
		}
	}
	return sign * math.Sqrt(d)
}

// renderSynthScene draws s over the whole of img, which must be square.
func renderSynthScene(img *image.RGBA, s *synthScene) {
	drawSynthBackground(img, &s.Background)
	for i := range s.Objects {
		drawSynthObject(img, &s.Objects[i])
	}
}

func drawSynthBackground(img *image.RGBA, bg *synthBackground) {
	size := img.Rect.Dx()
	n := float64(size)
	colours := synthBackgroundColours[bg.Colour]
	base, shade := colours.base, colours.shade
	period := bg.Period * n
	cos, sin := math.Cos(bg.Angle), math.Sin(bg.Angle)
	check := max(2, int(math.Round(period)))
	// shades[k] is base blended k/255 of the way to shade.
	var shades [256][4]uint8
	for k := range shades {
		synthSet(shades[k][:], base, shade, float64(k)/255)
	}
	for y := range size {
		row := img.Pix[y*img.Stride : y*img.Stride+4*size]
		py := float64(y) + 0.5
		for x := range size {
			px := float64(x) + 0.5
			var a float64 // how much of shade
			switch bg.Texture {
			case synthStriped:
				// Bands half a period wide, shade where u ∈ [0.5, 1).
				u := px*cos + py*sin
				u = u/period - math.Floor(u/period)
				var d float64 // signed distance to the shade band, pixels
				if u >= 0.5 {
					d = -min(u-0.5, 1-u) * period
				} else {
					d = min(0.5-u, u) * period
				}
				a = min(max(0.5-d, 0), 1)
			case synthChecked:
				if (x/check+y/check)%2 == 1 {
					a = 1
				}
			case synthDotted:
				step := 1.4 * period
				dx := px - (math.Floor(px/step)+0.5)*step
				dy := py - (math.Floor(py/step)+0.5)*step
				d := math.Hypot(dx, dy) - 0.2*step
				a = min(max(0.5-d, 0), 1)
			case synthShaded:
				u := (px/n-0.5)*cos + (py/n-0.5)*sin
				a = u/(math.Abs(cos)+math.Abs(sin)) + 0.5
			}
			copy(row[4*x:4*x+4], shades[int(a*255+0.5)][:])
		}
	}
	if bg.Texture == synthSpeckled {
		rng := rand.New(rand.NewPCG(bg.Seed, 0x5eed))
		side := max(1, int(math.Round(n/150)))
		for range size * size / 60 {
			x0, y0 := rng.IntN(size-side+1), rng.IntN(size-side+1)
			for y := y0; y < y0+side; y++ {
				for x := x0; x < x0+side; x++ {
					off := y*img.Stride + 4*x
					synthSet(img.Pix[off:off+4], base, shade, 1)
				}
			}
		}
	}
}

// synthSet sets pixel p to (1−a)·from + a·to, opaque.
func synthSet(p []uint8, from, to [3]uint8, a float64) {
	for c := range 3 {
		p[c] = uint8(float64(from[c]) + a*(float64(to[c])-float64(from[c])) + 0.5)
	}
	p[3] = 255
}

func drawSynthObject(img *image.RGBA, o *synthObject) {
	size := img.Rect.Dx()
	n := float64(size)
	cx, cy, r := o.X*n, o.Y*n, o.Radius*n
	var colour [3]uint8
	for c := range colour {
		colour[c] = uint8(min(max(int(synthObjectColours[o.Colour].rgb[c])+int(o.Tint[c]), 0), 255))
	}
	cos, sin := math.Cos(-o.Angle), math.Sin(-o.Angle)
	x0, x1 := max(0, int(cx-r-1)), min(size, int(cx+r+2))
	y0, y1 := max(0, int(cy-r-1)), min(size, int(cy+r+2))
	var pixel [3]uint8
	for y := y0; y < y1; y++ {
		dy := (float64(y) + 0.5 - cy) / r
		for x := x0; x < x1; x++ {
			dx := (float64(x) + 0.5 - cx) / r
			p := synthPoint{dx*cos - dy*sin, dx*sin + dy*cos}
			a := min(0.5-synthShapeDistance(o.Shape, p)*r, 1)
			if a <= 0 {
				continue
			}
			off := y*img.Stride + 4*x
			copy(pixel[:], img.Pix[off:off+3])
			synthSet(img.Pix[off:off+4], pixel, colour, a)
		}
	}
}
