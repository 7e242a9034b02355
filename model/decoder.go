package model

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file is the one definition of the decoder on a gorgonia graph: the
// initial state and ONE time step. The training graph unrolls step with
// teacher forcing; the inference stepper builds it once and runs it one
// word at a time. The equations are in DecoderParams' doc comment.
//
// The graphs avoid Slice and Concat altogether (gorgonia's sliceOp hashes
// its bounds as single bytes, so slices of one node whose bounds reach 256
// are silently merged): LSTM weights are per gate, the LSTM input is
// x·W_e + z·W_z rather than a concatenation, and the loss is summed per
// time step.

// decBuildError carries a graph-construction error through decMust's
// panic to the recover in the exported constructors.
type decBuildError struct{ err error }

// decMust unwraps a gorgonia constructor's result; an error means a shape
// or type mismatch in the code below (the constructors validate sizes
// first), so it unwinds to decRecover.
func decMust(n *G.Node, err error) *G.Node {
	if err != nil {
		panic(decBuildError{err})
	}
	return n
}

// decRecover turns a decBuildError panic into *err; other panics go on.
func decRecover(err *error) {
	if r := recover(); r != nil {
		be, ok := r.(decBuildError)
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("build decoder graph: %w", be.err)
	}
}

// decExpect asserts a node's shape while the graph is built (shapes are
// static: one graph per batch size and length).
func decExpect(n *G.Node, what string, shape ...int) {
	if !n.Shape().Eq(tensor.Shape(shape)) {
		panic(decBuildError{fmt.Errorf("%s has shape %v, want %v", what, n.Shape(), tensor.Shape(shape))})
	}
}

// decGateNodes are one LSTM gate's parameter nodes.
type decGateNodes struct {
	input, context, hidden, bias *G.Node
}

// decoderNodes binds a DecoderParams to one graph: one node per parameter,
// each bound to the parameter's own tensor (biases as (1, N) views of it),
// in the canonical order in learnables.
type decoderNodes struct {
	p     *DecoderParams
	g     *G.ExprGraph
	batch int

	embedding                    *G.Node
	initH, initHB, initC, initCB *G.Node
	image, imageB                *G.Node
	attEnc, attEncB, attDec      *G.Node
	attScore                     *G.Node
	gate, gateB                  *G.Node
	lstm                         [4]decGateNodes
	output, outputB              *G.Node

	learnables []*G.Node // same order as p.Tensors()
}

func newDecoderNodes(g *G.ExprGraph, p *DecoderParams, batch int) *decoderNodes {
	n := &decoderNodes{p: p, g: g, batch: batch}
	byName := map[string]**G.Node{
		"decoder.embedding.weight":         &n.embedding,
		"decoder.init_h.weight":            &n.initH,
		"decoder.init_h.bias":              &n.initHB,
		"decoder.init_c.weight":            &n.initC,
		"decoder.init_c.bias":              &n.initCB,
		"decoder.image.weight":             &n.image,
		"decoder.image.bias":               &n.imageB,
		"decoder.attention.encoder.weight": &n.attEnc,
		"decoder.attention.encoder.bias":   &n.attEncB,
		"decoder.attention.decoder.weight": &n.attDec,
		"decoder.attention.score.weight":   &n.attScore,
		"decoder.f_beta.weight":            &n.gate,
		"decoder.f_beta.bias":              &n.gateB,
		"decoder.output.weight":            &n.output,
		"decoder.output.bias":              &n.outputB,
	}
	for k, gate := range decoderGateNames {
		prefix := "decoder.lstm." + gate + "."
		byName[prefix+"input.weight"] = &n.lstm[k].input
		byName[prefix+"context.weight"] = &n.lstm[k].context
		byName[prefix+"hidden.weight"] = &n.lstm[k].hidden
		byName[prefix+"bias"] = &n.lstm[k].bias
	}
	for _, t := range p.Tensors() {
		v := t.Tensor
		if v.Dims() == 1 && t.Name != "decoder.attention.score.weight" {
			// A bias (N) is bound as a (1, N) view sharing its backing
			// array, ready for a broadcast over the batch.
			v = tensor.New(tensor.WithShape(1, v.Shape()[0]), tensor.WithBacking(v.Data()))
		}
		node := G.NodeFromAny(g, v, G.WithName(t.Name))
		*byName[t.Name] = node
		n.learnables = append(n.learnables, node)
	}
	return n
}

// decLinear returns x·w + b for x (B, in), w (in, out), b (1, out) or nil.
func decLinear(x, w, b *G.Node) *G.Node {
	y := decMust(G.Mul(x, w))
	if b == nil {
		return y
	}
	return decMust(G.BroadcastAdd(y, b, nil, []byte{0}))
}

// initState builds the decoder's initial state from features (B, P, F):
// h0, c0 (B, H), and for ArchAttention the attention cache u = a·W_a + b_a
// (B, P, A), computed once per batch and read by every step.
func (n *decoderNodes) initState(features *G.Node) (h0, c0, cache *G.Node) {
	c := n.p.Config
	B, P, F, H := n.batch, c.GridCells, c.FeatureDim, c.HiddenDim
	decExpect(features, "features", B, P, F)
	mean := decMust(G.Mean(features, 1)) // ā (B, F)
	decExpect(mean, "mean feature ā", B, F)
	if c.Arch == ArchShowTell {
		x := decLinear(mean, n.image, n.imageB) // (B, E)
		decExpect(x, "image embedding", B, c.EmbedDim)
		h0, c0 = n.lstmCell(x, nil, nil, nil)
		return h0, c0, nil
	}
	h0 = decMust(G.Tanh(decLinear(mean, n.initH, n.initHB)))
	c0 = decMust(G.Tanh(decLinear(mean, n.initC, n.initCB)))
	flat := decMust(G.Reshape(features, tensor.Shape{B * P, F}))
	u := decLinear(flat, n.attEnc, n.attEncB) // (B·P, A)
	cache = decMust(G.Reshape(u, tensor.Shape{B, P, c.AttentionDim}))
	decExpect(h0, "h0", B, H)
	decExpect(c0, "c0", B, H)
	return h0, c0, cache
}

// lstmCell builds one LSTM update from input x (B, E), optional context z
// (B, F) and optional previous state h, c (B, H); a nil state is zero.
func (n *decoderNodes) lstmCell(x, z, h, c *G.Node) (h2, c2 *G.Node) {
	B, H := n.batch, n.p.Config.HiddenDim
	var gates [4]*G.Node
	for k := range gates {
		w := n.lstm[k]
		pre := decMust(G.Mul(x, w.input))
		if z != nil {
			pre = decMust(G.Add(pre, decMust(G.Mul(z, w.context))))
		}
		if h != nil {
			pre = decMust(G.Add(pre, decMust(G.Mul(h, w.hidden))))
		}
		pre = decMust(G.BroadcastAdd(pre, w.bias, nil, []byte{0}))
		decExpect(pre, "LSTM gate "+decoderGateNames[k], B, H)
		if k == 2 {
			gates[k] = decMust(G.Tanh(pre))
		} else {
			gates[k] = decMust(G.Sigmoid(pre))
		}
	}
	in, forget, cand, out := gates[0], gates[1], gates[2], gates[3]
	c2 = decMust(G.HadamardProd(in, cand))
	if c != nil {
		c2 = decMust(G.Add(decMust(G.HadamardProd(forget, c)), c2))
	}
	h2 = decMust(G.HadamardProd(out, decMust(G.Tanh(c2))))
	return h2, c2
}

// decStepIn are one step's inputs.
type decStepIn struct {
	prevWords *G.Node // (B) tensor.Int: y_{t−1}
	h, c      *G.Node // (B, H)
	features  *G.Node // (B, P, F); ArchAttention only
	cache     *G.Node // (B, P, A) = a·W_a + b_a; ArchAttention only
	dropMask  *G.Node // (B, H) Bernoulli(1−p)/(1−p), or nil for no dropout
}

// decStepOut are one step's outputs.
type decStepOut struct {
	logits *G.Node // (B, V)
	alpha  *G.Node // (B, P); nil for ArchShowTell
	h, c   *G.Node // (B, H)
}

// step builds ONE decoder time step (the equations in DecoderParams' doc).
func (n *decoderNodes) step(in decStepIn) decStepOut {
	c := n.p.Config
	B, P, F, A, H, E, V := n.batch, c.GridCells, c.FeatureDim, c.AttentionDim, c.HiddenDim, c.EmbedDim, c.VocabSize
	decExpect(in.prevWords, "previous words", B)
	decExpect(in.h, "h_{t-1}", B, H)
	decExpect(in.c, "c_{t-1}", B, H)

	x := decMust(G.ByIndices(n.embedding, in.prevWords, 0)) // (B, E)
	decExpect(x, "word embedding", B, E)

	var out decStepOut
	var context *G.Node
	if c.Arch == ArchAttention {
		decExpect(in.features, "features", B, P, F)
		decExpect(in.cache, "attention cache", B, P, A)
		hAtt := decMust(G.Reshape(decMust(G.Mul(in.h, n.attDec)), tensor.Shape{B, 1, A}))
		pre := decMust(G.BroadcastAdd(in.cache, hAtt, nil, []byte{1})) // (B, P, A)
		act := decMust(G.Rectify(pre))
		flat := decMust(G.Reshape(act, tensor.Shape{B * P, A}))
		scores := decMust(G.Reshape(decMust(G.Mul(flat, n.attScore)), tensor.Shape{B, P}))
		out.alpha = decMust(G.SoftMax(scores, 1))
		decExpect(out.alpha, "α", B, P)
		alpha3 := decMust(G.Reshape(out.alpha, tensor.Shape{B, 1, P}))
		z := decMust(G.Reshape(decMust(G.BatchedMatMul(alpha3, in.features)), tensor.Shape{B, F}))
		beta := decMust(G.Sigmoid(decLinear(in.h, n.gate, n.gateB))) // (B, F)
		decExpect(beta, "β", B, F)
		context = decMust(G.HadamardProd(beta, z))
	}
	out.h, out.c = n.lstmCell(x, context, in.h, in.c)

	hOut := out.h
	if in.dropMask != nil {
		decExpect(in.dropMask, "dropout mask", B, H)
		hOut = decMust(G.HadamardProd(out.h, in.dropMask))
	}
	out.logits = decLinear(hOut, n.output, n.outputB)
	decExpect(out.logits, "logits", B, V)
	return out
}
