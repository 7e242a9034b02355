package meteor

import (
	"bufio"
	"regexp"
	"strings"
)

// This file reproduces edu.cmu.meteor.util.Normalizer.normalizeLine for
// English with punctuation kept (what -norm selects: NORMALIZE_KEEP_PUNCT),
// followed by MeteorScorer's String.toLowerCase. Meteor applies it on top of
// the toolkit's PTB tokenization, so it still splits and rewrites a few
// tokens ("'s" stays, "u.s." becomes "us", "st." at the end of a line
// becomes "st .").
//
// Java regex classes are spelled out: Java's \s is [ \t\n\x0B\f\r] and
// \p{Digit} and \p{Lower} are ASCII-only unless UNICODE_CHARACTER_CLASS is
// set, which Meteor does not do.

// Normalizer.alpha / alnum: ASCII letters plus Western European and
// Cyrillic ranges, exactly as in the Java source (compiled as UTF-8).
const (
	normAlpha = `A-Za-z\x{0160}\x{017D}\x{0161}\x{017E}\x{0178}\x{00C0}-\x{00D6}\x{00D8}-\x{00F6}\x{00F8}-\x{017E}` +
		`\x{0400}-\x{04FF}\x{0500}-\x{0527}\x{A640}-\x{A66E}\x{A67E}-\x{A697}\x{1D00}-\x{1D7F}`
	normAlnum     = `0-9` + normAlpha
	javaSpaceChar = `\t\n\x{0B}\f\r `
)

var (
	reSepOther  = regexp.MustCompile(`([^` + normAlnum + javaSpaceChar + `.'` + "`" + `,\-\x{2018}\x{2019}])`)
	reMultiDot  = regexp.MustCompile(`\.([.]+)`)
	reMultiDot2 = regexp.MustCompile(`DOTMULTI\.([^.])`)
	reComma     = regexp.MustCompile(`([^0-9])[,]([^0-9])`)
	reComma2    = regexp.MustCompile(`([0-9])[,]([^0-9])`)
	reComma3    = regexp.MustCompile(`([^0-9])[,]([0-9])`)
	reQuoteNorm = regexp.MustCompile("([`\u2018\u2019])")
	reQuoteNrm2 = regexp.MustCompile(`([\x{201C}\x{201D}]|'')`)
	reRmDash    = regexp.MustCompile(`([` + normAlnum + `.])[\-]([` + normAlnum + `])`)
	reContEn    = regexp.MustCompile(`([^` + normAlpha + `])[']([^` + normAlpha + `])`)
	reContEn2   = regexp.MustCompile(`([^` + normAlpha + `0-9])[']([` + normAlpha + `])`)
	reContEn3   = regexp.MustCompile(`([` + normAlpha + `])[']([^` + normAlpha + `])`)
	reContEn4   = regexp.MustCompile(`([` + normAlpha + `])[']([` + normAlpha + `])`)
	reContEn5   = regexp.MustCompile(`([0-9])[']([s])`)
	reNbp1      = regexp.MustCompile(`[` + normAlpha + `]`)
	// Normalizer.r_white: two ASCII spaces, U+2000–U+200A, U+202F, U+205F,
	// U+3000 and U+00A0 (no tab: tabs survive and later split tokens).
	reWhite = regexp.MustCompile(`[ \x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}\x{00A0}]+`)
)

// Nonbreaking prefix types (Constants.NBP_ANY, NBP_NUM_ONLY).
const (
	nbpAny     = 1
	nbpNumOnly = 2
)

// parseNonbreaking reads a Moses/Meteor nonbreaking prefix list the way
// Normalizer.nbpList does: first token of each non-empty line, '#' lines
// skipped, "#NUMERIC_ONLY#" as second token marks numeric-only prefixes.
func parseNonbreaking(text string) map[string]int {
	m := make(map[string]int)
	sc := bufio.NewScanner(strings.NewReader(text))
	var toks []string
	for sc.Scan() {
		toks = tokenize(sc.Text(), toks[:0])
		if len(toks) == 0 || strings.HasPrefix(toks[0], "#") {
			continue
		}
		typ := nbpAny
		if len(toks) > 1 && toks[1] == "#NUMERIC_ONLY#" {
			typ = nbpNumOnly
		}
		m[toks[0]] = typ
	}
	return m
}

// isPlainLine reports lines made only of [a-z0-9] and spaces. Every pass of
// normalizeLine leaves such a line unchanged except for whitespace, and
// lowercasing is the identity, so they skip the regular expressions.
func isPlainLine(line string) bool {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !(('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == ' ') {
			return false
		}
	}
	return true
}

// needsSepOther reports whether reSepOther can match: the line holds a
// character other than ASCII letters, digits, Java whitespace and . ' ` , -
// (any non-ASCII byte counts, the expression decides).
func needsSepOther(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
		case c == '.' || c == '\'' || c == '`' || c == ',' || c == '-':
		default:
			return true
		}
	}
	return false
}

// normalize is Normalizer.normalizeLine(line, LANG_EN, true) followed by
// toLowerCase, as MeteorScorer.getMeteorStats applies them, up to
// whitespace (the result is only ever tokenized). Each regular expression
// runs only when the line holds a character it could match.
func (s *Scorer) normalize(line string) string {
	if isPlainLine(line) {
		return line
	}
	w := " " + strings.ToValidUTF8(line, "\uFFFD") + " "
	ascii := true
	for i := 0; i < len(w); i++ {
		if w[i] >= 0x80 {
			ascii = false
			break
		}
	}

	// Separate all non-alphanumeric characters that aren't special cases.
	if needsSepOther(w) {
		w = reSepOther.ReplaceAllString(w, " ${1} ")
	}

	// Escape multiple dots.
	if strings.Contains(w, "..") {
		w = reMultiDot.ReplaceAllString(w, " DOTMULTI${1}")
	}
	for strings.Contains(w, "DOTMULTI.") {
		w = reMultiDot2.ReplaceAllString(w, "DOTDOTMULTI ${1}")
		w = strings.ReplaceAll(w, "DOTMULTI.", "DOTDOTMULTI")
	}

	// Separate commas except within numbers.
	if strings.Contains(w, ",") {
		w = reComma.ReplaceAllString(w, "${1} , ${2}")
		w = reComma2.ReplaceAllString(w, "${1} , ${2}")
		w = reComma3.ReplaceAllString(w, "${1} , ${2}")
	}

	// Normalize quotes and dashes.
	if strings.Contains(w, "`") || !ascii {
		w = reQuoteNorm.ReplaceAllString(w, "'")
	}
	if strings.Contains(w, "''") || !ascii {
		w = reQuoteNrm2.ReplaceAllString(w, ` " `)
	}
	w = strings.ReplaceAll(w, "\u2013", "-")
	w = strings.ReplaceAll(w, "--", "-")

	// Remove dashes between words (alnum-alnum or dot-alnum).
	if strings.Contains(w, "-") {
		w = reRmDash.ReplaceAllString(w, "${1} ${2}")
	}

	// English splits contractions to the right.
	if strings.Contains(w, "'") {
		w = reContEn.ReplaceAllString(w, "${1} ' ${2}")
		w = reContEn2.ReplaceAllString(w, "${1} ' ${2}")
		w = reContEn3.ReplaceAllString(w, "${1} ' ${2}")
		w = reContEn4.ReplaceAllString(w, "${1} '${2}")
		w = reContEn5.ReplaceAllString(w, "${1} '${2}")
	}

	// Rebuild the line, breaking final dots unless the word is a
	// nonbreaking prefix. Without a dot the rebuild only respaces tokens.
	if strings.Contains(w, ".") {
		w = s.breakDots(w)
	}

	// Unescape multiple dots.
	for strings.Contains(w, "DOTDOTMULTI") {
		w = strings.ReplaceAll(w, "DOTDOTMULTI", "DOTMULTI.")
	}
	w = strings.ReplaceAll(w, "DOTMULTI", ".")

	// Collapse whitespace; for ASCII lines that only respaces tokens.
	if !ascii {
		w = reWhite.ReplaceAllString(w, " ")
	}
	return javaToLower(javaTrim(w))
}

// breakDots is the nonbreaking-prefix loop of Normalizer.normalizeLine.
func (s *Scorer) breakDots(w string) string {
	words := tokenize(w, nil)
	var b strings.Builder
	b.Grow(len(w) + 8)
	for i, word := range words {
		if utf16Len(word) > 1 && strings.HasSuffix(word, ".") {
			pre := word[:len(word)-1]
			typ := s.nonbreaking[pre]
			next := ""
			if i < len(words)-1 {
				next = words[i+1]
			}
			switch {
			case strings.Contains(pre, ".") && reNbp1.MatchString(pre):
				// Mixed (U.S.): drop the dots to match undotted output.
				b.WriteString(strings.ReplaceAll(word, ".", ""))
			case typ == nbpAny || (i < len(words)-1 && next[0] >= 'a' && next[0] <= 'z'):
				// Always nonbreaking, or followed by a lowercase word.
				b.WriteString(word)
			case typ == nbpNumOnly && i < len(words)-1 && next[0] >= '0' && next[0] <= '9':
				b.WriteString(word)
			default:
				b.WriteString(pre)
				b.WriteString(" .")
			}
		} else {
			b.WriteString(word)
		}
		b.WriteByte(' ')
	}
	return b.String()
}
