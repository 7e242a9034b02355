package eval

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file is the fast path of ParseRefs and ParseResults: a small JSON
// scanner specialised to the two COCO shapes. It accepts only input it is
// sure about — strictly valid JSON of exactly the expected shape, with every
// field present once, spelled exactly, and of the right type — and then gives
// the same result as the encoding/json-based path in files.go. On anything
// else (syntax errors, wrong types, null, missing or repeated fields, keys
// that encoding/json would match case-insensitively, escaped or non-ASCII
// keys, ids that are not plain int64 integers or are -0, deep nesting,
// duplicate results, no annotations or results, repeated top-level sections,
// anything but whitespace after the value) it reports ok == false and the
// caller runs the precise path, which owns every error message.

// fastMaxDepth bounds the nesting of skipped values; deeper input goes to
// the precise path (encoding/json's own limit is 10000).
const fastMaxDepth = 200

// Byte classes inside a JSON string.
const (
	scPlain   = iota // printable ASCII other than '"' and '\\'
	scQuote          // '"'
	scEscape         // '\\'
	scControl        // < 0x20: not allowed in JSON strings
	scHigh           // ≥ 0x80: part of a (maybe invalid) UTF-8 sequence
)

var strClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '"':
			t[c] = scQuote
		case c == '\\':
			t[c] = scEscape
		case c < 0x20:
			t[c] = scControl
		case c >= utf8.RuneSelf:
			t[c] = scHigh
		}
	}
	return t
}()

// specialBytes flags (with its top bit) each byte of the little-endian word
// x that is not plain in a JSON string: '"', '\\', < 0x20 or ≥ 0x80. Borrows
// can flag a plain byte above a special one, never one below, so the lowest
// flag is exact.
func specialBytes(x uint64) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (lo * '"')
	backslash := x ^ (lo * '\\')
	return ((x - lo*0x20) | ((quote - lo) &^ quote) | ((backslash - lo) &^ backslash) | x) & hi
}

// stringArena hands out strings carved from a few large buffers, so that the
// thousands of captions of a file cost a handful of allocations. Bytes once
// written into a chunk are never moved or changed (a chunk is replaced, not
// grown, when it is full), so strings taken from it stay valid.
type stringArena struct {
	b     *strings.Builder
	chunk int
}

// reserve makes room for n more bytes in the current chunk.
func (a *stringArena) reserve(n int) {
	if a.b != nil && a.b.Cap()-a.b.Len() >= n {
		return
	}
	a.b = new(strings.Builder)
	a.b.Grow(max(n, a.chunk))
}

// copy returns raw as a string.
func (a *stringArena) copy(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	a.reserve(len(raw))
	start := a.b.Len()
	a.b.Write(raw)
	return a.b.String()[start:]
}

// decode returns the contents raw of a JSON string that scanString has
// checked, unescaped and with invalid UTF-8 replaced exactly as
// encoding/json does (its unquoteBytes).
func (a *stringArena) decode(raw []byte) string {
	// Each input byte gives at most 3 output bytes (an invalid byte becomes
	// U+FFFD); escapes shrink.
	a.reserve(3 * len(raw))
	b := a.b
	start := b.Len()
	for r := 0; r < len(raw); {
		c := raw[r]
		switch {
		case c == '\\':
			switch raw[r+1] {
			case 'u':
				rr := getu4(raw[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := getu4(raw[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						b.WriteRune(dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				b.WriteRune(rr)
				continue
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			default: // '"', '\\', '/'
				b.WriteByte(raw[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			r += size
			b.WriteRune(rr)
		}
	}
	return b.String()[start:]
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

type fastScanner struct {
	data  []byte
	pos   int
	arena stringArena
	// src is data as a string sharing its memory, when data is owned (never
	// changed afterwards); strings without escapes are then cut from it.
	src string
}

func newFastScanner(data []byte, owned bool) *fastScanner {
	s := &fastScanner{data: data, arena: stringArena{chunk: min(max(len(data)/8, 512), 256<<10)}}
	if owned && len(data) > 0 {
		s.src = unsafe.String(&data[0], len(data))
		s.arena.chunk = 4 << 10 // only for strings with escapes or invalid UTF-8
	}
	return s
}

// next skips whitespace and returns the byte there, or 0 at the end.
func (s *fastScanner) next() byte {
	d := s.data
	for s.pos < len(d) {
		switch c := d[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// atEnd reports whether only whitespace is left.
func (s *fastScanner) atEnd() bool {
	s.next()
	return s.pos == len(s.data)
}

// scanString checks the JSON string whose opening quote is at s.pos and
// moves past it. Its contents are data[start:end]; escaped says whether
// they hold a backslash, high whether they hold a byte ≥ 0x80.
func (s *fastScanner) scanString() (start, end int, escaped, high, ok bool) {
	d := s.data
	i := s.pos + 1
	start = i
	for i < len(d) {
		// Skip eight plain bytes at a time.
		for i+8 <= len(d) {
			if m := specialBytes(binary.LittleEndian.Uint64(d[i:])); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(d) {
			break
		}
		switch strClass[d[i]] {
		case scPlain:
			i++
		case scQuote:
			s.pos = i + 1
			return start, i, escaped, high, true
		case scEscape:
			escaped = true
			if i+1 >= len(d) {
				return
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if getu4(d[i:]) < 0 {
					return
				}
				i += 6
			default:
				return
			}
		case scControl:
			return
		default:
			high = true
			i++
		}
	}
	return
}

// readString reads a JSON string value at s.pos.
func (s *fastScanner) readString() (string, bool) {
	if s.pos >= len(s.data) || s.data[s.pos] != '"' {
		return "", false
	}
	start, end, escaped, high, ok := s.scanString()
	if !ok {
		return "", false
	}
	raw := s.data[start:end]
	if !escaped && (!high || utf8.Valid(raw)) {
		if s.src != "" {
			return s.src[start:end], true
		}
		return s.arena.copy(raw), true
	}
	return s.arena.decode(raw), true
}

// readKey reads an object key and the colon after it. Keys with escapes or
// non-ASCII bytes are refused: encoding/json would unescape them and might
// fold them onto a field name.
func (s *fastScanner) readKey() ([]byte, bool) {
	if s.next() != '"' {
		return nil, false
	}
	start, end, escaped, high, ok := s.scanString()
	if !ok || escaped || high || s.next() != ':' {
		return nil, false
	}
	s.pos++
	s.next()
	return s.data[start:end], true
}

// Key classes.
const (
	keyOther = iota
	keyImageID
	keyCaption
	keyID
	keyAnnotations
	keyImages
	keyFolded // differs from one of the names above only by case
)

var knownKeys = [...]string{"image_id", "caption", "id", "annotations", "images"}

func classifyKey(key []byte) int {
	switch string(key) {
	case "image_id":
		return keyImageID
	case "caption":
		return keyCaption
	case "id":
		return keyID
	case "annotations":
		return keyAnnotations
	case "images":
		return keyImages
	}
	for _, name := range knownKeys {
		if bytes.EqualFold(key, []byte(name)) {
			return keyFolded
		}
	}
	return keyOther
}

// readInt reads a JSON number that encoding/json would store in an int64
// without question: an optional minus and at most 19 digits, no fraction or
// exponent, not -0, within range.
func (s *fastScanner) readInt() (int64, bool) {
	d := s.data
	i := s.pos
	neg := i < len(d) && d[i] == '-'
	if neg {
		i++
	}
	start := i
	var v uint64
	for i < len(d) && d[i]-'0' <= 9 {
		v = v*10 + uint64(d[i]-'0')
		i++
	}
	n := i - start
	if n == 0 || n > 19 || d[start] == '0' && (n > 1 || neg) {
		return 0, false
	}
	if i < len(d) && (d[i] == '.' || d[i] == 'e' || d[i] == 'E') {
		return 0, false
	}
	s.pos = i
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// skipValue checks and skips any JSON value at s.pos.
func (s *fastScanner) skipValue(depth int) bool {
	d := s.data
	if depth > fastMaxDepth || s.pos >= len(d) {
		return false
	}
	switch c := d[s.pos]; {
	case c == '"':
		_, _, _, _, ok := s.scanString()
		return ok
	case c == '{':
		s.pos++
		if s.next() == '}' {
			s.pos++
			return true
		}
		for {
			if s.next() != '"' {
				return false
			}
			if _, _, _, _, ok := s.scanString(); !ok || s.next() != ':' {
				return false
			}
			s.pos++
			s.next()
			if !s.skipValue(depth + 1) {
				return false
			}
			if done, ok := s.endOf('}'); done || !ok {
				return ok
			}
		}
	case c == '[':
		s.pos++
		if s.next() == ']' {
			s.pos++
			return true
		}
		for {
			s.next()
			if !s.skipValue(depth + 1) {
				return false
			}
			if done, ok := s.endOf(']'); done || !ok {
				return ok
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c-'0' <= 9:
		return s.skipNumber()
	}
	return false
}

func (s *fastScanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return false
	}
	s.pos += len(lit)
	return true
}

// skipNumber checks and skips a JSON number.
func (s *fastScanner) skipNumber() bool {
	d := s.data
	i := s.pos
	digits := func() int {
		j := i
		for i < len(d) && d[i]-'0' <= 9 {
			i++
		}
		return i - j
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	if i < len(d) && d[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	s.pos = i
	return true
}

// endOf reads the separator after an element of an object (close '}') or
// array (close ']'): done is true after the closing delimiter.
func (s *fastScanner) endOf(close byte) (done, ok bool) {
	switch s.next() {
	case ',':
		s.pos++
		return false, true
	case close:
		s.pos++
		return true, true
	}
	return false, false
}

// imageCaption reads an object {"image_id": …, "caption": "…"} with any
// other fields, the shape of both annotations and results.
func (s *fastScanner) imageCaption() (id int64, caption string, ok bool) {
	if s.next() != '{' {
		return
	}
	s.pos++
	haveID, haveCaption := false, false
	for {
		key, ok := s.readKey()
		if !ok {
			return 0, "", false
		}
		switch classifyKey(key) {
		case keyImageID:
			if haveID {
				return 0, "", false
			}
			haveID = true
			id, ok = s.readInt()
		case keyCaption:
			if haveCaption {
				return 0, "", false
			}
			haveCaption = true
			caption, ok = s.readString()
		case keyFolded:
			ok = false
		default:
			ok = s.skipValue(3)
		}
		if !ok {
			return 0, "", false
		}
		done, ok := s.endOf('}')
		if !ok {
			return 0, "", false
		}
		if done {
			return id, caption, haveID && haveCaption
		}
	}
}

// imageID reads an element {"id": …} of an "images" section.
func (s *fastScanner) imageID() (id int64, ok bool) {
	if s.next() != '{' {
		return
	}
	s.pos++
	haveID := false
	for {
		key, ok := s.readKey()
		if !ok {
			return 0, false
		}
		switch classifyKey(key) {
		case keyID:
			if haveID {
				return 0, false
			}
			haveID = true
			id, ok = s.readInt()
		case keyFolded:
			ok = false
		default:
			ok = s.skipValue(3)
		}
		if !ok {
			return 0, false
		}
		done, ok := s.endOf('}')
		if !ok {
			return 0, false
		}
		if done {
			return id, haveID
		}
	}
}

// array reads a JSON array, calling each for every element.
func (s *fastScanner) array(each func() bool) bool {
	if s.next() != '[' {
		return false
	}
	s.pos++
	if s.next() == ']' {
		s.pos++
		return true
	}
	for {
		if !each() {
			return false
		}
		done, ok := s.endOf(']')
		if !ok {
			return false
		}
		if done {
			return true
		}
	}
}

// estimate bounds how many objects data holds, to size slices and maps.
func estimate(data []byte) int {
	return bytes.Count(data, []byte{'{'}) + 1
}

// fastParseRefs is ParseRefs's fast path; ok is false when the input must
// go to the precise path. With owned, data is never changed afterwards and
// the captions may share its memory.
func fastParseRefs(file string, data []byte, owned bool) (refs *Refs, ok bool) {
	s := newFastScanner(data, owned)
	if s.next() != '{' {
		return nil, false
	}
	s.pos++
	var captions []string // in file order
	var runs []captionRun
	var listed []int64
	sawAnnotations := false
	for {
		key, ok := s.readKey()
		if !ok {
			return nil, false
		}
		switch classifyKey(key) {
		case keyAnnotations:
			if sawAnnotations {
				return nil, false
			}
			sawAnnotations = true
			captions = make([]string, 0, estimate(data))
			runs = make([]captionRun, 0, 256)
			ok = s.array(func() bool {
				id, caption, ok := s.imageCaption()
				captions = append(captions, caption)
				if last := len(runs) - 1; last >= 0 && runs[last].id == id {
					runs[last].end++
				} else {
					runs = appendDoubling(runs, captionRun{id, int32(len(captions))})
				}
				return ok
			})
		case keyImages:
			if listed != nil {
				return nil, false
			}
			listed = make([]int64, 0, 256)
			ok = s.array(func() bool {
				id, ok := s.imageID()
				listed = appendDoubling(listed, id)
				return ok
			})
		case keyFolded:
			ok = false
		default:
			ok = s.skipValue(2)
		}
		if !ok {
			return nil, false
		}
		done, ok := s.endOf('}')
		if !ok {
			return nil, false
		}
		if done {
			break
		}
	}
	if !s.atEnd() || len(captions) == 0 || len(captions) > math.MaxInt32 {
		return nil, false
	}
	return &Refs{File: file, Captions: groupCaptions(captions, runs), Listed: listed}, true
}

// appendDoubling is append, but doubling the capacity when it must grow
// (append grows large slices by less, allocating more in all).
func appendDoubling[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = append(make([]T, 0, 2*cap(s)+16), s...)
	}
	return append(s, v)
}

// A captionRun is a run of consecutive annotations of one image, ending
// before captions[end].
type captionRun struct {
	id  int64
	end int32
}

// groupCaptions collects the captions per image in file order. Where each
// image's annotations are consecutive, as in COCO's files, the per-image
// slices are carved from captions itself, else from a regrouped copy; they
// are capped, so that appending to one cannot overwrite the next.
func groupCaptions(captions []string, runs []captionRun) map[int64][]string {
	byImage := make(map[int64][]string, len(runs))
	start := int32(0)
	for _, r := range runs {
		if _, again := byImage[r.id]; again {
			return regroupCaptions(captions, runs, byImage)
		}
		byImage[r.id] = captions[start:r.end:r.end]
		start = r.end
	}
	return byImage
}

// regroupCaptions is groupCaptions where an image has several runs;
// byImage is cleared and reused.
func regroupCaptions(captions []string, runs []captionRun, byImage map[int64][]string) map[int64][]string {
	clear(byImage)
	// Count the captions of each image, then lay the images out one after
	// another in order of first appearance.
	count := make(map[int64]int32, len(runs))
	var order []int64
	start := int32(0)
	for _, r := range runs {
		if _, seen := count[r.id]; !seen {
			order = append(order, r.id)
		}
		count[r.id] += r.end - start
		start = r.end
	}
	grouped := make([]string, 0, len(captions))
	for _, id := range order {
		n := int32(len(grouped))
		byImage[id] = grouped[n : n : n+count[id]]
		grouped = grouped[:n+count[id]]
	}
	start = 0
	for _, r := range runs {
		byImage[r.id] = append(byImage[r.id], captions[start:r.end]...)
		start = r.end
	}
	return byImage
}

// fastParseResults is ParseResults's fast path; ok is false when the input
// must go to the precise path. With owned, data is never changed afterwards
// and the captions may share its memory.
func fastParseResults(data []byte, owned bool) (results []Result, ok bool) {
	s := newFastScanner(data, owned)
	n := estimate(data)
	results = make([]Result, 0, n)
	seen := make(map[int64]struct{}, n)
	ok = s.array(func() bool {
		id, caption, ok := s.imageCaption()
		if !ok {
			return false
		}
		if _, dup := seen[id]; dup {
			return false
		}
		seen[id] = struct{}{}
		results = append(results, Result{ImageID: id, Caption: caption})
		return true
	})
	if !ok || !s.atEnd() || len(results) == 0 {
		return nil, false
	}
	return results, true
}
