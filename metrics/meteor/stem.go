package meteor

import "unicode/utf16"

// This file ports the Snowball "english" (Porter2) stemmer exactly as the
// Java class org.tartarus.snowball.ext.englishStemmer bundled in Meteor 1.5
// runs it (through edu.cmu.meteor.aligner.SnowballStemmerWrapper). It works
// on UTF-16 code units, like Java's StringBuffer, so that hops, regions and
// the "fewer than 3 characters" rule count characters as Java does. Newer
// Snowball releases changed the English rules; this is the 2010-era version
// Meteor ships (exception lists, 'fulli'/'lessli'/'ogi' in step 2).

// amongEntry is one string of a Snowball "among" table with its result
// (Among.result in Java; -1 means "matched, no action", never "not found").
type amongEntry struct {
	s      string
	result int
}

// Among tables, in the order of englishStemmer.a_0 … a_10.
var (
	amongRegions = []amongEntry{{"arsen", -1}, {"commun", -1}, {"gener", -1}}
	amongStep1aA = []amongEntry{{"'", 1}, {"'s'", 1}, {"'s", 1}}
	amongStep1aB = []amongEntry{{"ied", 2}, {"s", 3}, {"ies", 2}, {"sses", 1}, {"ss", -1}, {"us", -1}}
	amongStep1bB = []amongEntry{{"", 3}, {"bb", 2}, {"dd", 2}, {"ff", 2}, {"gg", 2}, {"bl", 1}, {"mm", 2},
		{"nn", 2}, {"pp", 2}, {"rr", 2}, {"at", 1}, {"tt", 2}, {"iz", 1}}
	amongStep1bA = []amongEntry{{"ed", 2}, {"eed", 1}, {"ing", 2}, {"edly", 2}, {"eedly", 1}, {"ingly", 2}}
	amongStep2   = []amongEntry{{"anci", 3}, {"enci", 2}, {"ogi", 13}, {"li", 16}, {"bli", 12}, {"abli", 4},
		{"alli", 8}, {"fulli", 14}, {"lessli", 15}, {"ousli", 10}, {"entli", 5}, {"aliti", 8}, {"biliti", 12},
		{"iviti", 11}, {"tional", 1}, {"ational", 7}, {"alism", 8}, {"ation", 7}, {"ization", 6}, {"izer", 6},
		{"ator", 7}, {"iveness", 11}, {"fulness", 9}, {"ousness", 10}}
	amongStep3 = []amongEntry{{"icate", 4}, {"ative", 6}, {"alize", 3}, {"iciti", 4}, {"ical", 4},
		{"tional", 1}, {"ational", 2}, {"ful", 5}, {"ness", 5}}
	amongStep4 = []amongEntry{{"ic", 1}, {"ance", 1}, {"ence", 1}, {"able", 1}, {"ible", 1}, {"ate", 1},
		{"ive", 1}, {"ize", 1}, {"iti", 1}, {"al", 1}, {"ism", 1}, {"ion", 2}, {"er", 1}, {"ous", 1},
		{"ant", 1}, {"ent", 1}, {"ment", 1}, {"ement", 1}}
	amongStep5      = []amongEntry{{"e", 1}, {"l", 2}}
	amongException2 = []amongEntry{{"succeed", -1}, {"proceed", -1}, {"exceed", -1}, {"canning", -1},
		{"inning", -1}, {"earring", -1}, {"herring", -1}, {"outing", -1}}
	amongException1 = []amongEntry{{"andes", -1}, {"atlas", -1}, {"bias", -1}, {"cosmos", -1}, {"dying", 3},
		{"early", 9}, {"gently", 7}, {"howe", -1}, {"idly", 6}, {"lying", 4}, {"news", -1}, {"only", 10},
		{"singly", 11}, {"skies", 2}, {"skis", 1}, {"sky", -1}, {"tying", 5}, {"ugly", 8}}
)

// Groupings (englishStemmer.g_v, g_v_WXY, g_valid_LI) as predicates.
func isV(c uint16) bool {
	switch c {
	case 'a', 'e', 'i', 'o', 'u', 'y':
		return true
	}
	return false
}

func isVWXY(c uint16) bool {
	switch c {
	case 'Y', 'a', 'e', 'i', 'o', 'u', 'w', 'x', 'y':
		return true
	}
	return false
}

func isValidLI(c uint16) bool {
	switch c {
	case 'c', 'd', 'e', 'g', 'h', 'k', 'm', 'n', 'r', 't':
		return true
	}
	return false
}

// snowball is the state of org.tartarus.snowball.SnowballProgram plus the
// englishStemmer fields (B_Y_found, I_p1, I_p2).
type snowball struct {
	cur                             []uint16
	cursor, limit, limitB, bra, ket int
	yFound                          bool
	p1, p2                          int
}

func (z *snowball) inGrouping(g func(uint16) bool) bool {
	if z.cursor >= z.limit || !g(z.cur[z.cursor]) {
		return false
	}
	z.cursor++
	return true
}

func (z *snowball) outGrouping(g func(uint16) bool) bool {
	if z.cursor >= z.limit || g(z.cur[z.cursor]) {
		return false
	}
	z.cursor++
	return true
}

func (z *snowball) inGroupingB(g func(uint16) bool) bool {
	if z.cursor <= z.limitB || !g(z.cur[z.cursor-1]) {
		return false
	}
	z.cursor--
	return true
}

func (z *snowball) outGroupingB(g func(uint16) bool) bool {
	if z.cursor <= z.limitB || g(z.cur[z.cursor-1]) {
		return false
	}
	z.cursor--
	return true
}

func (z *snowball) eqS(s string) bool {
	if z.limit-z.cursor < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if z.cur[z.cursor+i] != uint16(s[i]) {
			return false
		}
	}
	z.cursor += len(s)
	return true
}

func (z *snowball) eqSB(s string) bool {
	if z.cursor-z.limitB < len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if z.cur[z.cursor-len(s)+i] != uint16(s[i]) {
			return false
		}
	}
	z.cursor -= len(s)
	return true
}

// findAmong is SnowballProgram.find_among: the longest table string that
// starts at the cursor wins; the cursor moves past it. ok is false when
// nothing matches (Java's return value 0).
func (z *snowball) findAmong(v []amongEntry) (result int, ok bool) {
	best := -1
	for k, e := range v {
		if len(e.s) > z.limit-z.cursor || (best >= 0 && len(e.s) <= len(v[best].s)) {
			continue
		}
		match := true
		for i := 0; i < len(e.s); i++ {
			if z.cur[z.cursor+i] != uint16(e.s[i]) {
				match = false
				break
			}
		}
		if match {
			best = k
		}
	}
	if best < 0 {
		return 0, false
	}
	z.cursor += len(v[best].s)
	return v[best].result, true
}

// findAmongB is SnowballProgram.find_among_b: the longest table string that
// ends at the cursor (and lies after limit_backward) wins.
func (z *snowball) findAmongB(v []amongEntry) (result int, ok bool) {
	best := -1
	for k, e := range v {
		if len(e.s) > z.cursor-z.limitB || (best >= 0 && len(e.s) <= len(v[best].s)) {
			continue
		}
		match := true
		base := z.cursor - len(e.s)
		for i := 0; i < len(e.s); i++ {
			if z.cur[base+i] != uint16(e.s[i]) {
				match = false
				break
			}
		}
		if match {
			best = k
		}
	}
	if best < 0 {
		return 0, false
	}
	z.cursor -= len(v[best].s)
	return v[best].result, true
}

// replaceS is SnowballProgram.replace_s, including its cursor adjustment.
// It edits the buffer in place (limit always equals its length).
func (z *snowball) replaceS(cBra, cKet int, s string) int {
	adjustment := len(s) - (cKet - cBra)
	if adjustment != 0 {
		oldLen := len(z.cur)
		for k := 0; k < adjustment; k++ {
			z.cur = append(z.cur, 0)
		}
		copy(z.cur[cKet+adjustment:], z.cur[cKet:oldLen])
		z.cur = z.cur[:oldLen+adjustment]
	}
	for i := 0; i < len(s); i++ {
		z.cur[cBra+i] = uint16(s[i])
	}
	z.limit += adjustment
	if z.cursor >= cKet {
		z.cursor += adjustment
	} else if z.cursor > cBra {
		z.cursor = cBra
	}
	return adjustment
}

func (z *snowball) sliceFrom(s string) { z.replaceS(z.bra, z.ket, s) }
func (z *snowball) sliceDel()          { z.replaceS(z.bra, z.ket, "") }

func (z *snowball) insert(cBra, cKet int, s string) {
	adjustment := z.replaceS(cBra, cKet, s)
	if cBra <= z.bra {
		z.bra += adjustment
	}
	if cBra <= z.ket {
		z.ket += adjustment
	}
}

// prelude: drop a leading apostrophe, mark consonant-y as 'Y'.
func (z *snowball) prelude() {
	z.yFound = false
	v1 := z.cursor
	z.bra = z.cursor
	if z.eqS("'") {
		z.ket = z.cursor
		z.sliceDel()
	}
	z.cursor = v1
	v2 := z.cursor
	z.bra = z.cursor
	if z.eqS("y") {
		z.ket = z.cursor
		z.sliceFrom("Y")
		z.yFound = true
	}
	z.cursor = v2
	v3 := z.cursor
	for {
		v4 := z.cursor
		found := false
		for {
			v5 := z.cursor
			if z.inGrouping(isV) {
				z.bra = z.cursor
				if z.eqS("y") {
					z.ket = z.cursor
					z.cursor = v5
					found = true
					break
				}
			}
			z.cursor = v5
			if z.cursor >= z.limit {
				break
			}
			z.cursor++
		}
		if !found {
			z.cursor = v4
			break
		}
		z.sliceFrom("Y")
		z.yFound = true
	}
	z.cursor = v3
}

// gopast moves the cursor just past the first character satisfying pass.
func (z *snowball) gopast(pass func() bool) bool {
	for {
		if pass() {
			return true
		}
		if z.cursor >= z.limit {
			return false
		}
		z.cursor++
	}
}

func (z *snowball) markRegions() {
	z.p1 = z.limit
	z.p2 = z.limit
	v1 := z.cursor
	defer func() { z.cursor = v1 }()
	v2 := z.cursor
	if _, ok := z.findAmong(amongRegions); !ok {
		z.cursor = v2
		if !z.gopast(func() bool { return z.inGrouping(isV) }) {
			return
		}
		if !z.gopast(func() bool { return z.outGrouping(isV) }) {
			return
		}
	}
	z.p1 = z.cursor
	if !z.gopast(func() bool { return z.inGrouping(isV) }) {
		return
	}
	if !z.gopast(func() bool { return z.outGrouping(isV) }) {
		return
	}
	z.p2 = z.cursor
}

func (z *snowball) shortv() bool {
	v1 := z.limit - z.cursor
	if z.outGroupingB(isVWXY) && z.inGroupingB(isV) && z.outGroupingB(isV) {
		return true
	}
	z.cursor = z.limit - v1
	if !z.outGroupingB(isV) || !z.inGroupingB(isV) {
		return false
	}
	return z.cursor <= z.limitB
}

func (z *snowball) r1() bool { return z.p1 <= z.cursor }
func (z *snowball) r2() bool { return z.p2 <= z.cursor }

// gopastVB is the backward "gopast v".
func (z *snowball) gopastVB() bool {
	for {
		if z.inGroupingB(isV) {
			return true
		}
		if z.cursor <= z.limitB {
			return false
		}
		z.cursor--
	}
}

func (z *snowball) step1a() bool {
	v1 := z.limit - z.cursor
	z.ket = z.cursor
	if _, ok := z.findAmongB(amongStep1aA); !ok {
		z.cursor = z.limit - v1
	} else {
		z.bra = z.cursor
		z.sliceDel()
	}
	z.ket = z.cursor
	r, ok := z.findAmongB(amongStep1aB)
	if !ok {
		return false
	}
	z.bra = z.cursor
	switch r {
	case 1:
		z.sliceFrom("ss")
	case 2:
		v2 := z.limit - z.cursor
		if c := z.cursor - 2; !(z.limitB > c || c > z.limit) {
			z.cursor = c
			z.sliceFrom("i")
		} else {
			z.cursor = z.limit - v2
			z.sliceFrom("ie")
		}
	case 3:
		if z.cursor <= z.limitB {
			return false
		}
		z.cursor--
		if !z.gopastVB() {
			return false
		}
		z.sliceDel()
	}
	return true
}

func (z *snowball) step1b() bool {
	z.ket = z.cursor
	r, ok := z.findAmongB(amongStep1bA)
	if !ok {
		return false
	}
	z.bra = z.cursor
	switch r {
	case 1:
		if !z.r1() {
			return false
		}
		z.sliceFrom("ee")
	case 2:
		v1 := z.limit - z.cursor
		if !z.gopastVB() {
			return false
		}
		z.cursor = z.limit - v1
		z.sliceDel()
		v3 := z.limit - z.cursor
		r2, ok := z.findAmongB(amongStep1bB)
		if !ok {
			return false
		}
		z.cursor = z.limit - v3
		switch r2 {
		case 1:
			c := z.cursor
			z.insert(z.cursor, z.cursor, "e")
			z.cursor = c
		case 2:
			z.ket = z.cursor
			if z.cursor <= z.limitB {
				return false
			}
			z.cursor--
			z.bra = z.cursor
			z.sliceDel()
		case 3:
			if z.cursor != z.p1 {
				return false
			}
			v4 := z.limit - z.cursor
			if !z.shortv() {
				return false
			}
			z.cursor = z.limit - v4
			c := z.cursor
			z.insert(z.cursor, z.cursor, "e")
			z.cursor = c
		}
	}
	return true
}

func (z *snowball) step1c() bool {
	z.ket = z.cursor
	v1 := z.limit - z.cursor
	if !z.eqSB("y") {
		z.cursor = z.limit - v1
		if !z.eqSB("Y") {
			return false
		}
	}
	z.bra = z.cursor
	if !z.outGroupingB(isV) {
		return false
	}
	if z.cursor <= z.limitB {
		return false
	}
	z.sliceFrom("i")
	return true
}

var step2Replacements = map[int]string{1: "tion", 2: "ence", 3: "ance", 4: "able", 5: "ent", 6: "ize",
	7: "ate", 8: "al", 9: "ful", 10: "ous", 11: "ive", 12: "ble", 14: "ful", 15: "less"}

func (z *snowball) step2() bool {
	z.ket = z.cursor
	r, ok := z.findAmongB(amongStep2)
	if !ok {
		return false
	}
	z.bra = z.cursor
	if !z.r1() {
		return false
	}
	switch r {
	case 13:
		if !z.eqSB("l") {
			return false
		}
		z.sliceFrom("og")
	case 16:
		if !z.inGroupingB(isValidLI) {
			return false
		}
		z.sliceDel()
	default:
		if s, ok := step2Replacements[r]; ok {
			z.sliceFrom(s)
		}
	}
	return true
}

func (z *snowball) step3() bool {
	z.ket = z.cursor
	r, ok := z.findAmongB(amongStep3)
	if !ok {
		return false
	}
	z.bra = z.cursor
	if !z.r1() {
		return false
	}
	switch r {
	case 1:
		z.sliceFrom("tion")
	case 2:
		z.sliceFrom("ate")
	case 3:
		z.sliceFrom("al")
	case 4:
		z.sliceFrom("ic")
	case 5:
		z.sliceDel()
	case 6:
		if !z.r2() {
			return false
		}
		z.sliceDel()
	}
	return true
}

func (z *snowball) step4() bool {
	z.ket = z.cursor
	r, ok := z.findAmongB(amongStep4)
	if !ok {
		return false
	}
	z.bra = z.cursor
	if !z.r2() {
		return false
	}
	switch r {
	case 1:
		z.sliceDel()
	case 2:
		v1 := z.limit - z.cursor
		if !z.eqSB("s") {
			z.cursor = z.limit - v1
			if !z.eqSB("t") {
				return false
			}
		}
		z.sliceDel()
	}
	return true
}

func (z *snowball) step5() bool {
	z.ket = z.cursor
	r, ok := z.findAmongB(amongStep5)
	if !ok {
		return false
	}
	z.bra = z.cursor
	switch r {
	case 1:
		v1 := z.limit - z.cursor
		if !z.r2() {
			z.cursor = z.limit - v1
			if !z.r1() {
				return false
			}
			v2 := z.limit - z.cursor
			if z.shortv() {
				return false
			}
			z.cursor = z.limit - v2
		}
		z.sliceDel()
	case 2:
		if !z.r2() || !z.eqSB("l") {
			return false
		}
		z.sliceDel()
	}
	return true
}

func (z *snowball) exception2() bool {
	z.ket = z.cursor
	if _, ok := z.findAmongB(amongException2); !ok {
		return false
	}
	z.bra = z.cursor
	return z.cursor <= z.limitB
}

var exception1Replacements = map[int]string{1: "ski", 2: "sky", 3: "die", 4: "lie", 5: "tie", 6: "idl",
	7: "gentl", 8: "ugli", 9: "earli", 10: "onli", 11: "singl"}

func (z *snowball) exception1() bool {
	z.bra = z.cursor
	r, ok := z.findAmong(amongException1)
	if !ok {
		return false
	}
	z.ket = z.cursor
	if z.cursor < z.limit {
		return false
	}
	if s, ok := exception1Replacements[r]; ok {
		z.sliceFrom(s)
	}
	return true
}

func (z *snowball) postlude() {
	if !z.yFound {
		return
	}
	for {
		v1 := z.cursor
		found := false
		for {
			v2 := z.cursor
			z.bra = z.cursor
			if z.eqS("Y") {
				z.ket = z.cursor
				z.cursor = v2
				found = true
				break
			}
			z.cursor = v2
			if z.cursor >= z.limit {
				break
			}
			z.cursor++
		}
		if !found {
			z.cursor = v1
			return
		}
		z.sliceFrom("y")
	}
}

// stem is englishStemmer.stem.
func (z *snowball) stem() {
	v1 := z.cursor
	if z.exception1() {
		return
	}
	z.cursor = v1
	if c := z.cursor + 3; 0 > c || c > z.limit {
		return // fewer than three characters: unchanged
	}
	z.cursor = v1
	v3 := z.cursor
	z.prelude()
	z.cursor = v3
	v4 := z.cursor
	z.markRegions()
	z.cursor = v4
	z.limitB = z.cursor
	z.cursor = z.limit
	v5 := z.limit - z.cursor
	z.step1a()
	z.cursor = z.limit - v5
	v6 := z.limit - z.cursor
	if !z.exception2() {
		z.cursor = z.limit - v6
		for _, step := range [...]func() bool{z.step1b, z.step1c, z.step2, z.step3, z.step4, z.step5} {
			v := z.limit - z.cursor
			step()
			z.cursor = z.limit - v
		}
	}
	z.cursor = z.limitB
	v13 := z.cursor
	z.postlude()
	z.cursor = v13
}

// stemUnits stems a word given as UTF-16 code units, in place, and returns
// the stem's units.
func stemUnits(word []uint16) []uint16 {
	z := snowball{cur: word, limit: len(word), ket: len(word)}
	z.stem()
	return z.cur[:z.limit]
}

// appendUnits appends the UTF-16 code units of s to dst (what Java holds
// for the string).
func appendUnits(dst []uint16, s string) []uint16 {
	for _, r := range s {
		dst = utf16.AppendRune(dst, r)
	}
	return dst
}

// Stem returns the Snowball English stem of word exactly as Meteor 1.5's
// bundled englishStemmer computes it. Meteor lowercases text before
// stemming; Stem does not.
func Stem(word string) string {
	return string(utf16.Decode(stemUnits(appendUnits(nil, word))))
}
