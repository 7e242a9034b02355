package meteor

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// synonymDict reproduces edu.cmu.meteor.aligner.SynonymDictionary: WordNet
// 3.0 synsets per word (english.synsets), irregular forms mapped to their
// base forms (english.exceptions), and the WordNet morphological rules of
// SynonymDictionary.morph. english.relations is never loaded by Meteor 1.5
// (LOAD_DATA is false in the constructor), so it is not embedded.
//
// english.synsets alternates a word line and a line of synset offsets and is
// sorted by word in byte order, so lookups binary-search the embedded text
// through an index of word-line offsets instead of building a map of its
// 147,306 entries at start-up.
type synonymDict struct {
	text string // english.synsets
	// words holds per word line its byte offset (low 32 bits) under the
	// word's bytes 2–5 (high 32 bits, see window), so that most binary
	// search steps compare integers instead of touching the text.
	words []uint64
	// buckets[k] is the first word whose first two bytes (0 for a missing
	// second byte) make k = b0<<8|b1; it narrows each binary search.
	buckets []uint32
	toBases map[string][]string
}

// window packs bytes 2–5 of a word big-endian, 0 past its end (a word line
// ends at '\n' when line is set). Words sort by window within a bucket, and
// different windows order two words correctly; equal ones need the text.
func window(w string, line bool) uint32 {
	var v uint32
	ended := false
	for k := 2; k < 6; k++ {
		var c byte
		if !ended && k < len(w) && !(line && w[k] == '\n') {
			c = w[k]
		} else {
			ended = true
		}
		v = v<<8 | uint32(c)
	}
	if line && (len(w) < 2 || w[0] == '\n' || w[1] == '\n') {
		return 0
	}
	return v
}

// bucketKey is the two-byte prefix key of a word (0 for a missing byte).
func bucketKey(w string) int {
	k := int(w[0]) << 8
	if len(w) > 1 {
		k |= int(w[1])
	}
	return k
}

func newSynonymDict(synsets, exceptions string) (*synonymDict, error) {
	d := &synonymDict{text: synsets, toBases: make(map[string][]string, 6000)}
	// One pass over the text: every other line starts a word.
	d.words = make([]uint64, 0, 150000)
	for off := 0; off < len(synsets); {
		d.words = append(d.words, uint64(window(synsets[off:], true))<<32|uint64(off))
		nl := strings.IndexByte(synsets[off:], '\n')
		if nl < 0 {
			return nil, fmt.Errorf("english.synsets: word %q has no synset line", synsets[off:])
		}
		off += nl + 1
		nl = strings.IndexByte(synsets[off:], '\n')
		if nl < 0 {
			off = len(synsets)
		} else {
			off += nl + 1
		}
	}

	d.buckets = make([]uint32, 1<<16+1)
	next := 0
	for i, entry := range d.words {
		line := synsets[uint32(entry):]
		if line[0] == '\n' {
			return nil, fmt.Errorf("english.synsets: empty word line")
		}
		k := int(line[0]) << 8
		if line[1] != '\n' {
			k |= int(line[1])
		}
		for ; next <= k; next++ {
			d.buckets[next] = uint32(i)
		}
	}
	for ; next <= 1<<16; next++ {
		d.buckets[next] = uint32(len(d.words))
	}

	// Exceptions alternate a base line and a line of inflected forms; every
	// form maps to all bases listing it, in file order.
	var forms []string
	for rest := exceptions; rest != ""; {
		var base, line string
		base, rest, _ = strings.Cut(rest, "\n")
		line, rest, _ = strings.Cut(rest, "\n")
		for _, form := range tokenize(line, forms[:0]) {
			d.toBases[form] = append(d.toBases[form], base)
		}
	}
	return d, nil
}

// checkSorted verifies the binary-search precondition (used by tests; the
// embedded file is sorted).
func (d *synonymDict) checkSorted() error {
	for i := 1; i < len(d.words); i++ {
		if d.word(i-1) >= d.word(i) {
			return fmt.Errorf("english.synsets: words not sorted at %q", d.word(i))
		}
	}
	return nil
}

// word returns the i-th word of english.synsets.
func (d *synonymDict) word(i int) string {
	off := int(uint32(d.words[i]))
	nl := strings.IndexByte(d.text[off:], '\n')
	return d.text[off : off+nl]
}

// find returns the index of word in english.synsets or -1.
func (d *synonymDict) find(word string) int {
	if word == "" {
		return -1
	}
	k := bucketKey(word)
	lo, hi := int(d.buckets[k]), int(d.buckets[k+1])
	win := window(word, false)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := 0
		if w := uint32(d.words[mid] >> 32); w < win {
			c = -1
		} else if w > win {
			c = 1
		} else {
			c = d.compare(mid, word)
		}
		switch {
		case c == 0:
			return mid
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// compare compares the i-th word with w in byte order without first
// locating the end of its line: the terminating newline sorts below every
// character a word line can hold.
func (d *synonymDict) compare(i int, w string) int {
	t := d.text[uint32(d.words[i]):]
	for k := 0; ; k++ {
		tc := byte('\n')
		if k < len(t) {
			tc = t[k]
		}
		if k == len(w) {
			if tc == '\n' {
				return 0
			}
			return 1
		}
		if tc == '\n' {
			return -1
		}
		if tc != w[k] {
			if tc < w[k] {
				return -1
			}
			return 1
		}
	}
}

func (d *synonymDict) has(word string) bool { return d.find(word) >= 0 }

// appendSynsets appends the synset offsets of word (SynonymDictionary.
// getSynSets; none when the word is unknown).
func (d *synonymDict) appendSynsets(dst []int32, word string) []int32 {
	i := d.find(word)
	if i < 0 {
		return dst
	}
	off := int(uint32(d.words[i])) + len(d.word(i)) + 1
	line := d.text[off:]
	if nl := strings.IndexByte(line, '\n'); nl >= 0 {
		line = line[:nl]
	}
	var v int32
	inNum := false
	for j := 0; j < len(line); j++ {
		c := line[j]
		if c >= '0' && c <= '9' {
			v = v*10 + int32(c-'0')
			inNum = true
		} else if inNum {
			dst = append(dst, v)
			v, inNum = 0, false
		}
	}
	if inNum {
		dst = append(dst, v)
	}
	return dst
}

// synsetKey returns the sorted, de-duplicated union of getSynSets(word) and
// getStemSynSets(word): the set SynonymMatcher builds for each word. Two
// words are synonyms when their sets intersect.
func (d *synonymDict) synsetKey(word string) []int32 {
	set := d.appendSynsets(nil, word)
	if bases, ok := d.toBases[word]; ok {
		for _, base := range bases {
			set = d.appendSynsets(set, base)
		}
	} else {
		set = d.appendSynsets(set, d.morph(word))
	}
	if len(set) == 0 {
		return nil
	}
	slices.Sort(set)
	return slices.Compact(set)
}

// WordNet 3 detachment rules (SynonymDictionary.sufx / addr): noun, verb,
// then adjective suffixes with their replacement endings.
var (
	morphSuffix = [...]string{"s", "ses", "xes", "zes", "ches", "shes", "men", "ies",
		"s", "ies", "es", "es", "ed", "ed", "ing", "ing", "er", "est", "er", "est"}
	morphEnding = [...]string{"", "s", "x", "z", "ch", "sh", "man", "y",
		"", "y", "e", "", "e", "", "e", "", "", "", "e", "e"}
)

// morph is SynonymDictionary.morph: the first rule whose suffix matches and
// whose result is a WordNet word gives the base form; "" when none does.
// The Java code's "ful" bookkeeping can never take effect (no suffix
// matches a word ending in "ful"), and its reference comparison
// retval != tmp is true exactly when the suffix matched.
func (d *synonymDict) morph(word string) string {
	if strings.HasSuffix(word, "ss") || utf16Len(word) <= 2 {
		return word
	}
	end := ""
	if strings.HasSuffix(word, "ful") {
		end = "ful"
	}
	for i, suf := range morphSuffix {
		if !strings.HasSuffix(word, suf) {
			continue
		}
		cand := word[:len(word)-len(suf)] + morphEnding[i]
		if d.has(cand) {
			return cand + end
		}
	}
	return ""
}

// intersects reports whether two sorted synset lists share an element.
func intersects(a, b []int32) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

// loadFunctionWords reads english.words: one word per line (the Aligner's
// function-word HashSet).
func loadFunctionWords(text string) map[string]bool {
	m := make(map[string]bool)
	for _, line := range bytes.Split([]byte(text), []byte("\n")) {
		if len(line) > 0 {
			m[string(line)] = true
		}
	}
	return m
}
