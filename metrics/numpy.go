package metrics

// npMean is numpy.mean of a 1-D float64 array: numpy's pairwise summation
// (8 partial sums in blocks of up to 128, halves above that) divided by n.
func npMean(a []float64) float64 {
	if len(a) == 0 {
		return 0
	}
	return (0 + pairwiseSum(a)) / float64(len(a))
}

// pairwiseSum reproduces numpy's DOUBLE_pairwise_sum (umath/loops_utils.h).
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := (r[0] + r[1]) + (r[2] + r[3]) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}
