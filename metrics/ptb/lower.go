package ptb

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// appendJavaLower appends the UTF-8 of Java's t.toLowerCase(Locale.ENGLISH)
// to dst, as PTBTokenizer -lowerCase prints it. Beyond the per-character
// mapping, String.toLowerCase turns U+0130 into "i\u0307" and a final
// capital sigma into ς, and the UTF-8 writer prints a lone surrogate as '?'.
func appendJavaLower(dst []byte, t []uint16) []byte {
	for i := 0; i < len(t); i++ {
		u := t[i]
		if u < utf8.RuneSelf {
			if 'A' <= u && u <= 'Z' {
				u += 'a' - 'A'
			}
			dst = append(dst, byte(u))
			continue
		}
		var r rune
		switch {
		case utf16.IsSurrogate(rune(u)):
			if u < 0xDC00 && i+1 < len(t) && t[i+1] >= 0xDC00 && t[i+1] <= 0xDFFF {
				r = unicode.ToLower(utf16.DecodeRune(rune(u), rune(t[i+1])))
				i++
			} else {
				dst = append(dst, '?')
				continue
			}
		case u == 0x130:
			dst = append(dst, "i\u0307"...)
			continue
		case u == 0x3A3:
			r = 'σ'
			if finalSigma(t, i) {
				r = 'ς'
			}
		default:
			r = unicode.ToLower(rune(u))
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// finalSigma reports whether the Σ at t[i] is final in Java's sense
// (ConditionalSpecialCasing.isFinalCased): within its word, as Java's word
// BreakIterator delimits words in the token, a cased letter comes before it
// and none after it.
func finalSigma(t []uint16, i int) bool {
	rs := utf16.Decode(t)
	k := len(utf16.Decode(t[:i]))
	a := 0
	for {
		b := wordEnd(rs, a)
		if k < b {
			if k == a {
				return false
			}
			before := false
			for _, r := range rs[a:k] {
				before = before || isCased(r)
			}
			if !before {
				return false
			}
			for _, r := range rs[k+1 : b] {
				if isCased(r) {
					return false
				}
			}
			return true
		}
		a = b
	}
}

// isCased is ConditionalSpecialCasing.isCased: Lu, Ll, Lt, or one of its
// list of Other_Lowercase and Other_Uppercase ranges.
func isCased(r rune) bool {
	switch {
	case unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt):
		return true
	case r >= 0x2B0 && r <= 0x2B8, r == 0x2C0, r == 0x2C1, r >= 0x2E0 && r <= 0x2E4, r == 0x345, r == 0x37A,
		r >= 0x1D2C && r <= 0x1D61, r >= 0x2160 && r <= 0x217F, r >= 0x24B6 && r <= 0x24E9:
		return true
	}
	return false
}

// wordEnd is where the word segment starting at rs[p] ends, by the JDK's
// (non-ICU) word BreakIterator rules (sun.text.resources.BreakIteratorRules):
// the longest of a run of words and numbers
// ({<word>}(<number><word>)*{<number>{<post-num>}}), a number led by a
// currency sign, '#' or '.', a run of white space, a character with
// combining marks, or any one character. Format characters (Cf) other than
// the soft hyphen are ignored; kana and kanji runs, which cannot hold a Σ,
// are left out.
func wordEnd(rs []rune, p int) int {
	n := len(rs)
	ignore := func(q int) int {
		for q < n && rs[q] != 0xAD && unicode.Is(unicode.Cf, rs[q]) { // U+00AD is <mid-word>
			q++
		}
		return q
	}
	enclosing := func(q int) bool { return q < n && unicode.In(rs[q], unicode.Mn, unicode.Me) }
	// char consumes one character satisfying ok, returning q unchanged if
	// rs[q] does not.
	char := func(q int, ok func(rune) bool) int {
		if q >= n || !ok(rs[q]) {
			return q
		}
		return ignore(q + 1)
	}
	// unit consumes a character satisfying ok with the marks after it
	// (<let>, <dgt>, <ws>).
	unit := func(q int, ok func(rune) bool) int {
		if e := char(q, ok); e > q {
			for q = e; enclosing(q); {
				q = ignore(q + 1)
			}
		}
		return q
	}
	many := func(q int, ok func(rune) bool) int {
		for {
			e := unit(q, ok)
			if e == q {
				return q
			}
			q = e
		}
	}
	letter := func(r rune) bool {
		if r == 0x3005 || r >= 0x4E00 && r <= 0x9FA5 || r >= 0xF900 && r <= 0xFA2D || // <kanji>
			r >= 0x30A1 && r <= 0x30FA || r == 0x30FD || r == 0x30FE || // <kata>
			r >= 0x3041 && r <= 0x3094 || r == 0x309D || r == 0x309E || // <hira>
			r >= 0x3099 && r <= 0x309C || r == 0x30FB || r == 0x30FC { // <cjk-diacrit>
			return false
		}
		return unicode.In(r, unicode.L, unicode.Mc)
	}
	digit := unicode.IsNumber
	oneOf := func(set string) func(rune) bool {
		return func(r rune) bool {
			for _, c := range set {
				if r == c {
					return true
				}
			}
			return false
		}
	}
	midWord := func(r rune) bool { return unicode.In(r, unicode.Pd, unicode.Pc) || oneOf("\u00AD\u2027\"'.")(r) }
	midNum := oneOf("\"',\u066B.")
	// run matches base(mid base+)*: a word or a number.
	run := func(q int, base, mid func(rune) bool) int {
		e := many(q, base)
		if e == q {
			return q
		}
		q = e
		for {
			m := char(q, mid)
			if m == q {
				return q
			}
			e := many(m, base)
			if e == m {
				return q
			}
			q = e
		}
	}
	word := func(q int) int {
		e := run(q, letter, midWord)
		if e > q {
			e = char(e, oneOf("\u0964\u0965")) // <danda>
		}
		return e
	}
	number := func(q int) int { return run(q, digit, midNum) }
	numbersAndWords := func(q int) int { // (<number><word>)*{<number>{<post-num>}}
		for {
			e := number(q)
			if e == q {
				return q
			}
			if w := word(e); w > e {
				q = w
				continue
			}
			return char(e, oneOf("%&\u00A2\u066A\u2030\u2031"))
		}
	}
	best := ignore(p + 1) // any character
	best = max(best, numbersAndWords(word(p)))
	if e := char(p, func(r rune) bool { return unicode.Is(unicode.Sc, r) && r != 0xA2 || r == '#' || r == '.' }); e > p {
		best = max(best, numbersAndWords(e))
	}
	ws := many(p, func(r rune) bool { return r == '\t' || unicode.Is(unicode.Zs, r) })
	ws = char(ws, oneOf("\r"))
	best = max(best, char(ws, oneOf("\n\u000C\u2028\u2029")))
	if !unicode.In(rs[p], unicode.Mn, unicode.Me, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) && enclosing(ignore(p+1)) {
		best = max(best, unit(p, func(rune) bool { return true })) // <base><enclosing>+
	}
	return best
}

// pySpace is Python's str.isspace, which rstrip() strips.
func pySpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x1C, 0x1D, 0x1E, 0x1F, ' ', 0x85, 0xA0,
		0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

// punctuation is ptbtokenizer.py's PUNCTUATIONS: tokens dropped after
// tokenization. The bracket names are upper case there and the tokens lower
// case here, so -lrb- and friends survive.
func punctuation(w []byte) bool {
	if len(w) == 0 || len(w) > 5 || !punctStart[w[0]] {
		return false
	}
	switch string(w) {
	case "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
		".", "?", "!", ",", ":", "-", "--", "...", ";":
		return true
	}
	return false
}

var punctStart = func() (t [256]bool) {
	for _, c := range "'`-.?!,:;" {
		t[c] = true
	}
	return t
}()

// appendFiltered appends what ptbtokenizer.py makes of one output line:
// ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS).
func appendFiltered(dst, line []byte) []byte {
	for len(line) > 0 {
		c := line[len(line)-1]
		if c > ' ' && c < utf8.RuneSelf {
			break
		}
		r, size := utf8.DecodeLastRune(line)
		if !pySpace(r) {
			break
		}
		line = line[:len(line)-size]
	}
	first := true
	for {
		end := bytes.IndexByte(line, ' ')
		if end < 0 {
			end = len(line)
		}
		if w := line[:end]; !punctuation(w) {
			if !first {
				dst = append(dst, ' ')
			}
			dst = append(dst, w...)
			first = false
		}
		if end == len(line) {
			return dst
		}
		line = line[end+1:]
	}
}
