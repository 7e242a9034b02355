package infer

import (
	"errors"
	"fmt"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
)

// Greedy captions the images ids, whose features are in features, by
// greedy decoding with params: each row starts from <start>, takes the
// highest-scoring word at each step (ties to the lowest id) and stops at
// <end> or after maxLen words. <pad>, <start> and <unk> are never chosen
// (as in beam search without --allow-unk). It is beam search of width 1
// (Beam), run batch images at a time on one compiled model.DecoderStepper
// (dropout off); a last, partial batch is padded with copies of its first
// image, whose captions are discarded, so a caption does not depend on
// the batch size or on the other images in its batch.
//
// The result maps each id to its caption's tokens, without the special
// tokens (an image whose first word is <end> has an empty caption).
func Greedy(params *model.DecoderParams, features *data.FeatureSet, ids []int64, vocab *data.Vocab, maxLen, batch int) (map[int64][]string, error) {
	switch {
	case params == nil || features == nil || vocab == nil:
		return nil, errors.New("greedy decoding: nil parameters, features or vocabulary")
	case maxLen < 1:
		return nil, fmt.Errorf("greedy decoding: max length must be ≥ 1, got %d", maxLen)
	case batch < 1:
		return nil, fmt.Errorf("greedy decoding: batch must be ≥ 1, got %d", batch)
	}
	opt := Options{Beam: 1, MaxLen: maxLen, Top: 1, Batch: batch}
	return decodeFeatureSet("greedy decoding", params, features, ids, vocab, opt)
}
