package train

import (
	"fmt"
	"math"
	"sync"

	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// Adam is the Adam optimizer with PyTorch's semantics (torch.optim.Adam,
// amsgrad off, no weight decay): for each parameter θ with gradient g, at
// step t = 1, 2, …
//
//	m = β1·m + (1 − β1)·g
//	v = β2·v + (1 − β2)·g²
//	θ = θ − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
//
// with β1 = 0.9, β2 = 0.999, ε = 1e-8. Before the update every gradient
// element is clipped to [−Clip, Clip] when Clip > 0, as the sgrvinod
// tutorial's clip_gradient does (clamp by value, not by norm). The moments
// are kept in the parameters' dtype, as PyTorch keeps them.
type Adam struct {
	LR, Beta1, Beta2, Eps, Clip float64
	Step                        int // updates done

	params []model.DecoderTensor
	m, v   []*tensor.Dense
}

// NewAdam returns an optimizer for params (updated in place by Update).
func NewAdam(params []model.DecoderTensor, lr, clip float64) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Clip: clip, params: params}
	for _, p := range params {
		a.m = append(a.m, tensor.New(tensor.Of(p.Tensor.Dtype()), tensor.WithShape(p.Tensor.Shape().Clone()...)))
		a.v = append(a.v, tensor.New(tensor.Of(p.Tensor.Dtype()), tensor.WithShape(p.Tensor.Shape().Clone()...)))
	}
	return a
}

// Update applies one step with grads, which must match the parameters in
// order, name and size (as model.DecoderTrainGraph.Grads returns them).
// The gradients are read, not modified.
func (a *Adam) Update(grads []model.DecoderTensor) error {
	if len(grads) != len(a.params) {
		return fmt.Errorf("adam: %d gradients for %d parameters", len(grads), len(a.params))
	}
	for i, g := range grads {
		p := a.params[i]
		if g.Name != p.Name || g.Tensor.Shape().TotalSize() != p.Tensor.Shape().TotalSize() {
			return fmt.Errorf("adam: gradient %d is %s %v, parameter is %s %v", i, g.Name, g.Tensor.Shape(), p.Name, p.Tensor.Shape())
		}
		if g.Tensor.Dtype() != p.Tensor.Dtype() {
			return fmt.Errorf("adam: gradient of %s is %v, parameter is %v", p.Name, g.Tensor.Dtype(), p.Tensor.Dtype())
		}
	}
	a.Step++
	t := float64(a.Step)
	bc1 := 1 - math.Pow(a.Beta1, t)
	bc2 := 1 - math.Pow(a.Beta2, t)
	for i := range grads {
		if dt := a.params[i].Tensor.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
			return fmt.Errorf("adam: parameter %s has unsupported dtype %v", a.params[i].Name, dt)
		}
	}
	// Every element is updated on its own, so the parameters are split
	// into two halves (by element count) updated on two goroutines; the
	// result does not depend on the split.
	total := 0
	for _, g := range grads {
		total += g.Tensor.Shape().TotalSize()
	}
	update := func(i, lo, hi int) {
		switch pd := a.params[i].Tensor.Data().(type) {
		case []float32:
			adamStep(pd[lo:hi], g32(grads[i])[lo:hi], a.m[i].Data().([]float32)[lo:hi], a.v[i].Data().([]float32)[lo:hi], a, bc1, bc2)
		case []float64:
			adamStep(pd[lo:hi], grads[i].Tensor.Data().([]float64)[lo:hi], a.m[i].Data().([]float64)[lo:hi], a.v[i].Data().([]float64)[lo:hi], a, bc1, bc2)
		}
	}
	run := func(from, to int) { // elements [from, to) of the concatenation
		off := 0
		for i, g := range grads {
			n := g.Tensor.Shape().TotalSize()
			if lo, hi := max(from-off, 0), min(to-off, n); lo < hi {
				update(i, lo, hi)
			}
			off += n
		}
	}
	if total < 1<<16 {
		run(0, total)
		return nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		run(0, total/2)
	}()
	run(total/2, total)
	wg.Wait()
	return nil
}

func g32(g model.DecoderTensor) []float32 { return g.Tensor.Data().([]float32) }

// adamStep updates one parameter. The arithmetic follows PyTorch's
// single-tensor Adam: step_size = lr/bc1, denom = √v/√bc2 + ε.
func adamStep[T float32 | float64](p, g, m, v []T, a *Adam, bc1, bc2 float64) {
	b1, b2 := T(a.Beta1), T(a.Beta2)
	clip := T(a.Clip)
	stepSize := T(a.LR / bc1)
	sqrtBC2 := T(math.Sqrt(bc2))
	eps := T(a.Eps)
	for j := range p {
		gj := g[j]
		if clip > 0 {
			gj = min(max(gj, -clip), clip)
		}
		m[j] = b1*m[j] + (1-b1)*gj
		v[j] = b2*v[j] + (1-b2)*gj*gj
		denom := T(math.Sqrt(float64(v[j])))/sqrtBC2 + eps
		p[j] -= stepSize * m[j] / denom
	}
}
