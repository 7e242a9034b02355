package data

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/badinput"
)

// The special tokens and their fixed ids.
const (
	PadToken   = "<pad>"
	StartToken = "<start>"
	EndToken   = "<end>"
	UnkToken   = "<unk>"

	PadID   = 0
	StartID = 1
	EndID   = 2
	UnkID   = 3
)

// VocabFormat is the format tag of vocab.json.
const VocabFormat = "captionctl-vocab/1"

// Vocab maps tokens to ids: the four special tokens, then the training
// words seen at least MinWordFreq times by descending count, ties in
// byte order.
type Vocab struct {
	Tokens      []string       // id → token
	Counts      []int          // id → training count (0 for the special tokens)
	MinWordFreq int            // the cut-off used
	ids         map[string]int // token → id
}

// BuildVocab counts tokens over the training captions and keeps those seen
// at least minWordFreq times.
func BuildVocab(trainCaptions [][]string, minWordFreq int) *Vocab {
	counts := make(map[string]int)
	for _, caption := range trainCaptions {
		for _, t := range caption {
			counts[t]++
		}
	}
	words := make([]string, 0, len(counts))
	for w, c := range counts {
		if c >= minWordFreq && !isSpecial(w) {
			words = append(words, w)
		}
	}
	slices.SortFunc(words, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	v := &Vocab{
		Tokens:      append([]string{PadToken, StartToken, EndToken, UnkToken}, words...),
		Counts:      make([]int, 4, 4+len(words)),
		MinWordFreq: minWordFreq,
	}
	for _, w := range words {
		v.Counts = append(v.Counts, counts[w])
	}
	v.index()
	return v
}

func isSpecial(w string) bool {
	return w == PadToken || w == StartToken || w == EndToken || w == UnkToken
}

func (v *Vocab) index() {
	v.ids = make(map[string]int, len(v.Tokens))
	for i, t := range v.Tokens {
		v.ids[t] = i
	}
}

// Len is the number of tokens, special ones included.
func (v *Vocab) Len() int { return len(v.Tokens) }

// ID returns the id of token, UnkID for unknown tokens.
func (v *Vocab) ID(token string) int {
	if id, ok := v.ids[token]; ok {
		return id
	}
	return UnkID
}

// Encode maps tokens to ids.
func (v *Vocab) Encode(tokens []string) []int {
	ids := make([]int, len(tokens))
	for i, t := range tokens {
		ids[i] = v.ID(t)
	}
	return ids
}

// Decode maps ids back to tokens, stopping at EndID and skipping StartID and
// PadID.
func (v *Vocab) Decode(ids []int) []string {
	var out []string
	for _, id := range ids {
		switch {
		case id == EndID:
			return out
		case id == StartID || id == PadID:
			continue
		case id >= 0 && id < len(v.Tokens):
			out = append(out, v.Tokens[id])
		default:
			out = append(out, UnkToken)
		}
	}
	return out
}

type vocabFile struct {
	Format      string   `json:"format"`
	MinWordFreq int      `json:"min_word_freq"`
	Tokens      []string `json:"tokens"`
	Counts      []int    `json:"counts"`
}

// MarshalJSON writes vocab.json's form.
func (v *Vocab) MarshalJSON() ([]byte, error) {
	return json.Marshal(vocabFile{Format: VocabFormat, MinWordFreq: v.MinWordFreq, Tokens: v.Tokens, Counts: v.Counts})
}

// UnmarshalJSON reads vocab.json's form and checks it.
func (v *Vocab) UnmarshalJSON(data []byte) error {
	var f vocabFile
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	if f.Format != VocabFormat {
		return fmt.Errorf("format %q, want %q", f.Format, VocabFormat)
	}
	if len(f.Tokens) < 4 || f.Tokens[PadID] != PadToken || f.Tokens[StartID] != StartToken || f.Tokens[EndID] != EndToken || f.Tokens[UnkID] != UnkToken {
		return fmt.Errorf("tokens must start with %s, %s, %s, %s", PadToken, StartToken, EndToken, UnkToken)
	}
	if len(f.Counts) != len(f.Tokens) {
		return fmt.Errorf("%d counts for %d tokens", len(f.Counts), len(f.Tokens))
	}
	seen := make(map[string]bool, len(f.Tokens))
	for i, t := range f.Tokens {
		if seen[t] {
			return fmt.Errorf("token %q (id %d) appears twice", t, i)
		}
		seen[t] = true
	}
	*v = Vocab{Tokens: f.Tokens, Counts: f.Counts, MinWordFreq: f.MinWordFreq}
	v.index()
	return nil
}

// WriteVocab writes v to path atomically.
func WriteVocab(path string, v *Vocab) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return writeJSON(w, v)
	})
}

// ReadVocab reads a vocab.json.
func ReadVocab(path string) (*Vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &badinput.Error{File: path, Msg: "cannot read: " + err.Error(), Err: err}
	}
	var v Vocab
	if err := json.Unmarshal(data, &v); err != nil {
		if bad := badinput.JSON(path, data, err); bad.Line > 0 {
			return nil, bad
		}
		return nil, badinput.Errorf(path, "not a captionctl vocabulary: %v", err)
	}
	return &v, nil
}

// writeJSON writes v as indented JSON with a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
