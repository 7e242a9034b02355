package data

import (
	"crypto/sha256"
	"encoding/hex"
	"os"

	"github.com/captionctl/captionctl/internal/badinput"
)

// ManifestFormat is the format tag of manifest.json.
const ManifestFormat = "captionctl-dataset/1"

// Manifest is a prepared dataset's manifest.json: what went in, with which
// parameters, what came out and what was left out.
type Manifest struct {
	Format     string                `json:"format"`
	Inputs     []Input               `json:"inputs"`
	ImagesRoot string                `json:"images_root"`
	Parameters map[string]any        `json:"parameters"`
	SplitRule  string                `json:"split_rule"`
	Counts     map[string]SplitCount `json:"counts"`
	// DroppedImages and DroppedCaptions total the Dropped list.
	DroppedImages   int          `json:"dropped_images"`
	DroppedCaptions int          `json:"dropped_captions"`
	Vocab           VocabSummary `json:"vocab"`
	Dropped         []Dropped    `json:"dropped"`
}

// Input is one input file.
type Input struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// SplitCount counts one split.
type SplitCount struct {
	Images          int `json:"images"`
	Captions        int `json:"captions"`
	DroppedImages   int `json:"dropped_images"`
	DroppedCaptions int `json:"dropped_captions"`
}

// VocabSummary describes the vocabulary in the manifest.
type VocabSummary struct {
	Size        int     `json:"size"`
	MinWordFreq int     `json:"min_word_freq"`
	TrainTokens int     `json:"train_tokens"`
	UnkRate     float64 `json:"train_unk_rate"` // share of training tokens mapped to <unk>
}

func (c PrepareConfig) parameters() map[string]any {
	return map[string]any{
		"min_word_freq":      c.MinWordFreq,
		"max_len":            c.MaxLen,
		"captions_per_image": c.CaptionsPerImage,
		"val_images":         c.ValImages,
		"test_images":        c.TestImages,
		"seed":               c.Seed,
		"check_images":       c.CheckImages,
		"skip_bad_images":    c.SkipBadImages,
		"tokenizer":          "PTBTokenizer (Stanford CoreNLP 3.4.1, -preserveLines -lowerCase) + COCO toolkit punctuation filter",
	}
}

func (m *Manifest) count(splits map[string][]Image, v *Vocab) {
	m.Counts = make(map[string]SplitCount)
	for _, s := range Splits {
		c := SplitCount{Images: len(splits[s])}
		for _, im := range splits[s] {
			c.Captions += len(im.Captions)
		}
		m.Counts[s] = c
	}
	for _, d := range m.Dropped {
		c, inSplit := m.Counts[d.Split] // images dropped before the split draw have none
		if d.Kind == "image" {
			m.DroppedImages++
			c.DroppedImages++
		} else {
			m.DroppedCaptions++
			c.DroppedCaptions++
		}
		if inSplit {
			m.Counts[d.Split] = c
		}
	}
	m.Vocab = VocabSummary{Size: v.Len(), MinWordFreq: v.MinWordFreq}
	unk := 0
	for _, im := range splits["train"] {
		for _, toks := range im.Tokens {
			m.Vocab.TrainTokens += len(toks)
			for _, t := range toks {
				if v.ID(t) == UnkID {
					unk++
				}
			}
		}
	}
	if m.Vocab.TrainTokens > 0 {
		m.Vocab.UnkRate = float64(unk) / float64(m.Vocab.TrainTokens)
	}
}

// hashFile returns an input file's size and sha256, and its contents.
func hashFile(path string) (Input, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Input{}, nil, &badinput.Error{File: path, Msg: "cannot read: " + err.Error(), Err: err}
	}
	sum := sha256.Sum256(data)
	return Input{Path: path, Bytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, data, nil
}
