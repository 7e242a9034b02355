package train

import (
	"math"
	"testing"

	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// TestAdamMatchesPyTorch checks three Adam steps against torch.optim.Adam
// (PyTorch 1.13, float64, lr 0.1, default betas and eps), the gradients
// clamped to ±5 first as the sgrvinod tutorial's clip_gradient does. The
// expected values were printed by:
//
//	p = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
//	opt = torch.optim.Adam([p], lr=0.1)
//	for g in ([0.1, -0.2, 10.0], [0.1, 0.3, -1.0], [-0.05, 0.0, 7.0]):
//	    p.grad = torch.tensor(g, dtype=torch.float64).clamp(-5, 5); opt.step()
//
// The first step is also easy to check by hand: with m = 0.1·g and
// v = 0.001·g², bias correction gives m̂ = g, v̂ = g², so each element
// moves by lr·g/(|g| + 1e-8): 1 − 0.1·0.1/(0.1 + 1e-8) = 0.90000000999….
func TestAdamMatchesPyTorch(t *testing.T) {
	p := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{1, -2, 0.5}))
	params := []model.DecoderTensor{{Name: "w", Tensor: p}}
	opt := NewAdam(params, 0.1, 5)
	grads := [][]float64{{0.1, -0.2, 10}, {0.1, 0.3, -1}, {-0.05, 0, 7}}
	want := [][]float64{
		{0.900000009999999, -1.9000000049999999, 0.4000000002},
		{0.8000000199999987, -1.924770185641943, 0.3488973926234311},
		{0.7484346853767113, -1.943917606900869, 0.27595771793471147},
	}
	for step, g := range grads {
		gt := tensor.New(tensor.WithShape(3), tensor.WithBacking(append([]float64(nil), g...)))
		if err := opt.Update([]model.DecoderTensor{{Name: "w", Tensor: gt}}); err != nil {
			t.Fatal(err)
		}
		if got := gt.Float64s(); got[2] != g[2] {
			t.Fatalf("Update modified the gradient: %v", got)
		}
		for i, w := range want[step] {
			if got := p.Float64s()[i]; math.Abs(got-w) > 1e-13 {
				t.Errorf("step %d element %d: got %.17g, want %.17g (PyTorch)", step+1, i, got, w)
			}
		}
	}
	if opt.Step != 3 {
		t.Errorf("Step = %d, want 3", opt.Step)
	}
}

func TestAdamRejectsMismatch(t *testing.T) {
	p := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{1, 2, 3}))
	opt := NewAdam([]model.DecoderTensor{{Name: "w", Tensor: p}}, 0.1, 0)
	g := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2}))
	if err := opt.Update([]model.DecoderTensor{{Name: "w", Tensor: g}}); err == nil {
		t.Fatal("no error for a gradient of the wrong size")
	}
}
