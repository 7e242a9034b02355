package model

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

// BenchmarkDecoderTrainStep times one training step (forward + backward,
// dropout on) of the attention decoder, reporting captions/s. "small" is
// the comparison configuration: vocabulary 2000, 512-d features on
// a 7×7 grid, all other dims 256, batch 32, 16 steps; "big" vocabulary
// 10000, 2048-d features on 14×14, dims 512. Caption lengths are random
// (benchLengths), as in tools/bench_decoder.py, which times PyTorch on
// the same configurations: tools/bench_decoder.sh runs both.
func BenchmarkDecoderTrainStep(b *testing.B) {
	configs := []struct {
		name  string
		arch  string
		batch int
		steps int
		dims  int
		feat  int
		grid  int
		vocab int
	}{
		{"small", ArchAttention, 32, 16, 256, 512, 7, 2000},
		{"small-showtell", ArchShowTell, 32, 16, 256, 512, 7, 2000},
		{"big", ArchAttention, 32, 16, 512, 2048, 14, 10000},
	}
	for _, bc := range configs {
		b.Run(fmt.Sprintf("%s/B=%d/T=%d/D=%d", bc.name, bc.batch, bc.steps, bc.dims), func(b *testing.B) {
			cfg := DefaultDecoderConfig()
			cfg.Arch, cfg.VocabSize = bc.arch, bc.vocab
			cfg.FeatureDim, cfg.GridCells = bc.feat, bc.grid*bc.grid
			cfg.EmbedDim, cfg.AttentionDim, cfg.HiddenDim = bc.dims, bc.dims, bc.dims
			rng := rand.New(rand.NewPCG(1, 1))
			p, err := NewDecoderParams(cfg, tensor.Float32, rng)
			if err != nil {
				b.Fatal(err)
			}
			features, captions := decRandomBatch(cfg, tensor.Float32, bc.batch, bc.steps, rng, -1)
			for b, n := range benchLengths(bc.batch, bc.steps) {
				captions[b] = make([]int, n)
				for i := range captions[b] {
					captions[b][i] = 4 + rng.IntN(cfg.VocabSize-4)
				}
			}
			tg, err := NewDecoderTrainGraph(p, bc.batch, bc.steps)
			if err != nil {
				b.Fatal(err)
			}
			defer tg.Close()
			if err := tg.SetBatch(features, captions); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				tg.SetDropout(rng)
				if _, err := tg.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(bc.batch*b.N)/b.Elapsed().Seconds(), "captions/s")
		})
	}
}

// benchLengths are the benchmark's caption lengths in tokens, shared with
// tools/bench_decoder.py: T+1 for caption 0, 2 + (7b mod T) for caption b.
func benchLengths(batch, steps int) []int {
	out := make([]int, batch)
	for b := range out {
		out[b] = 2 + (7*b)%steps
	}
	out[0] = steps + 1
	return out
}

// BenchmarkDecoderStep times one inference step of the attention decoder
// at the small configuration (beam search's inner loop).
func BenchmarkDecoderStep(b *testing.B) {
	cfg := DefaultDecoderConfig()
	cfg.VocabSize, cfg.EmbedDim, cfg.AttentionDim, cfg.HiddenDim = 2000, 256, 256, 256
	const batch = 32
	rng := rand.New(rand.NewPCG(1, 1))
	p, err := NewDecoderParams(cfg, tensor.Float32, rng)
	if err != nil {
		b.Fatal(err)
	}
	features, _ := decRandomBatch(cfg, tensor.Float32, batch, 1, rng, -1)
	s, err := NewDecoderStepper(p, batch)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	state, err := s.Start(features)
	if err != nil {
		b.Fatal(err)
	}
	words := make([]int, batch)
	for i := range words {
		words[i] = 1
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Step(state, words); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
}
