package model

import (
	"errors"
	"fmt"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DecoderTrainGraph is the decoder unrolled over Steps time steps with
// teacher forcing, for batches of Batch captions, with the loss of
// DecoderParams' doc and its gradient with respect to every parameter.
// It is compiled once and reused for every batch of that shape:
//
//	tg, err := NewDecoderTrainGraph(params, 32, 16)
//	defer tg.Close()
//	for each batch {
//		tg.SetBatch(features, captions) // (B, P, F) and ≤ B token lists
//		tg.SetDropout(rng)              // fresh masks; nil for none
//		loss, err := tg.Run()           // forward + backward
//		step the optimizer on params with tg.Grads()
//	}
//
// Step t feeds word t of each caption and predicts word t+1, so a caption
// of n tokens (<start> … <end>) uses n−1 steps and needs Steps ≥ n−1;
// shorter captions are masked out of the loss. The output layer and loss
// are built per time step: nothing is concatenated over time. A
// DecoderTrainGraph is not safe for concurrent use.
type DecoderTrainGraph struct {
	Params *DecoderParams
	Batch  int
	Steps  int

	vm    G.VM
	nodes *decoderNodes
	fused *fusedDecoder // float32: the fused engine instead of vm

	// Inputs, bound to their nodes once and refilled per batch.
	features   *tensor.Dense   // (B, P, F)
	words      []*tensor.Dense // Steps × (B) tensor.Int: y_{t−1}
	targets    []*tensor.Dense // Steps × (B, V): r_bt/N at y_t, else 0
	realMask   []*tensor.Dense // Steps × (B, P): r_bt; attention penalty only
	rowWeight  *tensor.Dense   // (B, P): α_c/(B'·P) on the B' real rows; penalty only
	dropMasks  []*tensor.Dense // Steps × (B, H)
	hasPenalty bool

	loss, crossEntropy, penalty *G.Node
	logits                      []*G.Node
	tokens, captions            int // N and B' of the current batch
}

// DecoderLoss is the loss of one batch, as computed by Run.
type DecoderLoss struct {
	Loss         float64 // CrossEntropy + Penalty, the value differentiated
	CrossEntropy float64 // mean over real tokens
	Penalty      float64 // α_c-weighted doubly stochastic penalty; 0 for showtell
	Tokens       int     // real tokens N (targets up to and including <end>)
	Captions     int     // non-empty captions B'
}

// NewDecoderTrainGraph builds and compiles the training graph for batches
// of batch captions and steps time steps.
func NewDecoderTrainGraph(p *DecoderParams, batch, steps int) (tg *DecoderTrainGraph, err error) {
	if p == nil {
		return nil, errors.New("new decoder training graph: nil parameters")
	}
	if err := p.Config.Validate(); err != nil {
		return nil, fmt.Errorf("new decoder training graph: %w", err)
	}
	if batch < 1 || steps < 1 {
		return nil, fmt.Errorf("new decoder training graph: batch and steps must be ≥ 1, got %d and %d", batch, steps)
	}
	if p.Dtype == tensor.Float32 && !decForceGraph {
		tg = &DecoderTrainGraph{Params: p, Batch: batch, Steps: steps, fused: newFusedDecoder(p, batch, steps, true)}
		tg.SetDropout(nil)
		return tg, nil
	}
	defer decRecover(&err)

	c := p.Config
	B, P, F, H, V := batch, c.GridCells, c.FeatureDim, c.HiddenDim, c.VocabSize
	dt := p.Dtype
	g := G.NewGraph()
	tg = &DecoderTrainGraph{Params: p, Batch: batch, Steps: steps, nodes: newDecoderNodes(g, p, batch)}
	tg.hasPenalty = c.Arch == ArchAttention && c.AlphaC > 0

	input := func(name string, t *tensor.Dense) *G.Node { return G.NodeFromAny(g, t, G.WithName(name)) }
	tg.features = tensor.New(tensor.Of(dt), tensor.WithShape(B, P, F))
	features := input("features", tg.features)
	h, cell, cache := tg.nodes.initState(features)

	var logLik, attSum *G.Node // Σ_t Σ_b r/N log p(y_t), Σ_t r α_t
	for t := range steps {
		words := tensor.New(tensor.Of(tensor.Int), tensor.WithShape(B))
		target := tensor.New(tensor.Of(dt), tensor.WithShape(B, V))
		mask := tensor.New(tensor.Of(dt), tensor.WithShape(B, H))
		tg.words = append(tg.words, words)
		tg.targets = append(tg.targets, target)
		tg.dropMasks = append(tg.dropMasks, mask)
		out := tg.nodes.step(decStepIn{
			prevWords: input(fmt.Sprintf("words_%d", t), words),
			h:         h,
			c:         cell,
			features:  features,
			cache:     cache,
			dropMask:  input(fmt.Sprintf("dropout_mask_%d", t), mask),
		})
		h, cell = out.h, out.c
		tg.logits = append(tg.logits, out.logits)

		logp := decMust(G.LogSoftMax(out.logits, 1))
		stepLik := decMust(G.Sum(decMust(G.HadamardProd(logp, input(fmt.Sprintf("targets_%d", t), target)))))
		if logLik == nil {
			logLik = stepLik
		} else {
			logLik = decMust(G.Add(logLik, stepLik))
		}

		if tg.hasPenalty {
			realT := tensor.New(tensor.Of(dt), tensor.WithShape(B, P))
			tg.realMask = append(tg.realMask, realT)
			masked := decMust(G.HadamardProd(out.alpha, input(fmt.Sprintf("real_%d", t), realT)))
			if attSum == nil {
				attSum = masked
			} else {
				attSum = decMust(G.Add(attSum, masked))
			}
		}
	}
	tg.crossEntropy = decMust(G.Neg(logLik))
	tg.loss = tg.crossEntropy
	watch := []any{tg.loss}
	if tg.hasPenalty {
		tg.rowWeight = tensor.New(tensor.Of(dt), tensor.WithShape(B, P))
		one := G.NewConstant(decScalar(dt, 1), G.WithName("one"))
		dev := decMust(G.Square(decMust(G.Sub(attSum, one)))) // (Σ_t r α − 1)²
		tg.penalty = decMust(G.Sum(decMust(G.HadamardProd(dev, input("row_weight", tg.rowWeight)))))
		tg.loss = decMust(G.Add(tg.crossEntropy, tg.penalty))
		watch = append(watch, tg.crossEntropy, tg.penalty, tg.loss)
	}
	for _, l := range tg.logits {
		watch = append(watch, l)
	}
	grads, err := G.Grad(tg.loss, tg.nodes.learnables...)
	if err != nil {
		return nil, fmt.Errorf("build decoder gradient: %w", err)
	}
	// Symbolic differentiation also creates the gradients of inputs that
	// need none (features, targets, masks: several (B, P, F) and (B, V)
	// tensors per step); compiling only what the loss and the parameter
	// gradients need leaves them out.
	roots := append([]*G.Node{tg.loss}, grads...)
	for _, w := range watch {
		roots = append(roots, w.(*G.Node))
	}
	tg.vm, err = decCompile(g.SubgraphRoots(roots...), watch, G.BindDualValues(tg.nodes.learnables...))
	if err != nil {
		return nil, err
	}
	tg.SetDropout(nil)
	return tg, nil
}

// decCompile compiles g into a tape machine. The watched nodes are copied
// out as they are computed (TraceExec + watch list), so that their values
// stay valid after RunAll even when the register allocator lets a later op
// overwrite their register in place.
func decCompile(g *G.ExprGraph, watch []any, opts ...G.VMOpt) (vm G.VM, err error) {
	prog, locMap, err := G.Compile(g)
	if err != nil {
		return nil, fmt.Errorf("compile decoder graph: %w", err)
	}
	opts = append(opts, G.WithPrecompiled(prog, locMap), G.TraceExec(), G.WithWatchlist(watch...))
	return G.NewTapeMachine(g, opts...), nil
}

// decScalar returns v as a Go scalar of dtype dt (gorgonia scalars are Go
// values, not 0-d tensors).
func decScalar(dt tensor.Dtype, v float64) any {
	if dt == tensor.Float32 {
		return float32(v)
	}
	return v
}

// SetBatch fills the graph's inputs: features (B, P, F) of the graph's
// dtype, and up to B captions as token ids, each <start> … <end> with at
// most Steps+1 tokens; an empty caption leaves its row out of the loss
// (for a last, partial batch). Rows of features past len(captions) are
// ignored.
func (tg *DecoderTrainGraph) SetBatch(features tensor.Tensor, captions [][]int) error {
	c := tg.Params.Config
	B, P, F, V := tg.Batch, c.GridCells, c.FeatureDim, c.VocabSize
	if !features.Shape().Eq(tensor.Shape{B, P, F}) {
		return fmt.Errorf("decoder batch: features have shape %v, want %v", features.Shape(), tensor.Shape{B, P, F})
	}
	if features.Dtype() != tg.Params.Dtype {
		return fmt.Errorf("decoder batch: features are %v, want %v", features.Dtype(), tg.Params.Dtype)
	}
	if len(captions) > B {
		return fmt.Errorf("decoder batch: %d captions for a batch of %d", len(captions), B)
	}
	tokens, rows := 0, 0
	for i, caption := range captions {
		if len(caption) == 0 {
			continue
		}
		if len(caption) < 2 || len(caption) > tg.Steps+1 {
			return fmt.Errorf("decoder batch: caption %d has %d tokens, want 2 to %d (steps + 1)", i, len(caption), tg.Steps+1)
		}
		for j, id := range caption {
			if id < 0 || id >= V {
				return fmt.Errorf("decoder batch: caption %d token %d is id %d, outside the vocabulary [0, %d)", i, j, id, V)
			}
		}
		tokens += len(caption) - 1
		rows++
	}
	if tokens == 0 {
		return errors.New("decoder batch: no caption has a token to predict")
	}
	tg.tokens, tg.captions = tokens, rows
	if tg.fused != nil {
		data, ok := features.Data().([]float32)
		if !ok || len(data) != B*P*F {
			return fmt.Errorf("decoder batch: features must be a dense float32 tensor")
		}
		tg.fused.setBatch(data, captions, tokens, rows)
		return nil
	}
	if err := tensor.Copy(tg.features, features); err != nil {
		return fmt.Errorf("decoder batch: copy features: %w", err)
	}

	perToken := 1 / float64(tokens)
	rowWeight := tg.Params.Config.AlphaC / float64(rows*P)
	for t := range tg.Steps {
		words := tg.words[t].Ints()
		clear(words)
		decZero(tg.targets[t])
		if tg.hasPenalty {
			decZero(tg.realMask[t])
		}
		for b, caption := range captions {
			if t >= len(caption)-1 {
				continue
			}
			words[b] = caption[t]
			decSet(tg.targets[t], b*V+caption[t+1], perToken)
			if tg.hasPenalty {
				decFill(tg.realMask[t], b*P, (b+1)*P, 1)
			}
		}
	}
	if tg.hasPenalty {
		decZero(tg.rowWeight)
		for b, caption := range captions {
			if len(caption) > 0 {
				decFill(tg.rowWeight, b*P, (b+1)*P, rowWeight)
			}
		}
	}
	return nil
}

// SetDropout draws fresh dropout masks for every step from rng:
// Bernoulli(1 − p)/(1 − p) per element, p = Config.Dropout, drawn step by
// step in row-major order. A nil rng (evaluation, gradient checks) or
// p = 0 sets every mask to ones. Call it before every training Run.
func (tg *DecoderTrainGraph) SetDropout(rng *rand.Rand) {
	p := tg.Params.Config.Dropout
	if tg.fused != nil {
		tg.fused.setDropout(rng, p)
		return
	}
	for _, mask := range tg.dropMasks {
		if rng == nil || p == 0 {
			decFill(mask, 0, mask.Shape().TotalSize(), 1)
			continue
		}
		decFillDropout(mask, rng, p)
	}
}

// decFillDropout draws one Bernoulli(1 − p)/(1 − p) mask from rng.
func decFillDropout(mask *tensor.Dense, rng *rand.Rand, p float64) {
	keep := 1 / (1 - p)
	switch data := mask.Data().(type) {
	case []float32:
		for i := range data {
			data[i] = 0
			if rng.Float64() >= p {
				data[i] = float32(keep)
			}
		}
	case []float64:
		for i := range data {
			data[i] = 0
			if rng.Float64() >= p {
				data[i] = keep
			}
		}
	}
}

// Run computes the loss of the current batch and its gradients (forward
// and backward), replacing the gradients of the previous Run.
func (tg *DecoderTrainGraph) Run() (DecoderLoss, error) {
	if tg.tokens == 0 {
		return DecoderLoss{}, errors.New("decoder training graph: Run before SetBatch")
	}
	if tg.fused != nil {
		return tg.fused.run()
	}
	for _, n := range tg.nodes.learnables {
		if grad, err := n.Grad(); err == nil {
			if d, ok := grad.(*tensor.Dense); ok { // nil before the first run
				decZero(d)
			}
		}
	}
	err := tg.vm.RunAll()
	tg.vm.Reset()
	if err != nil {
		return DecoderLoss{}, fmt.Errorf("run decoder training graph: %w", err)
	}
	out := DecoderLoss{
		Loss:         decValue(tg.loss),
		CrossEntropy: decValue(tg.crossEntropy),
		Tokens:       tg.tokens,
		Captions:     tg.captions,
	}
	if tg.hasPenalty {
		out.Penalty = decValue(tg.penalty)
	}
	return out, nil
}

// Grads returns the gradient of the last Run's loss with respect to each
// parameter, with the parameter's name and shape, in the order of
// Params.Tensors(). The tensors belong to the graph: they are overwritten
// by the next Run.
func (tg *DecoderTrainGraph) Grads() ([]DecoderTensor, error) {
	if tg.fused != nil {
		if !tg.fused.ran {
			return nil, errors.New("decoder gradients: not computed yet (call Run first)")
		}
		return tg.fused.grads, nil
	}
	params := tg.Params.Tensors()
	out := make([]DecoderTensor, len(params))
	for i, n := range tg.nodes.learnables {
		grad, err := n.Grad()
		if err != nil {
			return nil, fmt.Errorf("gradient of %s: %w (call Run first)", params[i].Name, err)
		}
		backing, ok := grad.(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("gradient of %s: not computed yet (call Run first)", params[i].Name)
		}
		out[i] = DecoderTensor{
			Name:   params[i].Name,
			Tensor: tensor.New(tensor.WithShape(params[i].Tensor.Shape().Clone()...), tensor.WithBacking(backing.Data())),
		}
	}
	return out, nil
}

// Logits returns the logits (B, V) that step t computed in the last Run,
// for accuracy metrics. The tensor belongs to the graph.
func (tg *DecoderTrainGraph) Logits(t int) *tensor.Dense {
	if tg.fused != nil {
		return tg.fused.stepLogits(t)
	}
	return tg.logits[t].Value().(*tensor.Dense)
}

// TopKHits counts the real target tokens of the last Run whose id is
// among the k largest logits of their step (a target tied with the k-th
// largest counts), without copying logits out; ok is false on the graph
// engine (float64), where Logits serves instead.
func (tg *DecoderTrainGraph) TopKHits(k int) (hits int, ok bool) {
	d := tg.fused
	if d == nil || !d.ran {
		return 0, false
	}
	for r := range d.off[d.T] {
		row := d.logits[r*d.ldV : r*d.ldV+d.V]
		x, above := row[d.targets[r]], 0
		for _, y := range row {
			if y > x {
				if above++; above == k {
					break
				}
			}
		}
		if above < k {
			hits++
		}
	}
	return hits, true
}

// Close releases the compiled machine.
func (tg *DecoderTrainGraph) Close() error {
	if tg.fused != nil {
		return nil
	}
	return tg.vm.Close()
}

// setMask sets element i (row-major over (B, H)) of step t's dropout
// mask, for tests that supply their own masks.
func (tg *DecoderTrainGraph) setMask(t, i int, v float64) {
	if d := tg.fused; d != nil {
		d.maskAll[t*d.B*d.H+i] = float32(v)
		return
	}
	decSet(tg.dropMasks[t], i, v)
}

// decForceGraph makes NewDecoderTrainGraph build the gorgonia graph for
// float32 parameters too (tests compare the two engines).
var decForceGraph = false

// decValue reads a scalar node's value as float64.
func decValue(n *G.Node) float64 {
	switch v := n.Value().Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	case []float32:
		return float64(v[0])
	case []float64:
		return v[0]
	}
	panic(fmt.Sprintf("decoder: scalar node %s holds %T", n.Name(), n.Value().Data()))
}

func decZero(t *tensor.Dense) { t.Zero() }

// decSet sets element i of a float tensor.
func decSet(t *tensor.Dense, i int, v float64) {
	switch data := t.Data().(type) {
	case []float32:
		data[i] = float32(v)
	case []float64:
		data[i] = v
	}
}

// decFill sets elements [from, to) of a float tensor to v.
func decFill(t *tensor.Dense, from, to int, v float64) {
	switch data := t.Data().(type) {
	case []float32:
		for i := from; i < to; i++ {
			data[i] = float32(v)
		}
	case []float64:
		for i := from; i < to; i++ {
			data[i] = v
		}
	}
}
