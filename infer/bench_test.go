package infer

import (
	"context"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// BenchmarkCaptionFeatures times beam search (width 3, 20 words: a random
// decoder practically never says <end>) from cached features with the
// issue's "big" decoder (vocabulary 10000, 2048-d features on 14×14, dims
// 512), reporting images/s and ms/image: one image per call (a user
// captioning one photo, decode only) and a batch of images per call
// (throughput; CAPTIONCTL_BENCH_IMAGES images, 64 unless set).
// tools/bench_beam.sh runs it next to PyTorch's beam search on the same
// configuration.
func BenchmarkCaptionFeatures(b *testing.B) {
	c, cfg := benchCaptioner(b, false)
	images := benchImages(b)
	for _, bc := range []struct {
		name          string
		images, batch int
	}{{"one", 1, 1}, {"batch", images, 32}} {
		b.Run(bc.name, func(b *testing.B) {
			feats := randomFeatures(bc.images, cfg.GridCells, cfg.FeatureDim, 7)
			opt := DefaultOptions()
			opt.Beam, opt.MaxLen, opt.Batch = 3, 20, bc.batch
			if _, err := c.CaptionFeatures(context.Background(), feats, bc.images, opt); err != nil {
				b.Fatal(err) // warm-up: compiles the stepper
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.CaptionFeatures(context.Background(), feats, bc.images, opt); err != nil {
					b.Fatal(err)
				}
			}
			per := b.Elapsed().Seconds() / float64(b.N*bc.images)
			b.ReportMetric(1/per, "images/s")
			b.ReportMetric(per*1000, "ms/image")
		})
	}
}

// BenchmarkCaptionImage times captioning one image file end to end, as
// `captionctl caption` does it: decoding the file, preprocessing, a
// random ResNet-101's 14×14 features and beam search (width 3, 20 words)
// with the big decoder. CAPTIONCTL_BENCH_IMAGE names the file (a photo
// from ../shared/data/photos unless set).
func BenchmarkCaptionImage(b *testing.B) {
	path := os.Getenv("CAPTIONCTL_BENCH_IMAGE")
	if path == "" {
		path = "../../shared/data/photos/coral-test-data/grace_hopper.png"
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("no image: %v (set CAPTIONCTL_BENCH_IMAGE)", err)
	}
	c, _ := benchCaptioner(b, true)
	opt := DefaultOptions()
	opt.Beam, opt.MaxLen, opt.Batch = 3, 20, 1
	run := func() {
		img, err := data.DecodeImage(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.CaptionImages(context.Background(), []image.Image{img}, opt); err != nil {
			b.Fatal(err)
		}
	}
	run() // warm-up: builds the encoder and the stepper
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/image")
}

// benchImages is CAPTIONCTL_BENCH_IMAGES, 64 unless set.
func benchImages(b *testing.B) int {
	s := os.Getenv("CAPTIONCTL_BENCH_IMAGES")
	if s == "" {
		return 64
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("CAPTIONCTL_BENCH_IMAGES=%q: want a positive count", s)
	}
	return n
}

// benchCaptioner is a Captioner on the big decoder with random
// weights, with a random ResNet-101 (grid 14) inside when encoder is set.
func benchCaptioner(b *testing.B, encoder bool) (*Captioner, model.DecoderConfig) {
	cfg := model.DecoderConfig{Arch: model.ArchAttention, VocabSize: 10000, FeatureDim: 2048,
		GridCells: 196, EmbedDim: 512, AttentionDim: 512, HiddenDim: 512, Dropout: 0.5, AlphaC: 1}
	p, err := model.NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		b.Fatal(err)
	}
	words := make([]string, cfg.VocabSize-4)
	for i := range words {
		words[i] = fmt.Sprintf("w%04d", i)
	}
	m := &model.ModelFile{Config: cfg, Params: p, Vocab: data.BuildVocab([][]string{words}, 1)}
	if encoder {
		m.Encoder = data.EncoderIdentity{Arch: "resnet101", WeightsSHA256: "random:1", Grid: 14,
			Channels: 2048, Preprocess: data.DefaultPreprocessConfig()}
		if m.EncoderWeights, err = model.EncoderStateDict(m.Encoder, ""); err != nil {
			b.Fatal(err)
		}
	}
	c, err := NewCaptioner(m)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, cfg
}
