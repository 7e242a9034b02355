package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/progress"
)

// writeSynthDataset writes a tiny prepared dataset with a feature store
// into a temporary directory: n images of 4 classes; an image's features
// carry its class (channels 8k..8k+7 raised, plus noise) and its captions
// name the class's colour and shape, so a decoder that reads the features
// can predict them and a blind one cannot.
func writeSynthDataset(t testing.TB, n, cells, channels int) string {
	return writeSynthDatasetScaled(t, n, cells, channels, 1)
}

// writeSynthDatasetScaled multiplies every feature by scale: 0 makes a
// blind dataset whose captions cannot be read from the features.
func writeSynthDatasetScaled(t testing.TB, n, cells, channels int, scale float32) string {
	t.Helper()
	dir := t.TempDir()
	colors := []string{"red", "green", "blue", "yellow"}
	shapes := []string{"circle", "square", "triangle", "star"}
	rng := rand.New(rand.NewPCG(3, 4))
	var images []data.Image
	var all [][]string
	feats := make([]float32, 0, n*cells*channels)
	ids := make([]int64, 0, n)
	for i := range n {
		k := i % 4
		caps := [][]string{
			{"a", colors[k], shapes[k]},
			{"the", colors[k], shapes[k], "on", "grey"},
			{colors[k], shapes[k]},
		}
		im := data.Image{ImageID: int64(1000 + i), File: fmt.Sprintf("%d.jpg", i)}
		for _, c := range caps {
			im.Captions = append(im.Captions, strings.Join(c, " "))
			im.Tokens = append(im.Tokens, c)
			all = append(all, c)
		}
		images = append(images, im)
		ids = append(ids, im.ImageID)
		for range cells {
			for c := range channels {
				v := float32(rng.NormFloat64() * 0.1)
				if c*4/channels == k {
					v += 1
				}
				feats = append(feats, scale*v)
			}
		}
	}
	if err := data.WriteVocab(filepath.Join(dir, "vocab.json"), data.BuildVocab(all, 1)); err != nil {
		t.Fatal(err)
	}
	var lines []byte
	for _, im := range images {
		b, err := json.Marshal(im)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, data.SplitFile("train")), lines, 0o644); err != nil {
		t.Fatal(err)
	}
	fdir := filepath.Join(dir, data.FeaturesDir)
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Two shards, to exercise the reader's shard index.
	half := n / 2
	m := data.FeaturesManifest{Format: data.FeaturesFormat, DType: "F16"}
	for s, r := range [][2]int{{0, half}, {half, n}} {
		name := fmt.Sprintf("train-%05d.safetensors", s)
		sz := cells * channels
		err := tensorfile.WriteSafetensors(filepath.Join(fdir, name), []*tensorfile.Tensor{
			tensorfile.NewF16("features", []int{r[1] - r[0], cells, channels}, feats[r[0]*sz:r[1]*sz]),
			tensorfile.NewI64("image_ids", []int{r[1] - r[0]}, ids[r[0]:r[1]]),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Shards = append(m.Shards, data.ShardInfo{File: name, Split: "train", Images: r[1] - r[0]})
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fdir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func tinyConfig() Config {
	c := DefaultConfig()
	c.EmbedDim, c.AttentionDim, c.HiddenDim = 32, 32, 32
	c.Batch = 8
	c.LR = 5e-3
	c.Dropout = 0.1
	c.PoolBatches = 4
	return c
}

func TestTrainLossFalls(t *testing.T) {
	dir := writeSynthDataset(t, 40, 4, 32)
	cfg := tinyConfig()
	cfg.Epochs = 10
	rep := &epochRecorder{}
	res, err := Train(context.Background(), cfg, dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pairs != 120 || len(res.Epochs) != cfg.Epochs || res.Steps != cfg.Epochs*15 {
		t.Fatalf("pairs %d, epochs %d, steps %d; want 120, %d, %d", res.Pairs, len(res.Epochs), res.Steps, cfg.Epochs, cfg.Epochs*15)
	}
	for _, e := range res.Epochs {
		t.Logf("epoch %d: loss %.4f, %d batches, %d captions, %.2fs", e.Epoch, e.Loss, e.Batches, e.Captions, e.Seconds)
		if e.Captions != 120 {
			t.Errorf("epoch %d saw %d captions, want 120", e.Epoch, e.Captions)
		}
	}
	first, last := res.Epochs[0].Loss, res.Epochs[len(res.Epochs)-1].Loss
	if !(last < 0.7*first) {
		t.Errorf("final epoch loss %.4f is not below 0.7 × the first (%.4f)", last, first)
	}
	if len(rep.epochs) != cfg.Epochs || rep.epochs[0] != res.Epochs[0] {
		t.Errorf("EpochReporter got %v, want %v", rep.epochs, res.Epochs)
	}

	// The same decoder on all-zero features can learn only the caption
	// prior (which of 4 colours and shapes is a guess): its loss must stay
	// clearly above the sighted model's.
	blind, err := Train(context.Background(), cfg, writeSynthDatasetScaled(t, 40, 4, 32, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	blindLast := blind.Epochs[len(blind.Epochs)-1].Loss
	t.Logf("blind final loss %.4f, sighted %.4f", blindLast, last)
	if !(last < blindLast-0.15) {
		t.Errorf("sighted loss %.4f is not clearly below the blind loss %.4f", last, blindLast)
	}
}

type epochRecorder struct {
	progress.Silent
	epochs []EpochStats
}

func (r *epochRecorder) Epoch(s EpochStats) { r.epochs = append(r.epochs, s) }

func TestTrainDeterministic(t *testing.T) {
	dir := writeSynthDataset(t, 16, 4, 16)
	cfg := tinyConfig()
	cfg.Epochs = 3
	cfg.MaxSteps = 5
	run := func() ([]float64, []float32) {
		res, err := Train(context.Background(), cfg, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps != 5 {
			t.Fatalf("ran %d steps, want MaxSteps 5", res.Steps)
		}
		var losses []float64
		for _, e := range res.Epochs {
			losses = append(losses, e.Loss)
		}
		return losses, slices.Clone(res.Params.Output.Float32s())
	}
	l1, w1 := run()
	l2, w2 := run()
	if !slices.Equal(l1, l2) || !slices.Equal(w1, w2) {
		t.Fatalf("same seed, different runs: losses %v vs %v", l1, l2)
	}
	cfg.Seed = 2
	l3, _ := run()
	if slices.Equal(l1, l3) {
		t.Errorf("seeds 1 and 2 gave the same losses %v", l1)
	}
}

func TestTrainNonFiniteLoss(t *testing.T) {
	dir := writeSynthDataset(t, 8, 2, 8)
	cfg := tinyConfig()
	cfg.Epochs = 1
	cfg.LR = math.MaxFloat64 // the first update overflows the weights
	cfg.GradClip = 0
	_, err := Train(context.Background(), cfg, dir, nil)
	var nf ErrNonFiniteLoss
	if !errors.As(err, &nf) || nf.Step != 2 {
		t.Fatalf("got %v, want ErrNonFiniteLoss at step 2", err)
	}
}

func TestTrainCancelled(t *testing.T) {
	dir := writeSynthDataset(t, 8, 2, 8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, tinyConfig(), dir, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestTopKCount checks the top-5 hits on hand-made logits: a target
// counts when fewer than 5 logits exceed its own (ties with the fifth
// largest count), and only rows with a target at step t are scored.
func TestTopKCount(t *testing.T) {
	const V = 7
	logits := []float32{
		7, 6, 5, 4, 3, 2, 1, // row 0: target 4 (value 3) is 5th: hit
		7, 6, 5, 4, 3, 2, 1, // row 1: target 5 (value 2) is 6th: miss
		1, 1, 1, 1, 1, 1, 1, // row 2: all tied: hit
		0, 0, 0, 0, 0, 0, 9, // row 3: caption too short for step 1: not scored
	}
	captions := [][]int{{1, 9, 4}, {1, 9, 5}, {1, 9, 6}, {1, 2}}
	if got := topKCount(logits, V, 1, captions); got != 2 {
		t.Errorf("step 1: %d hits, want 2", got)
	}
	// Step 0 predicts the second token: row 0's id 0 is the largest (hit),
	// row 1's id 6 the smallest (miss), row 2 ties (hit), row 3's id 6 the
	// largest (hit).
	captions = [][]int{{1, 0}, {1, 6}, {1, 3}, {1, 6}}
	if got := topKCount(logits, V, 0, captions); got != 3 {
		t.Errorf("step 0: %d hits, want 3", got)
	}
}
