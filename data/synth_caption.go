package data

import (
	"math/rand/v2"
	"strings"
	"unicode"
)

// synthCaptionsPerImage is how many captions each synthetic image gets, as
// in COCO and Flickr.
const synthCaptionsPerImage = 5

// synthCaptions returns synthCaptionsPerImage different captions of s, from
// different templates, each true of the image: every colour, shape, size,
// count, texture, position and relation it names is the scene's. Positions
// come from the objects' grid cells, relations from their centres.
func synthCaptions(s *synthScene, rng *rand.Rand) []string {
	w := &synthWriter{s: s, rng: rng}
	var pool []func() string
	switch len(s.Objects) {
	case 1:
		pool = w.oneObject()
	case 2:
		pool = w.twoObjects()
	default:
		pool = w.threeObjects()
	}
	// The templates differ in their fixed words, so five distinct templates
	// give five distinct captions.
	captions := make([]string, synthCaptionsPerImage)
	for i, k := range rng.Perm(len(pool))[:synthCaptionsPerImage] {
		captions[i] = synthSentence(pool[k]())
	}
	return captions
}

// synthWriter builds phrases about one scene, choosing among synonyms with
// rng.
type synthWriter struct {
	s   *synthScene
	rng *rand.Rand
}

func (w *synthWriter) oneObject() []func() string {
	o := &w.s.Objects[0]
	return []func() string{
		func() string { return synthA(w.np(o, w.maybe())) + " " + w.pos(o) },
		func() string {
			return "there is " + w.pick("one", "a single") + " " + w.np(o, false) + " " + w.pos(o)
		},
		func() string { return synthA(w.np(o, true)) + " on " + synthA(w.background()) },
		func() string {
			return synthA(w.background()) + " with " + synthA(w.np(o, w.maybe())) + " " + w.pos(o)
		},
		func() string { return "only one " + w.pick("shape", "object") + ": " + synthA(w.np(o, true)) },
		func() string { return "the " + w.shape(o) + " " + w.pos(o) + " is " + w.colour(o) },
		func() string {
			return synthA(w.pick("picture", "image")) + " of " + synthA(w.np(o, true)) + " on " + synthA(w.background())
		},
	}
}

func (w *synthWriter) twoObjects() []func() string {
	objs := w.s.Objects
	// pair returns the two objects in a random order, so that captions do
	// not always name the first-drawn object first.
	pair := func() (*synthObject, *synthObject) {
		if w.rng.IntN(2) == 0 {
			return &objs[0], &objs[1]
		}
		return &objs[1], &objs[0]
	}
	return []func() string{
		func() string {
			a, b := pair()
			return synthA(w.np(a, w.maybe())) + " " + w.relation(a, b) + " " + synthA(w.np(b, w.maybe()))
		},
		func() string {
			a, b := pair()
			return "two " + w.pick("shapes", "objects") + ": " + synthA(w.np(a, true)) + " " + w.relation(a, b) + " " + synthA(w.np(b, true))
		},
		func() string {
			if w.maybe() {
				return w.shapeCounts() + " on " + synthA(w.background())
			}
			a, b := pair()
			return synthA(w.np(a, false)) + " and " + synthA(w.np(b, false)) + " on " + synthA(w.background())
		},
		func() string {
			a, b := pair()
			return "there are two shapes, " + synthA(w.np(a, false)) + " and " + synthA(w.np(b, false))
		},
		func() string {
			a, b := pair()
			return synthA(w.np(a, w.maybe())) + " " + w.pos(a) + " and " + synthA(w.np(b, w.maybe())) + " " + w.pos(b)
		},
		func() string {
			a, b := pair()
			if a.Large == b.Large {
				return "two " + w.size(a) + " shapes: " + synthA(w.np(a, false)) + " and " + synthA(w.np(b, false))
			}
			if !a.Large {
				a, b = b, a
			}
			return "the " + w.np(a, false) + " is " + w.pick("larger", "bigger") + " than the " + w.np(b, false)
		},
		func() string {
			a, b := pair()
			return synthA(w.background()) + " with " + synthA(w.np(a, w.maybe())) + " and " + synthA(w.np(b, w.maybe()))
		},
		func() string {
			a, b := pair()
			if a.Colour == b.Colour {
				return "two " + w.colour(a) + " shapes: " + synthA(w.shape(a)) + " and " + synthA(w.shape(b))
			}
			return synthA(w.colour(a)) + " shape " + w.relation(a, b) + " " + synthA(w.colour(b)) + " shape"
		},
	}
}

func (w *synthWriter) threeObjects() []func() string {
	objs := w.s.Objects
	// order returns the objects in a random order.
	order := func() []*synthObject {
		out := make([]*synthObject, len(objs))
		for i, k := range w.rng.Perm(len(objs)) {
			out[i] = &objs[k]
		}
		return out
	}
	return []func() string{
		func() string {
			var parts []string
			for _, o := range order() {
				parts = append(parts, synthA(w.np(o, w.maybe())))
			}
			return w.pick("three shapes: ", "there are three shapes: ") + synthList(parts)
		},
		func() string { return w.shapeCounts() + " on " + synthA(w.background()) },
		func() string {
			o := order()
			return synthA(w.np(o[0], w.maybe())) + " " + w.relation(o[0], o[1]) + " " + synthA(w.np(o[1], w.maybe())) +
				", and " + synthA(w.np(o[2], w.maybe())) + " " + w.pos(o[2])
		},
		func() string {
			var parts []string
			for _, o := range order() {
				parts = append(parts, synthA(w.np(o, w.maybe()))+" "+w.pos(o))
			}
			return synthList(parts)
		},
		func() string {
			o := order()
			return "three shapes, with the " + w.np(o[0], false) + " " + w.pos(o[0]) + " and the " + w.np(o[1], false) + " " + w.pos(o[1])
		},
		func() string {
			if w.maybe() {
				return w.colourCounts() + " on " + synthA(w.background())
			}
			return w.colourCounts()
		},
		func() string {
			o := order()
			return synthA(w.background()) + " with three shapes, including " + synthA(w.np(o[0], true)) + " and " + synthA(w.np(o[1], w.maybe()))
		},
		func() string {
			var large, small []*synthObject
			for _, o := range order() {
				if o.Large {
					large = append(large, o)
				} else {
					small = append(small, o)
				}
			}
			if len(large) == 1 || len(small) == 1 {
				odd, others := large, small
				if len(small) == 1 {
					odd, others = small, large
				}
				return "the only " + w.size(odd[0]) + " shape is " + synthA(w.np(odd[0], false)) +
					"; the others are " + synthA(w.np(others[0], false)) + " and " + synthA(w.np(others[1], false))
			}
			var parts []string
			for _, o := range order() {
				parts = append(parts, synthA(w.np(o, false)))
			}
			return "three " + w.size(&objs[0]) + " shapes: " + synthList(parts)
		},
	}
}

func (w *synthWriter) pick(options ...string) string { return options[w.rng.IntN(len(options))] }

func (w *synthWriter) maybe() bool { return w.rng.IntN(2) == 0 }

func (w *synthWriter) size(o *synthObject) string {
	if o.Large {
		return w.pick("large", "big")
	}
	return w.pick("small", "little")
}

func (w *synthWriter) colour(o *synthObject) string { return synthObjectColours[o.Colour].name }

func (w *synthWriter) shape(o *synthObject) string {
	return w.pick(synthShapeWords[o.Shape].singular...)
}

// np is a noun phrase without article: "small red circle", or "red circle"
// without the size.
func (w *synthWriter) np(o *synthObject, withSize bool) string {
	if withSize {
		return w.size(o) + " " + w.colour(o) + " " + w.shape(o)
	}
	return w.colour(o) + " " + w.shape(o)
}

// background is "striped grey background", or "grey background" when plain.
func (w *synthWriter) background() string {
	bg := w.s.Background
	texture := w.pick(synthTextureWords[bg.Texture]...)
	colour := synthBackgroundColours[bg.Colour].name
	if texture == "" {
		return colour + " background"
	}
	return texture + " " + colour + " background"
}

// pos says where o is in the image, from its grid cell.
func (w *synthWriter) pos(o *synthObject) string {
	var p string
	vert := [3]string{"top", "", "bottom"}[o.Row]
	horiz := [3]string{"left", "", "right"}[o.Col]
	switch {
	case vert != "" && horiz != "":
		if w.maybe() {
			p = "in the " + vert + " " + horiz + " corner"
		} else {
			p = "at the " + vert + " " + horiz
		}
	case vert != "":
		p = "at the " + vert
	case horiz != "":
		p = w.pick("on the ", "at the ") + horiz + w.pick("", " side")
	default:
		p = "in the " + w.pick("centre", "middle")
	}
	if w.rng.IntN(4) == 0 {
		p += " of the " + w.pick("image", "picture")
	}
	return p
}

// synthRelationGap separates "same row/column" from "different row/column":
// centres in one row differ by at most 2·synthJitter, in different rows by
// at least synthCellGap − 2·synthJitter.
const synthRelationGap = 0.15

// relation says where a is relative to b: "to the left of", "above",
// "below and to the right of", or "next to" for neighbouring cells.
func (w *synthWriter) relation(a, b *synthObject) string {
	dx, dy := a.X-b.X, a.Y-b.Y
	var horiz, vert string
	if dx < -synthRelationGap {
		horiz = "left"
	} else if dx > synthRelationGap {
		horiz = "right"
	}
	if dy < -synthRelationGap {
		vert = "above"
	} else if dy > synthRelationGap {
		vert = "below"
	}
	neighbours := synthAbs(a.Row-b.Row)+synthAbs(a.Col-b.Col) == 1
	if neighbours && w.rng.IntN(4) == 0 {
		return w.pick("next to", "beside")
	}
	switch {
	case horiz == "" && vert == "above":
		return w.pick("above", "over")
	case horiz == "":
		return w.pick("below", "under", "beneath")
	case vert == "":
		return w.pick("to the ", "") + horiz + " of"
	default:
		return vert + " and to the " + horiz + " of"
	}
}

func synthAbs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// shapeCounts counts the objects by shape: "two circles and a square".
func (w *synthWriter) shapeCounts() string {
	var groups []string
	counted := make([]bool, len(w.s.Objects))
	for i, o := range w.s.Objects {
		if counted[i] {
			continue
		}
		n := 0
		for j, p := range w.s.Objects {
			if p.Shape == o.Shape {
				counted[j] = true
				n++
			}
		}
		groups = append(groups, w.count(n, synthShapeWords[o.Shape].singular, synthShapeWords[o.Shape].plural))
	}
	return synthList(groups)
}

// colourCounts counts the objects by colour: "two red shapes and a blue
// shape".
func (w *synthWriter) colourCounts() string {
	var groups []string
	counted := make([]bool, len(w.s.Objects))
	for i, o := range w.s.Objects {
		if counted[i] {
			continue
		}
		n := 0
		for j, p := range w.s.Objects {
			if p.Colour == o.Colour {
				counted[j] = true
				n++
			}
		}
		name := synthObjectColours[o.Colour].name
		groups = append(groups, w.count(n, []string{name + " shape"}, []string{name + " shapes"}))
	}
	return synthList(groups)
}

// count is "a circle", "two circles" or "three circles", choosing among
// synonyms (singular[i] and plural[i] correspond).
func (w *synthWriter) count(n int, singular, plural []string) string {
	k := w.rng.IntN(len(singular))
	switch n {
	case 1:
		return synthA(singular[k])
	case 2:
		return "two " + plural[k]
	default:
		return "three " + plural[k]
	}
}

// synthA puts "a" or "an" before phrase.
func synthA(phrase string) string {
	if phrase != "" && strings.ContainsRune("aeiou", rune(phrase[0])) {
		return "an " + phrase
	}
	return "a " + phrase
}

// synthList joins items as "x", "x and y" or "x, y and z".
func synthList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// synthSentence capitalises s and ends it with a full stop.
func synthSentence(s string) string {
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r) + "."
}

// synthTokens splits a caption as Karpathy's files do: lower-case words,
// punctuation dropped.
func synthTokens(raw string) []string {
	return strings.FieldsFunc(strings.ToLower(raw), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
