package infer

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// The batched beam search behind Captioner, Beam and Greedy.
//
// Each image keeps K live hypotheses on K rows of one DecoderStepper run
// on images × K rows at once. At each step the candidates of an image
// (live hypothesis × allowed word, scored by the sum of log-probabilities,
// the log-softmax over the whole vocabulary in float64) are ranked by
// score, ties going to the lower word id and then to the better-ranked
// parent. A candidate ending in <end> that ranks within the top K
// completes; the best K candidates not ending in <end> stay live. All
// candidates of a step have the same length, so the length penalty does
// not change this ranking; it ranks completed hypotheses, by
// log-prob / len^A with len counting <end>.
//
// An image stops when K hypotheses have completed, when no live one is
// left, after MaxLen steps, or as soon as no live hypothesis can still
// enter its Top best completed ones: a completion's log-prob is at most
// its live prefix's (log-probs are ≤ 0) and its length at most MaxLen, so
// its score is at most prefix / MaxLen^A. This last rule only saves work.
// The result is the Top best completed hypotheses (the first found on a
// tie), completed with the best live ones when fewer completed: with none
// completed, the best partial hypothesis comes first. With K = 1 this is
// exactly greedy decoding.

// hypothesis is one caption of a beam: its words (ids, without <start>
// and <end>), each word's attention weights (when kept), and the sum of
// its tokens' log-probabilities, <end>'s included when complete.
type hypothesis struct {
	words    []int
	alphas   [][]float32
	logProb  float64
	complete bool
}

// score is the ranking score logProb / len^A, len the number of tokens
// counting <end>.
func (h *hypothesis) score(lengthPenalty float64) float64 {
	if lengthPenalty == 0 {
		return h.logProb
	}
	n := len(h.words)
	if h.complete {
		n++
	}
	return h.logProb / math.Pow(float64(max(n, 1)), lengthPenalty)
}

// beamCand is a candidate extension of a live hypothesis.
type beamCand struct {
	parent int // row within the image's beam
	word   int
	score  float64 // the extended hypothesis's log-prob
}

// candBefore is the ranking of candidates: score, then lower word, then
// better-ranked parent.
func candBefore(a, b beamCand) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	if a.word != b.word {
		return a.word < b.word
	}
	return a.parent < b.parent
}

// searcher runs the search for up to `images` images at a time on one
// stepper of images × Beam rows.
type searcher struct {
	stepper *model.DecoderStepper
	opt     Options
	images  int
	feat    *tensor.Dense // (images, P, F): each image once, shared by its beam
	words   []int         // previous word of each row
	parents []int         // row → row of its parent
	lse     []float64     // per row: log Σ exp(logits)
	expBuf  []float32     // (V) scratch of the softmax
	banned  []bool        // (V) words a hypothesis may not take
}

func newSearcher(s *model.DecoderStepper, opt Options) (*searcher, error) {
	if s.Batch%opt.Beam != 0 {
		return nil, fmt.Errorf("caption search: a stepper of %d rows for beam %d", s.Batch, opt.Beam)
	}
	c := s.Params.Config
	s.ReuseLogits = true // each step's logits are read before the next step
	return &searcher{
		stepper: s, opt: opt, images: s.Batch / opt.Beam,
		feat:    tensor.New(tensor.Of(s.Params.Dtype), tensor.WithShape(s.Batch/opt.Beam, c.GridCells, c.FeatureDim)),
		words:   make([]int, s.Batch),
		parents: make([]int, s.Batch),
		lse:     make([]float64, s.Batch),
		expBuf:  make([]float32, c.VocabSize),
		banned:  make([]bool, c.VocabSize),
	}, nil
}

// run searches captions for n ≤ s.images images whose features feats
// hold (n, P, F) row-major, and returns each image's ranked hypotheses
// (at least one, at most Top). Rows of missing images are filled with the
// first image's features and their results discarded, so a caption does
// not depend on the batch.
func (s *searcher) run(ctx context.Context, feats []float32, n int) ([][]*hypothesis, error) {
	c := s.stepper.Params.Config
	K, V, P := s.opt.Beam, c.VocabSize, c.GridCells
	size := c.GridCells * c.FeatureDim
	if n < 1 || n > s.images || len(feats) != n*size {
		return nil, fmt.Errorf("caption search: %d floats for %d images of %d×%d (at most %d images)", len(feats), n, c.GridCells, c.FeatureDim, s.images)
	}
	for img := range s.images {
		src := feats[:size]
		if img < n {
			src = feats[img*size : (img+1)*size]
		}
		switch d := s.feat.Data().(type) {
		case []float32:
			copy(d[img*size:(img+1)*size], src)
		case []float64:
			for i, v := range src {
				d[img*size+i] = float64(v)
			}
		default:
			return nil, fmt.Errorf("caption search: unsupported parameter type %v", s.stepper.Params.Dtype)
		}
	}
	state, err := s.stepper.StartBeams(s.feat, K)
	if err != nil {
		return nil, err
	}
	// live[img][k]: the hypothesis of row img·K+k; nil when the row is
	// dead (its output is ignored).
	live := make([][]*hypothesis, s.images)
	finished := make([][]*hypothesis, s.images)
	done := make([]bool, s.images)
	for img := range s.images {
		live[img] = make([]*hypothesis, K)
		live[img][0] = &hypothesis{words: []int{}}
		done[img] = img >= n
	}
	for r := range s.words {
		s.words[r] = data.StartID
	}
	cands := make([]beamCand, 0, K*(K+1))
	for t := 0; t < s.opt.MaxLen; t++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		step, err := s.stepper.Step(state, s.words)
		if err != nil {
			return nil, err
		}
		if err := logSumExpRows(step.Logits, s.stepper.Batch, V, s.lse, s.expBuf); err != nil {
			return nil, err
		}
		f32, _ := step.Logits.Data().([]float32)
		f64, _ := step.Logits.Data().([]float64)
		var alpha []float32 // (rows, P), fresh each step: hypotheses keep slices of it
		if s.opt.Attention && step.Alpha != nil {
			if alpha, err = float32s(step.Alpha); err != nil {
				return nil, err
			}
		}
		active := false
		for img := range s.images {
			base := img * K
			for k := range K {
				s.parents[base+k] = base + k
			}
			if done[img] {
				continue
			}
			cands = cands[:0]
			for k, h := range live[img] {
				if h == nil {
					continue
				}
				r := base + k
				lp := rowLogProbs{lse: s.lse[r]}
				if f32 != nil {
					lp.f32 = f32[r*V : (r+1)*V]
				} else {
					lp.f64 = f64[r*V : (r+1)*V]
				}
				cands = s.appendCandidates(cands, lp, k, h)
			}
			sort.Slice(cands, func(i, j int) bool { return candBefore(cands[i], cands[j]) })
			next := make([]*hypothesis, K)
			nLive := 0
			for i, cd := range cands {
				if nLive == K {
					break
				}
				par := live[img][cd.parent]
				if cd.word == data.EndID {
					if i < K {
						finished[img] = append(finished[img], &hypothesis{words: par.words, alphas: par.alphas, logProb: cd.score, complete: true})
					}
					continue
				}
				h := &hypothesis{words: make([]int, len(par.words), len(par.words)+1), logProb: cd.score}
				copy(h.words, par.words)
				h.words = append(h.words, cd.word)
				if alpha != nil {
					row := base + cd.parent
					h.alphas = append(append(make([][]float32, 0, len(par.alphas)+1), par.alphas...), alpha[row*P:(row+1)*P:(row+1)*P])
				}
				next[nLive] = h
				s.parents[base+nLive] = base + cd.parent
				s.words[base+nLive] = cd.word
				nLive++
			}
			for k := nLive; k < K; k++ {
				s.words[base+k] = data.EndID // any valid id; the row is dead
			}
			live[img] = next
			if nLive == 0 || len(finished[img]) >= K || s.settled(finished[img], next) {
				done[img] = true
				continue
			}
			active = true
		}
		if !active || t == s.opt.MaxLen-1 {
			break
		}
		if state, err = reorderState(step.State, s.parents); err != nil {
			return nil, err
		}
	}
	out := make([][]*hypothesis, n)
	for img := range n {
		out[img] = s.rank(finished[img], live[img])
	}
	return out, nil
}

// appendCandidates appends the candidates extending h (on row k of its
// image): its best K allowed words other than <end>, and <end>.
func (s *searcher) appendCandidates(cands []beamCand, lp rowLogProbs, k int, h *hypothesis) []beamCand {
	K := s.opt.Beam
	banned := s.banned
	var bannedWords []int
	if s.opt.NoRepeatNgram > 0 {
		bannedWords = repeatedNgramWords(h.words, s.opt.NoRepeatNgram)
		for _, w := range bannedWords {
			banned[w] = true
		}
	}
	start := len(cands)
	for w := range lp.len() {
		if w == data.PadID || w == data.StartID || w == data.EndID || (w == data.UnkID && !s.opt.AllowUnk) || banned[w] {
			continue
		}
		c := beamCand{parent: k, word: w, score: h.logProb + lp.at(w)}
		top := cands[start:]
		if len(top) == K {
			if !candBefore(c, top[K-1]) {
				continue
			}
			top[K-1] = c
		} else {
			cands = append(cands, c)
			top = cands[start:]
		}
		for i := len(top) - 1; i > 0 && candBefore(top[i], top[i-1]); i-- {
			top[i], top[i-1] = top[i-1], top[i]
		}
	}
	for _, w := range bannedWords {
		banned[w] = false
	}
	return append(cands, beamCand{parent: k, word: data.EndID, score: h.logProb + lp.at(data.EndID)})
}

// repeatedNgramWords returns the words w such that words + w would repeat
// an n-gram of words: the word after each earlier occurrence of the last
// n−1 words.
func repeatedNgramWords(words []int, n int) []int {
	var out []int
	prefix := len(words) - (n - 1)
	if prefix < 0 {
		return nil
	}
	tail := words[prefix:]
	for i := 0; i+n-1 < len(words); i++ {
		match := true
		for j, w := range tail {
			if words[i+j] != w {
				match = false
				break
			}
		}
		if match {
			out = append(out, words[i+n-1])
		}
	}
	return out
}

// settled says whether no live hypothesis can enter the Top best
// completed ones any more (see the search's description).
func (s *searcher) settled(finished, live []*hypothesis) bool {
	a := s.opt.LengthPenalty
	if len(finished) < s.opt.Top {
		return false
	}
	scores := make([]float64, len(finished))
	for i, h := range finished {
		scores[i] = h.score(a)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(scores)))
	worst := scores[s.opt.Top-1]
	div := math.Pow(float64(s.opt.MaxLen), a)
	for _, h := range live {
		if h != nil && h.logProb/div > worst {
			return false
		}
	}
	return true
}

// rank returns the Top best of an image's completed hypotheses, by score
// (the first completed on a tie), followed when fewer completed by the
// best live ones.
func (s *searcher) rank(finished, live []*hypothesis) []*hypothesis {
	a := s.opt.LengthPenalty
	byScore := func(hs []*hypothesis) []*hypothesis {
		hs = append([]*hypothesis(nil), hs...)
		sort.SliceStable(hs, func(i, j int) bool { return hs[i].score(a) > hs[j].score(a) })
		return hs
	}
	out := byScore(finished)
	if len(out) < s.opt.Top {
		var partial []*hypothesis
		for _, h := range live {
			if h != nil {
				partial = append(partial, h)
			}
		}
		out = append(out, byScore(partial)...)
	}
	return out[:min(len(out), s.opt.Top)]
}

// float32s returns a dense tensor's values as a new float32 slice.
func float32s(t *tensor.Dense) ([]float32, error) {
	switch d := t.Data().(type) {
	case []float32:
		return append([]float32(nil), d...), nil
	case []float64:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("caption search: tensor of type %v", t.Dtype())
}

// logSumExpRows writes each row's log Σ exp of logits (B, V) into lse:
// row r's log-probabilities are logits[r] − lse[r] (rowLogProbs).
func logSumExpRows(logits *tensor.Dense, batch, vocab int, lse []float64, scratch []float32) error {
	if logits.Shape().TotalSize() != batch*vocab {
		return fmt.Errorf("caption search: logits shape %v, want (%d, %d)", logits.Shape(), batch, vocab)
	}
	switch d := logits.Data().(type) {
	case []float32:
		for row := range batch {
			r := d[row*vocab : (row+1)*vocab]
			m := r[0]
			for _, v := range r {
				m = max(m, v)
			}
			lse[row] = float64(m) + math.Log(model.ExpShift(scratch, r, m))
		}
	case []float64:
		for row := range batch {
			r := d[row*vocab : (row+1)*vocab]
			m := math.Inf(-1)
			for _, v := range r {
				m = max(m, v)
			}
			sum := 0.0
			for _, v := range r {
				sum += math.Exp(v - m)
			}
			lse[row] = m + math.Log(sum)
		}
	default:
		return fmt.Errorf("caption search: logits of type %v", logits.Dtype())
	}
	return nil
}

// rowLogProbs is one row's log-softmax, read word by word from the
// logits and the row's log-sum-exp.
type rowLogProbs struct {
	f32 []float32 // the logits, float32 parameters
	f64 []float64 // or float64
	lse float64
}

func (r rowLogProbs) at(w int) float64 {
	if r.f32 != nil {
		return float64(r.f32[w]) - r.lse
	}
	return r.f64[w] - r.lse
}

func (r rowLogProbs) len() int { return max(len(r.f32), len(r.f64)) }

// reorderState returns a state whose row r is row parents[r] of st's H and
// C; Features and Cache are shared, since every row of an image's beam has
// the same ones. With parents the identity, st itself.
func reorderState(st *model.DecoderState, parents []int) (*model.DecoderState, error) {
	identity := true
	for r, p := range parents {
		if r != p {
			identity = false
			break
		}
	}
	if identity {
		return st, nil
	}
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
			return nil, fmt.Errorf("caption search: state of type %v", src.Dtype())
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
	return &model.DecoderState{H: h, C: c, Features: st.Features, Cache: st.Cache, Beams: st.Beams}, nil
}
