package infer

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// beamHyp is one hypothesis of a beam: its words (without <start> and
// <end>) and its score, the sum of its words' log-probabilities.
type beamHyp struct {
	words []int
	score float64
}

// beamCand is a candidate extension of a live hypothesis.
type beamCand struct {
	parent int // row within the image's beam
	word   int
	score  float64
}

// Beam captions the images ids, whose features are in features, by beam
// search of width beamWidth with params. Each image keeps beamWidth live
// hypotheses; the decoder runs on (images × beamWidth) rows at once, batch
// images at a time, on one compiled model.DecoderStepper (dropout off). A
// last, partial batch is padded with copies of its first image, whose
// captions are discarded, so a caption depends neither on the batch size
// nor on the other images in its batch.
//
// A hypothesis's score is the sum of its words' log-probabilities (the
// log-softmax of the logits over the whole vocabulary, computed in float64).
// There is no length normalisation, as in sgrvinod's caption.py: scores
// only decrease as a hypothesis grows, so once an image's best finished
// hypothesis scores at least as well as its best live one, nothing can beat
// it and the image stops. <pad>, <start> and <unk> are never chosen (as in
// Greedy).
//
// At each step the candidates (live hypothesis × allowed word) of an image
// are ranked by score, ties going to the lower word id and then to the
// better-ranked parent. Candidates ending in <end> that rank within the
// top beamWidth become finished hypotheses; the best beamWidth candidates
// not ending in <end> stay live. Search stops when every image is done or
// after maxLen steps. The result is each image's best finished hypothesis
// (the first found on a tie), or, when none finished, its best live one.
// With beamWidth 1 this is exactly Greedy.
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
	c := params.Config
	if vocab.Len() != c.VocabSize {
		return nil, fmt.Errorf("beam search: vocabulary has %d tokens, the decoder %d", vocab.Len(), c.VocabSize)
	}
	if features.Cells != c.GridCells || features.Channels != c.FeatureDim {
		return nil, fmt.Errorf("beam search: features are %d×%d, the decoder wants %d×%d", features.Cells, features.Channels, c.GridCells, c.FeatureDim)
	}
	out := make(map[int64][]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	if batch > len(ids) {
		batch = len(ids)
	}
	K, V := beamWidth, c.VocabSize
	rows := batch * K
	s, err := model.NewDecoderStepper(params, rows)
	if err != nil {
		return nil, err
	}
	defer s.Close()

	size := features.Size()
	feat32 := make([]float32, size)
	featT := tensor.New(tensor.Of(params.Dtype), tensor.WithShape(rows, c.GridCells, c.FeatureDim))
	words := make([]int, rows)
	logp := make([]float64, rows*V)
	for lo := 0; lo < len(ids); lo += batch {
		hi := min(lo+batch, len(ids))
		for img := range batch {
			id := ids[lo]
			if lo+img < hi {
				id = ids[lo+img]
			}
			if err := features.Fill(feat32, id); err != nil {
				return nil, err
			}
			for k := range K {
				r := img*K + k
				switch d := featT.Data().(type) {
				case []float32:
					copy(d[r*size:(r+1)*size], feat32)
				case []float64:
					for i, v := range feat32 {
						d[r*size+i] = float64(v)
					}
				default:
					return nil, fmt.Errorf("beam search: unsupported parameter type %v", params.Dtype)
				}
			}
		}
		state, err := s.Start(featT)
		if err != nil {
			return nil, err
		}
		// live[img][k]: the hypothesis of row img*K+k, nil when the row is
		// dead (its output is ignored).
		live := make([][]*beamHyp, batch)
		best := make([]*beamHyp, batch) // best finished hypothesis
		done := make([]bool, batch)
		for img := range batch {
			live[img] = make([]*beamHyp, K)
			live[img][0] = &beamHyp{}
			done[img] = lo+img >= hi // padding images are done from the start
			for k := range K {
				words[img*K+k] = data.StartID
			}
		}
		cands := make([]beamCand, 0, K*V)
		for t := 0; t < maxLen; t++ {
			step, err := s.Step(state, words)
			if err != nil {
				return nil, err
			}
			if err := logSoftmaxRows(step.Logits, rows, V, logp); err != nil {
				return nil, err
			}
			parents := make([]int, rows) // row → row of its parent
			active := false
			for img := range batch {
				base := img * K
				for k := range K {
					parents[base+k] = base // dead rows copy any row
				}
				if done[img] {
					continue
				}
				cands = cands[:0]
				for k, h := range live[img] {
					if h == nil {
						continue
					}
					lp := logp[(base+k)*V : (base+k+1)*V]
					for w := range V {
						if w == data.PadID || w == data.StartID || w == data.UnkID {
							continue
						}
						cands = append(cands, beamCand{parent: k, word: w, score: h.score + lp[w]})
					}
				}
				sort.Slice(cands, func(i, j int) bool {
					a, b := cands[i], cands[j]
					if a.score != b.score {
						return a.score > b.score
					}
					if a.word != b.word {
						return a.word < b.word
					}
					return a.parent < b.parent
				})
				next := make([]*beamHyp, K)
				n := 0
				for i, cd := range cands {
					if n == K {
						break
					}
					par := live[img][cd.parent]
					if cd.word == data.EndID {
						if i < K && (best[img] == nil || cd.score > best[img].score) {
							best[img] = &beamHyp{words: append([]int(nil), par.words...), score: cd.score}
						}
						continue
					}
					ws := make([]int, len(par.words), len(par.words)+1)
					copy(ws, par.words)
					next[n] = &beamHyp{words: append(ws, cd.word), score: cd.score}
					parents[base+n] = base + cd.parent
					words[base+n] = cd.word
					n++
				}
				for k := n; k < K; k++ {
					words[base+k] = data.EndID // any valid id; the row is dead
				}
				live[img] = next
				if n == 0 || (best[img] != nil && best[img].score >= next[0].score) {
					done[img] = true
					continue
				}
				active = true
			}
			if !active {
				break
			}
			if state, err = reorderState(step.State, parents); err != nil {
				return nil, err
			}
		}
		for img := range hi - lo {
			h := best[img]
			if h == nil {
				h = live[img][0]
			}
			toks := make([]string, 0)
			if h != nil {
				for _, w := range h.words {
					toks = append(toks, vocab.Tokens[w])
				}
			}
			out[ids[lo+img]] = toks
		}
	}
	return out, nil
}

// logSoftmaxRows writes each row's log-softmax of logits (B, V) into dst,
// computed in float64 with the row maximum subtracted.
func logSoftmaxRows(logits *tensor.Dense, batch, vocab int, dst []float64) error {
	if logits.Shape().TotalSize() != batch*vocab {
		return fmt.Errorf("beam search: logits shape %v, want (%d, %d)", logits.Shape(), batch, vocab)
	}
	switch d := logits.Data().(type) {
	case []float32:
		for i, v := range d {
			dst[i] = float64(v)
		}
	case []float64:
		copy(dst, d)
	default:
		return fmt.Errorf("beam search: logits of type %v", logits.Dtype())
	}
	for row := range batch {
		r := dst[row*vocab : (row+1)*vocab]
		m := math.Inf(-1)
		for _, v := range r {
			m = max(m, v)
		}
		sum := 0.0
		for _, v := range r {
			sum += math.Exp(v - m)
		}
		lse := m + math.Log(sum)
		for i := range r {
			r[i] -= lse
		}
	}
	return nil
}

// reorderState returns a state whose row r is row parents[r] of st's H and
// C; Features and Cache are shared, since every row of an image's beam has
// the same ones.
func reorderState(st *model.DecoderState, parents []int) (*model.DecoderState, error) {
	gather := func(src *tensor.Dense) (*tensor.Dense, error) {
		dst := src.Clone().(*tensor.Dense)
		n := src.Shape().TotalSize() / len(parents)
		switch s := src.Data().(type) {
		case []float32:
			d := dst.Data().([]float32)
			for r, p := range parents {
				copy(d[r*n:(r+1)*n], s[p*n:(p+1)*n])
			}
		case []float64:
			d := dst.Data().([]float64)
			for r, p := range parents {
				copy(d[r*n:(r+1)*n], s[p*n:(p+1)*n])
			}
		default:
			return nil, fmt.Errorf("beam search: state of type %v", src.Dtype())
		}
		return dst, nil
	}
	h, err := gather(st.H)
	if err != nil {
		return nil, err
	}
	c, err := gather(st.C)
	if err != nil {
		return nil, err
	}
	return &model.DecoderState{H: h, C: c, Features: st.Features, Cache: st.Cache}, nil
}
