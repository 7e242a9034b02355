package model

import (
	"encoding/json"
	"fmt"
	"math"
)

// Decoder architectures, the values of DecoderConfig.Arch and of
// `captionctl train --arch`.
const (
	// ArchAttention is the soft-attention decoder of Show, Attend and Tell
	// (Xu et al. 2015).
	ArchAttention = "attention"
	// ArchShowTell is the Show and Tell baseline (Vinyals et al. 2015, the
	// im2txt design): the pooled image feature enters the LSTM once, before
	// <start>; no attention.
	ArchShowTell = "showtell"
)

// DecoderConfig is the typed configuration of the caption decoder. It is
// saved as JSON in every model file, so field names are part of the file
// format: add fields freely, never rename them.
type DecoderConfig struct {
	// Arch is ArchAttention or ArchShowTell (--arch).
	Arch string `json:"arch"`
	// VocabSize V: the number of token ids, <pad>, <start>, <end> and <unk>
	// included (from the dataset's vocab.json).
	VocabSize int `json:"vocab_size"`
	// FeatureDim F: channels of one grid cell of the image features (512
	// for ResNet-18/34, 2048 for ResNet-50/101/152).
	FeatureDim int `json:"feature_dim"`
	// GridCells P: grid² cells per image (49 for 7×7, 196 for 14×14).
	GridCells int `json:"grid_cells"`
	// EmbedDim E: word embedding size (--embed-dim).
	EmbedDim int `json:"embed_dim"`
	// AttentionDim A: size of the attention MLP's hidden layer
	// (--attention-dim); unused by ArchShowTell.
	AttentionDim int `json:"attention_dim"`
	// HiddenDim H: LSTM state size (--hidden-dim).
	HiddenDim int `json:"hidden_dim"`
	// Dropout is the probability of zeroing an element of h_t before the
	// output layer during training (--dropout), in [0, 1).
	Dropout float64 `json:"dropout"`
	// AlphaC weighs the doubly stochastic attention penalty (--alpha-c),
	// ≥ 0; see DecoderParams for its exact normalisation.
	AlphaC float64 `json:"alpha_c"`
}

// DefaultDecoderConfig returns the Show, Attend and Tell defaults used by
// the tutorials captionctl is compared with: embedding, attention and LSTM
// 512, dropout 0.5, α_c 1, ResNet-18/34 features on a 7×7 grid. VocabSize
// is 0: it comes from the dataset and must be set before Validate passes.
func DefaultDecoderConfig() DecoderConfig {
	return DecoderConfig{
		Arch:         ArchAttention,
		FeatureDim:   512,
		GridCells:    49,
		EmbedDim:     512,
		AttentionDim: 512,
		HiddenDim:    512,
		Dropout:      0.5,
		AlphaC:       1.0,
	}
}

// decoderMaxDim bounds every dimension so that no parameter tensor can ask
// for an absurd allocation when a config comes from a file.
const decoderMaxDim = 1 << 20

// Validate reports the first invalid field, naming the flag that sets it
// and the offending value.
func (c DecoderConfig) Validate() error {
	switch c.Arch {
	case ArchAttention, ArchShowTell:
	default:
		return fmt.Errorf("--arch must be %q or %q, got %q", ArchAttention, ArchShowTell, c.Arch)
	}
	dims := []struct {
		flag string
		v    int
		min  int
	}{
		// <pad>, <start>, <end>, <unk> and at least one word.
		{"--vocab-size (from the dataset's vocab.json)", c.VocabSize, 5},
		{"--feature-dim (from the features' manifest)", c.FeatureDim, 1},
		{"--grid-cells (from the features' manifest)", c.GridCells, 1},
		{"--embed-dim", c.EmbedDim, 1},
		{"--hidden-dim", c.HiddenDim, 1},
	}
	if c.Arch == ArchAttention {
		dims = append(dims, struct {
			flag string
			v    int
			min  int
		}{"--attention-dim", c.AttentionDim, 1})
	}
	for _, d := range dims {
		if d.v < d.min || d.v > decoderMaxDim {
			return fmt.Errorf("%s must be in [%d, %d], got %d", d.flag, d.min, decoderMaxDim, d.v)
		}
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("--dropout must be in [0, 1), got %v", c.Dropout)
	}
	if !(c.AlphaC >= 0) || math.IsInf(c.AlphaC, 1) {
		return fmt.Errorf("--alpha-c must be a finite number ≥ 0, got %v", c.AlphaC)
	}
	return nil
}

// String returns the config as one line of JSON, as saved in model files.
func (c DecoderConfig) String() string {
	b, err := json.Marshal(c)
	if err != nil { // cannot happen: plain fields only
		return fmt.Sprintf("%#v", c)
	}
	return string(b)
}
