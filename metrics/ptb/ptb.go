// Package ptb reproduces the tokenization of the COCO caption evaluation
// toolkit exactly, in pure Go.
//
// pycocoevalcap's tokenizer/ptbtokenizer.py (salaniz/pycocoevalcap, the
// Python 3 port) writes the captions to a file, one per line (a caption's
// '\n' replaced by ' '), and runs Stanford CoreNLP 3.4.1's
//
//	java edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase
//
// on it. It then takes output line i as caption i's tokens, splits it on ' '
// after rstrip() and drops the tokens in its PUNCTUATIONS list. This package
// implements that chain from the sources of CoreNLP's v3.4.1 tag: the token
// grammar of src/edu/stanford/nlp/process/PTBLexer.flex
// (internal/lexgen/rules.go, compiled into lexer_tables.go), with the
// options PTBTokenizer.main passes (tokenizeNLs; everything else at its
// default: PTB3 escaping, latexQuotes, no americanize, untokenizable
// characters deleted), String.toLowerCase(Locale.ENGLISH) of each token,
// and the Python filter. Some consequences: parentheses come out as -lrb-
// and -rrb-, which the toolkit's upper-case filter does not remove; "can't"
// is "ca n't", "gonna" is "gon na"; € becomes $, ½ becomes 1/2, and
// "3 1/2" is one token with a no-break space (which Python's str.split()
// in the metrics does split); abbreviations keep their period; characters
// outside the Basic Multilingual Plane, emoji included, and other
// characters the lexer does not know are deleted.
//
// The lexer decides some tokens by looking past the end of a line, so a
// caption's tokens can depend on the caption after it in the toolkit's
// file (a final "B." before a caption starting "The" loses its period: 3
// of the toolkit's 25,014 COCO val2017 captions), and the last caption in
// the file is followed by nothing rather than by a line break. Tokenize
// assumes a line break and then nothing, which is the toolkit's result for
// every caption not affected by that; TokenizeAll takes all the captions of
// one of the toolkit's tokenizer runs and is exact in every case.
//
// The package is safe for concurrent use. Its lexer is compiled ahead of
// time (go generate; see internal/lexgen): the first call in a process
// only decodes its tables, in a few milliseconds (see Warm).
package ptb

import (
	"bytes"
	"strings"
	"unsafe"
)

// Warm gets the tokenizer ready, so that the first Tokenize or TokenizeAll
// in the process does not have to: it decodes the lexer's tables, which
// takes a few milliseconds in a fresh process, most of them page faults
// on the tables' 1.2 MB. A program can run it in a goroutine while it
// reads its input. It is never needed for correct results, and calls
// after the first return at once.
func Warm() {
	getLexer()
}

// Tokenize returns the toolkit's tokenization of one caption: lower-case
// tokens separated by single spaces, "" if none remain.
//
// A caption containing other line breaks than '\n' (\r, U+2028, U+2029,
// \v, \f) becomes several lines in the toolkit's file; Tokenize returns the
// first, which is what the toolkit assigns to the caption (the rest shift
// the captions after it; see TokenizeAll).
func Tokenize(caption string) string {
	s := pool.Get().(*scanner)
	defer pool.Put(s)
	s.loadLine(caption)
	s.direct, s.firstLine = true, true
	s.scan()
	if !s.weird {
		return string(s.out[:s.lines[0]])
	}
	s.loadLine(caption)
	s.direct = false
	s.scan()
	line := s.out
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	s.res = appendFiltered(s.res[:0], line)
	return string(s.res)
}

// Tokens returns the tokens of Tokenize(caption), nil if there are none.
func Tokens(caption string) []string {
	t := Tokenize(caption)
	if t == "" {
		return nil
	}
	return strings.Split(t, " ")
}

// TokenizeAll returns the toolkit's tokenization of captions that it
// tokenizes together, in the order it writes them: pycocoevalcap tokenizes
// all references in one run and all candidates in another, image by image
// in the order of cocoRes.getImgIds() (the reference file's "images" list,
// keeping the images that have results) and each image's captions in file
// order. Element i is what the toolkit assigns to captions[i],
// including the toolkit's behaviour when a caption holds a line break other
// than '\n': every later caption then receives the output line of the one
// before it.
func TokenizeAll(captions []string) []string {
	s := pool.Get().(*scanner)
	defer pool.Put(s)
	s.load(captions)
	s.direct, s.firstLine = true, false
	s.scan()
	out := make([]string, len(captions))
	if !s.weird {
		// The captions' strings share the output, which the scanner gives
		// up rather than copy (as strings.Builder does).
		all := unsafe.String(unsafe.SliceData(s.out), len(s.out))
		s.out = nil
		start := 0
		for i := range out {
			if i < len(s.lines) {
				out[i] = all[start:s.lines[i]]
				start = s.lines[i]
			}
		}
		return out
	}
	s.load(captions)
	s.direct = false
	s.scan()
	rest := s.out
	for i := range out {
		line := rest
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			line, rest = rest[:j], rest[j+1:]
		} else {
			rest = rest[len(rest):]
		}
		s.res = appendFiltered(s.res[:0], line)
		out[i] = string(s.res)
	}
	return out
}
