package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/model"
)

// chwEncoder tells the feature store that model.Encoder takes NCHW input.
type chwEncoder struct{ *model.Encoder }

func (chwEncoder) InputLayout() data.TensorLayout { return data.CHW }

func dataFeaturesCommand() *cli.Command {
	def := model.DefaultEncoderConfig()
	return &cli.Command{
		Name:  "features",
		Usage: "encode every image of a prepared dataset once with a frozen ResNet and store the features",
		UsageText: "captionctl data features --data DIR --encoder resnet{18,34,50,101,152} --weights FILE|random [options]\n\n" +
			"   captionctl data features --data P --encoder resnet101 --weights resnet101-63fe2227.pth\n" +
			"   captionctl data features --data P --encoder resnet18 --weights random --grid 7   # offline demo",
		Description: "Runs torchvision's ResNet (batch norm folded into the convolutions) on every image of the chosen\n" +
			"splits, after torchvision's evaluation preprocessing (resize the shorter side to image-size*256/224\n" +
			"with PIL's antialiased bilinear filter, centre crop, ImageNet normalisation), pools the last stage\n" +
			"to grid x grid and writes F16 safetensors shards to DIR/features/ with a manifest.\n\n" +
			"--weights takes torchvision's published .pth files as downloaded, or .safetensors with the same\n" +
			"tensor names; 'random' gives a seeded torchvision-style initialisation for offline demos, recorded\n" +
			"as not pretrained. A shard is written only when complete: an interrupted run resumes where it\n" +
			"stopped, verifying the shards that exist. --shard i/n lets n machines share the work; a run\n" +
			"without --shard finishes whatever is left. A bad image is skipped and recorded unless --strict.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "prepared dataset `DIR` (from 'captionctl data prepare')", Category: "Input"},
			&cli.StringFlag{Name: "images", Usage: "images root `DIR` (default: the one the dataset was prepared from)", Category: "Input"},
			&cli.StringFlag{Name: "encoder", Value: def.Arch, Usage: "`ARCH`: resnet18, resnet34, resnet50, resnet101 or resnet152", Category: "Encoder"},
			&cli.StringFlag{Name: "weights", Usage: "torchvision weights `FILE` (.pth or .safetensors), or 'random'", Category: "Encoder"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "`SEED` of --weights random", Category: "Encoder"},
			&cli.IntFlag{Name: "image-size", Value: def.ImageSize, Usage: "crop side in `PIXELS`", Category: "Encoder"},
			&cli.IntFlag{Name: "grid", Value: def.Grid, Usage: "feature grid side `N`: 7 or 14", Category: "Encoder"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "images per forward pass `N`", Category: "Run"},
			&cli.IntFlag{Name: "workers", Value: 0, Usage: "`N` image decoding goroutines (0: one per core)", Category: "Run"},
			&cli.StringFlag{Name: "splits", Value: "train,val,test", Usage: "comma-separated `LIST` of splits", Category: "Run"},
			&cli.StringFlag{Name: "shard", Usage: "compute only the shards of machine `i/n` (0 ≤ i < n)", Category: "Run"},
			&cli.IntFlag{Name: "shard-images", Usage: "`N` images per shard file (0: about 128 MB of features each)", Category: "Run"},
			&cli.BoolFlag{Name: "strict", Usage: "fail on a bad image instead of skipping and recording it", Category: "Run"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("data features takes no arguments, got %q", c.Args().First())
			}
			encCfg := model.EncoderConfig{Arch: c.String("encoder"), Grid: c.Int("grid"), ImageSize: c.Int("image-size")}
			if err := encCfg.Validate(); err != nil {
				return usageError{err}
			}
			pre := data.DefaultPreprocessConfig()
			pre.ImageSize, pre.ResizeSize = encCfg.ImageSize, 0
			pre.ResizeSize = pre.ShorterSide()
			cfg := data.FeaturesConfig{
				Data: c.String("data"), Images: c.String("images"), Batch: c.Int("batch"), Workers: c.Int("workers"),
				Strict: c.Bool("strict"), ImagesPerShard: c.Int("shard-images"),
				Identity: data.EncoderIdentity{Arch: encCfg.Arch, Grid: encCfg.Grid, Preprocess: pre},
			}
			for _, s := range strings.Split(c.String("splits"), ",") {
				if s = strings.TrimSpace(s); s != "" {
					cfg.Splits = append(cfg.Splits, s)
				}
			}
			if sh := c.String("shard"); sh != "" {
				i, n, ok := strings.Cut(sh, "/")
				var err1, err2 error
				cfg.Shard, err1 = strconv.Atoi(i)
				cfg.Shards, err2 = strconv.Atoi(n)
				if !ok || err1 != nil || err2 != nil || cfg.Shards < 1 {
					return usagef("--shard must be i/n, e.g. 0/4, got %q", sh)
				}
			}
			weights := c.String("weights")
			if weights == "" {
				return usagef("--weights is required: torchvision's .pth file, a .safetensors file, or 'random' for an offline demo")
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			var enc *model.Encoder
			if weights == "random" {
				seed := c.Uint64("seed")
				var err error
				enc, err = model.RandomEncoder(encCfg, rand.New(rand.NewPCG(seed, 0x5eed_e5c0de)))
				if err != nil {
					return err
				}
				cfg.Identity.WeightsSHA256 = fmt.Sprintf("random:seed=%d", seed)
			} else {
				sd, err := tensorfile.Load(weights)
				if err != nil {
					return err
				}
				if enc, err = model.NewEncoder(encCfg, sd); err != nil {
					return fmt.Errorf("%s: %w", weights, err)
				}
				if cfg.Identity.WeightsSHA256, err = data.SHA256File(weights); err != nil {
					return err
				}
				cfg.Identity.Pretrained = true
			}
			cfg.Identity.Channels = enc.Channels()
			res, err := data.ExtractFeatures(c.Context, cfg, chwEncoder{enc}, newReporter(c.App.ErrWriter, c.Bool("quiet")))
			if err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "features in %s: %d shards computed (%d images), %d already complete",
				cfg.Data+"/"+data.FeaturesDir, res.Computed, res.Images, res.Verified)
			if res.Left > 0 {
				fmt.Fprintf(w, ", %d left to the other machines", res.Left)
			}
			fmt.Fprintln(w)
			if len(res.Skipped) > 0 {
				fmt.Fprintf(w, "skipped %d bad images (recorded in the shards and the manifest)\n", len(res.Skipped))
			}
			if res.Manifest != nil {
				fmt.Fprintf(w, "every shard is complete: %s/%s/%s\n", cfg.Data, data.FeaturesDir, data.ManifestFile)
			}
			return nil
		},
	}
}
