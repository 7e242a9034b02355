package model

import (
	"fmt"

	"gorgonia.org/tensor"
)

// fusedStepper is DecoderStepper's float32 engine: the fused decoder's
// forward kernels run one step at a time (attendForward, lstmForward and
// the same packed products as training), with the weights packed once,
// when the stepper is built.
type fusedStepper struct {
	d      *fusedDecoder
	logits *tensor.Dense // (B, V), reused with DecoderStepper.ReuseLogits
}

func newFusedStepper(p *DecoderParams, batch int) *fusedStepper {
	d := newFusedDecoder(p, batch, 1, false)
	for i := range d.perm {
		d.perm[i] = i
	}
	d.n[0], d.n[1] = batch, 0
	d.off[0], d.off[1] = 0, batch
	d.setDropout(nil, 0)
	d.packWeights()
	return &fusedStepper{d: d}
}

// start computes h0, c0 and the attention cache for n images' features
// (n, P, F), with beams rows per image: row r reads image r/beams. The
// state keeps features itself (no copy).
func (s *fusedStepper) start(features *tensor.Dense, beams int) (*DecoderState, error) {
	d := s.d
	src, ok := features.Data().([]float32)
	if !ok {
		return nil, fmt.Errorf("decoder start: features are %v, want float32", features.Dtype())
	}
	B, P, F, A, H := d.B, d.P, d.F, d.A, d.H
	n := B / beams
	copy(d.feats, src[:n*P*F])
	d.forwardInit(n)
	h, c := make([]float32, B*H), make([]float32, B*H)
	for r := range B {
		img := r / beams
		copy(h[r*H:(r+1)*H], d.h0[img*d.ldH:])
		copy(c[r*H:(r+1)*H], d.c0[img*d.ldH:])
	}
	st := &DecoderState{
		H:        tensor.New(tensor.WithShape(B, H), tensor.WithBacking(h)),
		C:        tensor.New(tensor.WithShape(B, H), tensor.WithBacking(c)),
		Features: features,
		Beams:    beams,
	}
	if d.att {
		st.Cache = tensor.New(tensor.WithShape(n, P, A), tensor.WithBacking(rowsOf(d.u, d.ldA, n*P, A)))
	}
	return st, nil
}

// step runs one decoder step from state with the previous words.
func (s *fusedStepper) step(state *DecoderState, prevWords []int, reuseLogits bool) (*DecoderStepOutput, error) {
	d := s.d
	B, P, F, A, H, V := d.B, d.P, d.F, d.A, d.H, d.V
	beams := max(state.Beams, 1)
	if B%beams != 0 {
		return nil, fmt.Errorf("decoder step: %d rows are not a whole number of beams of %d", B, beams)
	}
	n := B / beams
	for _, c := range []struct {
		name string
		t    *tensor.Dense
		n    int
	}{{"h", state.H, B * H}, {"c", state.C, B * H}, {"features", state.Features, n * P * F}} {
		if c.t == nil || c.t.Dtype() != tensor.Float32 || len(c.t.Float32s()) != c.n {
			return nil, fmt.Errorf("decoder step: state tensor %s must be float32 with %d elements", c.name, c.n)
		}
	}
	if d.att {
		if state.Cache == nil || state.Cache.Dtype() != tensor.Float32 || len(state.Cache.Float32s()) != n*P*A {
			return nil, fmt.Errorf("decoder step: state tensor cache must be float32 (%d, %d, %d)", n, P, A)
		}
		d.uSrc, d.ldu = state.Cache.Float32s(), A
	}
	d.featSrc, d.beams = state.Features.Float32s(), beams
	h, c := state.H.Float32s(), state.C.Float32s()
	for i := range B {
		copy(d.hPrev[i*d.ldH:i*d.ldH+H], h[i*H:(i+1)*H])
		copy(d.cPrev[i*d.ldH:i*d.ldH+H], c[i*H:(i+1)*H])
		d.words[i] = prevWords[i]
	}
	d.forwardSteps()
	d.gm.mul(B, d.hd, d.ldH, d.wO, d.logits, d.ldV, &epilogue{bias: d.bO})
	var logits *tensor.Dense
	if reuseLogits {
		if s.logits == nil {
			s.logits = tensor.New(tensor.WithShape(B, V), tensor.WithBacking(make([]float32, B*V)))
		}
		logits = s.logits
		dst := logits.Float32s()
		for r := range B {
			copy(dst[r*V:(r+1)*V], d.logits[r*d.ldV:r*d.ldV+V])
		}
	} else {
		logits = tensor.New(tensor.WithShape(B, V), tensor.WithBacking(rowsOf(d.logits, d.ldV, B, V)))
	}
	out := &DecoderStepOutput{
		Logits: logits,
		State: &DecoderState{
			H:        tensor.New(tensor.WithShape(B, H), tensor.WithBacking(rowsOf(d.hd, d.ldH, B, H))),
			C:        tensor.New(tensor.WithShape(B, H), tensor.WithBacking(rowsOf(d.cOut, d.ldH, B, H))),
			Features: state.Features,
			Cache:    state.Cache,
			Beams:    state.Beams,
		},
	}
	if d.att {
		out.Alpha = tensor.New(tensor.WithShape(B, P), tensor.WithBacking(append([]float32(nil), d.alpha[:B*P]...)))
	}
	return out, nil
}

// rowsOf copies the first rows rows (cols wide, stride ld) of m into a
// fresh contiguous slice.
func rowsOf(m []float32, ld, rows, cols int) []float32 {
	out := make([]float32, rows*cols)
	for r := range rows {
		copy(out[r*cols:(r+1)*cols], m[r*ld:r*ld+cols])
	}
	return out
}
