package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestDecoderGradientFiniteDifference checks the gradient of the training
// loss (cross-entropy + attention penalty, dropout on) with respect to
// EVERY entry of EVERY parameter against central differences, in float64
// on a tiny configuration with a partial batch and captions of different
// lengths.
func TestDecoderGradientFiniteDifference(t *testing.T) {
	for _, arch := range []string{ArchAttention, ArchShowTell} {
		t.Run(arch, func(t *testing.T) {
			const batch, steps, eps = 3, 4, 1e-6
			cfg := decTinyConfig(arch)
			rng := rand.New(rand.NewPCG(11, 12))
			p, err := NewDecoderParams(cfg, tensor.Float64, rng)
			if err != nil {
				t.Fatal(err)
			}
			features, captions := decRandomBatch(cfg, tensor.Float64, batch, steps, rng, 2)
			tg, err := NewDecoderTrainGraph(p, batch, steps)
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if err := tg.SetBatch(features, captions); err != nil {
				t.Fatal(err)
			}
			tg.SetDropout(rand.New(rand.NewPCG(5, 6)))
			base, err := tg.Run()
			if err != nil {
				t.Fatal(err)
			}
			grads, err := tg.Grads()
			if err != nil {
				t.Fatal(err)
			}
			analytic := map[string][]float64{}
			for _, g := range grads {
				analytic[g.Name] = append([]float64(nil), g.Tensor.Float64s()...)
			}
			loss := func() float64 {
				l, err := tg.Run()
				if err != nil {
					t.Fatal(err)
				}
				return l.Loss
			}
			var checked int
			var worst float64
			worstAt := ""
			for _, nt := range p.Tensors() {
				data := nt.Tensor.Float64s()
				var norm float64
				for i := range data {
					orig := data[i]
					data[i] = orig + eps
					up := loss()
					data[i] = orig - eps
					down := loss()
					data[i] = orig
					numeric := (up - down) / (2 * eps)
					got := analytic[nt.Name][i]
					norm += got * got
					// Central differences are exact to O(ε²) plus
					// rounding of order 1e-16/ε.
					e := math.Abs(numeric-got) / math.Max(1, math.Abs(numeric))
					if e > worst {
						worst, worstAt = e, nt.Name
					}
					if e > 1e-7 {
						t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", nt.Name, i, got, numeric)
					}
					checked++
				}
				if norm == 0 {
					t.Errorf("%s: gradient is identically zero", nt.Name)
				}
			}
			if l := loss(); l != base.Loss {
				t.Errorf("loss after the check %v, before %v: a parameter was not restored", l, base.Loss)
			}
			t.Logf("%s: %d entries in %d tensors, loss %.6f (CE %.6f + penalty %.6f), worst error %.2g (%s)",
				arch, checked, len(grads), base.Loss, base.CrossEntropy, base.Penalty, worst, worstAt)
		})
	}
}
