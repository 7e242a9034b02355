// Package lexgen compiles the token grammar of CoreNLP 3.4.1's PTBLexer
// (rules.go) into the tables that package ptb's scanner runs on
// (ptb/lexer_tables.go), much as JFlex compiles PTBLexer.flex into the
// tables of PTBLexer.java. The rules are written as expressions over UTF-16
// code units; they are compiled into one NFA, determinised and minimised
// (automaton.go), and the DFAs are written out as Go source.
//
// Package ptb's go:generate runs it (../gen), and a test of package ptb
// checks that the committed tables are what Source returns; nothing here
// runs when ptb tokenizes.
package lexgen

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"go/format"
	"strconv"
)

// tables is the compiled grammar: one DFA choosing the rule (longest match,
// earliest rule on ties, trailing context included in the length), and for
// each rule with trailing context r1/r2 a DFA for r1 and one for reversed
// r2, with which the scanner finds where yytext ends as JFlex's
// general-lookahead code does: the longest r1 such that r2 matches the
// rest. The DFAs share one minimal table.
type tables struct {
	rules      []rule
	class      *[0x10000]uint8
	dfa        *dfa
	main       int32
	head, tail []int32 // start states per rule; 0 for rules without trailing context
}

func compile() *tables {
	rules := grammar()
	n, d, starts := automata(rules)
	d, starts = d.minimise(starts)
	t := &tables{rules: rules, class: n.class, dfa: d, main: starts[0],
		head: make([]int32, len(rules)), tail: make([]int32, len(rules))}
	k := 1
	for i, r := range rules {
		if r.look != nil {
			t.head[i], t.tail[i] = starts[k], starts[k+1]
			k += 2
		}
	}
	return t
}

// automata compiles the rules into one NFA and determinises it, giving
// the start states of the rule DFA (whose states accept the index of the
// rule they match) and then of the head and tail DFAs of each rule with
// trailing context, in order.
func automata(rules []rule) (*nfa, *dfa, []int32) {
	var exprs []*expr
	for _, r := range rules {
		exprs = append(exprs, r.pat)
		if r.look != nil {
			exprs = append(exprs, r.look)
		}
	}
	n := newNFA(exprs)
	var all []int32
	for i, r := range rules {
		full := r.pat
		if r.look != nil {
			full = seq(r.pat, r.look)
		}
		all = append(all, n.compile(full, n.final(i)))
	}
	entries := [][]int32{all}
	for _, r := range rules {
		if r.look != nil {
			entries = append(entries,
				[]int32{n.compile(r.pat, n.final(0))},
				[]int32{n.compile(reverse(r.look), n.final(0))})
		}
	}
	d, starts := determinise(n, entries)
	return n, d, starts
}

// encode packs the class of each code unit and the DFA table into bytes,
// as ptb's newLexer (lexer.go) decodes them. All numbers are uvarints.
//
// The classes come first, as runs covering 0..0xFFFF: the length of the
// run, then its class as one byte. Then, for each state in order, the
// rule it accepts plus one (0: none), and its transitions: a state d back
// whose transitions it starts from (d=0: all lead to the dead state), and
// where it differs from those, as a number of groups, each a state, the
// number of classes that lead there and those classes (one byte each). The
// earlier state chosen is one that differs for the fewest classes, the
// nearest of those.
func (t *tables) encode() []byte {
	var b []byte
	for u := 0; u < 0x10000; {
		v := u + 1
		for v < 0x10000 && t.class[v] == t.class[u] {
			v++
		}
		b = binary.AppendUvarint(b, uint64(v-u))
		b = append(b, t.class[u])
		u = v
	}
	d := t.dfa
	live := make([]int, d.states()) // transitions to live states
	for s := range live {
		for _, x := range d.row(int32(s)) {
			if x != 0 {
				live[s]++
			}
		}
	}
	for s := range int32(d.states()) {
		row := d.row(s)
		best, dist := int32(-1), live[s]
		for p := s - 1; p >= 0 && dist > 0; p-- {
			// The count of live transitions bounds the distance.
			if k := live[s] - live[p]; k >= dist || -k >= dist {
				continue
			}
			k := 0
			for c, x := range d.row(p) {
				if x != row[c] {
					if k++; k >= dist {
						break
					}
				}
			}
			if k < dist {
				best, dist = p, k
			}
		}
		b = binary.AppendUvarint(b, uint64(d.accept[s]+1))
		base := make([]int32, d.nclass)
		if best >= 0 {
			b = binary.AppendUvarint(b, uint64(s-best))
			base = d.row(best)
		} else {
			b = binary.AppendUvarint(b, 0)
		}
		// The differing classes, by the state they lead to.
		var targets []int32
		classes := map[int32][]byte{}
		for c, x := range row {
			if x != base[c] {
				if classes[x] == nil {
					targets = append(targets, x)
				}
				classes[x] = append(classes[x], byte(c))
			}
		}
		b = binary.AppendUvarint(b, uint64(len(targets)))
		for _, x := range targets {
			b = binary.AppendUvarint(b, uint64(x))
			b = binary.AppendUvarint(b, uint64(len(classes[x])))
			b = append(b, classes[x]...)
		}
	}
	return b
}

// Source returns the Go source of ptb/lexer_tables.go.
func Source() []byte {
	t := compile()
	if t.dfa.states() > 1<<16 {
		panic("lexgen: too many states for uint16")
	}
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("// Code generated by \"go run ./internal/gen\"; DO NOT EDIT.\n\n")
	p("package ptb\n\n")
	p("// The token grammar of internal/lexgen/rules.go, compiled: its rules, and\n")
	p("// its DFAs (see internal/lexgen/gen.go) in one minimal table of lexStates\n")
	p("// states over lexClasses classes of UTF-16 code units, which newLexer\n")
	p("// decodes from lexData.\n\n")
	p("// lexRules are the rules in order of precedence.\n")
	p("var lexRules = [...]rule{\n")
	for _, r := range t.rules {
		p("{name: %s, act: %s", strconv.Quote(r.name), r.act)
		if r.fixed != "" {
			p(", fixed: %s", strconv.Quote(r.fixed))
		}
		if r.look != nil {
			p(", look: true")
		}
		p("},\n")
	}
	p("}\n\n")
	p("const (\n")
	p("lexClasses = %d // classes of code units\n", t.dfa.nclass)
	p("lexStates = %d // DFA states; state 0 is dead\n", t.dfa.states())
	p("lexMain = %d // start state of the DFA that picks the rule\n", t.main)
	p(")\n\n")
	p("// lexHead and lexTail give, for each rule r1/r2 with trailing context,\n")
	p("// the start states of the DFAs for r1 and for r2 reversed.\n")
	for _, v := range []struct {
		name   string
		starts []int32
	}{{"lexHead", t.head}, {"lexTail", t.tail}} {
		p("var %s = [len(lexRules)]uint16{", v.name)
		for i, s := range v.starts {
			if s != 0 {
				p("%d: %d, ", i, s)
			}
		}
		p("}\n\n")
	}
	p("// lexData is the base64 of the class of each code unit and the DFA\n")
	p("// table (see newLexer).\n")
	p("const lexData = `\n")
	enc := base64.StdEncoding.EncodeToString(t.encode())
	for len(enc) > 0 {
		n := min(len(enc), 100)
		p("%s\n", enc[:n])
		enc = enc[n:]
	}
	p("`\n")
	src, err := format.Source(w.Bytes())
	if err != nil {
		panic(err)
	}
	return src
}
