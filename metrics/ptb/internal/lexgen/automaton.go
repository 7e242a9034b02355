package lexgen

// A small scanner generator: the lexer rules (rules.go) are written as
// expressions over UTF-16 code units, compiled into one NFA and determinised
// into DFAs, which are minimised and written out as tables (gen.go). This
// gives the semantics of the JFlex-generated PTBLexer (longest match over
// all rules, the earliest rule winning ties, trailing context r1/r2 counted
// in the match length) without hand-simulating dozens of overlapping rules.

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// span is an inclusive range of UTF-16 code units.
type span struct{ lo, hi uint16 }

// cset is a set of code units: sorted, non-overlapping, non-adjacent spans.
type cset []span

func norm(s cset) cset {
	s = slices.Clone(s)
	sort.Slice(s, func(i, j int) bool { return s[i].lo < s[j].lo })
	out := s[:0]
	for _, r := range s {
		if n := len(out); n > 0 && uint32(r.lo) <= uint32(out[n-1].hi)+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// chars is the set of the (BMP) characters of s.
func chars(s string) cset {
	var c cset
	for _, r := range s {
		c = append(c, span{uint16(r), uint16(r)})
	}
	return norm(c)
}

// between is the set lo..hi.
func between(lo, hi rune) cset { return cset{{uint16(lo), uint16(hi)}} }

func union(sets ...cset) cset {
	var c cset
	for _, s := range sets {
		c = append(c, s...)
	}
	return norm(c)
}

// not is the complement of s in 0..0xFFFF (JFlex's [^...]).
func not(s cset) cset {
	s = norm(s)
	var c cset
	next := uint32(0)
	for _, r := range s {
		if uint32(r.lo) > next {
			c = append(c, span{uint16(next), r.lo - 1})
		}
		next = uint32(r.hi) + 1
	}
	if next <= 0xFFFF {
		c = append(c, span{uint16(next), 0xFFFF})
	}
	return c
}

func (s cset) key() string {
	b := make([]byte, 0, 4*len(s))
	for _, r := range s {
		b = append(b, byte(r.lo), byte(r.lo>>8), byte(r.hi), byte(r.hi>>8))
	}
	return string(b)
}

// Expressions.

type op uint8

const (
	opSet op = iota
	opSeq
	opAlt
	opStar
	opPlus
	opOpt
)

type expr struct {
	op   op
	set  cset
	subs []*expr
}

func class(s cset) *expr { return &expr{op: opSet, set: s} }

// cls is the character class of the characters listed in s.
func cls(s string) *expr { return class(chars(s)) }

func seq(xs ...*expr) *expr { return &expr{op: opSeq, subs: xs} }
func alt(xs ...*expr) *expr { return &expr{op: opAlt, subs: xs} }
func star(x *expr) *expr    { return &expr{op: opStar, subs: []*expr{x}} }
func plus(x *expr) *expr    { return &expr{op: opPlus, subs: []*expr{x}} }
func opt(x *expr) *expr     { return &expr{op: opOpt, subs: []*expr{x}} }

// rep is x{lo,hi}.
func rep(x *expr, lo, hi int) *expr {
	var xs []*expr
	for i := 0; i < lo; i++ {
		xs = append(xs, x)
	}
	for i := lo; i < hi; i++ {
		xs = append(xs, opt(x))
	}
	return seq(xs...)
}

// caseless gives the characters a literal character matches under JFlex
// %caseless. Character classes are not affected (as the spec warns), but
// literals are, and JFlex 1.5 also lets the Unicode characters whose Java
// upper or lower case is an ASCII letter match it (checked against the
// generated lexer: "ınc." and "ſept." are abbreviations).
func caseless(r rune) cset {
	switch {
	case r == 'i' || r == 'I':
		return chars("iIİı")
	case r == 'k' || r == 'K':
		return chars("kK\u212A")
	case r == 's' || r == 'S':
		return chars("sSſ")
	case r >= 'a' && r <= 'z':
		return chars(string([]rune{r, r - 32}))
	case r >= 'A' && r <= 'Z':
		return chars(string([]rune{r, r + 32}))
	}
	return chars(string(r))
}

// lit is a literal string, matched caselessly (JFlex %caseless).
func lit(s string) *expr {
	var xs []*expr
	for _, r := range s {
		xs = append(xs, class(caseless(r)))
	}
	if len(xs) == 1 {
		return xs[0]
	}
	return seq(xs...)
}

// words is the alternation of the caseless literals in the space-separated list.
func words(list string) *expr {
	var xs []*expr
	for _, w := range strings.Fields(list) {
		xs = append(xs, lit(w))
	}
	return alt(xs...)
}

// reverse gives the expression matching the reversed strings of x.
func reverse(x *expr) *expr {
	if x.op == opSet {
		return x
	}
	subs := make([]*expr, len(x.subs))
	for i, s := range x.subs {
		subs[i] = reverse(s)
	}
	if x.op == opSeq {
		slices.Reverse(subs)
	}
	return &expr{op: x.op, subs: subs}
}

func (x *expr) walk(f func(*expr)) {
	f(x)
	for _, s := range x.subs {
		s.walk(f)
	}
}

// Compilation: a shared partition of the code units into classes, one NFA
// holding every automaton, and DFAs over it sharing one table.

const maxClasses = 256

type classBits [maxClasses / 64]uint64

type nstate struct {
	bits   int32 // index into nfa.bits, or -1 for an epsilon state
	out    int32 // next state (-1: none)
	out1   int32 // second epsilon edge (-1: none)
	accept int16 // rule index accepted here, or -1
}

type nfa struct {
	states []nstate
	bits   []classBits     // the class sets of the states
	bitsOf map[*expr]int32 // the class set of each opSet expression
	class  *[0x10000]uint8 // code unit -> class
	nclass int             // number of classes
}

// newNFA partitions the code units into the classes that no set used in
// exprs distinguishes, and gives each set its classes.
func newNFA(exprs []*expr) *nfa {
	n := &nfa{class: new([0x10000]uint8), bitsOf: map[*expr]int32{}}
	// The distinct sets, and which expressions use each.
	// Small sets (mostly the caseless letters) are told apart by content,
	// big ones by identity: a duplicate only costs a little time.
	type big struct {
		first *span
		n     int
	}
	index := map[string]int{}
	bigIndex := map[big]int{}
	var sets []cset
	var users [][]*expr
	for _, x := range exprs {
		x.walk(func(e *expr) {
			if e.op != opSet {
				return
			}
			var i int
			var ok bool
			if len(e.set) <= 4 {
				key := e.set.key()
				if i, ok = index[key]; !ok {
					index[key] = len(sets)
				}
			} else {
				key := big{&e.set[0], len(e.set)}
				if i, ok = bigIndex[key]; !ok {
					bigIndex[key] = len(sets)
				}
			}
			if !ok {
				i = len(sets)
				sets = append(sets, e.set)
				users = append(users, nil)
			}
			users[i] = append(users[i], e)
		})
	}
	// The elementary intervals [bounds[k], bounds[k+1]) between all set
	// boundaries, and the sets covering each.
	bounds := []uint32{0, 0x10000}
	for _, s := range sets {
		for _, r := range s {
			bounds = append(bounds, uint32(r.lo), uint32(r.hi)+1)
		}
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	nk := len(bounds) - 1
	width := (len(sets) + 7) / 8
	sig := make([]byte, nk*width)
	for j, s := range sets {
		k := 0
		for _, r := range s {
			for bounds[k] < uint32(r.lo) {
				k++
			}
			for ; k < nk && bounds[k] <= uint32(r.hi); k++ {
				sig[k*width+j/8] |= 1 << (j % 8)
			}
		}
	}
	// Intervals covered by the same sets form a class.
	classOf := make([]uint8, nk)
	ids := map[string]uint8{}
	for k := 0; k < nk; k++ {
		key := string(sig[k*width : (k+1)*width])
		id, ok := ids[key]
		if !ok {
			if len(ids) == maxClasses {
				panic("lexgen: too many character classes")
			}
			id = uint8(len(ids))
			ids[key] = id
		}
		classOf[k] = id
		for u := bounds[k]; u < bounds[k+1]; u++ {
			n.class[u] = id
		}
	}
	n.nclass = len(ids)
	bitIdx := map[classBits]int32{}
	for j := range sets {
		var b classBits
		for k := 0; k < nk; k++ {
			if sig[k*width+j/8]&(1<<(j%8)) != 0 {
				c := classOf[k]
				b[c>>6] |= 1 << (c & 63)
			}
		}
		i, ok := bitIdx[b]
		if !ok {
			i = int32(len(n.bits))
			n.bits = append(n.bits, b)
			bitIdx[b] = i
		}
		for _, e := range users[j] {
			n.bitsOf[e] = i
		}
	}
	return n
}

func (n *nfa) add(s nstate) int32 {
	n.states = append(n.states, s)
	return int32(len(n.states) - 1)
}

// final adds an accepting state for the given rule index.
func (n *nfa) final(accept int) int32 {
	return n.add(nstate{bits: -1, out: -1, out1: -1, accept: int16(accept)})
}

// compile adds x to the NFA with the given continuation state and returns
// its entry state.
func (n *nfa) compile(x *expr, next int32) int32 {
	switch x.op {
	case opSet:
		return n.add(nstate{bits: n.bitsOf[x], out: next, out1: -1, accept: -1})
	case opSeq:
		for i := len(x.subs) - 1; i >= 0; i-- {
			next = n.compile(x.subs[i], next)
		}
		return next
	case opAlt:
		entry := n.compile(x.subs[0], next)
		for _, s := range x.subs[1:] {
			e := n.compile(s, next)
			entry = n.add(nstate{bits: -1, out: entry, out1: e, accept: -1})
		}
		return entry
	case opOpt:
		e := n.compile(x.subs[0], next)
		return n.add(nstate{bits: -1, out: e, out1: next, accept: -1})
	case opStar, opPlus:
		loop := n.add(nstate{bits: -1, out: -1, out1: next, accept: -1})
		body := n.compile(x.subs[0], loop)
		n.states[loop].out = body
		if x.op == opStar {
			return loop
		}
		return body
	}
	panic("lexgen: bad expression")
}

// dfa is a table of deterministic automata over the classes, which may
// have several start states. State 0 is the dead state: it accepts nothing
// and leads nowhere else.
type dfa struct {
	nclass int
	next   []int32 // next[s*nclass+c]: the successor of state s on class c
	accept []int16 // lowest rule index accepted in each state, or -1
}

func (d *dfa) states() int { return len(d.accept) }

func (d *dfa) row(s int32) []int32 { return d.next[int(s)*d.nclass : int(s+1)*d.nclass] }

// determinise builds the DFA whose states are the epsilon-closed sets of
// NFA states reachable from each set of entry states (subset
// construction), and returns it with its start states, one per entry set.
func determinise(n *nfa, entries [][]int32) (*dfa, []int32) {
	z := &subsets{n: n, d: &dfa{nclass: n.nclass}, index: map[string]int32{}, mark: make([]uint32, len(n.states))}
	z.sets = [][]int32{nil} // the dead state
	z.d.accept = []int16{-1}
	z.d.next = make([]int32, n.nclass)
	starts := make([]int32, len(entries))
	for i, e := range entries {
		starts[i] = z.state(e)
	}
	seeds := make([][]int32, n.nclass)
	for s := 1; s < len(z.sets); s++ {
		for c := range seeds {
			seeds[c] = seeds[c][:0]
		}
		for _, i := range z.sets[s] {
			st := &n.states[i]
			for w, word := range n.bits[st.bits] {
				for ; word != 0; word &= word - 1 {
					c := w*64 + bits.TrailingZeros64(word)
					seeds[c] = append(seeds[c], st.out)
				}
			}
		}
		for c, seed := range seeds {
			if len(seed) > 0 {
				t := z.state(seed)
				z.d.next[s*n.nclass+c] = t
			}
		}
	}
	return z.d, starts
}

// subsets is the state of a subset construction.
type subsets struct {
	n     *nfa
	d     *dfa
	index map[string]int32 // the key of each state's set -> state
	sets  [][]int32        // the NFA states of each DFA state: not epsilon, sorted
	mark  []uint32         // mark[s] == gen: NFA state s seen
	gen   uint32
	stack []int32
	set   []int32
	key   []byte
}

// state returns the DFA state for the closure of the seed NFA states,
// adding it if it is new.
func (z *subsets) state(seed []int32) int32 {
	z.gen++
	stack := append(z.stack[:0], seed...)
	set := z.set[:0]
	accept := int16(-1)
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if s < 0 || z.mark[s] == z.gen {
			continue
		}
		z.mark[s] = z.gen
		st := &z.n.states[s]
		if st.bits < 0 {
			stack = append(stack, st.out, st.out1)
			if st.accept >= 0 && (accept < 0 || st.accept < accept) {
				accept = st.accept
			}
			continue
		}
		set = append(set, s)
	}
	z.stack, z.set = stack, set
	if len(set) == 0 && accept < 0 {
		return 0
	}
	slices.Sort(set)
	key := z.key[:0]
	for _, s := range set {
		key = binary.AppendUvarint(key, uint64(s))
	}
	key = binary.AppendVarint(key, int64(accept))
	z.key = key
	if t, ok := z.index[string(key)]; ok {
		return t
	}
	t := int32(len(z.sets))
	z.index[string(key)] = t
	z.sets = append(z.sets, slices.Clone(set))
	z.d.accept = append(z.d.accept, accept)
	z.d.next = append(z.d.next, make([]int32, z.n.nclass)...)
	return t
}

// minimise returns the minimal DFA equivalent to d, and the new numbers of
// the given start states. It merges the states that no input tells apart
// (Moore's algorithm: split the states by the rule they accept, then by the
// blocks their transitions lead to, until no block splits), so every state
// from which nothing can be accepted any more becomes the dead state 0. The
// states are numbered breadth first from the dead state and the starts, in
// order.
func (d *dfa) minimise(starts []int32) (*dfa, []int32) {
	n := d.states()
	block := make([]int32, n)
	byAccept := map[int16]int32{}
	for s, a := range d.accept {
		b, ok := byAccept[a]
		if !ok {
			b = int32(len(byAccept))
			byAccept[a] = b
		}
		block[s] = b
	}
	blocks := len(byAccept)
	var key []byte
	for {
		index := map[string]int32{}
		refined := make([]int32, n)
		for s := range int32(n) {
			key = binary.AppendUvarint(key[:0], uint64(block[s]))
			for _, t := range d.row(s) {
				key = binary.AppendUvarint(key, uint64(block[t]))
			}
			b, ok := index[string(key)]
			if !ok {
				b = int32(len(index))
				index[string(key)] = b
			}
			refined[s] = b
		}
		block = refined
		if len(index) == blocks {
			break
		}
		blocks = len(index)
	}
	// Number the blocks breadth first, each by a state in it.
	num := make([]int32, blocks)
	for i := range num {
		num[i] = -1
	}
	var order []int32
	visit := func(s int32) int32 {
		if b := block[s]; num[b] < 0 {
			num[b] = int32(len(order))
			order = append(order, s)
		}
		return num[block[s]]
	}
	visit(0)
	newStarts := make([]int32, len(starts))
	for i, s := range starts {
		newStarts[i] = visit(s)
	}
	for i := 0; i < len(order); i++ {
		for _, t := range d.row(order[i]) {
			visit(t)
		}
	}
	m := &dfa{nclass: d.nclass, next: make([]int32, len(order)*d.nclass), accept: make([]int16, len(order))}
	for i, s := range order {
		m.accept[i] = d.accept[s]
		for c, t := range d.row(s) {
			m.next[i*d.nclass+c] = num[block[t]]
		}
	}
	return m, newStarts
}
