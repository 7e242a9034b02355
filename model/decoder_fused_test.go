package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// TestFusedDecoderMatchesGraph checks the fused float32 engine against the
// gorgonia graph (float64, the definition) at real sizes — B = 32, T = 16,
// dimensions 512, where gorgonia's Slice bug would show — for both
// architectures, with dropout, a partial batch and the attention penalty
// (α_c = 49 = P: as strong as Xu et al.'s sum over cells, so that the
// attention's gradients are not dwarfed):
// the loss and every gradient, element by element (max error within
// 5e-4 of the largest element: float32 sums of up to B·P = 1568 terms).
func TestFusedDecoderMatchesGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("real sizes; run without -short")
	}
	for _, arch := range []string{ArchAttention, ArchShowTell} {
		t.Run(arch, func(t *testing.T) {
			cfg := DecoderConfig{Arch: arch, VocabSize: 1000, FeatureDim: 512, GridCells: 49,
				EmbedDim: 512, AttentionDim: 512, HiddenDim: 512, Dropout: 0.5, AlphaC: 49}
			const B, T = 32, 16
			p32, err := NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(7, 8)))
			if err != nil {
				t.Fatal(err)
			}
			p64, err := NewDecoderParamsZero(cfg, tensor.Float64)
			if err != nil {
				t.Fatal(err)
			}
			for i, src := range p32.Tensors() {
				dst := p64.Tensors()[i].Tensor.Float64s()
				for j, v := range src.Tensor.Float32s() {
					dst[j] = float64(v)
				}
			}
			rng := rand.New(rand.NewPCG(3, 4))
			f64, captions := decRandomBatch(cfg, tensor.Float64, B, T, rng, 5)
			captions = captions[:B-3] // a partial batch
			f32 := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(B, cfg.GridCells, cfg.FeatureDim))
			for i, v := range f64.Float64s() {
				f32.Float32s()[i] = float32(v)
			}

			fused, err := NewDecoderTrainGraph(p32, B, T)
			if err != nil {
				t.Fatal(err)
			}
			if fused.fused == nil {
				t.Fatal("float32 parameters did not get the fused engine")
			}
			graph, err := NewDecoderTrainGraph(p64, B, T)
			if err != nil {
				t.Fatal(err)
			}
			defer graph.Close()
			for _, c := range []struct {
				tg *DecoderTrainGraph
				f  tensor.Tensor
			}{{fused, f32}, {graph, f64}} {
				if err := c.tg.SetBatch(c.f, captions); err != nil {
					t.Fatal(err)
				}
				c.tg.SetDropout(rand.New(rand.NewPCG(9, 9)))
			}
			want, err := graph.Run()
			if err != nil {
				t.Fatal(err)
			}
			got, err := fused.Run()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range [][3]float64{{got.Loss, want.Loss}, {got.CrossEntropy, want.CrossEntropy}, {got.Penalty, want.Penalty}} {
				if math.Abs(v[0]-v[1]) > 1e-5*math.Abs(v[1])+1e-9 {
					t.Errorf("loss parts: fused %v, graph %v", got, want)
					break
				}
			}
			if got.Tokens != want.Tokens || got.Captions != want.Captions {
				t.Errorf("counts: fused %v, graph %v", got, want)
			}
			gg, err := fused.Grads()
			if err != nil {
				t.Fatal(err)
			}
			wg, err := graph.Grads()
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range wg {
				ref := w.Tensor.Float64s()
				var worst, scale float64
				for j, v := range gg[i].Tensor.Float32s() {
					worst = max(worst, math.Abs(float64(v)-ref[j]))
					scale = max(scale, math.Abs(ref[j]))
				}
				if gg[i].Name != w.Name || worst > 5e-4*scale || scale == 0 && worst > 0 {
					t.Errorf("%s: max |fused − graph| = %.3g, max |graph| = %.3g", w.Name, worst, scale)
				}
			}
			hits, ok := fused.TopKHits(5)
			want5 := 0
			for step := range T {
				l := fused.Logits(step).Float32s()
				for b, c := range captions {
					if step >= len(c)-1 {
						continue
					}
					row := l[b*cfg.VocabSize : (b+1)*cfg.VocabSize]
					above := 0
					for _, v := range row {
						if v > row[c[step+1]] {
							above++
						}
					}
					if above < 5 {
						want5++
					}
				}
			}
			if !ok || hits != want5 {
				t.Errorf("TopKHits(5) = %d, %v; counted from Logits: %d", hits, ok, want5)
			}
			for step := range T {
				gl, wl := fused.Logits(step).Float32s(), graph.Logits(step).Float64s()
				for j := range gl {
					if b := j / cfg.VocabSize; b >= len(captions) || step >= len(captions[b])-1 {
						continue // not a real step: the fused engine skips it
					}
					if math.Abs(float64(gl[j])-wl[j]) > 1e-4 {
						t.Fatalf("step %d logits differ at %d: %v vs %v", step, j, gl[j], wl[j])
					}
				}
			}
		})
	}
}

// TestFusedStepperMatchesGraph runs the fused stepper and the gorgonia
// step graph (float32 both) side by side for several steps, with a
// reordered state in between as beam search makes: logits, α and states
// agree.
func TestFusedStepperMatchesGraph(t *testing.T) {
	for _, arch := range []string{ArchAttention, ArchShowTell} {
		t.Run(arch, func(t *testing.T) {
			cfg := DecoderConfig{Arch: arch, VocabSize: 300, FeatureDim: 96, GridCells: 49,
				EmbedDim: 64, AttentionDim: 80, HiddenDim: 72, Dropout: 0.5, AlphaC: 1}
			const B = 14
			p, err := NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(5, 6)))
			if err != nil {
				t.Fatal(err)
			}
			fused, err := NewDecoderStepper(p, B)
			if err != nil {
				t.Fatal(err)
			}
			if fused.fused == nil {
				t.Fatal("float32 parameters did not get the fused engine")
			}
			decForceGraph = true
			graph, err := NewDecoderStepper(p, B)
			decForceGraph = false
			if err != nil {
				t.Fatal(err)
			}
			defer graph.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			features, _ := decRandomBatch(cfg, tensor.Float32, B, 1, rng, -1)
			fs, err := fused.Start(features)
			if err != nil {
				t.Fatal(err)
			}
			gs, err := graph.Start(features)
			if err != nil {
				t.Fatal(err)
			}
			near := func(what string, a, b *tensor.Dense) {
				t.Helper()
				x, y := a.Float32s(), b.Float32s()
				if len(x) != len(y) {
					t.Fatalf("%s: %d vs %d values", what, len(x), len(y))
				}
				for i := range x {
					if math.Abs(float64(x[i]-y[i])) > 2e-5*(1+math.Abs(float64(y[i]))) {
						t.Fatalf("%s differs at %d: fused %v, graph %v", what, i, x[i], y[i])
					}
				}
			}
			near("h0", fs.H, gs.H)
			near("c0", fs.C, gs.C)
			if arch == ArchAttention {
				near("cache", fs.Cache, gs.Cache)
			}
			words := make([]int, B)
			for i := range words {
				words[i] = 1
			}
			for step := range 4 {
				fo, err := fused.Step(fs, words)
				if err != nil {
					t.Fatal(err)
				}
				gout, err := graph.Step(gs, words)
				if err != nil {
					t.Fatal(err)
				}
				near("logits", fo.Logits, gout.Logits)
				if arch == ArchAttention {
					near("alpha", fo.Alpha, gout.Alpha)
				}
				near("h", fo.State.H, gout.State.H)
				near("c", fo.State.C, gout.State.C)
				fs, gs = fo.State, gout.State
				for i := range words {
					words[i] = 4 + rng.IntN(cfg.VocabSize-4)
				}
				if step == 1 {
					// Reverse the rows of h and c, as a beam reorder would.
					for _, st := range []*DecoderState{fs, gs} {
						for _, m := range []*tensor.Dense{st.H, st.C} {
							v := m.Float32s()
							H := cfg.HiddenDim
							for i, j := 0, B-1; i < j; i, j = i+1, j-1 {
								for k := range H {
									v[i*H+k], v[j*H+k] = v[j*H+k], v[i*H+k]
								}
							}
						}
					}
				}
			}
			// A second batch through the same stepper, then a step of the
			// first batch's state: the stepper reloads its features.
			other, _ := decRandomBatch(cfg, tensor.Float32, B, 1, rng, -1)
			if _, err := fused.Start(other); err != nil {
				t.Fatal(err)
			}
			fo, err := fused.Step(fs, words)
			if err != nil {
				t.Fatal(err)
			}
			gout, err := graph.Step(gs, words)
			if err != nil {
				t.Fatal(err)
			}
			near("logits after another Start", fo.Logits, gout.Logits)
		})
	}
}

// TestStartBeamsMatchesStart: n images with beams rows each, started by
// StartBeams (shared features) or by Start on the replicated features,
// step to the same logits on both engines.
func TestStartBeamsMatchesStart(t *testing.T) {
	cfg := DecoderConfig{Arch: ArchAttention, VocabSize: 120, FeatureDim: 40, GridCells: 9,
		EmbedDim: 24, AttentionDim: 20, HiddenDim: 28}
	const n, beams = 4, 3
	p, err := NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(8, 9)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 3))
	images, _ := decRandomBatch(cfg, tensor.Float32, n, 1, rng, -1)
	rep := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(n*beams, cfg.GridCells, cfg.FeatureDim))
	size := cfg.GridCells * cfg.FeatureDim
	for r := range n * beams {
		copy(rep.Float32s()[r*size:(r+1)*size], images.Float32s()[r/beams*size:])
	}
	words := make([]int, n*beams)
	for i := range words {
		words[i] = 4 + rng.IntN(cfg.VocabSize-4)
	}
	var ref []float32
	for _, graph := range []bool{false, true} {
		decForceGraph = graph
		s, err := NewDecoderStepper(p, n*beams)
		decForceGraph = false
		if err != nil {
			t.Fatal(err)
		}
		for _, shared := range []bool{false, true} {
			var st *DecoderState
			if shared {
				st, err = s.StartBeams(images, beams)
			} else {
				st, err = s.Start(rep)
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []float32
			for range 2 {
				out, err := s.Step(st, words)
				if err != nil {
					t.Fatal(err)
				}
				st, got = out.State, out.Logits.Float32s()
			}
			if ref == nil {
				ref = got
				continue
			}
			for i := range got {
				if math.Abs(float64(got[i]-ref[i])) > 1e-5 {
					t.Fatalf("graph %v, shared %v: logits differ at %d: %v vs %v", graph, shared, i, got[i], ref[i])
				}
			}
		}
		s.Close()
	}
}
