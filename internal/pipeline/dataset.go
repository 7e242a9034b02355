package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/model"
)

// The encoder of the features: torchvision's ResNet-18 with seeded random
// weights (data features --encoder resnet18 --weights random), pooled to a
// 7×7 grid.
const (
	encoderArch = "resnet18"
	encoderGrid = 7
)

// blindWeightsID is the weights identity of the blind baseline's
// features: no encoder made them.
const blindWeightsID = model.BlindWeightsID

func (r *runner) synth(ctx context.Context) error {
	res, err := data.Synth(ctx, data.SynthConfig{Out: r.path("synth"), Images: r.cfg.Images, Seed: r.cfg.Seed, Size: r.cfg.ImageSize}, r.rep)
	r.res.Synth = res
	return err
}

func (r *runner) prepare(ctx context.Context) error {
	cfg := data.DefaultPrepareConfig()
	cfg.Karpathy, cfg.Images, cfg.Out, cfg.Seed = r.res.Synth.Dataset, r.path("synth"), r.path("data"), r.cfg.Seed
	r.res.Data = cfg.Out
	_, err := data.Prepare(ctx, cfg, r.rep)
	return err
}

// chwEncoder tells the feature store that model.Encoder takes NCHW input.
type chwEncoder struct{ *model.Encoder }

func (chwEncoder) InputLayout() data.TensorLayout { return data.CHW }

// featuresConfig is the configuration of both feature stores.
func (r *runner) featuresConfig(dataDir string) data.FeaturesConfig {
	pre := data.DefaultPreprocessConfig()
	pre.ImageSize, pre.ResizeSize = r.cfg.ImageSize, 0
	pre.ResizeSize = pre.ShorterSide()
	return data.FeaturesConfig{
		Data: dataDir, Batch: 16, Strict: true,
		Identity: data.EncoderIdentity{Arch: encoderArch, Grid: encoderGrid, Preprocess: pre},
	}
}

func (r *runner) features(ctx context.Context) error {
	cfg := r.featuresConfig(r.res.Data)
	encCfg := model.EncoderConfig{Arch: encoderArch, Grid: encoderGrid, ImageSize: r.cfg.ImageSize}
	enc, err := model.RandomEncoder(encCfg, model.RandomEncoderRNG(r.cfg.Seed))
	if err != nil {
		return err
	}
	cfg.Identity.WeightsSHA256 = fmt.Sprintf("random:seed=%d", r.cfg.Seed)
	cfg.Identity.Channels = enc.Channels()
	if _, err := data.ExtractFeatures(ctx, cfg, chwEncoder{enc}, r.rep); err != nil {
		return err
	}
	r.identity = cfg.Identity
	r.res.Features = filepath.Join(cfg.Data, data.FeaturesDir, data.ManifestFile)
	return nil
}

// zeroEncoder gives all-zero features of the real encoder's shape.
type zeroEncoder struct{ channels, grid int }

func (z zeroEncoder) Forward(_ []float32, n int) ([]float32, error) {
	return make([]float32, n*z.grid*z.grid*z.channels), nil
}
func (z zeroEncoder) Channels() int                  { return z.channels }
func (z zeroEncoder) Grid() int                      { return z.grid }
func (z zeroEncoder) InputLayout() data.TensorLayout { return data.CHW }

// blindFeatures makes blind-data: the prepared dataset's files (vocabulary,
// splits, references, manifest) with a feature store of zeros, so that
// the same training and evaluation code gives a decoder that never sees
// the images.
func (r *runner) blindFeatures(ctx context.Context) error {
	dir := r.path("blind-data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(r.res.Data)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := copyFile(filepath.Join(dir, e.Name()), filepath.Join(r.res.Data, e.Name())); err != nil {
				return err
			}
		}
	}
	cfg := r.featuresConfig(dir)
	cfg.Identity.WeightsSHA256, cfg.Identity.Channels = blindWeightsID, r.identity.Channels
	if _, err := data.ExtractFeatures(ctx, cfg, zeroEncoder{channels: r.identity.Channels, grid: encoderGrid}, r.rep); err != nil {
		return err
	}
	r.blindData = dir
	return nil
}

// copyFile copies from to to, atomically.
func copyFile(to, from string) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	return atomicfile.Write(to, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}
