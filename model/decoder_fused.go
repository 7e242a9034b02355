package model

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/chewxy/math32"
	"gorgonia.org/tensor"
)

// The fused decoder: the float32 engine behind DecoderTrainGraph. It
// computes exactly the graph of decoder.go (the same equations, the same
// loss, the same dropout masks drawn in the same order), but as a few
// hand-written kernels over preallocated buffers instead of a tape of
// gorgonia nodes: per time step, one product h_{t−1}·[W_h^att | W_β |
// W_h^lstm] (every product of h_{t−1} at once), the attention, one product
// (β⊙z)·W_z and the LSTM cell; everything that does not depend on the
// recurrence — word inputs x·W_x, the output layer, softmax and loss, and
// every weight gradient — is one product over all time steps. Profiling
// the graph showed that per-node work (materialised broadcasts, fresh
// tensors, the tape) cost far more than the arithmetic; here a training
// step allocates almost nothing after the first.
//
// Like PyTorch's packed sequences (and the sgrvinod tutorial's shrinking
// batch), a batch's captions are ordered by length, longest first, and
// step t computes only the n_t captions still running: per-step rows are
// stored compactly, step after step (row off_t + i is caption i at step
// t), so the batched products cover exactly the real tokens. The rows a
// caption would compute past its <end> carry no loss and no gradient in
// the graph either, so the loss and gradients are the graph's.
//
// The gorgonia graph stays the definition: tests check this engine's loss
// and every gradient against it at real sizes (B = 32, T = 16, dims 512),
// and against PyTorch through the committed fixture. Float64 parameters
// (gradient checks) run on the graph.

// fusedDecoder is the fused engine for one (batch, steps) shape.
type fusedDecoder struct {
	p   *DecoderParams
	att bool
	gm  fusedGemm

	B, T, Bp            int // batch, steps, paddedRows(B)
	P, F, E, A, H, V    int
	G4, Cw              int // 4H; width of h_{t−1}'s combined product
	offBeta, offGate    int // column offsets in the combined product
	ldF, ldE, ldA, ldH  int // leading dimensions (pad32)
	ldV, ldG, ldC, ldI  int
	featRows            int // paddedRows(B·P)
	transRows, transCol int

	// Weights packed for this batch (refreshed by Run), as W and Wᵀ.
	wComb, wZ, wX, wO, wA, wInit, wImg *weightsMat
	// Row-major copies with whole tiles of rows, the A of W·Xᵀ (mulT).
	combRM, zRM, xRM, initRM, oRM, imgRM []float32
	tPack                                *weightsMat // Xᵀ of mulT
	tOut                                 []float32   // W·Xᵀ of mulT
	bComb, bGates, bO, bA, bInit, bImg   []float32

	// The current batch, in length order: internal row i is caption
	// perm[i]; n[t] captions run at step t, in compact rows off[t] … .
	perm   []int
	n, off []int
	feats  []float32 // featRows × F
	// What the attention reads: image i/beams's features (P × F) and
	// cache rows (P, stride ldu) for row i. Training: feats, u, ldA, 1.
	featSrc, uSrc    []float32
	ldu, beams       int
	words, targets   []int     // compact rows: y_{t−1}, y_t
	maskAll          []float32 // T × B × H dropout masks, caption order
	rowW             []float32 // per internal row: α_c/(B'·P) (penalty)
	ceRow            []float64 // compact rows: −log p(y_t)
	tokens, captions int
	hasPenalty       bool

	// Forward activations. Compact rows unless noted.
	mean, initPre, ximg, g0 []float32 // Bp rows
	h0, c0                  []float32 // Bp rows
	u                       []float32 // featRows × ldA
	x, xw, comb, gates      []float32
	hPrev, cPrev, cOut      []float32 // h_{t−1}, c_{t−1}, c_t
	alpha                   []float32 // compact rows × P
	z, zt, beta             []float32
	hd, logits              []float32
	attSum                  []float32 // B × P: Σ_t α over real steps
	loss, crossEntropy, pen float64

	// Backward.
	dlogits, dhd, dcomb, dx []float32
	dzt, dh, dc, dinit      []float32 // Bp rows
	dximg, dg0              []float32 // Bp rows
	du, dwScore             []float32 // featRows × ldA; B × A
	trans, gradTmp          []float32
	packTmp                 *weightsMat
	grads                   []DecoderTensor
	gradOf                  map[string][]float32
	ran                     bool
}

func newFusedDecoder(p *DecoderParams, batch, steps int, train bool) *fusedDecoder {
	c := p.Config
	d := &fusedDecoder{p: p, att: c.Arch == ArchAttention, gm: newFusedGemm(),
		B: batch, T: steps, P: c.GridCells, F: c.FeatureDim, E: c.EmbedDim,
		A: c.AttentionDim, H: c.HiddenDim, V: c.VocabSize}
	d.Bp = paddedRows(batch)
	d.G4 = 4 * d.H
	d.hasPenalty = d.att && c.AlphaC > 0
	if d.att {
		d.offBeta, d.offGate = d.A, d.A+d.F
	}
	d.Cw = d.offGate + d.G4
	d.ldF, d.ldE, d.ldA, d.ldH = pad32(d.F), pad32(d.E), pad32(d.A), pad32(d.H)
	d.ldV, d.ldG, d.ldC, d.ldI = pad32(d.V), pad32(d.G4), pad32(d.Cw), pad32(2*d.H)
	d.featRows = paddedRows(batch * d.P)
	B, Bp := batch, d.Bp
	// Compact buffers: every real token, plus room for the last step's
	// whole tiles.
	R := paddedRows(steps*batch) + Bp
	f := func(n int) []float32 { return make([]float32, n) }

	d.combRM, d.xRM = f(paddedRows(d.H)*d.Cw), f(paddedRows(d.E)*d.G4)
	d.oRM = f(paddedRows(d.H) * d.V)
	d.bComb, d.bGates, d.bO = f(d.ldC), f(d.ldG), f(d.ldV)
	d.perm, d.n, d.off = make([]int, B), make([]int, steps+1), make([]int, steps+1)
	d.feats = f(d.featRows * d.F)
	d.words, d.targets = make([]int, steps*B), make([]int, steps*B)
	d.ceRow = make([]float64, steps*B)
	d.maskAll = f(steps * B * d.H)
	d.rowW = f(B)
	d.mean, d.h0, d.c0 = f(Bp*d.ldF), f(Bp*d.ldH), f(Bp*d.ldH)
	d.x, d.xw = f(R*d.ldE), f(R*d.ldG)
	d.comb, d.gates = f(R*d.ldC), f(R*d.ldG)
	d.hPrev, d.cPrev, d.cOut = f(R*d.ldH), f(R*d.ldH), f(R*d.ldH)
	d.hd, d.logits = f(R*d.ldH), f(R*d.ldV)
	if train {
		d.dlogits, d.dhd, d.dcomb, d.dx = f(R*d.ldV), f(R*d.ldH), f(R*d.ldC), f(R*d.ldE)
		d.dh, d.dc = f(Bp*d.ldH), f(Bp*d.ldH)
	}
	if d.att {
		d.zRM, d.initRM = f(paddedRows(d.F)*d.G4), f(d.F*2*d.H)
		d.bA, d.bInit = f(d.ldA), f(d.ldI)
		d.initPre, d.u = f(Bp*d.ldI), f(d.featRows*d.ldA)
		if train {
			d.dinit, d.du = f(Bp*d.ldI), f(d.featRows*d.ldA)
		}
		d.alpha = f(steps * B * d.P)
		d.z, d.zt, d.beta = f(R*d.ldF), f(R*d.ldF), f(R*d.ldF)
		d.attSum = f(B * d.P)
		if train {
			d.dzt = f(Bp * d.ldF)
			d.dwScore = f(B * d.A)
		}
	} else {
		d.bImg = f(d.ldE)
		d.imgRM = f(paddedRows(d.F) * d.E)
		d.ximg, d.g0 = f(Bp*d.ldE), f(Bp*d.ldG)
		if train {
			d.dximg, d.dg0 = f(Bp*d.ldE), f(Bp*d.ldG)
		}
	}
	d.featSrc, d.uSrc, d.ldu, d.beams = d.feats, d.u, d.ldA, 1
	if !train {
		return d
	}
	// Transposed activations for weight gradients: (in × K) with in ≤
	// max(F, H, E) and K ≤ max(T·B, B·P, Bp).
	d.transRows = paddedRows(max(d.F, d.H, d.E))
	d.transCol = max(steps*B, d.featRows, Bp)
	d.trans = f(d.transRows * d.transCol)
	d.gradTmp = f(d.transRows * max(d.ldV, d.ldC, d.ldG, d.ldA, d.ldI, d.ldE))
	d.tOut = f(d.transRows * pad32(max(steps*batch, Bp)))

	d.gradOf = map[string][]float32{}
	for _, t := range p.Tensors() {
		g := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(t.Tensor.Shape().Clone()...))
		d.grads = append(d.grads, DecoderTensor{Name: t.Name, Tensor: g})
		d.gradOf[t.Name] = g.Float32s()
	}
	return d
}

func gateName(k int) string { return "decoder.lstm." + decoderGateNames[k] + "." }

// packWeights stages and packs the parameters' current values.
func (d *fusedDecoder) packWeights() {
	p, H, G4, Cw := d.p, d.H, d.G4, d.Cw
	// h_{t−1}'s combined product: [W_h^att | W_β | W_hi W_hf W_hg W_ho].
	for r := range H {
		row := d.combRM[r*Cw : (r+1)*Cw]
		if d.att {
			copy(row[:d.A], p.AttDecoder.Float32s()[r*d.A:(r+1)*d.A])
			copy(row[d.offBeta:d.offGate], p.Gate.Float32s()[r*d.F:(r+1)*d.F])
		}
		for k := range 4 {
			copy(row[d.offGate+k*H:d.offGate+(k+1)*H], p.LSTM[k].Hidden.Float32s()[r*H:(r+1)*H])
		}
	}
	for r := range d.E {
		for k := range 4 {
			copy(d.xRM[r*G4+k*H:r*G4+(k+1)*H], p.LSTM[k].Input.Float32s()[r*H:(r+1)*H])
		}
	}
	for k := range 4 {
		copy(d.bGates[k*H:(k+1)*H], p.LSTM[k].Bias.Float32s())
	}
	d.wComb = d.gm.pack(d.wComb, d.combRM, Cw, H, Cw, false)
	d.wX = d.gm.pack(d.wX, d.xRM, G4, d.E, G4, false)
	d.wO = d.gm.pack(d.wO, p.Output.Float32s(), d.V, H, d.V, false)
	copy(d.oRM, p.Output.Float32s())
	copy(d.bO, p.OutputBias.Float32s())
	if d.att {
		for r := range d.F {
			for k := range 4 {
				copy(d.zRM[r*G4+k*H:r*G4+(k+1)*H], p.LSTM[k].Context.Float32s()[r*H:(r+1)*H])
			}
			copy(d.initRM[r*2*H:r*2*H+H], p.InitH.Float32s()[r*H:(r+1)*H])
			copy(d.initRM[r*2*H+H:(r+1)*2*H], p.InitC.Float32s()[r*H:(r+1)*H])
		}
		d.wZ = d.gm.pack(d.wZ, d.zRM, G4, d.F, G4, false)
		d.wA = d.gm.pack(d.wA, p.AttEncoder.Float32s(), d.A, d.F, d.A, false)
		d.wInit = d.gm.pack(d.wInit, d.initRM, 2*H, d.F, 2*H, false)
		copy(d.bComb[d.offBeta:d.offGate], p.GateBias.Float32s())
		copy(d.bA, p.AttEncoderBias.Float32s())
		copy(d.bInit[:H], p.InitHBias.Float32s())
		copy(d.bInit[H:2*H], p.InitCBias.Float32s())
	} else {
		d.wImg = d.gm.pack(d.wImg, p.Image.Float32s(), d.E, d.F, d.E, false)
		copy(d.imgRM, p.Image.Float32s())
		copy(d.bImg, p.ImageBias.Float32s())
	}
}

// setBatch copies a batch in (validated by the caller): captions ordered
// by length, longest first (stable), features in that order.
func (d *fusedDecoder) setBatch(features []float32, captions [][]int, tokens, rows int) {
	B, T, P, F := d.B, d.T, d.P, d.F
	steps := func(b int) int {
		if b < len(captions) && len(captions[b]) > 0 {
			return len(captions[b]) - 1
		}
		return 0
	}
	for i := range d.perm {
		d.perm[i] = i
	}
	slices.SortStableFunc(d.perm, func(a, b int) int { return cmp.Compare(steps(b), steps(a)) })
	for i, b := range d.perm {
		copy(d.feats[i*P*F:(i+1)*P*F], features[b*P*F:(b+1)*P*F])
	}
	d.off[0] = 0
	for t := range T {
		nt := 0
		for nt < B && steps(d.perm[nt]) > t {
			nt++
		}
		d.n[t] = nt
		d.off[t+1] = d.off[t] + nt
		for i := range nt {
			c := captions[d.perm[i]]
			d.words[d.off[t]+i], d.targets[d.off[t]+i] = c[t], c[t+1]
		}
	}
	d.n[T] = 0
	d.tokens, d.captions = tokens, rows
	rw := float32(d.p.Config.AlphaC / float64(rows*P))
	for i, b := range d.perm {
		d.rowW[i] = 0
		if steps(b) > 0 {
			d.rowW[i] = rw
		}
	}
}

// setDropout draws the masks as the graph's SetDropout does: step by
// step, row-major over (B, H) in caption order.
func (d *fusedDecoder) setDropout(rng *rand.Rand, p float64) {
	keep := float32(1 / (1 - p))
	for i := range d.maskAll {
		if rng == nil || p == 0 {
			d.maskAll[i] = 1
			continue
		}
		d.maskAll[i] = 0
		if rng.Float64() >= p {
			d.maskAll[i] = keep
		}
	}
}

// maskRow is step t's dropout mask of internal row i.
func (d *fusedDecoder) maskRow(t, i int) []float32 {
	o := (t*d.B + d.perm[i]) * d.H
	return d.maskAll[o : o+d.H]
}

func sigmoid32(x float32) float32 { return 1 / (1 + math32.Exp(-x)) }

// rowsPar runs body over [0, n) split in two halves on two goroutines.
func rowsPar(n int, body func(lo, hi int)) { parIf(math.MaxInt, n, body) }

// forward computes logits, loss and everything backward needs.
func (d *fusedDecoder) forward() {
	d.forwardInit(d.B)
	H := d.H
	for i := range d.n[0] {
		copy(d.hPrev[i*d.ldH:i*d.ldH+H], d.h0[i*d.ldH:])
		copy(d.cPrev[i*d.ldH:i*d.ldH+H], d.c0[i*d.ldH:])
	}
	d.forwardSteps()
	N := d.off[d.T]
	d.gm.mul(N, d.hd, d.ldH, d.wO, d.logits, d.ldV, &epilogue{bias: d.bO})
	d.lossForward()
}

// forwardInit computes ā, the attention cache u and the initial state of
// the first B rows of feats.
func (d *fusedDecoder) forwardInit(B int) {
	Bp, P, F, H := d.Bp, d.P, d.F, d.H
	gm := d.gm
	inv := 1 / float32(P)
	for b := range B {
		m := d.mean[b*d.ldF : b*d.ldF+F]
		clear(m)
		for p := range P {
			for f, v := range d.feats[(b*P+p)*F : (b*P+p+1)*F] {
				m[f] += v
			}
		}
		for f := range m {
			m[f] *= inv
		}
	}
	if d.att {
		gm.mul(B*P, d.feats, F, d.wA, d.u, d.ldA, &epilogue{bias: d.bA})
		gm.mul(Bp, d.mean, d.ldF, d.wInit, d.initPre, d.ldI, &epilogue{bias: d.bInit})
		for b := range B {
			in := d.initPre[b*d.ldI:]
			for j := range H {
				d.h0[b*d.ldH+j] = math32.Tanh(in[j])
				d.c0[b*d.ldH+j] = math32.Tanh(in[H+j])
			}
		}
		return
	}
	gm.mul(Bp, d.mean, d.ldF, d.wImg, d.ximg, d.ldE, &epilogue{bias: d.bImg})
	gm.mul(Bp, d.ximg, d.ldE, d.wX, d.g0, d.ldG, &epilogue{bias: d.bGates})
	for b := range B {
		g := d.g0[b*d.ldG:]
		for j := range H {
			i, o := sigmoid32(g[j]), sigmoid32(g[3*H+j])
			gg := math32.Tanh(g[2*H+j])
			g[j], g[H+j], g[2*H+j], g[3*H+j] = i, sigmoid32(g[H+j]), gg, o
			c := i * gg
			d.c0[b*d.ldH+j] = c
			d.h0[b*d.ldH+j] = o * math32.Tanh(c)
		}
	}
}

// forwardSteps runs the recurrence from the states in hPrev, cPrev's
// first rows: word inputs, then per step the combined product of
// h_{t−1}, the attention, the context product and the LSTM cell.
func (d *fusedDecoder) forwardSteps() {
	gm := d.gm
	N := d.off[d.T]
	emb := d.p.Embedding.Float32s()
	for r := range N {
		w := d.words[r]
		copy(d.x[r*d.ldE:r*d.ldE+d.E], emb[w*d.E:(w+1)*d.E])
	}
	gm.mul(N, d.x, d.ldE, d.wX, d.xw, d.ldG, &epilogue{bias: d.bGates})
	if d.att {
		clear(d.attSum)
	}
	for t := range d.T {
		nt, o := d.n[t], d.off[t]
		if nt == 0 {
			break
		}
		gm.mul(nt, d.hPrev[o*d.ldH:], d.ldH, d.wComb, d.comb[o*d.ldC:], d.ldC, &epilogue{bias: d.bComb})
		gates := d.gates[o*d.ldG:]
		if d.att {
			d.attendForward(t)
			gm.mul(nt, d.zt[o*d.ldF:], d.ldF, d.wZ, gates, d.ldG, &epilogue{res: d.xw[o*d.ldG:], ldr: d.ldG})
		} else {
			copy(gates[:nt*d.ldG], d.xw[o*d.ldG:])
		}
		d.lstmForward(t)
	}
}

// attendForward computes α_t, z_t, β_t and β⊙z for step t.
func (d *fusedDecoder) attendForward(t int) {
	P, F, A := d.P, d.F, d.A
	w := d.p.AttScore.Float32s()[:A]
	o := d.off[t]
	rowsPar(d.n[t], func(lo, hi int) {
		e := make([]float32, P)
		for i := lo; i < hi; i++ {
			r, img := o+i, i/d.beams
			hp := d.comb[r*d.ldC : r*d.ldC+A]
			for p := range P {
				u := (img*P + p) * d.ldu
				e[p] = reluDot32(d.uSrc[u:u+A], hp, w)
			}
			alpha := d.alpha[r*P : (r+1)*P]
			softmax32(alpha, e)
			z := d.z[r*d.ldF : r*d.ldF+F]
			clear(z)
			for p, a := range alpha {
				axpy32(z, d.featSrc[(img*P+p)*F:(img*P+p+1)*F], a)
			}
			s := d.attSum[i*P : (i+1)*P]
			for p, a := range alpha {
				s[p] += a
			}
			bp := d.comb[r*d.ldC+d.offBeta : r*d.ldC+d.offBeta+F]
			beta := d.beta[r*d.ldF : r*d.ldF+F]
			zt := d.zt[r*d.ldF : r*d.ldF+F]
			for f, v := range bp {
				s := sigmoid32(v)
				beta[f] = s
				zt[f] = s * z[f]
			}
		}
	})
}

// reluDot32 returns Σ_a w_a·relu(u_a + h_a).
func reluDot32(u, h, w []float32) float32 {
	n := len(u)
	h, w = h[:n], w[:n]
	m := vecPrefix(n)
	var s float32
	if m > 0 {
		s = reluDotVec(u, h, w, m)
	}
	for i := m; i < n; i++ {
		if x := u[i] + h[i]; x > 0 {
			s += w[i] * x
		}
	}
	return s
}

// lstmForward applies the LSTM cell of step t to the gate
// pre-activations in gates (less h_{t−1}'s part, which is in comb), and
// hands h_t, c_t to the next step's rows.
func (d *fusedDecoder) lstmForward(t int) {
	H := d.H
	o, next := d.off[t], d.off[t+1]
	for i := range d.n[t] {
		r := o + i
		g := d.gates[r*d.ldG : r*d.ldG+4*H]
		hg := d.comb[r*d.ldC+d.offGate : r*d.ldC+d.offGate+4*H]
		cPrev := d.cPrev[r*d.ldH : r*d.ldH+H]
		c := d.cOut[r*d.ldH : r*d.ldH+H]
		hd := d.hd[r*d.ldH : r*d.ldH+H]
		m := d.maskRow(t, i)
		var hNext, cNext []float32
		if i < d.n[t+1] {
			hNext = d.hPrev[(next+i)*d.ldH : (next+i)*d.ldH+H]
			cNext = d.cPrev[(next+i)*d.ldH : (next+i)*d.ldH+H]
		}
		for j := range H {
			ig := sigmoid32(g[j] + hg[j])
			f := sigmoid32(g[H+j] + hg[H+j])
			gg := math32.Tanh(g[2*H+j] + hg[2*H+j])
			og := sigmoid32(g[3*H+j] + hg[3*H+j])
			g[j], g[H+j], g[2*H+j], g[3*H+j] = ig, f, gg, og
			cj := f*cPrev[j] + ig*gg
			c[j] = cj
			hj := og * math32.Tanh(cj)
			hd[j] = hj * m[j]
			if hNext != nil {
				hNext[j], cNext[j] = hj, cj
			}
		}
	}
}

// lossForward computes the cross-entropy and penalty, and the gradient of
// the loss with respect to the logits.
func (d *fusedDecoder) lossForward() {
	V := d.V
	N := d.off[d.T]
	perToken := 1 / float64(d.tokens)
	rowsPar(N, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dl := d.dlogits[r*d.ldV : r*d.ldV+V]
			y := d.targets[r]
			l := d.logits[r*d.ldV : r*d.ldV+V]
			mx := l[0]
			for _, v := range l {
				mx = max(mx, v)
			}
			sum := ExpShift(dl, l, mx)
			d.ceRow[r] = float64(mx) + math.Log(sum) - float64(l[y])
			scale := float32(perToken / sum)
			for j := range dl {
				dl[j] *= scale
			}
			dl[y] -= float32(perToken)
		}
	})
	var ce float64 // summed in row order whatever the split
	for _, v := range d.ceRow[:N] {
		ce += v
	}
	d.crossEntropy = ce * perToken
	d.pen = 0
	if d.hasPenalty {
		for i := range d.B {
			if d.rowW[i] == 0 {
				continue
			}
			var s float64
			for _, v := range d.attSum[i*d.P : (i+1)*d.P] {
				dv := float64(v) - 1
				s += dv * dv
			}
			d.pen += float64(d.rowW[i]) * s
		}
	}
	d.loss = d.crossEntropy + d.pen
}

// backward computes every parameter gradient from the forward pass.
func (d *fusedDecoder) backward() {
	B, Bp, H := d.B, d.Bp, d.H
	N := d.off[d.T]
	d.mulT(N, d.dlogits, d.ldV, d.oRM, d.V, H, d.V, d.dhd, d.ldH)
	d.weightGrad("decoder.output.weight", d.hd, d.ldH, H, d.dlogits, d.ldV, d.V, N)
	colSum(d.gradOf["decoder.output.bias"], d.dlogits, d.ldV, d.V, N)

	clear(d.dh)
	clear(d.dc)
	if d.att {
		clear(d.du)
		clear(d.dwScore)
	}
	for t := d.T - 1; t >= 0; t-- {
		nt, o := d.n[t], d.off[t]
		if nt == 0 {
			continue
		}
		d.lstmBackward(t)
		dcomb := d.dcomb[o*d.ldC:]
		if d.att {
			d.mulT(nt, dcomb[d.offGate:], d.ldC, d.zRM, d.G4, d.F, d.G4, d.dzt, d.ldF)
			d.attendBackward(t)
		}
		d.mulT(nt, dcomb, d.ldC, d.combRM, d.Cw, H, d.Cw, d.dh, d.ldH)
		// Rows past n_t hold products of other steps' rows: the captions
		// that end at step t−1 get no gradient from step t.
		clear(d.dh[nt*d.ldH:])
	}
	// d.dh, d.dc are now the gradients of h_0, c_0.
	if d.att {
		for b := range B {
			for j := range H {
				hv, cv := d.h0[b*d.ldH+j], d.c0[b*d.ldH+j]
				d.dinit[b*d.ldI+j] = d.dh[b*d.ldH+j] * (1 - hv*hv)
				d.dinit[b*d.ldI+H+j] = d.dc[b*d.ldH+j] * (1 - cv*cv)
			}
		}
		d.weightGrad("", d.mean, d.ldF, d.F, d.dinit, d.ldI, 2*H, Bp)
		d.scatterCols(d.F, d.ldI, []string{"decoder.init_h.weight", "decoder.init_c.weight"}, H, 0)
		colSumSplit(d, d.dinit, d.ldI, Bp, 0, []string{"decoder.init_h.bias", "decoder.init_c.bias"}, H)
	} else {
		for b := range B {
			g := d.g0[b*d.ldG:]
			dg := d.dg0[b*d.ldG:]
			for j := range H {
				i, gg, o := g[j], g[2*H+j], g[3*H+j]
				tc := math32.Tanh(d.c0[b*d.ldH+j])
				dh := d.dh[b*d.ldH+j]
				do := dh * tc
				dc := d.dc[b*d.ldH+j] + dh*o*(1-tc*tc)
				dg[j] = dc * gg * i * (1 - i)
				dg[H+j] = 0
				dg[2*H+j] = dc * i * (1 - gg*gg)
				dg[3*H+j] = do * o * (1 - o)
			}
		}
		d.mulT(Bp, d.dg0, d.ldG, d.xRM, d.G4, d.E, d.G4, d.dximg, d.ldE)
		d.weightGrad("decoder.image.weight", d.mean, d.ldF, d.F, d.dximg, d.ldE, d.E, Bp)
		colSum(d.gradOf["decoder.image.bias"], d.dximg, d.ldE, d.E, Bp)
	}

	// Weight gradients over all steps at once.
	d.weightGrad("", d.hPrev, d.ldH, H, d.dcomb, d.ldC, d.Cw, N)
	hidden := make([]string, 4)
	for k := range 4 {
		hidden[k] = gateName(k) + "hidden.weight"
	}
	d.scatterCols(H, d.ldC, hidden, H, d.offGate)
	if d.att {
		d.copyCols(d.gradOf["decoder.attention.decoder.weight"], H, d.A, d.ldC, 0)
		d.copyCols(d.gradOf["decoder.f_beta.weight"], H, d.F, d.ldC, d.offBeta)
		colSum(d.gradOf["decoder.f_beta.bias"], d.dcomb[d.offBeta:], d.ldC, d.F, N)
		d.weightGrad("", d.zt, d.ldF, d.F, d.dcomb[d.offGate:], d.ldC, d.G4, N)
		ctx := make([]string, 4)
		for k := range 4 {
			ctx[k] = gateName(k) + "context.weight"
		}
		d.scatterCols(d.F, d.ldG, ctx, H, 0)
		d.weightGrad("decoder.attention.encoder.weight", d.feats, d.F, d.F, d.du, d.ldA, d.A, B*d.P)
		colSum(d.gradOf["decoder.attention.encoder.bias"], d.du, d.ldA, d.A, B*d.P)
		ws := d.gradOf["decoder.attention.score.weight"]
		clear(ws)
		for b := range B {
			for a, v := range d.dwScore[b*d.A : (b+1)*d.A] {
				ws[a] += v
			}
		}
	}
	d.weightGrad("", d.x, d.ldE, d.E, d.dcomb[d.offGate:], d.ldC, d.G4, N)
	input := make([]string, 4)
	for k := range 4 {
		input[k] = gateName(k) + "input.weight"
	}
	d.scatterCols(d.E, d.ldG, input, H, 0)
	colSumSplit(d, d.dcomb[d.offGate:], d.ldC, N, 0, []string{gateName(0) + "bias", gateName(1) + "bias", gateName(2) + "bias", gateName(3) + "bias"}, H)
	if !d.att {
		// The image step's own LSTM input: x_img·W_x and the bias.
		d.weightGrad("", d.ximg, d.ldE, d.E, d.dg0, d.ldG, d.G4, Bp)
		d.addCols(d.E, d.ldG, input, H)
		for k := range 4 {
			bias := d.gradOf[gateName(k)+"bias"]
			for b := range B {
				for j, v := range d.dg0[b*d.ldG+k*H : b*d.ldG+(k+1)*H] {
					bias[j] += v
				}
			}
		}
	}
	// Embedding rows: dx = dgates·W_xᵀ, scattered by word.
	d.mulT(N, d.dcomb[d.offGate:], d.ldC, d.xRM, d.G4, d.E, d.G4, d.dx, d.ldE)
	emb := d.gradOf["decoder.embedding.weight"]
	clear(emb)
	for r := range N {
		w := d.words[r]
		row := emb[w*d.E : (w+1)*d.E]
		for j, v := range d.dx[r*d.ldE : r*d.ldE+d.E] {
			row[j] += v
		}
	}
}

// lstmBackward turns dh_t (from the output and from step t+1) and dc_t
// into the gradients of step t's pre-activations, stored in dcomb's gate
// columns, and leaves dc_{t−1} in d.dc.
func (d *fusedDecoder) lstmBackward(t int) {
	H := d.H
	o := d.off[t]
	for i := range d.n[t] {
		r := o + i
		g := d.gates[r*d.ldG : r*d.ldG+4*H]
		dg := d.dcomb[r*d.ldC+d.offGate : r*d.ldC+d.offGate+4*H]
		cPrev := d.cPrev[r*d.ldH : r*d.ldH+H]
		c := d.cOut[r*d.ldH : r*d.ldH+H]
		dhd := d.dhd[r*d.ldH : r*d.ldH+H]
		m := d.maskRow(t, i)
		dh := d.dh[i*d.ldH : i*d.ldH+H]
		dc := d.dc[i*d.ldH : i*d.ldH+H]
		for j := range H {
			ig, f, gg, og := g[j], g[H+j], g[2*H+j], g[3*H+j]
			tc := math32.Tanh(c[j])
			dht := dh[j] + dhd[j]*m[j]
			dct := dc[j] + dht*og*(1-tc*tc)
			dg[j] = dct * gg * ig * (1 - ig)
			dg[H+j] = dct * cPrev[j] * f * (1 - f)
			dg[2*H+j] = dct * ig * (1 - gg*gg)
			dg[3*H+j] = dht * tc * og * (1 - og)
			dc[j] = dct * f
		}
	}
}

// attendBackward takes d(β⊙z) of step t (d.dzt) back through β, z, α and
// the attention MLP: dβ's pre-activation and dhp go to dcomb, du and the
// score weight's per-row gradient accumulate.
func (d *fusedDecoder) attendBackward(t int) {
	P, F, A := d.P, d.F, d.A
	w := d.p.AttScore.Float32s()[:A]
	o := d.off[t]
	rowsPar(d.n[t], func(lo, hi int) {
		dz := make([]float32, F)
		dalpha := make([]float32, P)
		for i := lo; i < hi; i++ {
			r := o + i
			dzt := d.dzt[i*d.ldF : i*d.ldF+F]
			beta := d.beta[r*d.ldF : r*d.ldF+F]
			z := d.z[r*d.ldF : r*d.ldF+F]
			dbp := d.dcomb[r*d.ldC+d.offBeta : r*d.ldC+d.offBeta+F]
			for f, g := range dzt {
				dz[f] = g * beta[f]
				dbp[f] = g * z[f] * beta[f] * (1 - beta[f])
			}
			alpha := d.alpha[r*P : (r+1)*P]
			var dot float32
			for p := range P {
				da := dot32(dz, d.feats[(i*P+p)*F:(i*P+p+1)*F])
				if d.hasPenalty {
					da += 2 * d.rowW[i] * (d.attSum[i*P+p] - 1)
				}
				dalpha[p] = da
				dot += da * alpha[p]
			}
			hp := d.comb[r*d.ldC : r*d.ldC+A]
			dhp := d.dcomb[r*d.ldC : r*d.ldC+A]
			clear(dhp)
			dws := d.dwScore[i*A : (i+1)*A]
			for p, a := range alpha {
				de := a * (dalpha[p] - dot)
				if de == 0 {
					continue
				}
				reluBack32(d.u[(i*P+p)*d.ldA:(i*P+p)*d.ldA+A], hp, w, de, d.du[(i*P+p)*d.ldA:], dhp, dws)
			}
		}
	})
}

// reluBack32 is the gradient of e = Σ_a w_a·relu(u_a + h_a) times de:
// du and dh get de·w_a where u_a + h_a > 0, dw gets de·relu(u_a + h_a).
func reluBack32(u, h, w []float32, de float32, du, dh, dw []float32) {
	n := len(u)
	h, w, du, dh, dw = h[:n], w[:n], du[:n], dh[:n], dw[:n]
	m := vecPrefix(n)
	if m > 0 {
		reluBackVec(u, h, w, de, du, dh, dw, m)
	}
	for k := m; k < n; k++ {
		if x := u[k] + h[k]; x > 0 {
			g := de * w[k]
			du[k] += g
			dh[k] += g
			dw[k] += de * x
		}
	}
}

// mulT computes the first m rows of dst = X·Wᵀ, X m×k (stride ldx), W
// in×k (stride ldw, staged with whole tiles of rows), as (W·Xᵀ)ᵀ: only
// Xᵀ is packed, not W, which is used in place.
func (d *fusedDecoder) mulT(m int, x []float32, ldx int, w []float32, ldw, in, k int, dst []float32, ldd int) {
	d.tPack = d.gm.pack(d.tPack, x, ldx, k, m, true)
	ld := pad32(m)
	d.gm.mul(in, w, ldw, d.tPack, d.tOut, ld, &epilogue{})
	transpose(dst, ldd, d.tOut, ld, in, m)
}

// weightGrad computes Xᵀ·dY (X is k×in with stride ldx, dY k×n with
// stride ldy) into d.gradTmp (in × pad32(n)), and, when name is not
// empty, copies it into that parameter's gradient (in × n).
func (d *fusedDecoder) weightGrad(name string, x []float32, ldx, in int, dy []float32, ldy, n, k int) {
	transpose(d.trans, k, x, ldx, k, in)
	d.packTmp = d.gm.pack(d.packTmp, dy, ldy, k, n, false)
	d.gm.mul(in, d.trans, k, d.packTmp, d.gradTmp, pad32(n), &epilogue{})
	if name != "" {
		d.copyCols(d.gradOf[name], in, n, pad32(n), 0)
	}
}

// copyCols copies columns [off, off+n) of d.gradTmp (stride ld) into dst
// (rows × n).
func (d *fusedDecoder) copyCols(dst []float32, rows, n, ld, off int) {
	parIf(rows*n, rows, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			copy(dst[r*n:(r+1)*n], d.gradTmp[r*ld+off:r*ld+off+n])
		}
	})
}

// scatterCols copies len(names) blocks of w columns, starting at column
// off of d.gradTmp, into the named gradients (rows × w each).
func (d *fusedDecoder) scatterCols(rows, ld int, names []string, w, off int) {
	for k, name := range names {
		d.copyCols(d.gradOf[name], rows, w, ld, off+k*w)
	}
}

// addCols adds blocks of d.gradTmp as scatterCols copies them.
func (d *fusedDecoder) addCols(rows, ld int, names []string, w int) {
	for k, name := range names {
		dst := d.gradOf[name]
		for r := range rows {
			for j, v := range d.gradTmp[r*ld+k*w : r*ld+(k+1)*w] {
				dst[r*w+j] += v
			}
		}
	}
}

// colSum sets dst to the column sums of the first rows rows of m.
func colSum(dst, m []float32, ld, n, rows int) {
	clear(dst[:n])
	for r := range rows {
		for j, v := range m[r*ld : r*ld+n] {
			dst[j] += v
		}
	}
}

// colSumSplit sets the named gradients to the column sums of consecutive
// blocks of w columns of m.
func colSumSplit(d *fusedDecoder, m []float32, ld, rows, off int, names []string, w int) {
	for k, name := range names {
		colSum(d.gradOf[name], m[off+k*w:], ld, w, rows)
	}
}

// softmax32 writes softmax(e) into dst.
func softmax32(dst, e []float32) {
	mx := e[0]
	for _, v := range e {
		mx = max(mx, v)
	}
	inv := float32(1 / ExpShift(dst, e, mx))
	for i := range dst {
		dst[i] *= inv
	}
}

// axpy32 computes y += a·x.
func axpy32(y, x []float32, a float32) {
	n := len(y)
	x = x[:n]
	m := vecPrefix(n)
	if m > 0 {
		axpyVec(y, x, a, m)
	}
	for i := m; i < n; i++ {
		y[i] += a * x[i]
	}
}

// dot32 returns x·y.
func dot32(x, y []float32) float32 {
	n := len(x)
	y = y[:n]
	m := vecPrefix(n)
	var s float32
	if m > 0 {
		s = dotVec(x, y, m)
	}
	for i := m; i < n; i++ {
		s += x[i] * y[i]
	}
	return s
}

// run is one forward and backward pass.
func (d *fusedDecoder) run() (DecoderLoss, error) {
	if d.tokens == 0 {
		return DecoderLoss{}, errors.New("decoder training graph: Run before SetBatch")
	}
	d.packWeights()
	d.forward()
	d.backward()
	d.ran = true
	return DecoderLoss{Loss: d.loss, CrossEntropy: d.crossEntropy, Penalty: d.pen, Tokens: d.tokens, Captions: d.captions}, nil
}

// stepLogits returns a copy of step t's logits as a (B, V) tensor in
// caption order; rows of captions that ended before step t are zero.
func (d *fusedDecoder) stepLogits(t int) *tensor.Dense {
	out := make([]float32, d.B*d.V)
	for i := range d.n[t] {
		r, b := d.off[t]+i, d.perm[i]
		copy(out[b*d.V:(b+1)*d.V], d.logits[r*d.ldV:r*d.ldV+d.V])
	}
	return tensor.New(tensor.WithShape(d.B, d.V), tensor.WithBacking(out))
}

// ExpShift sets dst[i] = exp(x[i] − m) for x[i] ≤ m (m is x's maximum in
// softmax) and returns the sum, in float32; AVX-512 where the CPU has it
// (Cephes' expf, within 5 ulp of math.Exp), math.Exp elsewhere.
func ExpShift(dst, x []float32, m float32) float64 {
	n := len(x)
	dst = dst[:n]
	k := vecPrefix(n)
	var s float64
	if k > 0 {
		s = float64(expShiftVec(dst, x, m, k))
	}
	for i := k; i < n; i++ {
		e := float32(math.Exp(float64(x[i] - m)))
		dst[i] = e
		s += float64(e)
	}
	return s
}
