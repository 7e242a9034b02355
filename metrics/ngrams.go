package metrics

import (
	"slices"
	"strings"
	"unicode"

	"github.com/captionctl/captionctl/internal/parallel"
)

// maxN is the longest n-gram BLEU and CIDEr-D count.
const maxN = 4

// gramKey identifies an n-gram by its token ids, zero-padded (ids start at 1).
type gramKey [maxN]uint32

func (k *gramKey) hash() uint64 {
	h := uint64(k[0])*0x9E3779B97F4A7C15 ^ uint64(k[1])*0xC2B2AE3D27D4EB4F
	h ^= uint64(k[2])*0x165667B19E3779F9 ^ uint64(k[3])*0x27D4EB2F165667C5
	return h ^ h>>29
}

// gramUse is one distinct n-gram of a caption: its index in the image's
// table of n-grams and its count in the caption.
type gramUse struct {
	local int32
	count int32
}

// caption is a tokenized caption prepared for scoring.
type caption struct {
	words []uint32  // token ids of strings.Fields (BLEU, CIDEr)
	split []uint32  // token ids of strings.Split(s, " ") (ROUGE-L)
	grams []gramUse // distinct 1..4-grams in order of first occurrence, by n
}

// imageGram is one distinct n-gram among an image's candidate and references.
type imageGram struct {
	key    gramKey
	n      uint8
	inRefs bool
	maxRef int32 // largest count in one reference (BLEU clipping)
	df     int32 // images whose references contain it (CIDEr-D)
}

// image is one prepared image: its candidate, its references and the table
// of their distinct n-grams.
type image struct {
	cand  caption
	refs  []caption
	grams []imageGram
}

// vocab interns tokens so the metrics compare small integers, not strings.
// Token ids start at 1 and are handed out from one arena.
type vocab struct {
	ids   map[string]uint32
	arena []uint32
}

func newVocab() *vocab { return &vocab{ids: make(map[string]uint32)} }

func (v *vocab) id(w string) uint32 {
	id, ok := v.ids[w]
	if !ok {
		id = uint32(len(v.ids) + 1)
		v.ids[w] = id
	}
	return id
}

// alloc returns n ids of arena space.
func (v *vocab) alloc(n int) []uint32 {
	if cap(v.arena)-len(v.arena) < n {
		v.arena = make([]uint32, 0, max(1<<16, n))
	}
	start := len(v.arena)
	v.arena = v.arena[:start+n]
	return v.arena[start : start+n : start+n]
}

func (v *vocab) words(words []string) []uint32 {
	ids := v.alloc(len(words))
	for i, w := range words {
		ids[i] = v.id(w)
	}
	return ids
}

// splitCaption tokenizes s as the toolkit's BLEU and CIDEr (str.split(): any
// whitespace run) and ROUGE-L (str.split(" ")) do. The two agree unless the
// caption is empty or has whitespace other than single spaces — such as the
// no-break space the PTB tokenizer puts in "3 1/2".
func splitCaption(v *vocab, s string) caption {
	if singleSpaced(s) {
		ids := v.alloc(strings.Count(s, " ") + 1)
		i := 0
		for w := range strings.SplitSeq(s, " ") {
			ids[i] = v.id(w)
			i++
		}
		return caption{words: ids, split: ids}
	}
	fields := strings.FieldsFunc(s, isPySpace)
	cp := caption{words: v.words(fields)}
	// Equal iff the fields are joined by exactly one space each.
	if len(fields) > 0 && len(s) == sumLen(fields)+len(fields)-1 && strings.Count(s, " ") == len(fields)-1 {
		cp.split = cp.words
	} else {
		cp.split = v.words(strings.Split(s, " "))
	}
	return cp
}

// singleSpaced reports whether s is printable ASCII words joined by single
// spaces, the form of nearly every tokenized caption, for which both splits
// are plain cuts at the spaces.
func singleSpaced(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				return false
			}
			prevSpace = true
			continue
		}
		if c < 0x21 || c > 0x7e {
			return false
		}
		prevSpace = false
	}
	return true
}

// isPySpace is Python 3's str.isspace for one character: Go's unicode.IsSpace
// plus the ASCII separators U+001C..U+001F.
func isPySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func sumLen(ws []string) int {
	n := 0
	for _, w := range ws {
		n += len(w)
	}
	return n
}

// gramTable is a small open-addressing hash table from n-grams to their index
// in one image's table; it is reused across images by one goroutine.
type gramTable struct {
	slots  []int32 // index+1 into grams, 0 = empty
	mask   uint64
	seenAt []int32 // per image n-gram: position+1 in the current caption's list
	// Scratch for indexGrams, copied out at the right size: sizing by the
	// upper bound would touch twice the memory.
	grams []imageGram
	uses  []gramUse
}

func (t *gramTable) reset(capacity int) {
	size := 64
	for size < 2*capacity {
		size *= 2
	}
	if cap(t.slots) < size {
		t.slots = make([]int32, size)
	} else {
		t.slots = t.slots[:size]
		clear(t.slots)
	}
	t.mask = uint64(size - 1)
}

// indexGrams fills in the image's n-gram table and each caption's n-gram
// list, in the insertion order of the toolkit's precook (n ascending, then
// position), so that sums over them run in the toolkit's order.
func (im *image) indexGrams(t *gramTable) {
	total := len(im.cand.words) * maxN
	for _, r := range im.refs {
		total += len(r.words) * maxN
	}
	t.reset(total)
	if cap(t.seenAt) < total {
		t.seenAt = make([]int32, total)
		t.grams = make([]imageGram, 0, total)
		t.uses = make([]gramUse, 0, total)
	}
	seenAt := t.seenAt[:total]
	im.grams = t.grams[:0]
	uses := t.uses[:0] // backing store of every caption's list
	add := func(cp *caption, isRef bool) {
		cp.grams = uses[len(uses):len(uses):cap(uses)]
		for n := 1; n <= maxN; n++ {
			for i := 0; i+n <= len(cp.words); i++ {
				var key gramKey
				copy(key[:], cp.words[i:i+n])
				h := key.hash() & t.mask
				var local int32
				for {
					s := t.slots[h]
					if s == 0 {
						local = int32(len(im.grams))
						im.grams = append(im.grams, imageGram{key: key, n: uint8(n)})
						t.slots[h] = local + 1
						break
					}
					if im.grams[s-1].key == key {
						local = s - 1
						break
					}
					h = (h + 1) & t.mask
				}
				if p := seenAt[local]; p > 0 {
					cp.grams[p-1].count++
				} else {
					cp.grams = append(cp.grams, gramUse{local: local, count: 1})
					seenAt[local] = int32(len(cp.grams))
				}
			}
		}
		uses = uses[:len(uses)+len(cp.grams)]
		for _, g := range cp.grams {
			seenAt[g.local] = 0
			if isRef {
				ig := &im.grams[g.local]
				ig.inRefs = true
				ig.maxRef = max(ig.maxRef, g.count)
			}
		}
	}
	add(&im.cand, false)
	for i := range im.refs {
		add(&im.refs[i], true)
	}
	im.grams = slices.Clone(im.grams)
	owned := slices.Clone(uses)
	off := 0
	rehome := func(cp *caption) {
		n := len(cp.grams)
		cp.grams = owned[off : off+n : off+n]
		off += n
	}
	rehome(&im.cand)
	for i := range im.refs {
		rehome(&im.refs[i])
	}
}

// prepare tokenizes and indexes every image: token interning is sequential
// (one small map), n-gram indexing runs in parallel.
func prepare(images []Image) []image {
	v := newVocab()
	prepared := make([]image, len(images))
	for i, im := range images {
		prepared[i].cand = splitCaption(v, im.Candidate)
		prepared[i].refs = make([]caption, len(im.Refs))
		for j, r := range im.Refs {
			prepared[i].refs[j] = splitCaption(v, r)
		}
	}
	parallel.For(len(prepared), func() func(int) {
		var t gramTable
		return func(i int) { prepared[i].indexGrams(&t) }
	})
	return prepared
}
