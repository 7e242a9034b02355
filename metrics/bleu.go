package metrics

import "math"

// BleuStats are BLEU's integer corpus counts, as bleu_scorer.py's
// compute_score totals them.
type BleuStats struct {
	TestLen int    `json:"testlen"` // candidate tokens
	RefLen  int    `json:"reflen"`  // effective ("closest") reference tokens
	Guess   [4]int `json:"guess"`   // candidate n-grams, n = 1..4
	Correct [4]int `json:"correct"` // clipped matching n-grams, n = 1..4
}

// The toolkit's smoothing constants (bleu_scorer.py compute_score).
const (
	bleuTiny  = 1e-15
	bleuSmall = 1e-9
)

// Scores returns BLEU-1..4 from the counts, as compute_score does for both
// the corpus and each image.
func (s BleuStats) Scores() [4]float64 {
	var out [4]float64
	bleu := 1.0
	for k := 0; k < 4; k++ {
		bleu *= (float64(s.Correct[k]) + bleuTiny) / (float64(s.Guess[k]) + bleuSmall)
		out[k] = math.Pow(bleu, 1/float64(k+1))
	}
	ratio := (float64(s.TestLen) + bleuTiny) / (float64(s.RefLen) + bleuSmall)
	if ratio < 1 {
		for k := range out {
			out[k] *= math.Exp(1 - 1/ratio)
		}
	}
	return out
}

// add accumulates another image's counts.
func (s *BleuStats) add(o BleuStats) {
	s.TestLen += o.TestLen
	s.RefLen += o.RefLen
	for k := range s.Guess {
		s.Guess[k] += o.Guess[k]
		s.Correct[k] += o.Correct[k]
	}
}

// bleuStats counts one image as cook_refs and cook_test do.
func bleuStats(im *image) BleuStats {
	testLen := len(im.cand.words)
	st := BleuStats{TestLen: testLen, RefLen: closestRefLen(im.refs, testLen)}
	for k := 0; k < 4; k++ {
		st.Guess[k] = max(0, testLen-k)
	}
	for _, g := range im.cand.grams {
		ig := &im.grams[g.local]
		st.Correct[ig.n-1] += int(min(g.count, ig.maxRef))
	}
	return st
}

// closestRefLen is the reference length closest to testLen, ties going to
// the shorter (Python's min over (|l − testLen|, l) tuples).
func closestRefLen(refs []caption, testLen int) int {
	best, bestDist := 0, -1
	for _, r := range refs {
		l := len(r.words)
		d := l - testLen
		if d < 0 {
			d = -d
		}
		if bestDist < 0 || d < bestDist || (d == bestDist && l < best) {
			best, bestDist = l, d
		}
	}
	return best
}
