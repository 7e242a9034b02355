package data

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

// quadrantEncoder is a stand-in encoder: the mean of each input channel over
// each quadrant of the image (grid 2, 3 channels), from HWC input.
type quadrantEncoder struct {
	size  int
	calls atomic.Int64
	// cancelAfter cancels a context after that many calls, to interrupt a run.
	cancelAfter int64
	cancel      context.CancelFunc
}

func (e *quadrantEncoder) Channels() int             { return 3 }
func (e *quadrantEncoder) Grid() int                 { return 2 }
func (e *quadrantEncoder) InputLayout() TensorLayout { return HWC }

func (e *quadrantEncoder) Forward(input []float32, n int) ([]float32, error) {
	if c := e.calls.Add(1); e.cancel != nil && c >= e.cancelAfter {
		e.cancel()
	}
	s := e.size
	out := make([]float32, n*4*3)
	for i := 0; i < n; i++ {
		img := input[i*s*s*3 : (i+1)*s*s*3]
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				cell := (2*y/s)*2 + 2*x/s
				for c := 0; c < 3; c++ {
					out[(i*4+cell)*3+c] += img[(y*s+x)*3+c] / float32(s*s/4)
				}
			}
		}
	}
	return out, nil
}

// preparedSynth makes a small synthetic dataset and prepares it.
func preparedSynth(t *testing.T, images int) string {
	t.Helper()
	dir := t.TempDir()
	synth := SynthConfig{Out: filepath.Join(dir, "S"), Images: images, Seed: 3, Size: 48}
	if _, err := Synth(context.Background(), synth, nil); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultPrepareConfig()
	cfg.Karpathy, cfg.Images, cfg.Out = filepath.Join(synth.Out, SynthDatasetFile), synth.Out, filepath.Join(dir, "P")
	if _, err := Prepare(context.Background(), cfg, nil); err != nil {
		t.Fatal(err)
	}
	return cfg.Out
}

func featuresConfig(data string, size int) FeaturesConfig {
	pre := DefaultPreprocessConfig()
	pre.ImageSize, pre.ResizeSize = size, size+size/7
	return FeaturesConfig{Data: data, Batch: 3, ImagesPerShard: 4, Identity: EncoderIdentity{
		Arch: "quadrant", WeightsSHA256: "none", Grid: 2, Channels: 3, Preprocess: pre}}
}

func shardFiles(t *testing.T, data string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, _ := os.ReadDir(filepath.Join(data, FeaturesDir))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(data, FeaturesDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func TestExtractFeatures(t *testing.T) {
	data := preparedSynth(t, 20) // 16 train (4 shards), 2 val, 2 test
	cfg := featuresConfig(data, 32)
	enc := &quadrantEncoder{size: 32}
	res, err := ExtractFeatures(context.Background(), cfg, enc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Computed != 6 || res.Verified != 0 || res.Images != 20 || res.Manifest == nil {
		t.Fatalf("result %+v", res)
	}
	// Each shard: F16 features [n, 4, 3] equal to the encoder's output, ids
	// in dataset order.
	train, err := ReadSplit(filepath.Join(data, SplitFile("train")))
	if err != nil {
		t.Fatal(err)
	}
	tensors, _, err := tensorfile.LoadSafetensors(filepath.Join(data, FeaturesDir, "train-00001.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := tensors["image_ids"].Int64()
	for i, id := range ids {
		if id != train[4+i].ImageID {
			t.Fatalf("shard 1 image %d is %d, want %d", i, id, train[4+i].ImageID)
		}
	}
	feats, _ := tensors["features"].Float32()
	if got := tensors["features"].Shape; len(got) != 3 || got[0] != 4 || got[1] != 4 || got[2] != 3 {
		t.Fatalf("features shape %v", got)
	}
	img, err := DecodeImage(filepath.Join(data, "..", "S", train[5].File))
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, cfg.Identity.Preprocess.TensorLen())
	if err := PreprocessInto(in, img, cfg.Identity.Preprocess, HWC); err != nil {
		t.Fatal(err)
	}
	want, _ := (&quadrantEncoder{size: 32}).Forward(in, 1)
	for k, w := range want {
		if g := feats[12+k]; math.Abs(float64(g-w)) > 2e-3*math.Max(1, math.Abs(float64(w))) {
			t.Fatalf("feature %d of image %d: %v, want %v (F16)", k, train[5].ImageID, g, w)
		}
	}

	// A rerun verifies every shard and computes nothing.
	before := shardFiles(t, data)
	res, err = ExtractFeatures(context.Background(), cfg, enc, nil)
	if err != nil || res.Computed != 0 || res.Verified != 6 {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
	// A lost shard is recomputed, byte-identical.
	os.Remove(filepath.Join(data, FeaturesDir, "train-00002.safetensors"))
	res, err = ExtractFeatures(context.Background(), cfg, enc, nil)
	if err != nil || res.Computed != 1 || res.Verified != 5 {
		t.Fatalf("after losing a shard: %+v, %v", res, err)
	}
	after := shardFiles(t, data)
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Errorf("%s differs after recomputing", name)
		}
	}
	// Another encoder's store is refused, naming the shard.
	other := cfg
	other.Identity.WeightsSHA256 = "different"
	if _, err := ExtractFeatures(context.Background(), other, enc, nil); err == nil || !strings.Contains(err.Error(), "made by another encoder") {
		t.Errorf("mixing encoders: %v", err)
	}
}

// An interrupted run leaves only complete shards; the rerun finishes the
// job with the same bytes as an uninterrupted run.
func TestExtractFeaturesInterrupted(t *testing.T) {
	data := preparedSynth(t, 20)
	cfg := featuresConfig(data, 32)
	ctx, cancel := context.WithCancel(context.Background())
	enc := &quadrantEncoder{size: 32, cancelAfter: 4, cancel: cancel}
	if _, err := ExtractFeatures(ctx, cfg, enc, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	partial := shardFiles(t, data)
	for name := range partial {
		if !strings.HasSuffix(name, ".safetensors") || strings.Contains(name, "tmp") {
			t.Errorf("interrupted run left %s", name)
		}
	}
	if len(partial) == 0 || len(partial) >= 6 {
		t.Fatalf("interrupted run left %d shards", len(partial))
	}
	res, err := ExtractFeatures(context.Background(), cfg, &quadrantEncoder{size: 32}, nil)
	if err != nil || res.Verified != len(partial) || res.Computed != 6-len(partial) || res.Manifest == nil {
		t.Fatalf("resume: %+v, %v", res, err)
	}
	fresh := preparedSynth(t, 20)
	if _, err := ExtractFeatures(context.Background(), featuresConfig(fresh, 32), &quadrantEncoder{size: 32}, nil); err != nil {
		t.Fatal(err)
	}
	a, b := shardFiles(t, data), shardFiles(t, fresh)
	for name, want := range b {
		if name == ManifestFile {
			continue
		}
		if !bytes.Equal(a[name], want) {
			t.Errorf("%s differs from an uninterrupted run", name)
		}
	}
}

// --shard i/n: each machine computes its shards; any run without --shard
// completes the rest and writes the manifest.
func TestExtractFeaturesSharded(t *testing.T) {
	data := preparedSynth(t, 20)
	cfg := featuresConfig(data, 32)
	cfg.Shard, cfg.Shards = 1, 2
	res, err := ExtractFeatures(context.Background(), cfg, &quadrantEncoder{size: 32}, nil)
	if err != nil || res.Computed != 3 || res.Left != 3 || res.Manifest != nil {
		t.Fatalf("shard 1/2: %+v, %v", res, err)
	}
	cfg.Shard, cfg.Shards = 0, 0
	res, err = ExtractFeatures(context.Background(), cfg, &quadrantEncoder{size: 32}, nil)
	if err != nil || res.Computed != 3 || res.Verified != 3 || res.Manifest == nil || len(res.Manifest.Shards) != 6 {
		t.Fatalf("finishing run: %+v, %v", res, err)
	}
}

// A bad image is skipped and recorded, or with Strict an error.
func TestExtractFeaturesBadImage(t *testing.T) {
	data := preparedSynth(t, 20)
	val, err := ReadSplit(filepath.Join(data, SplitFile("val")))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(data, "..", "S", val[0].File)
	if err := os.WriteFile(victim, []byte("\x89PNG\r\n\x1a\ntruncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := featuresConfig(data, 32)
	cfg.Splits = []string{"val"}
	cfg.Strict = true
	var bad *badinput.Error
	if _, err := ExtractFeatures(context.Background(), cfg, &quadrantEncoder{size: 32}, nil); !errors.As(err, &bad) {
		t.Fatalf("strict: %v", err)
	}
	cfg.Strict = false
	res, err := ExtractFeatures(context.Background(), cfg, &quadrantEncoder{size: 32}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].ImageID != val[0].ImageID || len(res.Manifest.Skipped) != 1 || res.Images != len(val)-1 {
		t.Fatalf("skipped %+v, result %+v", res.Skipped, res)
	}
	// The skip is part of the shard, so a rerun verifies it.
	res, err = ExtractFeatures(context.Background(), cfg, &quadrantEncoder{size: 32}, nil)
	if err != nil || res.Verified != 1 || len(res.Manifest.Skipped) != 1 {
		t.Fatalf("rerun: %+v, %v", res, err)
	}
}
