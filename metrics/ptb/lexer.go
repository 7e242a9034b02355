package ptb

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// action says what a rule does with its match.
type action uint8

const (
	actKeep        action = iota // the matched text
	actSkip                      // nothing: white space, ignorables, untokenizable
	actNewline                   // a line break (tokenizeNLs, i.e. -preserveLines)
	actFixed                     // rule.fixed instead of the text
	actPushback2                 // first len-2 units; the rest is rescanned (gon|na)
	actPushback3                 // first len-3 units (can|not, 't|was)
	actNBSP                      // spaces become U+00A0 (normalizeSpace)
	actAmp                       // &amp; becomes & (normalizeAmpersandEntity)
	actSoftHyphens               // U+00AD removed (removeSoftHyphens)
	actQuoteLeft                 // handleQuotes(probablyLeft=true), latexQuotes
	actQuoteRight                // handleQuotes(probablyLeft=false), latexQuotes
	actFraction                  // normalizeFractions
	actCurrency                  // normalizeCurrency
	actAcronym                   // the sentence-final ACRONYM rule
	actAbbrevEnd                 // the text, then its final period again
	actPhone                     // NBSP and -LRB-/-RRB- inside phone numbers
	actParens                    // -LRB-/-RRB- inside smileys
	actHyphens                   // 3 or 4 hyphens become "--" (ptb3Dashes)
)

// rule is one rule of the grammar (internal/lexgen/rules.go).
type rule struct {
	name  string // the spec's rule, for tests and debugging
	act   action
	fixed string // the text of actFixed
	look  bool   // it has trailing context r1/r2
}

//go:generate go run ./internal/gen -o lexer_tables.go

// lexer is the compiled grammar (lexer_tables.go), decoded: one DFA
// choosing the rule (longest match, earliest rule on ties, trailing context
// included in the length), and for each rule with trailing context r1/r2 a
// DFA for r1 and one for reversed r2 to find where yytext ends, as JFlex's
// general-lookahead code does: the longest r1 such that r2 matches the
// rest. The DFAs share one table; state 0 is the dead state, from which
// nothing can be accepted any more.
type lexer struct {
	class  [0x10000]uint8                 // code unit -> class
	next   [lexStates * lexClasses]uint16 // next[s*lexClasses+c]: successor of state s on class c
	accept [lexStates]int16               // rule index accepted in each state, or -1
}

var (
	lexOnce sync.Once
	theLex  *lexer
)

func getLexer() *lexer {
	lexOnce.Do(func() { theLex = newLexer() })
	return theLex
}

// newLexer decodes lexData, which lexgen's encode writes: uvarints, except
// for the bytes that are classes. First the class of every code unit, as
// runs: a length and a class. Then, for each state, the rule it accepts
// plus one (0: none), a state d back whose transitions it starts from (d=0:
// all lead to the dead state), and the changes to those: a number of
// groups, each a state, a count n and the n classes that lead to it.
func newLexer() *lexer {
	data, err := base64.StdEncoding.DecodeString(lexData)
	if err != nil {
		panic("ptb: corrupt lexData: " + err.Error())
	}
	uvarint := func() int {
		v, n := binary.Uvarint(data)
		if n <= 0 {
			panic("ptb: corrupt lexData")
		}
		data = data[n:]
		return int(v)
	}
	lx := new(lexer)
	for u := 0; u < len(lx.class); {
		n := uvarint()
		c := data[0]
		data = data[1:]
		for end := u + n; u < end; u++ {
			lx.class[u] = c
		}
	}
	for s := range lexStates {
		lx.accept[s] = int16(uvarint() - 1)
		row := lx.next[s*lexClasses : (s+1)*lexClasses]
		if d := uvarint(); d > 0 {
			copy(row, lx.next[(s-d)*lexClasses:])
		}
		for g := uvarint(); g > 0; g-- {
			t := uint16(uvarint())
			n := uvarint()
			for _, c := range data[:n] {
				row[c] = t
			}
			data = data[n:]
		}
	}
	if len(data) != 0 {
		panic("ptb: corrupt lexData")
	}
	return lx
}

// scanner holds the buffers of one tokenization; scanners are pooled.
//
// It works in one of two modes. Plain, it prints what PTBTokenizer prints
// (tokens separated by ' ', '\n' for each line break) and the caller applies
// ptbtokenizer.py's filter to each line. Direct, it applies the filter to
// each token as it prints it and records where each line ends; this is the
// same for every token but those holding a space or a line break (from a
// few exotic rules) and lines ending in a character Python's rstrip
// removes, which set weird, and then the caller reruns plain.
type scanner struct {
	lx   *lexer
	u    []uint16 // the input as Java sees it, UTF-16 code units (see more)
	rest []string // the captions not yet in u
	sep  bool     // a '\n' goes before the next caption
	size int      // the length of the input, to size out
	out  []byte   // the output
	tmp  []uint16 // a normalized token
	fin  []bool   // where r1 accepts, for trailing context
	bol  bool     // at the beginning of an output line (direct: of a filtered one)
	res  []byte   // a filtered line (plain mode)

	direct    bool  // filter while printing
	firstLine bool  // stop at the first line break
	lines     []int // direct: end of each line in out
	weird     bool  // direct: the result needs the plain path
	stop      bool  // firstLine reached
}

var pool = sync.Pool{New: func() any { return &scanner{lx: getLexer()} }}

// loadLine sets the input to one caption and a line break.
func (s *scanner) loadLine(caption string) {
	s.u = append(appendUnits(s.u[:0], caption), '\n')
	s.rest, s.size = nil, len(s.u)
}

// load sets the input to the captions, one per line as pycocoevalcap writes
// them: each caption's '\n' replaced by ' ', captions joined by '\n'. The
// scan converts them as it reaches them (more).
func (s *scanner) load(captions []string) {
	s.u, s.rest, s.sep = s.u[:0], captions, false
	s.size = len(captions)
	for _, c := range captions {
		s.size += len(c) // UTF-16 never has more units than UTF-8 has bytes
	}
	s.lines = slices.Grow(s.lines[:0], len(captions)+1)
}

// window is about how many code units of captions the scanner holds: more
// converts that many at a time, and scan drops them once past them. This
// keeps s.u small, which matters for the first call in a process: fresh
// memory costs a page fault per 4 KiB. (A variable for tests.)
var window = 1 << 13

// more appends the next captions to s.u, about window units of them, and
// reports whether there were any.
func (s *scanner) more() bool {
	n := len(s.u)
	for len(s.rest) > 0 && len(s.u) < n+window {
		if s.sep {
			s.u = append(s.u, '\n')
		}
		s.u = appendUnits(s.u, s.rest[0])
		s.rest, s.sep = s.rest[1:], true
	}
	return len(s.u) > n
}

// appendUnits appends the UTF-16 code units of c, '\n' replaced by ' '.
func appendUnits(u []uint16, c string) []uint16 {
	// ASCII, the common case, straight into place.
	u = slices.Grow(u, len(c))
	base := len(u)
	dst := u[base : base+len(c)]
	i := 0
	for ; i < len(dst); i++ {
		b := c[i]
		if b >= utf8.RuneSelf {
			break
		}
		if b == '\n' {
			b = ' '
		}
		dst[i] = uint16(b)
	}
	u = u[:base+i]
	for _, r := range c[i:] {
		switch {
		case r == '\n':
			u = append(u, ' ')
		case r < 0x10000:
			u = append(u, uint16(r))
		default:
			r1, r2 := utf16.EncodeRune(r)
			u = append(u, uint16(r1), uint16(r2))
		}
	}
	return u
}

// scan runs the lexer over the input, leaving PTBTokenizer's output in
// s.out. Wherever it reaches the end of s.u, it reads more input before
// taking it for the end.
func (s *scanner) scan() {
	lx := s.lx
	// Room for the output, which is about as long as the input: growing it
	// piecemeal costs more on a first call.
	n := max(s.size, len(s.u))
	s.out = slices.Grow(s.out[:0], n+n/8)
	s.bol = true
	s.lines = s.lines[:0]
	s.weird, s.stop = false, false
	u := s.u
	for pos := 0; !s.stop; {
		if pos >= window && len(s.rest) > 0 {
			// Drop the input scanned, which nothing looks back to.
			s.u = s.u[:copy(s.u, s.u[pos:])]
			u, pos = s.u, 0
		}
		if pos == len(u) {
			if !s.more() {
				break
			}
			u = s.u
		}
		// Fast paths for the commonest tokens, giving what the automaton
		// would: spaces are skipped (SPACES), and a run of ASCII letters
		// followed by a space, a line break or the end is a WORD, unless
		// it is one of the words split by pushback rules. No rule matching
		// such a run can extend past the space except ABBREV4/{SPACE} and
		// ACRO/{SPACENL}, whose text is the same run.
		c0 := u[pos]
		if c0 == ' ' {
			// SPACES is the only rule for a space, and takes the whole
			// run of SPACE characters (U+00A0, U+3000 and all).
			for pos++; ; pos++ {
				if pos == len(u) {
					if !s.more() {
						break
					}
					u = s.u
				}
				if !isSpace(u[pos]) {
					break
				}
			}
			continue
		}
		if c0 < 0x80 && asciiLetter[c0] {
			j := pos + 1
			for ; ; j++ {
				if j == len(u) {
					if !s.more() {
						break
					}
					u = s.u
				}
				if u[j] >= 0x80 || !asciiLetter[u[j]] {
					break
				}
			}
			if (j == len(u) || u[j] == ' ' || u[j] == '\n') && !splitWord(u[pos:j]) {
				s.emitASCII(u[pos:j])
				pos = j
				continue
			}
		}
		st := lexMain
		acc, end := int16(-1), pos
		for i := pos; ; i++ {
			if i == len(u) {
				if !s.more() {
					break
				}
				u = s.u
			}
			if st = int(lx.next[st*lexClasses+int(lx.class[u[i]])]); st == 0 {
				break
			}
			if a := lx.accept[st]; a >= 0 {
				acc, end = a, i+1
			}
		}
		if acc < 0 { // cannot happen: NEWLINE and "." match every unit
			pos++
			continue
		}
		r := &lexRules[acc]
		if r.look {
			end = s.split(int(acc), pos, end)
		}
		pos = s.act(r, pos, end)
	}
	if s.direct && !s.stop {
		s.endLine()
	}
}

// split returns the end of r1 in a match u[start:end] of rule i's r1/r2.
func (s *scanner) split(i, start, end int) int {
	lx := s.lx
	n := end - start
	if cap(s.fin) < n+1 {
		s.fin = make([]bool, n+1)
	}
	fin := s.fin[:n+1]
	clear(fin)
	st := int(lexHead[i])
	fin[0] = lx.accept[st] >= 0
	for p := start; p < end; p++ {
		if st = int(lx.next[st*lexClasses+int(lx.class[s.u[p]])]); st == 0 {
			break
		}
		fin[p-start+1] = lx.accept[st] >= 0
	}
	st = int(lexTail[i])
	for p := end - 1; p >= start; p-- {
		if st = int(lx.next[st*lexClasses+int(lx.class[s.u[p]])]); st == 0 {
			break
		}
		if lx.accept[st] >= 0 && fin[p-start] {
			return p
		}
	}
	return end // unreachable for a real match
}

// act performs rule r's action on u[start:end] and returns where scanning
// resumes (end, or less after a yypushback).
func (s *scanner) act(r *rule, start, end int) int {
	t := s.u[start:end]
	switch r.act {
	case actKeep:
		s.emit(t)
	case actSkip:
	case actNewline:
		if s.direct {
			s.endLine()
			s.stop = s.firstLine
		} else {
			s.out = append(s.out, '\n')
		}
		s.bol = true
	case actFixed:
		s.emitString(r.fixed)
	case actPushback2: // gonna -> gon na, 'tis -> 't is
		s.emit(t[:len(t)-2])
		return end - 2
	case actPushback3: // cannot -> can not, 'twas -> 't was
		s.emit(t[:len(t)-3])
		return end - 3
	case actNBSP:
		s.emit(s.mapUnits(t, func(u uint16) (uint16, string) {
			if u == ' ' {
				return 0xA0, ""
			}
			return u, ""
		}))
	case actAmp:
		s.tmp = replaceAmp(s.tmp[:0], t)
		s.emit(s.tmp)
	case actSoftHyphens:
		if slices.Contains(t, 0xAD) {
			s.tmp = removeSoftHyphens(s.tmp[:0], t)
			t = s.tmp
		}
		s.emit(t)
	case actQuoteLeft:
		s.tmp = latexQuotes(s.tmp[:0], t, true)
		s.emit(s.tmp)
	case actQuoteRight:
		s.tmp = latexQuotes(s.tmp[:0], t, false)
		s.emit(s.tmp)
	case actFraction:
		s.emit(s.mapUnits(t, func(u uint16) (uint16, string) {
			switch u {
			case 0xBC:
				return 0, "1/4"
			case 0xBD:
				return 0, "1/2"
			case 0xBE:
				return 0, "3/4"
			case 0x2153:
				return 0, "1/3"
			case 0x2154:
				return 0, "2/3"
			}
			return u, ""
		}))
	case actCurrency:
		s.emit(s.mapUnits(t, func(u uint16) (uint16, string) {
			switch u {
			case 0xA2:
				return 0, "cents"
			case 0xA3:
				return 0, "#" // historically used for pound in PTB3
			case 0x80, 0xA4, 0x20A0, 0x20AC:
				return 0, "$"
			}
			return u, ""
		}))
	case actAcronym:
		// "I." before "The": the letter alone, the period next time; a
		// longer acronym is returned with its period and the period again.
		if len(t) == 2 {
			s.emit(t[:1])
			return start + 1
		}
		s.emit(t)
		return end - 1
	case actAbbrevEnd: // the abbreviation, then its period as a token too
		s.emit(t)
		return end - 1
	case actPhone:
		s.emit(s.mapUnits(t, func(u uint16) (uint16, string) {
			switch u {
			case ' ':
				return 0xA0, ""
			case '(':
				return 0, "-LRB-"
			case ')':
				return 0, "-RRB-"
			}
			return u, ""
		}))
	case actParens:
		s.emit(s.mapUnits(t, func(u uint16) (uint16, string) {
			switch u {
			case '(':
				return 0, "-LRB-"
			case ')':
				return 0, "-RRB-"
			}
			return u, ""
		}))
	case actHyphens:
		if len(t) >= 3 && len(t) <= 4 {
			s.emitString("--")
		} else {
			s.emit(t)
		}
	}
	return end
}

// mapUnits rewrites t unit by unit into s.tmp: f returns a replacement
// string, or the (possibly changed) unit when the string is empty.
func (s *scanner) mapUnits(t []uint16, f func(uint16) (uint16, string)) []uint16 {
	out := s.tmp[:0]
	for _, u := range t {
		v, str := f(u)
		if str == "" {
			out = append(out, v)
			continue
		}
		for i := 0; i < len(str); i++ {
			out = append(out, uint16(str[i]))
		}
	}
	s.tmp = out
	return out
}

// removeSoftHyphens drops U+00AD, leaving "-" rather than an empty token.
func removeSoftHyphens(dst, t []uint16) []uint16 {
	for _, u := range t {
		if u != 0xAD {
			dst = append(dst, u)
		}
	}
	if len(dst) == 0 {
		dst = append(dst, '-')
	}
	return dst
}

// replaceAmp replaces "&amp;", in any case, by "&" (the spec's AMP_PATTERN
// is (?i:&amp;)).
func replaceAmp(dst, t []uint16) []uint16 {
	for i := 0; i < len(t); i++ {
		if t[i] == '&' && hasFoldASCII(t[i:], "&amp;") {
			dst = append(dst, '&')
			i += 4
			continue
		}
		dst = append(dst, t[i])
	}
	return dst
}

func hasFoldASCII(t []uint16, s string) bool {
	if len(t) < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		u := t[i]
		if u >= 'A' && u <= 'Z' {
			u += 'a' - 'A'
		}
		if u != uint16(s[i]) {
			return false
		}
	}
	return true
}

func hasASCII(t []uint16, s string) bool {
	if len(t) < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if t[i] != uint16(s[i]) {
			return false
		}
	}
	return true
}

// latexQuotes is the spec's latexQuotes (the default quote style): ' and
// &apos; become ` or ' and " and &quot; become “ or ” by the guessed side,
// curly quotes (and their cp1252 codes) by their own side. The entities are
// matched case-sensitively, as the spec's patterns are. The spec applies one
// pattern after the other, but no replacement creates text a later pattern
// matches, so one pass does the same.
func latexQuotes(dst, t []uint16, left bool) []uint16 {
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			dst = append(dst, uint16(s[i]))
		}
	}
	for i := 0; i < len(t); i++ {
		switch u := t[i]; {
		case u == '\'' || u == '&' && hasASCII(t[i:], "&apos;"):
			if u == '&' {
				i += 5
			}
			if left {
				add("`")
			} else {
				add("'")
			}
		case u == '"' || u == '&' && hasASCII(t[i:], "&quot;"):
			if u == '&' {
				i += 5
			}
			if left {
				add("``")
			} else {
				add("''")
			}
		case u == 0x91 || u == 0x2018 || u == 0x201B || u == 0x2039:
			add("`")
		case u == 0x92 || u == 0x2019 || u == 0x203A:
			add("'")
		case u == 0x93 || u == 0x201C || u == 0xAB:
			add("``")
		case u == 0x94 || u == 0x201D || u == 0xBB:
			add("''")
		default:
			dst = append(dst, u)
		}
	}
	return dst
}

// emit prints a token: PTBTokenizer -preserveLines separates tokens on a
// line by one space, and -lowerCase lower-cases each with
// String.toLowerCase(Locale.ENGLISH).
func (s *scanner) emit(t []uint16) {
	start := len(s.out)
	if !s.bol {
		s.out = append(s.out, ' ')
	}
	s.out = appendJavaLower(s.out, t)
	s.filter(start)
}

// filter ends the printing of the token at s.out[start:] (after its
// separator); in direct mode it drops the token if the toolkit would.
func (s *scanner) filter(start int) {
	if !s.direct {
		s.bol = false
		return
	}
	tok := s.out[start:]
	if !s.bol {
		tok = tok[1:]
	}
	if punctuation(tok) {
		s.out = s.out[:start]
		return
	}
	if bytes.IndexByte(tok, ' ') >= 0 || bytes.IndexByte(tok, '\n') >= 0 {
		s.weird = true
	}
	s.bol = false
}

// endLine ends an output line in direct mode. Python's rstrip would take
// white space off its end, which only the plain path gets right.
func (s *scanner) endLine() {
	if n := len(s.out); n > 0 {
		if c := s.out[n-1]; c <= ' ' || c >= utf8.RuneSelf {
			if r, _ := utf8.DecodeLastRune(s.out); pySpace(r) {
				s.weird = true
			}
		}
	}
	s.lines = append(s.lines, len(s.out))
}

// isSpace reports whether u is in SPACE.
func isSpace(u uint16) bool {
	return u == ' ' || u == '\t' || u == 0xA0 || u >= 0x2000 && u <= 0x200A || u == 0x3000
}

// asciiLetter marks A-Z and a-z.
var asciiLetter = func() (t [0x80]bool) {
	for c := 'A'; c <= 'z'; c++ {
		t[c] = c <= 'Z' || c >= 'a'
	}
	return t
}()

// splitWord reports whether a run of ASCII letters is one the rules for
// cannot and gonna|gotta|lemme|gimme|wanna split (matched caselessly).
func splitWord(w []uint16) bool {
	switch len(w) {
	case 5:
		return hasFoldASCII(w, "gonna") || hasFoldASCII(w, "gotta") || hasFoldASCII(w, "lemme") ||
			hasFoldASCII(w, "gimme") || hasFoldASCII(w, "wanna")
	case 6:
		return hasFoldASCII(w, "cannot")
	}
	return false
}

// emitASCII prints a word of ASCII letters (never filtered).
func (s *scanner) emitASCII(t []uint16) {
	if !s.bol {
		s.out = append(s.out, ' ')
	}
	s.bol = false
	n := len(s.out)
	s.out = slices.Grow(s.out, len(t))[:n+len(t)]
	dst := s.out[n:]
	for i, u := range t {
		dst[i] = byte(u) | 0x20 // lower case, for ASCII letters
	}
}

// emitString prints a token of ASCII text.
func (s *scanner) emitString(str string) {
	start := len(s.out)
	if !s.bol {
		s.out = append(s.out, ' ')
	}
	for i := 0; i < len(str); i++ {
		b := str[i]
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
		s.out = append(s.out, b)
	}
	s.filter(start)
}
