package model

import (
	"errors"
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DecoderStepper runs the decoder one time step at a time for a fixed
// batch size, for greedy and beam search: the same step as the training
// graph, compiled once, without dropout. Float32 parameters run on the
// fused engine (decoder_fused.go), which packs the weights when the
// stepper is built: build a new stepper after changing the parameters.
//
//	s, err := NewDecoderStepper(params, beamWidth)
//	state, err := s.Start(features)          // h0, c0 and a·W_a + b_a
//	for … {
//		out, err := s.Step(state, prevWords) // logits (B, V), α (B, P)
//		state = out.State
//	}
//
// A DecoderStepper is not safe for concurrent use; a DecoderState is a
// plain value that the caller may copy, reorder (beam search) or keep.
type DecoderStepper struct {
	Params *DecoderParams
	Batch  int
	// ReuseLogits makes Step return its Logits in a buffer of the
	// stepper's, valid until the next Step, instead of a fresh tensor
	// (a big vocabulary's logits are megabytes per step).
	ReuseLogits bool

	startVM                    G.VM
	startFeatures              *G.Node
	startH, startC, startCache *G.Node

	stepVM                                   G.VM
	prevWords, inH, inC, inFeatures, inCache *G.Node
	words                                    *tensor.Dense
	outLogits, outAlpha, outH, outC          *G.Node

	fused *fusedStepper // float32: the fused engine instead of the graphs
}

// DecoderState is the decoder's recurrent state for a batch, owned by the
// caller.
type DecoderState struct {
	H, C     *tensor.Dense // (B, H)
	Features *tensor.Dense // (B/Beams, P, F)
	Cache    *tensor.Dense // (B/Beams, P, A) = a·W_a + b_a; nil for ArchShowTell
	// Beams is the number of consecutive rows that share one image's
	// Features and Cache (StartBeams); 0 or 1: one row per image.
	Beams int
}

// DecoderStepOutput is one step's result, owned by the caller.
type DecoderStepOutput struct {
	Logits *tensor.Dense // (B, V), before softmax
	Alpha  *tensor.Dense // (B, P) attention weights; nil for ArchShowTell
	State  *DecoderState // the state after the step
}

// NewDecoderStepper builds and compiles the start and step graphs for
// batches of batch rows.
func NewDecoderStepper(p *DecoderParams, batch int) (s *DecoderStepper, err error) {
	if p == nil {
		return nil, errors.New("new decoder stepper: nil parameters")
	}
	if err := p.Config.Validate(); err != nil {
		return nil, fmt.Errorf("new decoder stepper: %w", err)
	}
	if batch < 1 {
		return nil, fmt.Errorf("new decoder stepper: batch must be ≥ 1, got %d", batch)
	}
	if p.Dtype == tensor.Float32 && !decForceGraph {
		return &DecoderStepper{Params: p, Batch: batch, fused: newFusedStepper(p, batch)}, nil
	}
	defer decRecover(&err)
	c := p.Config
	B, P, F, A, H := batch, c.GridCells, c.FeatureDim, c.AttentionDim, c.HiddenDim
	dt := p.Dtype
	s = &DecoderStepper{Params: p, Batch: batch}
	zeros := func(dt tensor.Dtype, shape ...int) *tensor.Dense {
		return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	}

	// Start graph: features → h0, c0, cache.
	g := G.NewGraph()
	nodes := newDecoderNodes(g, p, batch)
	s.startFeatures = G.NodeFromAny(g, zeros(dt, B, P, F), G.WithName("features"))
	s.startH, s.startC, s.startCache = nodes.initState(s.startFeatures)
	watch := []any{s.startH, s.startC}
	if s.startCache != nil {
		watch = append(watch, s.startCache)
	}
	if s.startVM, err = decCompile(g, watch); err != nil {
		return nil, err
	}

	// Step graph: (y_{t−1}, h, c, features, cache) → logits, α, h, c.
	g = G.NewGraph()
	nodes = newDecoderNodes(g, p, batch)
	s.words = zeros(tensor.Int, B)
	s.prevWords = G.NodeFromAny(g, s.words, G.WithName("words"))
	s.inH = G.NodeFromAny(g, zeros(dt, B, H), G.WithName("h"))
	s.inC = G.NodeFromAny(g, zeros(dt, B, H), G.WithName("c"))
	in := decStepIn{prevWords: s.prevWords, h: s.inH, c: s.inC}
	if c.Arch == ArchAttention {
		s.inFeatures = G.NodeFromAny(g, zeros(dt, B, P, F), G.WithName("features"))
		s.inCache = G.NodeFromAny(g, zeros(dt, B, P, A), G.WithName("cache"))
		in.features, in.cache = s.inFeatures, s.inCache
	}
	out := nodes.step(in)
	s.outLogits, s.outAlpha, s.outH, s.outC = out.logits, out.alpha, out.h, out.c
	watch = []any{s.outLogits, s.outH, s.outC}
	if s.outAlpha != nil {
		watch = append(watch, s.outAlpha)
	}
	if s.stepVM, err = decCompile(g, watch); err != nil {
		s.startVM.Close()
		return nil, err
	}
	return s, nil
}

// Start computes the initial state for features (B, P, F).
func (s *DecoderStepper) Start(features tensor.Tensor) (*DecoderState, error) {
	c := s.Params.Config
	want := tensor.Shape{s.Batch, c.GridCells, c.FeatureDim}
	if !features.Shape().Eq(want) || features.Dtype() != s.Params.Dtype {
		return nil, fmt.Errorf("decoder start: features are %v %v, want %v %v", features.Dtype(), features.Shape(), s.Params.Dtype, want)
	}
	if s.fused != nil {
		return s.fused.start(decClone(features), 1)
	}
	feats := decClone(features)
	if err := G.Let(s.startFeatures, feats); err != nil {
		return nil, fmt.Errorf("decoder start: %w", err)
	}
	err := s.startVM.RunAll()
	s.startVM.Reset()
	if err != nil {
		return nil, fmt.Errorf("decoder start: %w", err)
	}
	st := &DecoderState{H: decClone(s.startH.Value()), C: decClone(s.startC.Value()), Features: feats}
	if s.startCache != nil {
		st.Cache = decClone(s.startCache.Value())
	}
	return st, nil
}

// StartBeams computes the initial state of beam search for n images,
// features (n, P, F), with beams rows per image (n·beams = Batch): rows
// r·beams … r·beams+beams−1 start alike from image r, and share its
// features and attention cache instead of holding copies. The state keeps
// features (no copy): do not change it while the state is in use.
func (s *DecoderStepper) StartBeams(features *tensor.Dense, beams int) (*DecoderState, error) {
	c := s.Params.Config
	if beams < 1 || s.Batch%beams != 0 {
		return nil, fmt.Errorf("decoder start: %d rows are not a whole number of beams of %d", s.Batch, beams)
	}
	n := s.Batch / beams
	want := tensor.Shape{n, c.GridCells, c.FeatureDim}
	if !features.Shape().Eq(want) || features.Dtype() != s.Params.Dtype {
		return nil, fmt.Errorf("decoder start: features are %v %v, want %v %v", features.Dtype(), features.Shape(), s.Params.Dtype, want)
	}
	if s.fused != nil {
		return s.fused.start(features, beams)
	}
	// The graph: every row its own copy.
	size := c.GridCells * c.FeatureDim
	rep := tensor.New(tensor.Of(s.Params.Dtype), tensor.WithShape(s.Batch, c.GridCells, c.FeatureDim))
	for r := range s.Batch {
		img := r / beams
		for i := range size {
			v, _ := features.At(img, i/c.FeatureDim, i%c.FeatureDim)
			_ = rep.SetAt(v, r, i/c.FeatureDim, i%c.FeatureDim)
		}
	}
	return s.Start(rep)
}

// Step runs one decoder step from state with the previous words (B ids;
// <start> for the first step) and returns the logits, the attention
// weights and the new state. state is not modified; the new state shares
// its Features and Cache.
func (s *DecoderStepper) Step(state *DecoderState, prevWords []int) (*DecoderStepOutput, error) {
	c := s.Params.Config
	if len(prevWords) != s.Batch {
		return nil, fmt.Errorf("decoder step: %d previous words for a batch of %d", len(prevWords), s.Batch)
	}
	for i, id := range prevWords {
		if id < 0 || id >= c.VocabSize {
			return nil, fmt.Errorf("decoder step: word %d is id %d, outside the vocabulary [0, %d)", i, id, c.VocabSize)
		}
	}
	if s.fused != nil {
		return s.fused.step(state, prevWords, s.ReuseLogits)
	}
	if state.Beams > 1 {
		return nil, errors.New("decoder step: a shared-features state (StartBeams) on the graph engine")
	}
	copy(s.words.Ints(), prevWords)
	lets := []struct {
		n *G.Node
		v *tensor.Dense
	}{{s.inH, state.H}, {s.inC, state.C}}
	if c.Arch == ArchAttention {
		lets = append(lets, struct {
			n *G.Node
			v *tensor.Dense
		}{s.inFeatures, state.Features}, struct {
			n *G.Node
			v *tensor.Dense
		}{s.inCache, state.Cache})
	}
	for _, l := range lets {
		if l.v == nil || !l.v.Shape().Eq(l.n.Shape()) || l.v.Dtype() != s.Params.Dtype {
			return nil, fmt.Errorf("decoder step: state tensor %s must be %v %v", l.n.Name(), s.Params.Dtype, l.n.Shape())
		}
		if err := G.Let(l.n, l.v); err != nil {
			return nil, fmt.Errorf("decoder step: %w", err)
		}
	}
	err := s.stepVM.RunAll()
	s.stepVM.Reset()
	if err != nil {
		return nil, fmt.Errorf("decoder step: %w", err)
	}
	out := &DecoderStepOutput{
		Logits: decClone(s.outLogits.Value()),
		State: &DecoderState{
			H:        decClone(s.outH.Value()),
			C:        decClone(s.outC.Value()),
			Features: state.Features,
			Cache:    state.Cache,
		},
	}
	if s.outAlpha != nil {
		out.Alpha = decClone(s.outAlpha.Value())
	}
	return out, nil
}

// Close releases both compiled machines.
func (s *DecoderStepper) Close() error {
	if s.fused != nil {
		return nil
	}
	return errors.Join(s.startVM.Close(), s.stepVM.Close())
}

// decClone copies a dense value into a fresh tensor the caller owns.
func decClone(v any) *tensor.Dense {
	return v.(tensor.Tensor).Clone().(*tensor.Dense)
}
