package meteor

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// paraphraseTable reproduces edu.cmu.meteor.aligner.ParaphraseTransducer.
//
// The file (paraphrase-en.gz) is gzip-compressed text in groups of three
// lines: a probability (ignored by Meteor), a reference phrase and its
// paraphrase, both whitespace-tokenized. Every token gets a vocabulary id in
// order of first appearance; the reference phrases form a trie whose nodes
// list, in file order, the paraphrases emitted by the phrase ending there.
//
// The Java trie keeps a Hashtable per node; here one map keyed by (node,
// word) holds all edges, which keeps a multi-million-entry table compact.
type paraphraseTable struct {
	vocab map[string]int32
	edges map[uint64]int32 // node<<32 | word → child node
	// emits[node] lists paraphrase indices; paraphrases[p] is the phrase.
	emitStart   []int32 // per node, offset into emitList (len = nodes+1 after finish)
	emitList    []int32
	paraphrases [][]int32
}

// errParaphraseFormat marks a paraphrase file that is not in Meteor's format.
var errParaphraseFormat = errors.New("not a Meteor paraphrase table")

// loadParaphraseFile reads a paraphrase table from a gzip file.
func loadParaphraseFile(path string) (*paraphraseTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("paraphrase table: %w", err)
	}
	defer f.Close()
	t, err := readParaphrases(f)
	if err != nil {
		return nil, fmt.Errorf("paraphrase table %s: %w", path, err)
	}
	return t, nil
}

// readParaphrases parses a gzip-compressed paraphrase table.
func readParaphrases(r io.Reader) (*paraphraseTable, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errParaphraseFormat, err)
	}
	defer gz.Close()
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)

	t := &paraphraseTable{vocab: make(map[string]int32), edges: make(map[uint64]int32)}
	// emits are collected per node as (node, paraphrase) pairs, then grouped.
	type emit struct{ node, para int32 }
	var emits []emit
	nodes := int32(1) // node 0 is the root
	var toks []string
	readPhrase := func(lineNo int) ([]int32, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%w: line %d: missing phrase line (entries are probability, phrase, paraphrase)", errParaphraseFormat, lineNo)
		}
		toks = tokenize(sc.Text(), toks[:0])
		ids := make([]int32, len(toks))
		for i, tok := range toks {
			id, ok := t.vocab[tok]
			if !ok {
				id = int32(len(t.vocab))
				t.vocab[tok] = id
			}
			ids[i] = id
		}
		return ids, nil
	}
	lineNo := 0
	for sc.Scan() {
		lineNo += 3
		ref, err := readPhrase(lineNo - 1)
		if err != nil {
			return nil, err
		}
		par, err := readPhrase(lineNo)
		if err != nil {
			return nil, err
		}
		// Entries with an empty phrase would create zero-length matches
		// that Meteor's aligner cannot handle sensibly; a real table has
		// none, so they are skipped.
		if len(ref) == 0 || len(par) == 0 {
			continue
		}
		node := int32(0)
		for _, w := range ref {
			key := uint64(node)<<32 | uint64(uint32(w))
			child, ok := t.edges[key]
			if !ok {
				child = nodes
				nodes++
				t.edges[key] = child
			}
			node = child
		}
		emits = append(emits, emit{node, int32(len(t.paraphrases))})
		t.paraphrases = append(t.paraphrases, par)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errParaphraseFormat, err)
	}
	// Group emits by node keeping file order (a counting sort is stable).
	t.emitStart = make([]int32, nodes+1)
	for _, e := range emits {
		t.emitStart[e.node+1]++
	}
	for i := int32(1); i <= nodes; i++ {
		t.emitStart[i] += t.emitStart[i-1]
	}
	t.emitList = make([]int32, len(emits))
	fill := append([]int32(nil), t.emitStart[:nodes]...)
	for _, e := range emits {
		t.emitList[fill[e.node]] = e.para
		fill[e.node]++
	}
	return t, nil
}

// id is ParaphraseTransducer.translate: the vocabulary id or -1.
func (t *paraphraseTable) id(word string) int32 {
	if id, ok := t.vocab[word]; ok {
		return id
	}
	return -1
}

// pathFunc receives one phrase found by paths: its length in words and the
// index of one paraphrase it emits.
type pathFunc func(length int, para int32)

// paths is State.getPaths on the root: for every prefix of words[start:]
// that is a reference phrase, in increasing length, each paraphrase it
// emits in file order.
func (t *paraphraseTable) paths(words []int32, start int, fn pathFunc) {
	node := int32(0)
	for i := 0; start+i < len(words); i++ {
		w := words[start+i]
		if w < 0 {
			return
		}
		child, ok := t.edges[uint64(node)<<32|uint64(uint32(w))]
		if !ok {
			return
		}
		node = child
		for _, p := range t.emitList[t.emitStart[node]:t.emitStart[node+1]] {
			fn(i+1, p)
		}
	}
}
