package train

import (
	"cmp"
	"math/rand/v2"
	"slices"
)

// Pair is one training example: an image (by index into the feature order
// the trainer keeps) and one of its captions as token ids, <start> … <end>.
type Pair struct {
	Image   int
	Caption []int
}

// Batch is up to Config.Batch pairs; Steps is the longest caption's length
// − 1, the number of time steps the batch needs.
type Batch struct {
	Pairs []int // indices into the pairs slice given to MakeBatches
	Steps int
}

// MakeBatches orders one epoch: every pair exactly once, shuffled with rng,
// then, pool by pool (pool batches of batch pairs each), sorted by caption
// length (stable, so ties keep the shuffled order) and cut into batches of
// batch pairs, so that captions of a batch have similar lengths and little
// padding; finally the order of all batches is shuffled. Only the last
// batch of the epoch may be partial.
func MakeBatches(pairs []Pair, batch, pool int, rng *rand.Rand) []Batch {
	order := make([]int, len(pairs))
	for i := range order {
		order[i] = i
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	var out []Batch
	chunk := batch * pool
	for start := 0; start < len(order); start += chunk {
		end := min(start+chunk, len(order))
		block := order[start:end]
		slices.SortStableFunc(block, func(a, b int) int {
			return cmp.Compare(len(pairs[a].Caption), len(pairs[b].Caption))
		})
		for s := 0; s < len(block); s += batch {
			idx := block[s:min(s+batch, len(block))]
			steps := 0
			for _, i := range idx {
				steps = max(steps, len(pairs[i].Caption)-1)
			}
			out = append(out, Batch{Pairs: idx, Steps: steps})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
