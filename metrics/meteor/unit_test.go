package meteor

import (
	"compress/gzip"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Expected values in this file were produced by Meteor 1.5 itself (the
// cmu-mtlab/meteor classes at the commit in data/README.md, run with
// -l en -norm -m 'exact stem synonym' [paraphrase]), unless a comment says
// they follow from the algorithm by hand.

func TestStem(t *testing.T) {
	// Meteor's bundled org.tartarus.snowball.ext.englishStemmer.
	cases := map[string]string{
		"running": "run", "runs": "run", "ran": "ran", "generously": "generous", "generate": "generat",
		"general": "general", "skies": "sky", "sky": "sky", "dying": "die", "lying": "lie", "news": "news",
		"communism": "communism", "cats": "cat", "caresses": "caress", "ponies": "poni", "ties": "tie",
		"ied": "ie", "gas": "gas", "gaps": "gap", "kiwis": "kiwi", "hopping": "hop", "hoping": "hope",
		"agreed": "agre", "feed": "feed", "happily": "happili", "relational": "relat", "conditional": "condit",
		"rational": "ration", "valency": "valenc", "digitizer": "digit", "conformabli": "conform",
		"radically": "radic", "differently": "differ", "vilely": "vile", "analogousli": "analog",
		"vietnamization": "vietnam", "predication": "predic", "operator": "oper", "feudalism": "feudal",
		"decisiveness": "decis", "hopefulness": "hope", "callousness": "callous", "formaliti": "formal",
		"sensitiviti": "sensit", "sensibiliti": "sensibl", "triplicate": "triplic", "formative": "format",
		"formalize": "formal", "electriciti": "electr", "electrical": "electr", "hopeful": "hope",
		"goodness": "good", "revival": "reviv", "allowance": "allow", "inference": "infer",
		"airliner": "airlin", "gyroscopic": "gyroscop", "adjustable": "adjust", "defensible": "defens",
		"irritant": "irrit", "replacement": "replac", "adjustment": "adjust", "dependent": "depend",
		"adoption": "adopt", "homologou": "homologou", "activate": "activ", "angulariti": "angular",
		"homologous": "homolog", "effective": "effect", "bowdlerize": "bowdler", "probate": "probat",
		"rate": "rate", "cease": "ceas", "controll": "control", "roll": "roll", "yelled": "yell",
		"sayings": "say", "'quoted": "quot", "youth": "youth", "boyish": "boyish", "enjoying": "enjoy",
		"skis": "ski", "idly": "idl", "gently": "gentl", "early": "earli", "only": "onli", "singly": "singl",
		"ugly": "ugli", "outing": "outing", "canning": "canning", "herring": "herring",
		"succeeding": "succeed", "exceeds": "exceed", "andes": "andes", "atlas": "atlas", "cosmos": "cosmos",
		"bias": "bias", "howe": "howe", "tying": "tie", "a": "a", "at": "at", "is": "is", "'s": "'s",
		"n't": "n't", "t-shirt": "t-shirt", "1990s": "1990s", "\u00e9t\u00e9s": "\u00e9t\u00e9s",
	}
	for word, want := range cases {
		if got := Stem(word); got != want {
			t.Errorf("Stem(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	s := testScorer(t)
	_, hasPrefixes := s.nonbreaking["vs"]
	cases := []struct {
		in, want string
		prefixes bool // the result depends on english.prefixes
	}{
		{"U.S.-based company", "us based company", false},
		{"a man's hat", "a man 's hat", false},
		{`"quoted" text here`, `" quoted " text here`, false},
		{"3,000 people, 2 dogs", "3,000 people , 2 dogs", false},
		{"the end st.", "the end st .", false},
		{"it's rock 'n' roll", "it 's rock ' n ' roll", false},
		{"the 1990's", "the 1990 's", false},
		{"mr. smith went", "mr. smith went", false},
		{"wait...what", "wait ... what", false},
		{"e.g. this", "eg this", false},
		{"a tree\u2013lined street -- yes", "a tree - lined street - yes", false},
		{"He said \u201chello\u201d", `he said " hello "`, false},
		{"don't stop", "don 't stop", false},
		{"'tis the season", "' tis the season", false},
		{"A Man", "a man", false},
		{"t-shirt", "t shirt", false},
		{"one.two", "one.two", false},
		{"ave. c", "ave. c", false},
		{"a\u00a0b\tc", "a b c", false},
		{"No. 5 and pp. 3", "no. 5 and pp. 3", true},
		{"x vs.", "x vs.", true},
		{"St. Mark's", "st. mark 's", true},
	}
	for _, c := range cases {
		if c.prefixes && !hasPrefixes {
			continue
		}
		got := strings.Join(tokenize(s.normalize(c.in), nil), " ")
		if got != c.want {
			t.Errorf("normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSynonyms(t *testing.T) {
	d := testScorer(t).syn
	if err := d.checkSorted(); err != nil {
		t.Fatal(err)
	}
	// Every word of english.synsets is found at its own index.
	for i := range d.words {
		if w := d.word(i); d.find(w) != i {
			t.Fatalf("find(%q) = %d, want %d", w, d.find(w), i)
		}
	}
	for _, w := range []string{"", "zzzzzz", "dogx", "\x00", "a\x00"} {
		if i := d.find(w); i >= 0 {
			t.Errorf("find(%q) = %q", w, d.word(i))
		}
	}

	// By SynonymDictionary's algorithm: a word's key holds its own synsets
	// and those of its base forms, from english.exceptions when listed
	// there (mice → mouse, went → go) and otherwise from the first WordNet
	// detachment rule giving a known word (boxes → box, churches → church,
	// ladies → lady, dogs → dog).
	syn := func(w string) []int32 { return d.appendSynsets(nil, w) }
	for form, base := range map[string]string{
		"mice": "mouse", "went": "go", "boxes": "box", "churches": "church", "ladies": "lady", "dogs": "dog",
	} {
		if form != "mice" && form != "went" {
			if got := d.morph(form); got != base {
				t.Errorf("morph(%q) = %q, want %q", form, got, base)
			}
		}
		key := d.synsetKey(form)
		for _, id := range syn(base) {
			if _, ok := slices.BinarySearch(key, id); !ok {
				t.Errorf("synsets of %q miss %d of base %q", form, id, base)
			}
		}
	}
	if bases := d.toBases["mice"]; !slices.Contains(bases, "mouse") {
		t.Errorf("exceptions for mice = %q", bases)
	}
	if d.morph("glass") != "glass" || d.morph("ox") != "ox" || d.morph("xyzzyfoos") != "" {
		t.Errorf("morph: ss-ending or short words are kept, unknown words give \"\"")
	}
	for _, p := range [][2]string{{"car", "automobile"}, {"sofa", "couch"}, {"mice", "mouse"}} {
		if !intersects(d.synsetKey(p[0]), d.synsetKey(p[1])) {
			t.Errorf("%q and %q should be synonyms", p[0], p[1])
		}
	}
	if intersects(d.synsetKey("car"), d.synsetKey("banana")) {
		t.Error("car and banana should not be synonyms")
	}
}

// TestStatsLines compares whole statistics lines with Meteor's SCORE output.
func TestStatsLines(t *testing.T) {
	s := testScorer(t)
	cases := []struct {
		hyp  string
		refs []string
		want string
	}{
		{"a man is sitting next to a dog", []string{"a person sits beside a dog"},
			"8.0 6.0 4.0 2.0 1.0 1.0 2.0 2.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 2.0 3.0 3.0"},
		{"a cat on top of a couch", []string{"a cat on a sofa", "the cat is on the sofa"},
			"7.0 5.0 4.0 3.0 1.0 1.0 3.0 3.0 0.0 0.0 0.0 0.0 1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 2.0 5.0 5.0"},
		{"a large dog sits beside the sofa", []string{"a big dog is sitting next to the couch"},
			"7.0 9.0 2.0 4.0 1.0 1.0 2.0 2.0 0.0 0.0 0.0 0.0 2.0 2.0 0.0 0.0 0.0 0.0 0.0 0.0 2.0 5.0 5.0"},
		{"two dogs", []string{"two dogs"},
			"2.0 2.0 1.0 1.0 1.0 1.0 1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 2.0 2.0"},
	}
	for _, c := range cases {
		if got := s.Stats(c.hyp, c.refs).String(); got != c.want {
			t.Errorf("Stats(%q, %q)\n got  %s\n want %s", c.hyp, c.refs, got, c.want)
		}
	}
}

// TestParaphrase checks loading and matching a synthetic table in Meteor's
// paraphrase-en.gz format (probability, phrase, paraphrase per entry).
func TestParaphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "paraphrase-test.gz")
	writeGzip(t, path, "0.5\nnext to\nbeside\n0.5\nbeside\nnext to\n0.25\nis sitting\nsits\n"+
		"0.1\non top of\non\n0.3\na large\na big\n0.2\nsofa\ncouch\n")
	s, err := New(Options{ParaphraseFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Modules(), " "); got != "exact stem synonym paraphrase" {
		t.Errorf("Modules() = %q", got)
	}
	cases := []struct {
		hyp  string
		refs []string
		want string
	}{
		{"a man is sitting next to a dog", []string{"a person sits beside a dog"},
			"8.0 6.0 4.0 2.0 1.0 1.0 2.0 2.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 2.0 2.0 2.0 0.0 2.0 7.0 5.0"},
		{"a cat on top of a couch", []string{"a cat on a sofa", "the cat is on the sofa"},
			"7.0 5.0 4.0 3.0 1.0 1.0 3.0 3.0 0.0 0.0 0.0 0.0 1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 2.0 5.0 5.0"},
		{"a large dog sits beside the sofa", []string{"a big dog is sitting next to the couch"},
			"7.0 9.0 2.0 4.0 1.0 1.0 2.0 2.0 0.0 0.0 0.0 0.0 2.0 2.0 0.0 0.0 2.0 2.0 0.0 2.0 1.0 7.0 9.0"},
		{"two dogs", []string{"two dogs"},
			"2.0 2.0 1.0 1.0 1.0 1.0 1.0 1.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 0.0 1.0 2.0 2.0"},
	}
	for _, c := range cases {
		if got := s.Stats(c.hyp, c.refs).String(); got != c.want {
			t.Errorf("Stats(%q, %q)\n got  %s\n want %s", c.hyp, c.refs, got, c.want)
		}
	}

	// Malformed tables are reported, not half-loaded.
	bad := filepath.Join(t.TempDir(), "bad.gz")
	writeGzip(t, bad, "0.5\nnext to\n")
	if _, err := New(Options{ParaphraseFile: bad}); err == nil {
		t.Error("truncated table: no error")
	}
	if err := os.WriteFile(bad, []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{ParaphraseFile: bad}); err == nil {
		t.Error("non-gzip table: no error")
	}
	if _, err := New(Options{ParaphraseFile: filepath.Join(t.TempDir(), "missing.gz")}); err == nil {
		t.Error("missing table: no error")
	}
}

func writeGzip(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWrapper checks the string handling of the toolkit's meteor.py and
// Meteor's stdio parsing.
func TestWrapper(t *testing.T) {
	s := testScorer(t)
	same := func(h1 string, r1 []string, h2 string, r2 []string) {
		t.Helper()
		if a, b := s.Stats(h1, r1), s.Stats(h2, r2); a != b {
			t.Errorf("Stats(%q, %q) = %v, want Stats(%q, %q) = %v", h1, r1, a, h2, r2, b)
		}
	}
	// "|||" is deleted from the hypothesis …
	same("a dog ||| runs", []string{"a dog runs"}, "a dog runs", []string{"a dog runs"})
	// … but splits a reference into two references.
	same("a dog runs", []string{"a cat ||| a dog runs"}, "a dog runs", []string{"a cat", "a dog runs"})
	// No reference scores against one empty reference.
	if st := s.Stats("a dog", nil); st.Score() != 0 || st.TestLen != 2 || st.RefLen != 0 {
		t.Errorf("no references: %v", st)
	}
	// The first of equally good references is kept.
	st := s.Stats("a dog", []string{"the dog", "a cat"})
	if st.RefContentMatches[moduleExact] != 1 || st.RefFunctionMatches[moduleExact] != 0 {
		t.Errorf("tie between references: kept %v", st)
	}
}

func TestScoreAndCorpus(t *testing.T) {
	// By hand: a perfect two-word match has no fragmentation penalty.
	perfect := Stats{TestLen: 2, RefLen: 2, TestFunctionWords: 1, RefFunctionWords: 1,
		Chunks: 1, TestWordMatches: 2, RefWordMatches: 2}
	perfect.TestContentMatches[0], perfect.RefContentMatches[0] = 1, 1
	perfect.TestFunctionMatches[0], perfect.RefFunctionMatches[0] = 1, 1
	if got := perfect.Score(); got != 1 {
		t.Errorf("perfect score = %v", got)
	}
	// Its single chunk is left out of the corpus sum (MeteorStats.addStats).
	var sum Stats
	sum.add(&perfect)
	if sum.Chunks != 0 {
		t.Errorf("perfect segment added %d chunks", sum.Chunks)
	}
	if got := CorpusScore([]Stats{perfect, perfect}); got != 1 {
		t.Errorf("corpus of perfect segments = %v", got)
	}
	if got := CorpusScore(nil); got != 0 {
		t.Errorf("empty corpus = %v", got)
	}
	if got := (Stats{}).Score(); got != 0 {
		t.Errorf("empty stats score = %v", got)
	}
	if got := javaDouble(1e7); got != "1.0E7" {
		t.Errorf("javaDouble(1e7) = %q", got)
	}
	if got := javaDouble(12345678); got != "1.2345678E7" {
		t.Errorf("javaDouble(12345678) = %q", got)
	}
}

// FuzzStats feeds arbitrary hypotheses and references: Stats must not
// panic, the score must lie in [0, 1] and the counts must be consistent.
func FuzzStats(f *testing.F) {
	f.Add("a man riding a horse", "a man rides horses", "the dogs are running")
	f.Add("", "", "")
	f.Add("U.S. st. ... ||| |||| 's", "DOTMULTI. --- ''", "\u00a0\u0130\u03a3 \U0001F600")
	f.Add("a a a a a a", "a a a", "a")
	f.Add("\xff\xfe bad utf8", "vs. No. 5", "e.g. i.e.")
	s := testScorer(f)
	f.Fuzz(func(t *testing.T, hyp, ref1, ref2 string) {
		st := s.Stats(hyp, []string{ref1, ref2})
		score := st.Score()
		if math.IsNaN(score) || score < 0 || score > 1 {
			t.Fatalf("score %v out of [0,1] for %q / %q / %q", score, hyp, ref1, ref2)
		}
		tm, rm := st.totals()
		if tm > st.TestLen || rm > st.RefLen || tm != st.TestWordMatches || rm != st.RefWordMatches ||
			st.Chunks > tm || (tm > 0) != (st.Chunks > 0) {
			t.Fatalf("inconsistent stats %v for %q / %q / %q", st, hyp, ref1, ref2)
		}
		if c := CorpusScore([]Stats{st, st}); math.IsNaN(c) || c < 0 || c > 1 {
			t.Fatalf("corpus score %v", c)
		}
		if utf8.ValidString(hyp) {
			_ = Stem(hyp)
		}
	})
}
