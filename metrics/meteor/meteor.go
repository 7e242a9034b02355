package meteor

import (
	"embed"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Resources Meteor 1.5 loads for English, embedded verbatim (see
// data/README.md for their origin and licences).
var (
	//go:embed data/english.synsets
	synsetsText string
	//go:embed data/english.exceptions
	exceptionsText string
	//go:embed data/english.words
	functionWordsText string
	//go:embed data/COPYING.WORDNET
	wordNetNotice string
	// data/nonbreaking holds the normalizer's nonbreaking prefix list
	// (english.prefixes) when it has been added; see its README.
	//go:embed data/nonbreaking
	nonbreakingFS embed.FS
)

// Scoring parameters of Meteor 1.5's English "rank" task (the default task,
// Constants.PARAM_RANK and WEIGHT_RANK). They are variables, not constants,
// so that expressions such as 1.0-alpha round like Java's double arithmetic
// instead of being folded exactly at compile time.
var (
	alpha = 0.85
	beta  = 0.20
	gamma = 0.60
	delta = 0.75
	// Module weights for exact, stem, synonym and paraphrase matches.
	moduleWeights = [numModules]float64{1.0, 0.6, 0.8, 0.6}
)

// maxCachedWords bounds the per-Scorer word cache so adversarial input
// cannot grow it without limit; words beyond it are recomputed each time.
const maxCachedWords = 1 << 18

// maxLocalWords bounds each goroutine's lock-free first-level word cache.
const maxLocalWords = 1 << 16

// Options configures a Scorer.
type Options struct {
	// ParaphraseFile is the path of Meteor's English paraphrase table
	// (paraphrase-en.gz from the Meteor 1.5 distribution). When set, the
	// paraphrase module is enabled, giving the toolkit's canonical METEOR;
	// when empty, the modules are exact, stem and synonym.
	ParaphraseFile string
}

// Scorer computes Meteor 1.5 statistics. It is safe for concurrent use by
// several goroutines; the read-only resources are shared and per-word
// lookups are cached in a concurrent map.
type Scorer struct {
	syn         *synonymDict
	function    map[string]bool
	nonbreaking map[string]int
	para        *paraphraseTable
	numModules  int

	cache    sync.Map // string → *word
	cached   atomic.Int64
	aligners sync.Pool // *aligner
}

// word is everything the matchers need to know about one token.
type word struct {
	hash     int32   // String.hashCode (exact matching)
	stem     int32   // hashCode of the Snowball stem (stem matching)
	para     int32   // paraphrase vocabulary id, -1 if none
	function bool    // listed in english.words
	syn      []int32 // sorted WordNet synsets incl. morphological base forms (shared, read-only)
}

// New loads the embedded English resources and, if opts names one, the
// paraphrase table.
func New(opts Options) (*Scorer, error) {
	syn, err := newSynonymDict(synsetsText, exceptionsText)
	if err != nil {
		return nil, fmt.Errorf("meteor: %w", err)
	}
	s := &Scorer{
		syn:         syn,
		function:    loadFunctionWords(functionWordsText),
		nonbreaking: map[string]int{},
		numModules:  moduleSynonym + 1,
	}
	if b, err := fs.ReadFile(nonbreakingFS, "data/nonbreaking/english.prefixes"); err == nil {
		s.nonbreaking = parseNonbreaking(string(b))
	}
	if opts.ParaphraseFile != "" {
		t, err := loadParaphraseFile(opts.ParaphraseFile)
		if err != nil {
			return nil, fmt.Errorf("meteor: %w", err)
		}
		s.para = t
		s.numModules = numModules
	}
	return s, nil
}

// Notices returns the licence notice that must accompany the embedded
// WordNet-derived data (english.synsets, english.exceptions): the WordNet
// 3.0 licence. Meteor's own files are under the GNU LGPL v2.1 (see
// data/COPYING in the source tree).
func Notices() string { return wordNetNotice }

// Modules lists the matching modules in the order Meteor applies them, as
// the toolkit names them: exact, stem, synonym and, with a paraphrase
// table, paraphrase.
func (s *Scorer) Modules() []string {
	names := []string{"exact", "stem", "synonym", "paraphrase"}
	return names[:s.numModules]
}

// Stats scores hyp against each reference and returns the statistics of the
// best one, exactly as the toolkit's METEOR wrapper obtains them: it sends
// "SCORE ||| ref1 ||| … ||| hyp" (with "|||" removed from hyp and double
// spaces halved) to Meteor 1.5 run with "-l en -norm", which normalizes and
// lowercases every segment, aligns the hypothesis to each reference and
// keeps the first reference with the highest score.
//
// Inputs are the toolkit's PTB-tokenized strings. Any input is accepted;
// an empty hypothesis or reference scores 0.
func (s *Scorer) Stats(hyp string, refs []string) Stats {
	test, refList := wrapperSegments(hyp, refs)
	a, _ := s.aligners.Get().(*aligner)
	if a == nil {
		a = newAligner(s)
	}
	defer s.aligners.Put(a)

	a.testWords = a.words(test, a.testWords[:0])
	a.syn.build(a.testWords)
	var best Stats
	bestScore := -1.0
	for _, ref := range refList {
		a.refWords = a.words(ref, a.refWords[:0])
		st := makeStats(a.align(a.testWords, a.refWords), a.testWords, a.refWords)
		if score := st.Score(); score > bestScore {
			best, bestScore = st, score
		}
	}
	return best
}

// wrapperSegments reproduces the string handling between the toolkit and
// Meteor: meteor.py's _stat builds one SCORE line and Meteor.scoreStdio
// splits it on "|||" (String.split, which drops trailing empty fields) and
// trims each field. A reference containing "|||" therefore becomes several
// references, as it does in the toolkit.
func wrapperSegments(hyp string, refs []string) (string, []string) {
	hyp = strings.ReplaceAll(strings.ReplaceAll(hyp, "|||", ""), "  ", " ")
	hasBar := strings.Contains(hyp, "|")
	for _, r := range refs {
		hasBar = hasBar || strings.Contains(r, "|")
	}
	if !hasBar && len(refs) > 0 {
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = javaTrim(r)
		}
		return javaTrim(hyp), out
	}
	line := "SCORE ||| " + strings.Join(refs, " ||| ") + " ||| " + hyp
	parts := strings.Split(line, "|||")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) < 3 {
		return "", nil
	}
	out := make([]string, 0, len(parts)-2)
	for _, p := range parts[1 : len(parts)-1] {
		out = append(out, javaTrim(p))
	}
	return javaTrim(parts[len(parts)-1]), out
}

// words normalizes a segment and appends its tokens with their matching
// keys to dst.
func (a *aligner) words(segment string, dst []word) []word {
	a.tokens = tokenize(a.s.normalize(segment), a.tokens[:0])
	for _, tok := range a.tokens {
		w, ok := a.local[tok]
		if !ok {
			w = a.s.info(tok)
			if len(a.local) >= maxLocalWords {
				clear(a.local)
			}
			a.local[strings.Clone(tok)] = w
		}
		dst = append(dst, w)
	}
	return dst
}

// info returns the matching keys of one token, computing them once per
// Scorer.
func (s *Scorer) info(tok string) word {
	if v, ok := s.cache.Load(tok); ok {
		return *v.(*word)
	}
	w := &word{hash: javaHash(tok), para: -1}
	w.stem = javaHashUnits(stemUnits(appendUnits(make([]uint16, 0, 32), tok)))
	w.syn = s.syn.synsetKey(tok)
	w.function = s.function[javaToLower(tok)]
	if s.para != nil {
		w.para = s.para.id(tok)
	}
	if s.cached.Load() < maxCachedWords {
		if _, loaded := s.cache.LoadOrStore(strings.Clone(tok), w); !loaded {
			s.cached.Add(1)
		}
	}
	return *w
}

// Stats are Meteor's sufficient statistics for one hypothesis against one
// reference (edu.cmu.meteor.scorer.MeteorStats): word counts, matched words
// per module (stage) split into content and function words, and the
// number of chunks. Stage k is module k of exact, stem, synonym,
// paraphrase. All values are whole numbers, so the text form Meteor prints
// in -stdio mode and reads back in EVAL loses nothing.
type Stats struct {
	TestLen, RefLen                         int // words in hypothesis and reference
	TestFunctionWords, RefFunctionWords     int // of which function words
	TestContentMatches, RefContentMatches   [4]int
	TestFunctionMatches, RefFunctionMatches [4]int
	Chunks                                  int // contiguous aligned runs
	TestWordMatches, RefWordMatches         int // matched words (all modules)
}

// makeStats is MeteorScorer.getMeteorStats(Alignment) for word-based
// scoring.
func makeStats(al alignment, w1, w2 []word) Stats {
	st := Stats{TestLen: len(w1), RefLen: len(w2), Chunks: al.numChunks}
	for _, w := range w1 {
		if w.function {
			st.TestFunctionWords++
		}
	}
	for _, w := range w2 {
		if w.function {
			st.RefFunctionWords++
		}
	}
	st.TestContentMatches = al.contentMatches1
	st.RefContentMatches = al.contentMatches2
	st.TestFunctionMatches = al.functionMatches1
	st.RefFunctionMatches = al.functionMatches2
	for k := 0; k < numModules; k++ {
		st.TestWordMatches += al.contentMatches1[k] + al.functionMatches1[k]
		st.RefWordMatches += al.contentMatches2[k] + al.functionMatches2[k]
	}
	return st
}

func (st *Stats) totals() (test, ref int) {
	for k := 0; k < numModules; k++ {
		test += st.TestContentMatches[k] + st.TestFunctionMatches[k]
		ref += st.RefContentMatches[k] + st.RefFunctionMatches[k]
	}
	return test, ref
}

// add is MeteorStats.addStats: counts add up, except that the single chunk
// of a segment matched perfectly (every word of both sides in one chunk)
// is not counted.
func (st *Stats) add(o *Stats) {
	st.TestLen += o.TestLen
	st.RefLen += o.RefLen
	st.TestFunctionWords += o.TestFunctionWords
	st.RefFunctionWords += o.RefFunctionWords
	for k := 0; k < numModules; k++ {
		st.TestContentMatches[k] += o.TestContentMatches[k]
		st.RefContentMatches[k] += o.RefContentMatches[k]
		st.TestFunctionMatches[k] += o.TestFunctionMatches[k]
		st.RefFunctionMatches[k] += o.RefFunctionMatches[k]
	}
	if t, r := o.totals(); !(t == o.TestLen && r == o.RefLen && o.Chunks == 1) {
		st.Chunks += o.Chunks
	}
	st.TestWordMatches += o.TestWordMatches
	st.RefWordMatches += o.RefWordMatches
}

// Score is the Meteor score of these statistics, the per-image value the
// toolkit reads back from Meteor's EVAL (MeteorScorer.computeMetrics):
//
//	P = Σ_k w_k (δ·m_k,content + (1−δ)·m_k,function) / (δ·|content| + (1−δ)·|function|)  over the hypothesis
//	R = the same over the reference
//	Fmean = 1 / ((1−α)/P + α/R)
//	frag = chunks / ((matched hypothesis words + matched reference words) / 2), 0 for a perfect match
//	score = Fmean · (1 − γ·frag^β), 0 when undefined
func (st Stats) Score() float64 {
	tl, rl := float64(st.TestLen), float64(st.RefLen)
	tf, rf := float64(st.TestFunctionWords), float64(st.RefFunctionWords)
	// Explicit float64 conversions keep every product rounded on its own,
	// as in Java (Go may otherwise fuse a multiply and an add).
	testWeightedLength := float64(delta*(tl-tf)) + float64((1.0-delta)*tf)
	refWeightedLength := float64(delta*(rl-rf)) + float64((1.0-delta)*rf)
	var testWeighted, refWeighted float64
	for k := 0; k < numModules; k++ {
		testWeighted += float64(float64(float64(st.TestContentMatches[k])*moduleWeights[k]) * delta)
	}
	for k := 0; k < numModules; k++ {
		refWeighted += float64(float64(float64(st.RefContentMatches[k])*moduleWeights[k]) * delta)
	}
	for k := 0; k < numModules; k++ {
		testWeighted += float64(float64(float64(st.TestFunctionMatches[k])*moduleWeights[k]) * (1.0 - delta))
	}
	for k := 0; k < numModules; k++ {
		refWeighted += float64(float64(float64(st.RefFunctionMatches[k])*moduleWeights[k]) * (1.0 - delta))
	}
	precision := testWeighted / testWeightedLength
	recall := refWeighted / refWeightedLength
	fMean := 1.0 / (float64((1.0-alpha)/precision) + float64(alpha/recall))
	var frag float64
	if t, r := st.totals(); t == st.TestLen && r == st.RefLen && st.Chunks == 1 {
		frag = 0
	} else {
		frag = float64(st.Chunks) / (float64(st.TestWordMatches+st.RefWordMatches) / 2)
	}
	fragPenalty := float64(gamma * math.Pow(frag, beta))
	score := fMean * (1.0 - fragPenalty)
	if math.IsNaN(score) {
		return 0
	}
	return math.Max(score, 0)
}

// CorpusScore is the toolkit's corpus METEOR: Meteor's EVAL sums the
// statistics of every image (Stats.add) and scores the sum. It is not the
// mean of the per-image scores. No statistics score 0.
func CorpusScore(stats []Stats) float64 {
	var sum Stats
	for i := range stats {
		sum.add(&stats[i])
	}
	return sum.Score()
}

// String formats the statistics as Meteor prints them in -stdio mode (the
// line SCORE returns): 23 numbers printed as Java doubles, "tstLen refLen
// tstFunc refFunc", then per stage "tstContent refContent tstFunction
// refFunction", then "chunks tstWordMatches refWordMatches".
func (st Stats) String() string {
	vals := make([]int, 0, 23)
	vals = append(vals, st.TestLen, st.RefLen, st.TestFunctionWords, st.RefFunctionWords)
	for k := 0; k < numModules; k++ {
		vals = append(vals, st.TestContentMatches[k], st.RefContentMatches[k], st.TestFunctionMatches[k], st.RefFunctionMatches[k])
	}
	vals = append(vals, st.Chunks, st.TestWordMatches, st.RefWordMatches)
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(javaDouble(float64(v)))
	}
	return b.String()
}

// javaDouble is Double.toString for whole numbers: "15.0", or computerized
// scientific notation ("1.0E7") from 10^7 on.
func javaDouble(v float64) string {
	if math.Abs(v) < 1e7 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	s := strconv.FormatFloat(v, 'E', -1, 64) // e.g. 1.2345678E+07
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}
