package metrics

// rougeBeta is the toolkit's β for ROUGE-L's F-measure (rouge/rouge.py).
const rougeBeta = 1.2

// rougeL scores one image as Rouge.calc_score does. lcsRow is scratch.
func rougeL(im *image, lcsRow []int32) float64 {
	cand := im.cand.split
	precMax, recMax := 0.0, 0.0
	for i, r := range im.refs {
		lcs := float64(lcsLen(r.split, cand, lcsRow))
		prec := lcs / float64(len(cand))
		rec := lcs / float64(len(r.split))
		if i == 0 || prec > precMax {
			precMax = prec
		}
		if i == 0 || rec > recMax {
			recMax = rec
		}
	}
	if precMax == 0 || recMax == 0 {
		return 0
	}
	b2 := rougeBeta * rougeBeta
	return ((1 + b2) * precMax * recMax) / (recMax + b2*precMax)
}

// lcsLen is the length of the longest common subsequence of a and b, with one
// row of the dynamic programme (scratch, len ≥ len(b)+1).
func lcsLen(a, b []uint32, row []int32) int32 {
	row = row[:len(b)+1]
	clear(row)
	for _, x := range a {
		var diag int32 // row[j-1] of the previous row
		for j, y := range b {
			up := row[j+1]
			if x == y {
				row[j+1] = diag + 1
			} else if row[j] > up {
				row[j+1] = row[j]
			}
			diag = up
		}
	}
	return row[len(b)]
}
