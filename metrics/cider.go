package metrics

import (
	"math"
	"runtime"
	"sync"
)

// ciderSigma is CIDEr-D's σ for the length penalty (cider/cider.py).
const ciderSigma = 6.0

// docFreq counts, for every n-gram of the evaluated images, how many images'
// references contain it (CiderScorer.compute_doc_freq). The table is sharded
// by hash so that each core builds one shard.
type docFreq struct {
	shards []dfShard
}

type dfShard struct {
	index map[gramKey]int32
	df    []int32
}

// newDocFreq counts document frequencies and records in each imageGram where
// its count lives.
func newDocFreq(images []image) *docFreq {
	nShards := max(1, runtime.GOMAXPROCS(0))
	d := &docFreq{shards: make([]dfShard, nShards)}
	total := 0
	for i := range images {
		total += len(images[i].grams)
	}
	var wg sync.WaitGroup
	for s := range d.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh := &d.shards[s]
			sh.index = make(map[gramKey]int32, total/nShards/2)
			sh.df = make([]int32, 0, total/nShards/2)
			for i := range images {
				for j := range images[i].grams {
					g := &images[i].grams[j]
					if int(g.hash>>32)%nShards != s {
						continue
					}
					idx, ok := sh.index[g.key]
					if !ok {
						idx = int32(len(sh.df))
						sh.index[g.key] = idx
						sh.df = append(sh.df, 0)
					}
					if g.inRefs {
						sh.df[idx]++
					}
					g.global = idx*int32(nShards) + int32(s)
				}
			}
		}()
	}
	wg.Wait()
	return d
}

func (d *docFreq) get(global int32) int32 {
	n := int32(len(d.shards))
	return d.shards[global%n].df[global/n]
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
	df     *docFreq
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
		df := float64(s.df.get(g.global))
		sc.idf = append(sc.idf, s.refLen-math.Log(math.Max(1, df)))
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
