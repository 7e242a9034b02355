package ptb

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/captionctl/captionctl/internal/oracle"
)

// batch is one run of the toolkit's tokenizer: the captions in the order it
// writes them, and its output for each.
type batch struct {
	name      string
	captions  []string
	want      []string
	imageIDs  []int64
	positions []int // index of the caption among its image's captions
}

// imageOrder returns the image ids of refs.json in file order: the
// toolkit evaluates (and tokenizes) images in this order.
func imageOrder(t testing.TB, c *oracle.Case) []int64 {
	var r io.Reader
	f, err := os.Open(filepath.Join(c.Dir, "refs.json"))
	if os.IsNotExist(err) {
		f, err = os.Open(filepath.Join(c.Dir, "refs.json.gz"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	} else if err != nil {
		t.Fatal(err)
	} else {
		defer f.Close()
		r = f
	}
	var refs struct {
		Images []struct {
			ID int64 `json:"id"`
		} `json:"images"`
	}
	if err := json.NewDecoder(r).Decode(&refs); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(refs.Images))
	for i, im := range refs.Images {
		ids[i] = im.ID
	}
	return ids
}

// caseBatches returns the toolkit's two tokenizer runs for an oracle case:
// all references, then all candidates.
func caseBatches(t testing.TB, name string) []batch {
	c, err := oracle.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	results := map[int64][]string{}
	for _, r := range c.Results {
		results[r.ImageID] = append(results[r.ImageID], r.Caption)
	}
	refs := c.RawRefs()
	res := batch{name: name + " candidates"}
	ref := batch{name: name + " references"}
	for _, id := range imageOrder(t, c) {
		cands, ok := results[id]
		if !ok {
			continue
		}
		for j, cap := range cands {
			res.captions = append(res.captions, cap)
			res.want = append(res.want, c.ResTokenized(id))
			res.imageIDs = append(res.imageIDs, id)
			res.positions = append(res.positions, j)
		}
		want := c.RefsTokenized(id)
		if len(want) != len(refs[id]) {
			t.Fatalf("%s: image %d: %d references, %d tokenized", name, id, len(refs[id]), len(want))
		}
		for j, cap := range refs[id] {
			ref.captions = append(ref.captions, cap)
			ref.want = append(ref.want, want[j])
			ref.imageIDs = append(ref.imageIDs, id)
			ref.positions = append(ref.positions, j)
		}
	}
	if len(res.captions) != len(c.Results) || len(ref.captions) != len(c.Refs) {
		t.Fatalf("%s: %d of %d candidates, %d of %d references in evaluation order", name, len(res.captions), len(c.Results), len(ref.captions), len(c.Refs))
	}
	return []batch{ref, res}
}

// TestOracle checks every candidate and reference of every oracle case
// against the toolkit's tokenization. TokenizeAll, given each tokenizer run
// of the toolkit, must match every caption. Tokenize must match every
// caption but those whose tokens the toolkit decided by looking into the
// next caption's line (or, for the last line, finding none), which are
// logged.
func TestOracle(t *testing.T) {
	total, context := 0, 0
	for _, name := range oracle.Cases {
		for _, b := range caseBatches(t, name) {
			all := TokenizeAll(b.captions)
			bad := 0
			for i, cap := range b.captions {
				got := Tokenize(cap)
				if got == b.want[i] && all[i] == b.want[i] {
					continue
				}
				if all[i] == b.want[i] && TokenizeAll(b.captions[i:min(i+2, len(b.captions))])[0] == b.want[i] {
					context++
					t.Logf("%s: image %d caption %d %q: Tokenize %q, in context %q",
						b.name, b.imageIDs[i], b.positions[i], cap, got, b.want[i])
					continue
				}
				if bad++; bad <= 10 {
					t.Errorf("%s: image %d caption %d %q:\n Tokenize    %q\n TokenizeAll %q\n toolkit     %q",
						b.name, b.imageIDs[i], b.positions[i], cap, got, all[i], b.want[i])
				}
			}
			if bad > 0 {
				t.Errorf("%s: %d of %d captions differ", b.name, bad, len(b.captions))
			}
			total += len(b.captions)
		}
	}
	t.Logf("%d captions: TokenizeAll matches all, Tokenize all but %d that depend on the next line", total, context)
}

// TestCorners covers the spec's rules that real captions exercise, plus
// some that they rarely do. Each expectation is derived from the named rule
// of PTBLexer.flex (3.4.1) and the toolkit's filter, and was confirmed by
// running CoreNLP 3.4.1's lexer.
var corners = []struct{ in, want, why string }{
	{"A man (in a hat).", "a man -lrb- in a hat -rrb-", `\( and \) rules: -LRB-/-RRB-, lower-cased, so not in PUNCTUATIONS`},
	{"[a] {b}", "-lsb- a -rsb- -lcb- b -rcb-", `\[ \] \{ \} rules (normalizeOtherBrackets); -lcb- survives too`},
	{"He can't, won't and didn't.", "he ca n't wo n't and did n't", "SWORD/SREDAUX splits before n't"},
	{"We're gonna wanna go, cannot stay", "we 're gon na wan na go can not stay", "WORD/REDAUX; gonna|wanna and cannot push back (splitAssimilations)"},
	{"The dog's bone, the dogs' bones", "the dog 's bone the dogs bones", "WORD/REDAUX and REDAUX/[^A-Za-z]; a lone ' is a QUOTES token, filtered"},
	{"It's Bob’s", "it 's bob 's", "curly apostrophe is APOS; latexQuotes maps it to '"},
	{"'Tis 'twas", "'t is 't was", "'tis and 'twas push back 2 and 3"},
	{"costs €5, £3, ¢50, ¥9 or US$ 4", "costs $ 5 # 3 cents 50 ¥ 9 or us$ 4", "DOLSIGN2 with normalizeCurrency (¥ is kept), DOLSIGN [A-Z]*$"},
	{"½ cup and 3 1/2 pies, 1/4 or 2-3/4", "1/2 cup and 3\u00a01/2 pies 1/4 or 2-3/4", "FRAC2 normalizeFractions; FRAC joins a whole number with U+00A0"},
	{`He said "hi" and ‘bye’ «ciao»`, "he said hi and bye ciao", "DBLQUOT/QUOTES become `` '' ` ' (latexQuotes), all filtered"},
	{"wait… no... yes . . . ok", "wait no yes ok", "LDOTS becomes ..., filtered"},
	{"a—b – c --- d -- e - f ----- g", "a b c d e f ----- g", "SPMDASH and 3-4 HYPHENS become --; 5 hyphens stay"},
	{"dog 😀 🐶 cat", "dog cat", "surrogate code units match only the untokenizable rule: deleted"},
	{"Dr. Smith, Mr. Jones vs. Mrs. X etc. and U.S. troops", "dr. smith mr. jones vs. mrs. x etc. and u.s. troops", "ABBREV2 (ABTITLE, vs, ACRO) and ABBREV1 (etc) keep the period"},
	{"see fig. 3 and ca. 1900", "see fig. 3 and ca. 1900", "ABBREV3 before a number"},
	{"a fig. on a plate", "a fig on a plate", "fig. is ABBREV3 only before a digit"},
	{"ΟΔΟΣ ΣΑΣ.ΒΣ", "οδος σασ.βς", "WORD; Java lower-cases a word-final Σ to ς"},
	{"İstanbul", "i\u0307stanbul", "Java lower-cases U+0130 to i + U+0307"},
	{"ınc. x", "ınc. x", "%caseless lets ı match the i of Inc (ABBREV1)"},
	{"AT&T at&t", "at&t at & t", "THINGA is [A-Z] only: classes are case-sensitive under %caseless"},
	{"http://x.org/a_b?c=d. Email me@x.com", "http://x.org/a_b?c=d email me@x.com", "FULLURL (no final period) and EMAIL"},
	{"3:30pm on 12/25/2014, 1,000.5 and -3", "3:30 pm on 12/25/2014 1,000.5 and -3", "NUMBER, DATE"},
	{"(555) 123-4567", "-lrb-555-rrb-\u00a0123-4567", "PHONE: parentheses and space normalized inside the token"},
	{"smile :) ;-( :D", "smile :-rrb- ;--lrb- :d", "SMILEY/[^A-Za-z0-9] with normalized parentheses"},
	{"a <b>bold</b> tag", "a <b> bold </b> tag", "SGML"},
	{"Tom &amp; Jerry &nbsp; x", "tom & jerry x", "SPAMP normalizes; &nbsp; is white space"},
	{"#tag @user c++ c# x", "#tag @user c++ c# x", "TWITTER, c++, (c|f)#"},
	{"dog\u00adgy", "doggy", "WORD removes soft hyphens"},
	{"x\u00a0y\u3000z", "x y z", "SPACE includes U+00A0 and U+3000"},
	{"", "", "empty caption"},
	{"...!? ,", "!?", "LDOTS and [?!]+: \"!?\" is not in PUNCTUATIONS, \"...\" and \",\" are"},
	{"a\nb", "a b", "ptbtokenizer.py replaces \\n by a space"},
	{"a\rb", "a", "\\r is a NEWLINE: the toolkit gives this caption the first line only"},
	{"a sign B.", "a sign b.", "ABBREV2 via ACRO; before a line break and end of file"},
	{"cat :)", "cat :-rrb-", "the line break after the caption satisfies SMILEY's trailing context"},
}

func TestCorners(t *testing.T) {
	for _, c := range corners {
		if got := Tokenize(c.in); got != c.want {
			t.Errorf("Tokenize(%q) = %q, want %q (%s)", c.in, got, c.want, c.why)
		}
	}
}

// TestContext shows the captions whose tokenization depends on the
// caption that follows in the toolkit's file, and that TokenizeAll
// reproduces it.
func TestContext(t *testing.T) {
	in := []string{"the letter B.", "The end", "made ca.", "1900 or so", "cat :)"}
	want := []string{
		"the letter b", // ACRONYM/({SPACENLS})The{SPACENL}: "B" then "."
		"the end",      //
		"made ca.",     // ABBREV3/{SPACENL}?[:digit:]
		"1900 or so",   //
		"cat -rrb-",    // last line: no line break for SMILEY/[^A-Za-z0-9], so ":" and ")"
	}
	got := TokenizeAll(in)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("TokenizeAll: caption %d %q = %q, want %q", i, in[i], got[i], want[i])
		}
	}
	if got := TokenizeAll([]string{"a\rb", "c"}); got[0] != "a" || got[1] != "b" {
		t.Errorf("TokenizeAll with \\r = %q, want the toolkit's shifted lines [a b]", got)
	}
	if got := TokenizeAll(nil); len(got) != 0 {
		t.Errorf("TokenizeAll(nil) = %q", got)
	}
}

func TestTokens(t *testing.T) {
	if got := Tokens("A dog, a cat."); strings.Join(got, "|") != "a|dog|a|cat" {
		t.Errorf("Tokens = %q", got)
	}
	if got := Tokens("..."); got != nil {
		t.Errorf("Tokens(...) = %q, want nil", got)
	}
}

// TestConcurrent runs Tokenize and TokenizeAll from several goroutines at
// once.
func TestConcurrent(t *testing.T) {
	b := caseBatches(t, "coco_val2017_fakecap")[0]
	want := make([]string, len(b.captions))
	for i, c := range b.captions {
		want[i] = Tokenize(c)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, c := range b.captions {
				if got := Tokenize(c); got != want[i] {
					t.Errorf("%q: %q, want %q", c, got, want[i])
					return
				}
			}
			if got := TokenizeAll(b.captions); !slices.Equal(got, b.want) {
				t.Errorf("TokenizeAll differs from the toolkit")
			}
		}()
	}
	wg.Wait()
}

// plainTokenize is Tokenize by the plain path: PTBTokenizer's output line,
// then ptbtokenizer.py's filter as written.
func plainTokenize(caption string) string {
	s := &scanner{lx: getLexer()}
	s.loadLine(caption)
	s.scan()
	line := s.out
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	return string(appendFiltered(nil, line))
}

// withWindow runs f with the scanner's window set to n code units (so it
// is not for parallel tests).
func withWindow[T any](n int, f func() T) T {
	defer func(saved int) { window = saved }(window)
	window = n
	return f()
}

// TestWindow checks that where the scanner's window of the input ends makes
// no difference, for windows of a few units.
func TestWindow(t *testing.T) {
	for _, b := range caseBatches(t, "coco_val2017_fakecap") {
		for _, n := range []int{1, 2, 3, 17} {
			got := withWindow(n, func() []string { return TokenizeAll(b.captions) })
			for i := range got {
				if got[i] != b.want[i] {
					t.Errorf("%s, window %d: caption %d %q: %q, toolkit %q", b.name, n, i, b.captions[i], got[i], b.want[i])
					break
				}
			}
		}
	}
	in := []string{"<a href='x", "y z", "w'> The B.", "The end \u00a0", " \u2003x"}
	want := TokenizeAll(in)
	for n := 1; n < 30; n++ {
		if got := withWindow(n, func() []string { return TokenizeAll(in) }); !slices.Equal(got, want) {
			t.Errorf("window %d: %q, want %q", n, got, want)
		}
	}
}

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{
		"A man (in a hat) can't go.", "They're gonna eat 3 1/2 pizzas for €5 😀",
		"Mr. Smith et al. ca. 5 Dr. X", "ΟΔΟΣ İ ı", "I. The", "<a href='x\ny'>", "^.[^x=a b<>]",
		"http://a.b/c😀 d", "(555) 123-4567", "&amp;&apos;&quot;&nbsp;", "\u00ad\u00ad-", "a\rb\u2028c\x00\x7f",
		"\xff\xfe invalid", "etc. The", "co. ltd", "U.S.-U.K. ties", "x_x (^_^) :-)", "http://x.org\u00a0",
		" \u2003www.google.com", "σ́Σ\u00ad‧Α‧‐",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Tokenize(s)
		if again := Tokenize(s); again != got {
			t.Fatalf("Tokenize(%q) = %q, then %q", s, got, again)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Tokenize(%q) = %q: invalid UTF-8", s, got)
		}
		// Only an ASIANSMILEY "^.[^x=...<>]" token can hold spaces, which
		// the toolkit's split(' ') keeps as empty words.
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			if !strings.Contains(s, "<>]") {
				t.Fatalf("Tokenize(%q) = %q: stray spaces", s, got)
			}
		}
		if plain := plainTokenize(s); plain != got {
			t.Fatalf("Tokenize(%q) = %q, by the plain path %q", s, got, plain)
		}
		// An empty caption after s puts the same text in the toolkit's file.
		if all := TokenizeAll([]string{s, ""}); len(all) != 2 || all[0] != got {
			t.Fatalf("TokenizeAll(%q, \"\") = %q, Tokenize %q", s, all, got)
		}
		// The scanner reads captions into a window of the input; the
		// tokens must not depend on where the window ends.
		in := []string{s, "", s, "x " + s}
		all := TokenizeAll(in)
		if small := withWindow(1, func() []string { return TokenizeAll(in) }); !slices.Equal(small, all) {
			t.Fatalf("TokenizeAll(%q) = %q, with a window of 1 unit %q", in, all, small)
		}
	})
}

func BenchmarkTokenize(b *testing.B) {
	var caps []string
	for _, bt := range caseBatches(b, "coco_val2017_human_loo") {
		caps = append(caps, bt.captions...)
	}
	getLexer()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, c := range caps {
			Tokenize(c)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(caps)), "ns/caption")
}

func BenchmarkTokenizeAll(b *testing.B) {
	bs := caseBatches(b, "coco_val2017_human_loo")
	n := len(bs[0].captions) + len(bs[1].captions)
	getLexer()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		TokenizeAll(bs[0].captions)
		TokenizeAll(bs[1].captions)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/caption")
}
