package meteor

import (
	"math/bits"
	"slices"
	"unsafe"
)

// This file reproduces edu.cmu.meteor.aligner.Aligner.align: candidate
// matches from each module (ExactMatcher, StemMatcher, SynonymMatcher,
// ParaphraseMatcher), the fixed one-to-one matches, the beam search of
// Aligner.resolve with PartialAlignment and Constants.PARTIAL_COMPARE_TOTAL,
// and the per-module content/function totals. Line 1 is the hypothesis
// ("test"), line 2 the reference, as in MeteorScorer.

// Module indices: a match's stage is its module's position in the module
// list, and Meteor's English modules always come in this order.
const (
	moduleExact = iota
	moduleStem
	moduleSynonym
	moduleParaphrase
	numModules
)

// beamSize is Constants.DEFAULT_BEAM_SIZE.
const beamSize = 40

// searchWeights are the module weights the aligner ranks partial alignments
// with: MeteorScorer.loadConfiguration replaces the scoring weights by
// exact 1.0 and 0.5 for every other module ("best weights for evaluation").
var searchWeights = [numModules]float64{1.0, 0.5, 0.5, 0.5}

// match is edu.cmu.meteor.aligner.Match: reference span [start,
// start+length) aligned to hypothesis span [matchStart, matchStart+
// matchLength) by module.
type match struct {
	start, length, matchStart, matchLength int
	module                                 int
}

// stage is edu.cmu.meteor.aligner.Stage: all candidate matches grouped by
// reference start index (in the order the matchers found them) and how many
// matches cover each word.
type stage struct {
	all      []match
	byStart  [][]int32 // indices into all
	coverage []int32   // line1 then line2 (offset n1)
	fixed    []int32   // per reference index: the definite match starting there, or -1
}

// partial is edu.cmu.meteor.aligner.PartialAlignment. Instead of a copied
// Match[] per path it keeps the matches it chose as a linked list shared
// with its ancestors (the definite matches are in stage.fixed), and the
// used words of both lines as one bit set (line 1 at bit i, line 2 at bit
// n1+j), so that extending a path copies only a few words.
type partial struct {
	used               []uint64
	chain              int32 // index into aligner.chain, -1 when empty
	matches1, matches2 int   // weighted, truncated to int by Java's compound assignment
	chunks             int
	idx                int
	lastMatchEnd       int
	distance           int
	key                uint64 // sort key, see sortPaths
	// A lazy path is a new path not built yet: its numbers are set, but
	// its bit set and chain are still those of parent plus lazyMatch.
	// Paths are built lazily once a step already has beamSize entries:
	// only the best beamSize entries survive a step, so when a position
	// offers many matches most of them are never built.
	lazy      bool
	parent    *partial
	lazyMatch int32
}

// chainLink is one chosen match of a path and the link to the previous one.
type chainLink struct {
	match, prev int32
}

// alignment is the part of edu.cmu.meteor.aligner.Alignment the scorer reads.
type alignment struct {
	contentMatches1, contentMatches2   [numModules]int
	functionMatches1, functionMatches2 [numModules]int
	numChunks                          int
}

// aligner holds one goroutine's caches and reusable buffers (Scorer keeps
// them in a sync.Pool, so the hot path takes no locks).
type aligner struct {
	s     *Scorer
	local map[string]word // first-level word cache

	tokens              []string
	testWords, refWords []word
	syn                 synonymIndex

	st       stage
	n1       int // hypothesis length of the current alignment
	usedLen  int // words per bit set
	pathPool []*partial
	paths    []*partial
	next     []*partial
	dropped  []*partial
	keys     []uint64
	sortTmp  []*partial
	taken    []bool
	chain    []chainLink
	best     []int32
	para1    []int32
	para2    []int32
}

func newAligner(s *Scorer) *aligner {
	return &aligner{s: s, local: make(map[string]word, 1024)}
}

func (a *aligner) newPartial() *partial {
	var p *partial
	if k := len(a.pathPool); k > 0 {
		p = a.pathPool[k-1]
		a.pathPool = a.pathPool[:k-1]
	} else {
		p = new(partial)
	}
	if cap(p.used) < a.usedLen {
		p.used = make([]uint64, a.usedLen)
	}
	p.used = p.used[:a.usedLen]
	return p
}

// clone is the PartialAlignment copy constructor.
func (a *aligner) clone(src *partial) *partial {
	p := a.newPartial()
	copy(p.used, src.used)
	p.chain = src.chain
	p.matches1, p.matches2 = src.matches1, src.matches2
	p.chunks, p.idx, p.lastMatchEnd, p.distance = src.chunks, src.idx, src.lastMatchEnd, src.distance
	return p
}

func (p *partial) bit(i int) bool { return p.used[i>>6]&(1<<(uint(i)&63)) != 0 }
func (p *partial) set(i int)      { p.used[i>>6] |= 1 << (uint(i) & 63) }

// isUsed is PartialAlignment.isUsed.
func (a *aligner) isUsed(p *partial, m *match) bool {
	for i := 0; i < m.length; i++ {
		if p.bit(a.n1 + m.start + i) {
			return true
		}
	}
	for i := 0; i < m.matchLength; i++ {
		if p.bit(m.matchStart + i) {
			return true
		}
	}
	return false
}

// setUsed is PartialAlignment.setUsed(m, true).
func (a *aligner) setUsed(p *partial, m *match) {
	for i := 0; i < m.length; i++ {
		p.set(a.n1 + m.start + i)
	}
	for i := 0; i < m.matchLength; i++ {
		p.set(m.matchStart + i)
	}
}

// addMatch records m in the stage (Stage.matches, line1/line2Coverage).
func (a *aligner) addMatch(m match, n1 int) {
	st := &a.st
	st.byStart[m.start] = append(st.byStart[m.start], int32(len(st.all)))
	st.all = append(st.all, m)
	for k := 0; k < m.matchLength; k++ {
		st.coverage[m.matchStart+k]++
	}
	for k := 0; k < m.length; k++ {
		st.coverage[n1+m.start+k]++
	}
}

// comparePartial is Constants.PARTIAL_COMPARE_TOTAL: more (weighted)
// matches first, then fewer chunks, then smaller distance.
func comparePartial(x, y *partial) int {
	if d := (y.matches1 + y.matches2) - (x.matches1 + x.matches2); d != 0 {
		if d > 0 {
			return 1
		}
		return -1
	}
	if d := x.chunks - y.chunks; d != 0 {
		return d
	}
	return x.distance - y.distance
}

// align is Aligner.align(Alignment) for hypothesis words w1 and reference
// words w2. a.syn must index w1.
func (a *aligner) align(w1, w2 []word) alignment {
	n1, n2 := len(w1), len(w2)
	st := &a.st
	st.all = st.all[:0]
	if cap(st.byStart) < n2 {
		st.byStart = make([][]int32, n2)
	}
	st.byStart = st.byStart[:n2]
	for j := range st.byStart {
		st.byStart[j] = st.byStart[j][:0]
	}
	st.coverage = slices.Grow(st.coverage[:0], n1+n2)[:n1+n2]
	clear(st.coverage)

	// Identical sentences (by hash keys) need exact matches only; this
	// prevents beam search errors (Aligner.align).
	modsUsed := a.s.numModules
	if n1 == n2 {
		same := true
		for i := range w1 {
			if w1[i].hash != w2[i].hash {
				same = false
				break
			}
		}
		if same {
			modsUsed = 1
		}
	}

	for mod := 0; mod < modsUsed; mod++ {
		switch mod {
		case moduleExact:
			for j := 0; j < n2; j++ {
				for i := 0; i < n1; i++ {
					if w1[i].hash == w2[j].hash {
						a.addMatch(match{j, 1, i, 1, mod}, n1)
					}
				}
			}
		case moduleStem:
			for j := 0; j < n2; j++ {
				for i := 0; i < n1; i++ {
					if w1[i].stem == w2[j].stem && w1[i].hash != w2[j].hash {
						a.addMatch(match{j, 1, i, 1, mod}, n1)
					}
				}
			}
		case moduleSynonym:
			for j := 0; j < n2; j++ {
				if len(w2[j].syn) == 0 {
					continue
				}
				if a.syn.ok {
					for set := a.syn.positions(w2[j].syn); set != 0; set &= set - 1 {
						i := bits.TrailingZeros64(set)
						if w1[i].hash != w2[j].hash {
							a.addMatch(match{j, 1, i, 1, mod}, n1)
						}
					}
					continue
				}
				for i := 0; i < n1; i++ {
					if w1[i].hash != w2[j].hash && intersects(w1[i].syn, w2[j].syn) {
						a.addMatch(match{j, 1, i, 1, mod}, n1)
					}
				}
			}
		case moduleParaphrase:
			a.matchParaphrases(w1, w2, mod)
		}
	}

	// One-to-one, non-overlapping matches are definite.
	a.n1 = n1
	a.usedLen = (n1 + n2 + 63) / 64
	a.chain = a.chain[:0]
	st.fixed = slices.Grow(st.fixed[:0], n2)[:n2]
	start := a.newPartial()
	clear(start.used)
	start.chain, start.matches1, start.matches2 = -1, 0, 0
	start.chunks, start.idx, start.lastMatchEnd, start.distance = 0, 0, -1, 0
	for j := 0; j < n2; j++ {
		st.fixed[j] = -1
		if len(st.byStart[j]) != 1 {
			continue
		}
		mi := st.byStart[j][0]
		m := &st.all[mi]
		overlap := false
		for k := 0; k < m.length; k++ {
			if st.coverage[n1+j+k] != 1 {
				overlap = true
			}
		}
		for k := 0; k < m.matchLength; k++ {
			if st.coverage[m.matchStart+k] != 1 {
				overlap = true
			}
		}
		if !overlap {
			st.fixed[j] = mi
			a.setUsed(start, m)
		}
	}

	best := a.resolve(start, n2)

	// The best path's matches: the definite ones plus its chain.
	matches := append(a.best[:0], st.fixed...)
	for l := best.chain; l >= 0; l = a.chain[l].prev {
		matches[st.all[a.chain[l].match].start] = a.chain[l].match
	}
	a.best = matches
	a.pathPool = append(a.pathPool, best)

	// Sum matches by module and word type.
	var al alignment
	for _, mi := range matches {
		if mi < 0 {
			continue
		}
		m := &st.all[mi]
		for k := 0; k < m.matchLength; k++ {
			if w1[m.matchStart+k].function {
				al.functionMatches1[m.module]++
			} else {
				al.contentMatches1[m.module]++
			}
		}
		for k := 0; k < m.length; k++ {
			if w2[m.start+k].function {
				al.functionMatches2[m.module]++
			} else {
				al.contentMatches2[m.module]++
			}
		}
	}
	al.numChunks = a.countChunks(matches)
	return al
}

// matchParaphrases is ParaphraseMatcher.match.
func (a *aligner) matchParaphrases(w1, w2 []word, mod int) {
	t := a.s.para
	n1, n2 := len(w1), len(w2)
	a.para1 = a.para1[:0]
	for _, w := range w1 {
		a.para1 = append(a.para1, w.para)
	}
	a.para2 = a.para2[:0]
	for _, w := range w2 {
		a.para2 = append(a.para2, w.para)
	}
	line1, line2 := a.para1, a.para2
	// Paraphrases in line 1 of reference phrases in line 2.
	for j := 0; j < n2; j++ {
		t.paths(line2, j, func(length int, p int32) {
			words := t.paraphrases[p]
			for i := 0; i < n1; i++ {
				if phraseAt(line1, i, words) {
					a.addMatch(match{j, length, i, len(words), mod}, n1)
				}
			}
		})
	}
	// Paraphrases in line 2 of reference phrases in line 1.
	for i := 0; i < n1; i++ {
		t.paths(line1, i, func(length int, p int32) {
			words := t.paraphrases[p]
			for j := 0; j < n2; j++ {
				if phraseAt(line2, j, words) {
					a.addMatch(match{j, len(words), i, length, mod}, n1)
				}
			}
		})
	}
}

// phraseAt reports whether words occur in line starting at i.
func phraseAt(line []int32, i int, words []int32) bool {
	if i+len(words) > len(line) {
		return false
	}
	for k, w := range words {
		if line[i+k] != w {
			return false
		}
	}
	return true
}

// resolve is Aligner.resolve: a left-to-right beam search over reference
// positions. Its quirks are kept because they decide ties: weighted match
// counts are truncated to int at every addition (Java's int += double), and
// when a position has several candidate matches the distance of each
// candidate is added to the *parent* path, so later candidates and the
// "skip" path inherit the distances of the earlier ones.
func (a *aligner) resolve(start *partial, n2 int) *partial {
	st := &a.st
	n1 := a.n1
	paths := a.paths[:0]
	next := a.next[:0]
	next = append(next, start)
	dropped := a.dropped[:0]
	for current := 0; current <= n2; current++ {
		paths, next = next, paths[:0]
		limit := min(beamSize, len(paths))
		a.sortPaths(paths, limit)
		a.buildLazy(paths[:limit], paths[limit:])
		for rank := 0; rank < limit; rank++ {
			path := paths[rank]
			// Path is complete: close the last chunk.
			if current == n2 {
				if path.lastMatchEnd != -1 {
					path.chunks++
				}
				next = append(next, path)
				continue
			}
			// Current reference word is in use: either inside a chosen
			// match or at the start of a definite one (a chosen match
			// never starts at a used word).
			if path.bit(n1 + current) {
				if current < path.idx {
					next = append(next, path)
				} else if path.idx < n2 && st.fixed[path.idx] >= 0 {
					m := &st.all[st.fixed[path.idx]]
					path.matches1 = int(float64(path.matches1) + float64(m.matchLength)*searchWeights[m.module])
					path.matches2 = int(float64(path.matches2) + float64(m.length)*searchWeights[m.module])
					if path.lastMatchEnd != -1 && m.matchStart != path.lastMatchEnd {
						path.chunks++
					}
					path.idx = m.start + m.length
					path.lastMatchEnd = m.matchStart + m.matchLength
					path.distance += abs(m.start - m.matchStart)
					next = append(next, path)
				} else {
					// A used word that starts no recorded match: Java drops
					// the path (unreachable with well-formed matches).
					dropped = append(dropped, path)
				}
				continue
			}
			// Extend with every usable match starting here.
			for _, mi := range st.byStart[current] {
				m := &st.all[mi]
				if a.isUsed(path, m) {
					continue
				}
				var np *partial
				if len(next) < beamSize {
					np = a.clone(path)
					a.setUsed(np, m)
					a.chain = append(a.chain, chainLink{mi, np.chain})
					np.chain = int32(len(a.chain) - 1)
				} else {
					np = a.newPartial()
					np.lazy, np.parent, np.lazyMatch = true, path, mi
					np.matches1, np.matches2 = path.matches1, path.matches2
					np.chunks, np.idx, np.lastMatchEnd, np.distance = path.chunks, path.idx, path.lastMatchEnd, path.distance
				}
				np.matches1 = int(float64(np.matches1) + float64(m.matchLength)*searchWeights[m.module])
				np.matches2 = int(float64(np.matches2) + float64(m.length)*searchWeights[m.module])
				if np.lastMatchEnd != -1 && m.matchStart != np.lastMatchEnd {
					np.chunks++
				}
				np.idx = m.start + m.length
				np.lastMatchEnd = m.matchStart + m.matchLength
				path.distance += abs(m.start - m.matchStart) // sic: the parent's distance
				next = append(next, np)
			}
			// Or skip this reference word.
			if path.lastMatchEnd != -1 {
				path.chunks++
				path.lastMatchEnd = -1
			}
			path.idx++
			next = append(next, path)
		}
		if len(next) == 0 {
			// "Warning: unexpected conditions": keep the best old path.
			next = append(next, paths[0])
			dropped = slices.DeleteFunc(dropped, func(p *partial) bool { return p == paths[0] })
		}
		a.pathPool = append(a.pathPool, dropped...)
		dropped = dropped[:0]
	}
	a.sortPaths(next, 1)
	a.buildLazy(next[:1], next[1:])
	best := next[0]
	a.paths, a.next, a.dropped = paths[:0], next[:0], dropped[:0]
	return best
}

// buildLazy builds the lazy paths among the survivors of a step, then
// returns the other paths to the pool. A parent has only had its numbers
// altered since its lazy children were proposed, never its bit set or
// chain, so they can still be copied.
func (a *aligner) buildLazy(survivors, others []*partial) {
	for _, p := range survivors {
		if !p.lazy {
			continue
		}
		copy(p.used, p.parent.used)
		a.setUsed(p, &a.st.all[p.lazyMatch])
		a.chain = append(a.chain, chainLink{p.lazyMatch, p.parent.chain})
		p.chain = int32(len(a.chain) - 1)
		p.lazy, p.parent = false, nil
	}
	for _, p := range others {
		p.lazy, p.parent = false, nil
	}
	a.pathPool = append(a.pathPool, others...)
}

// sortPaths has the effect of Collections.sort(paths, PARTIAL_COMPARE_TOTAL)
// (a stable sort) on paths[:need], the only part the search reads: those
// are the need first paths of the sorted list, in order; the rest follow in
// any order. The three criteria are packed into one integer per path so
// that integer order is comparator order; short lists (the usual case) use
// an insertion sort, which is stable, longer ones select and sort keys
// extended by the original position. Paths whose numbers do not fit the
// packing fall back to a comparison sort.
func (a *aligner) sortPaths(paths []*partial, need int) {
	const (
		posBits   = 12
		distBits  = 24
		chunkBits = 12
		matchBits = 63 - posBits - distBits - chunkBits
	)
	if len(paths) < 2 {
		return
	}
	for _, p := range paths {
		m := p.matches1 + p.matches2
		if uint(m) >= 1<<matchBits || uint(p.chunks) >= 1<<chunkBits ||
			uint(p.distance) >= 1<<distBits || len(paths) >= 1<<posBits {
			slices.SortStableFunc(paths, comparePartial)
			return
		}
		p.key = uint64(1<<matchBits-1-m)<<(chunkBits+distBits+posBits) |
			uint64(p.chunks)<<(distBits+posBits) | uint64(p.distance)<<posBits
	}
	if len(paths) <= 32 {
		for i := 1; i < len(paths); i++ {
			p := paths[i]
			j := i
			for ; j > 0 && paths[j-1].key > p.key; j-- {
				paths[j] = paths[j-1]
			}
			paths[j] = p
		}
		return
	}
	keys := a.keys[:0]
	for i, p := range paths {
		keys = append(keys, p.key|uint64(i))
	}
	selectSmallest(keys, need)
	slices.Sort(keys[:need])
	tmp := append(a.sortTmp[:0], paths...)
	taken := a.taken[:0]
	taken = slices.Grow(taken, len(paths))[:len(paths)]
	clear(taken)
	for i, k := range keys[:need] {
		pos := k & (1<<posBits - 1)
		paths[i] = tmp[pos]
		taken[pos] = true
	}
	i := need
	for pos, p := range tmp {
		if !taken[pos] {
			paths[i] = p
			i++
		}
	}
	a.keys, a.sortTmp, a.taken = keys[:0], tmp[:0], taken[:0]
}

// selectSmallest reorders distinct keys so that keys[:k] are the k
// smallest (in any order): Hoare-partition quickselect.
func selectSmallest(keys []uint64, k int) {
	lo, hi := 0, len(keys)-1
	for lo < hi {
		x, y, z := keys[lo], keys[lo+(hi-lo)/2], keys[hi]
		pivot := max(min(x, y), min(max(x, y), z)) // median of three
		i, j := lo, hi
		for i <= j {
			for keys[i] < pivot {
				i++
			}
			for keys[j] > pivot {
				j--
			}
			if i <= j {
				keys[i], keys[j] = keys[j], keys[i]
				i++
				j--
			}
		}
		switch {
		case k-1 <= j:
			hi = j
		case k-1 >= i:
			lo = i
		default:
			return
		}
	}
}

// countChunks is Aligner.getCountAndChunks (chunks only): a chunk ends at a
// reference gap or where the hypothesis side is not contiguous.
func (a *aligner) countChunks(matches []int32) int {
	st := &a.st
	chunks, idx, lastMatchEnd := 0, 0, -1
	for idx < len(matches) {
		mi := matches[idx]
		if mi < 0 {
			if lastMatchEnd != -1 {
				chunks++
				lastMatchEnd = -1
			}
			idx++
			continue
		}
		m := &st.all[mi]
		if lastMatchEnd != -1 && m.matchStart != lastMatchEnd {
			chunks++
		}
		idx = m.start + m.length
		lastMatchEnd = m.matchStart + m.matchLength
	}
	if lastMatchEnd != -1 {
		chunks++
	}
	return chunks
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// synonymIndex maps the hypothesis's synsets to the bit set of hypothesis
// positions having them (open addressing; key synset+1, 0 marks an empty
// slot). It turns the synonym test of every (hypothesis, reference) word
// pair into one lookup per synset of the reference word.
type synonymIndex struct {
	keys  []int32
	masks []uint64
	ok    bool // false: hypothesis over 64 words, use pairwise intersection
	// memo caches positions by the identity of a word's (shared, read-only)
	// synset list: the references of one image repeat many words. Holding
	// the slices keeps their addresses from being reused while cached.
	memoKeys [memoSize][]int32
	memoVals [memoSize]uint64
}

const memoSize = 256

func synHash(id int32, mask uint32) uint32 { return uint32(id) * 0x9E3779B1 >> 7 & mask }

func (x *synonymIndex) build(w1 []word) {
	x.ok = false
	if len(w1) > 64 {
		return
	}
	n := 0
	for _, w := range w1 {
		n += len(w.syn)
	}
	size := 64
	for size < 2*n {
		size *= 2
	}
	clear(x.memoKeys[:])
	x.keys = slices.Grow(x.keys[:0], size)[:size]
	x.masks = slices.Grow(x.masks[:0], size)[:size]
	clear(x.keys)
	mask := uint32(size - 1)
	for i, w := range w1 {
		for _, id := range w.syn {
			h := synHash(id, mask)
			for x.keys[h] != 0 && x.keys[h] != id+1 {
				h = (h + 1) & mask
			}
			if x.keys[h] == 0 {
				x.keys[h] = id + 1
				x.masks[h] = 0
			}
			x.masks[h] |= 1 << uint(i)
		}
	}
	x.ok = true
}

// positions returns the bit set of hypothesis positions sharing a synset
// with syn.
func (x *synonymIndex) positions(syn []int32) uint64 {
	id := unsafe.SliceData(syn)
	slot := uint(uintptr(unsafe.Pointer(id))>>3) % memoSize
	if k := x.memoKeys[slot]; len(k) == len(syn) && unsafe.SliceData(k) == id {
		return x.memoVals[slot]
	}
	out := x.lookup(syn)
	x.memoKeys[slot], x.memoVals[slot] = syn, out
	return out
}

func (x *synonymIndex) lookup(syn []int32) uint64 {
	var out uint64
	mask := uint32(len(x.keys) - 1)
	for _, id := range syn {
		for h := synHash(id, mask); ; h = (h + 1) & mask {
			k := x.keys[h]
			if k == id+1 {
				out |= x.masks[h]
				break
			}
			if k == 0 {
				break
			}
		}
	}
	return out
}
