package infer

import (
	"context"
	"errors"
	"fmt"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
)

// Beam captions the images ids, whose features are in features, by beam
// search of width beamWidth with params, as Captioner does with
// Options{Beam: beamWidth, MaxLen: maxLen, Top: 1, Batch: batch} and no
// length penalty (see captioner_search.go): each image keeps beamWidth
// live hypotheses; the decoder runs on (images × beamWidth) rows at once,
// batch images at a time, on one compiled model.DecoderStepper (dropout
// off). A last, partial batch is padded with copies of its first image,
// whose captions are discarded, so a caption depends neither on the batch
// size nor on the other images in its batch. <pad>, <start> and <unk> are
// never chosen. With beamWidth 1 this is exactly Greedy.
//
// The result maps each id to its caption's tokens, without the special
// tokens.
func Beam(params *model.DecoderParams, features *data.FeatureSet, ids []int64, vocab *data.Vocab, maxLen, beamWidth, batch int) (map[int64][]string, error) {
	switch {
	case params == nil || features == nil || vocab == nil:
		return nil, errors.New("beam search: nil parameters, features or vocabulary")
	case maxLen < 1:
		return nil, fmt.Errorf("beam search: max length must be ≥ 1, got %d", maxLen)
	case beamWidth < 1:
		return nil, fmt.Errorf("beam search: beam width must be ≥ 1, got %d", beamWidth)
	case batch < 1:
		return nil, fmt.Errorf("beam search: batch must be ≥ 1, got %d", batch)
	}
	opt := Options{Beam: beamWidth, MaxLen: maxLen, Top: 1, Batch: batch}
	return decodeFeatureSet("beam search", params, features, ids, vocab, opt)
}

// decodeFeatureSet captions ids from a feature store with opt, for Beam
// and Greedy.
func decodeFeatureSet(what string, params *model.DecoderParams, features *data.FeatureSet, ids []int64, vocab *data.Vocab, opt Options) (map[int64][]string, error) {
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	c := params.Config
	if vocab.Len() != c.VocabSize {
		return nil, fmt.Errorf("%s: vocabulary has %d tokens, the decoder %d", what, vocab.Len(), c.VocabSize)
	}
	if features.Cells != c.GridCells || features.Channels != c.FeatureDim {
		return nil, fmt.Errorf("%s: features are %d×%d, the decoder wants %d×%d", what, features.Cells, features.Channels, c.GridCells, c.FeatureDim)
	}
	out := make(map[int64][]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	batch := min(opt.Batch, len(ids))
	st, err := model.NewDecoderStepper(params, batch*opt.Beam)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s, err := newSearcher(st, opt)
	if err != nil {
		return nil, err
	}
	size := features.Size()
	feats := make([]float32, batch*size)
	for lo := 0; lo < len(ids); lo += batch {
		hi := min(lo+batch, len(ids))
		for i, id := range ids[lo:hi] {
			if err := features.Fill(feats[i*size:(i+1)*size], id); err != nil {
				return nil, err
			}
		}
		hyps, err := s.run(context.Background(), feats[:(hi-lo)*size], hi-lo)
		if err != nil {
			return nil, err
		}
		for i, hs := range hyps {
			out[ids[lo+i]] = tokens(vocab, hs[0].words)
		}
	}
	return out, nil
}

// tokens spells word ids; never nil.
func tokens(vocab *data.Vocab, words []int) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = vocab.Tokens[w]
	}
	return out
}
