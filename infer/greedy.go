package infer

import (
	"errors"
	"fmt"
	"math"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// Greedy captions the images ids, whose features are in features, by
// greedy decoding with params: each row starts from <start>, takes the
// highest-scoring word at each step and stops at <end> or after maxLen
// words. <pad>, <start> and <unk> are never chosen (as in beam search
// without --allow-unk). Images are decoded batch at a time on one compiled
// model.DecoderStepper (dropout off); a last, partial batch is padded with
// copies of its first image, whose captions are discarded, so a caption
// does not depend on the batch size or on the other images in its batch.
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
	c := params.Config
	if vocab.Len() != c.VocabSize {
		return nil, fmt.Errorf("greedy decoding: vocabulary has %d tokens, the decoder %d", vocab.Len(), c.VocabSize)
	}
	if features.Cells != c.GridCells || features.Channels != c.FeatureDim {
		return nil, fmt.Errorf("greedy decoding: features are %d×%d, the decoder wants %d×%d", features.Cells, features.Channels, c.GridCells, c.FeatureDim)
	}
	out := make(map[int64][]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if batch > len(ids) {
		batch = len(ids)
	}
	s, err := model.NewDecoderStepper(params, batch)
	if err != nil {
		return nil, err
	}
	defer s.Close()

	size := features.Size()
	feat32 := make([]float32, batch*size)
	featT := tensor.New(tensor.Of(params.Dtype), tensor.WithShape(batch, c.GridCells, c.FeatureDim))
	words := make([]int, batch)
	captions := make([][]int, batch)
	done := make([]bool, batch)
	for lo := 0; lo < len(ids); lo += batch {
		hi := min(lo+batch, len(ids))
		for row := range batch {
			id := ids[lo]
			if lo+row < hi {
				id = ids[lo+row]
			}
			if err := features.Fill(feat32[row*size:(row+1)*size], id); err != nil {
				return nil, err
			}
		}
		switch d := featT.Data().(type) {
		case []float32:
			copy(d, feat32)
		case []float64:
			for i, v := range feat32 {
				d[i] = float64(v)
			}
		default:
			return nil, fmt.Errorf("greedy decoding: unsupported parameter type %v", params.Dtype)
		}
		state, err := s.Start(featT)
		if err != nil {
			return nil, err
		}
		for row := range batch {
			words[row] = data.StartID
			captions[row] = captions[row][:0]
			done[row] = lo+row >= hi // padding rows are done from the start
		}
		for t := 0; t < maxLen; t++ {
			step, err := s.Step(state, words)
			if err != nil {
				return nil, err
			}
			state = step.State
			next, err := argmaxRows(step.Logits, batch, c.VocabSize)
			if err != nil {
				return nil, err
			}
			active := false
			for row, w := range next {
				if done[row] {
					words[row] = data.EndID // any valid id; its output is ignored
					continue
				}
				words[row] = w
				if w == data.EndID {
					done[row] = true
					continue
				}
				captions[row] = append(captions[row], w)
				active = true
			}
			if !active {
				break
			}
		}
		for row := range hi - lo {
			toks := make([]string, len(captions[row]))
			for i, w := range captions[row] {
				toks[i] = vocab.Tokens[w]
			}
			out[ids[lo+row]] = toks
		}
	}
	return out, nil
}

// argmaxRows returns each row's highest-scoring word of logits (B, V),
// never <pad>, <start> or <unk>; ties go to the lowest id.
func argmaxRows(logits *tensor.Dense, batch, vocab int) ([]int, error) {
	val := func(i int) float64 { return 0 }
	switch d := logits.Data().(type) {
	case []float32:
		val = func(i int) float64 { return float64(d[i]) }
	case []float64:
		val = func(i int) float64 { return d[i] }
	default:
		return nil, fmt.Errorf("greedy decoding: logits of type %v", logits.Dtype())
	}
	if logits.Shape().TotalSize() != batch*vocab {
		return nil, fmt.Errorf("greedy decoding: logits shape %v, want (%d, %d)", logits.Shape(), batch, vocab)
	}
	out := make([]int, batch)
	for row := range batch {
		best, bestV := data.EndID, math.Inf(-1)
		for w := range vocab {
			if w == data.PadID || w == data.StartID || w == data.UnkID {
				continue
			}
			if v := val(row*vocab + w); v > bestV {
				best, bestV = w, v
			}
		}
		out[row] = best
	}
	return out, nil
}
