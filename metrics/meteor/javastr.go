package meteor

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Java string semantics Meteor depends on. Meteor compares words by
// String.hashCode (Stage.wordsToKeys, StemMatcher.wordsToStemKeys), splits
// with java.util.StringTokenizer, trims with String.trim and lowercases with
// String.toLowerCase; these helpers reproduce them on Go strings.

// javaHash is java.lang.String.hashCode: s[0]*31^(n-1) + … + s[n-1] over
// UTF-16 code units, in wrapping 32-bit arithmetic.
func javaHash(s string) int32 {
	var h int32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			h = 31*h + int32(c)
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size - 1
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
		} else {
			h = 31*h + int32(r)
		}
	}
	return h
}

// javaHashUnits is String.hashCode of a string given as UTF-16 code units.
func javaHashUnits(u []uint16) int32 {
	var h int32
	for _, c := range u {
		h = 31*h + int32(c)
	}
	return h
}

// utf16Len is String.length(): the number of UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// isTokenDelim reports the default delimiters of java.util.StringTokenizer.
func isTokenDelim(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

// tokenize splits like new StringTokenizer(line) (Alignment.tokenize):
// only space, tab, newline, carriage return and form feed separate tokens.
func tokenize(line string, dst []string) []string {
	start := -1
	for i := 0; i < len(line); i++ {
		if isTokenDelim(line[i]) {
			if start >= 0 {
				dst = append(dst, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}

// javaTrim is String.trim: it strips leading and trailing characters at or
// below U+0020 (all ASCII control characters), not Unicode spaces.
func javaTrim(s string) string {
	i, j := 0, len(s)
	for i < j && s[i] <= ' ' {
		i++
	}
	for j > i && s[j-1] <= ' ' {
		j--
	}
	return s[i:j]
}

// javaToLower approximates String.toLowerCase for the default (non-Turkic)
// locale: per-code-point lowercase mapping plus Java's two context or
// length changing rules, U+0130 → "i\u0307" and final sigma. ASCII-only
// strings take a fast path.
func javaToLower(s string) string {
	ascii, hasUpper := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			hasUpper = true
		}
	}
	if ascii {
		if !hasUpper {
			return s
		}
		return strings.ToLower(s)
	}
	runes := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range runes {
		switch {
		case r == 0x130:
			b.WriteString("i\u0307")
		case r == 0x3A3 && isFinalSigma(runes, i):
			b.WriteRune(0x3C2)
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isFinalSigma is Java's Final_Sigma condition (ConditionalSpecialCasing):
// a cased letter before (skipping case-ignorable characters) and none after.
func isFinalSigma(runes []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if isCaseIgnorable(runes[j]) {
			continue
		}
		before = isCased(runes[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(runes); j++ {
		if isCaseIgnorable(runes[j]) {
			continue
		}
		return !isCased(runes[j])
	}
	return true
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func isCaseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) ||
		r == '\'' || r == '.' || r == ':' || r == 0x2019 || r == 0xAD || r == 0xB7
}
