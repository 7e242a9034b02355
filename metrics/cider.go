package metrics

import (
	"math"

	"github.com/captionctl/captionctl/internal/parallel"
)

// ciderSigma is CIDEr-D's σ for the length penalty (cider/cider.py).
const ciderSigma = 6.0

// countDocFreq sets df on every image n-gram: the number of images whose
// references contain it (CiderScorer.compute_doc_freq). Equal n-grams have
// equal hashes, so the n-grams are partitioned by the top bits of their
// hashes into buckets of about a hundred, each grouped in cache with a small
// hash table, in parallel. A global map would cost a cache miss per n-gram.
func countDocFreq(images []image) {
	type entry struct {
		key   gramKey
		image uint32
		gram  uint32 // index in the image's table; top bit: in the references
	}
	const inRefsBit = 1 << 31
	total := 0
	for i := range images {
		total += len(images[i].grams)
	}
	bits := 1
	for (1<<bits)*128 < total {
		bits++
	}
	shift := 64 - bits
	starts := make([]int, 1<<bits+1)
	for i := range images {
		for j := range images[i].grams {
			starts[images[i].grams[j].key.hash()>>shift+1]++
		}
	}
	for b := 1; b < len(starts); b++ {
		starts[b] += starts[b-1]
	}
	next := append([]int(nil), starts[:len(starts)-1]...)
	entries := make([]entry, total)
	for i := range images {
		for j := range images[i].grams {
			g := &images[i].grams[j]
			e := entry{key: g.key, image: uint32(i), gram: uint32(j)}
			if g.inRefs {
				e.gram |= inRefsBit
			}
			b := g.key.hash() >> shift
			entries[next[b]] = e
			next[b]++
		}
	}
	parallel.For(len(starts)-1, func() func(int) {
		var t gramTable
		var first, df, groupOf []int32
		return func(b int) {
			es := entries[starts[b]:starts[b+1]]
			t.reset(len(es))
			first, df, groupOf = first[:0], df[:0], groupOf[:0]
			for k := range es {
				e := &es[k]
				h := e.key.hash() & t.mask
				for {
					s := t.slots[h]
					if s == 0 {
						t.slots[h] = int32(len(first)) + 1
						groupOf = append(groupOf, int32(len(first)))
						first = append(first, int32(k))
						df = append(df, 0)
						break
					}
					if es[first[s-1]].key == e.key {
						groupOf = append(groupOf, s-1)
						break
					}
					h = (h + 1) & t.mask
				}
				if e.gram&inRefsBit != 0 {
					df[groupOf[k]]++
				}
			}
			for k := range es {
				e := &es[k]
				images[e.image].grams[e.gram&^inRefsBit].df = df[groupOf[k]]
			}
		}
	})
}

// ciderVec is counts2vec's result for one caption: TF-IDF weights of its
// n-grams (parallel to caption.grams), the L2 norm per n, and the toolkit's
// "length", which counts bigrams (its `if n == 1` tests a 0-based n).
type ciderVec struct {
	weights []float64
	norm    [maxN]float64
	length  int
}

// ciderScorer scores images with CIDEr-D (CiderScorer.compute_cider).
type ciderScorer struct {
	refLen float64 // log(number of images)
}

// ciderScratch is one goroutine's reusable memory for ciderD.
type ciderScratch struct {
	idf       []float64 // refLen − log(max(1, df)) per image n-gram
	refWeight []float64 // per image n-gram; zero between references
	candW     []float64
	refW      []float64
}

func (s *ciderScorer) vec(cp *caption, idf, weights []float64, im *image) ciderVec {
	v := ciderVec{weights: weights[:0]}
	var sq [maxN]float64
	for _, g := range cp.grams {
		w := float64(g.count) * idf[g.local]
		v.weights = append(v.weights, w)
		n := im.grams[g.local].n
		sq[n-1] += w * w
		if n == 2 {
			v.length += int(g.count)
		}
	}
	for n := range sq {
		v.norm[n] = math.Sqrt(sq[n])
	}
	return v
}

// ciderD scores one image as compute_cider does.
func (s *ciderScorer) ciderD(im *image, sc *ciderScratch) float64 {
	sc.idf = sc.idf[:0]
	for _, g := range im.grams {
		sc.idf = append(sc.idf, s.refLen-math.Log(math.Max(1, float64(g.df))))
	}
	if cap(sc.refWeight) < len(im.grams) {
		sc.refWeight = make([]float64, len(im.grams))
	}
	refWeight := sc.refWeight[:len(im.grams)]
	cv := s.vec(&im.cand, sc.idf, sc.candW, im)
	sc.candW = cv.weights
	var score [maxN]float64
	for ri := range im.refs {
		r := &im.refs[ri]
		rv := s.vec(r, sc.idf, sc.refW, im)
		sc.refW = rv.weights
		for i, g := range r.grams {
			refWeight[g.local] = rv.weights[i]
		}
		// sim(): per n, the clipped dot product over the candidate's n-grams
		// in their insertion order, normalised, times the length penalty
		// np.e**(−Δ²/2σ²) (a power of the rounded e, not exp).
		var val [maxN]float64
		for i, g := range im.cand.grams {
			ref := refWeight[g.local]
			val[im.grams[g.local].n-1] += math.Min(cv.weights[i], ref) * ref
		}
		delta := float64(cv.length - rv.length)
		penalty := math.Pow(math.E, -(delta*delta)/(2*ciderSigma*ciderSigma))
		for n := range val {
			if cv.norm[n] != 0 && rv.norm[n] != 0 {
				val[n] /= cv.norm[n] * rv.norm[n]
			}
			val[n] *= penalty
			score[n] += val[n]
		}
		for _, g := range r.grams {
			refWeight[g.local] = 0
		}
	}
	avg := npMean(score[:])
	avg /= float64(len(im.refs))
	return avg * 10
}
