package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

// addValSplit adds a val split of n images to a dataset made by
// writeSynthDataset: the same 4 classes, features and captions, other ids.
func addValSplit(t *testing.T, dir string, n, cells, channels int) {
	t.Helper()
	colors := []string{"red", "green", "blue", "yellow"}
	shapes := []string{"circle", "square", "triangle", "star"}
	rng := rand.New(rand.NewPCG(7, 8))
	var lines []byte
	feats := make([]float32, 0, n*cells*channels)
	ids := make([]int64, 0, n)
	for i := range n {
		k := i % 4
		im := data.Image{ImageID: int64(5000 + i), File: fmt.Sprintf("v%d.jpg", i)}
		for _, c := range [][]string{{"a", colors[k], shapes[k]}, {colors[k], shapes[k]}} {
			im.Captions = append(im.Captions, strings.Join(c, " "))
			im.Tokens = append(im.Tokens, c)
		}
		b, err := json.Marshal(im)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(append(lines, b...), '\n')
		ids = append(ids, im.ImageID)
		for range cells {
			for c := range channels {
				v := float32(rng.NormFloat64() * 0.1)
				if c*4/channels == k {
					v += 1
				}
				feats = append(feats, v)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, data.SplitFile("val")), lines, 0o644); err != nil {
		t.Fatal(err)
	}
	fdir := filepath.Join(dir, data.FeaturesDir)
	name := "val-00000.safetensors"
	if err := tensorfile.WriteSafetensors(filepath.Join(fdir, name), []*tensorfile.Tensor{
		tensorfile.NewF16("features", []int{n, cells, channels}, feats),
		tensorfile.NewI64("image_ids", []int{n}, ids),
	}, nil); err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(fdir, "manifest.json")
	raw, err := os.ReadFile(mpath)
	if err != nil {
		t.Fatal(err)
	}
	var m data.FeaturesManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m.Shards = append(m.Shards, data.ShardInfo{File: name, Split: "val", Images: n})
	if raw, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mpath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTrainValidation(t *testing.T) {
	dir := writeSynthDataset(t, 40, 4, 32)
	addValSplit(t, dir, 12, 4, 32)
	cfg := tinyConfig()
	cfg.Epochs = 6
	cfg.ValMaxLen = 10
	rep := &epochRecorder{}
	res, err := Train(context.Background(), cfg, dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	if res.ValNote != "" || res.Best == nil || res.BestParams == nil {
		t.Fatalf("no validation: note %q, best %v", res.ValNote, res.Best)
	}
	best := res.Epochs[0]
	for _, e := range res.Epochs {
		t.Logf("epoch %d: loss %.4f, BLEU-4 %.4f, CIDEr-D %.4f", e.Epoch, e.Loss, e.Bleu4, e.CIDEr)
		if !e.Validated || !(e.Bleu4 >= 0 && e.Bleu4 <= 1) || !(e.CIDEr >= 0 && e.CIDEr <= 10) {
			t.Errorf("epoch %d: validated %v, BLEU-4 %v, CIDEr-D %v", e.Epoch, e.Validated, e.Bleu4, e.CIDEr)
		}
		if e.CIDEr > best.CIDEr {
			best = e
		}
	}
	if *res.Best != (BestEpoch{Epoch: best.Epoch, Bleu4: best.Bleu4, CIDEr: best.CIDEr}) {
		t.Errorf("best %+v, want epoch %d by CIDEr-D", *res.Best, best.Epoch)
	}
	if last := res.Epochs[len(res.Epochs)-1]; !(last.CIDEr > 0.5) {
		t.Errorf("final CIDEr-D %.4f: the decoder did not learn to caption the val images", last.CIDEr)
	}
	if !slices.Equal(rep.epochs, res.Epochs) {
		t.Errorf("EpochReporter got %v, want %v", rep.epochs, res.Epochs)
	}
	// BestParams is a copy, not the live parameters (unless the last epoch
	// was the best, when they are equal).
	if res.BestParams == res.Params || res.BestParams.Output == res.Params.Output {
		t.Error("BestParams shares tensors with Params")
	}
	if best.Epoch == len(res.Epochs) && !slices.Equal(res.BestParams.Output.Float32s(), res.Params.Output.Float32s()) {
		t.Error("the last epoch is the best but BestParams differs from Params")
	}

	// Selecting by BLEU-4 picks the epoch with the highest BLEU-4.
	cfg.SelectBy = SelectBleu4
	res, err = Train(context.Background(), cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	bestB := res.Epochs[0]
	for _, e := range res.Epochs {
		if e.Bleu4 > bestB.Bleu4 {
			bestB = e
		}
	}
	if res.Best == nil || res.Best.Epoch != bestB.Epoch {
		t.Errorf("by BLEU-4: best %+v, want epoch %d", res.Best, bestB.Epoch)
	}
}

func TestTrainNoValidation(t *testing.T) {
	dir := writeSynthDataset(t, 8, 2, 8)
	cfg := tinyConfig()
	cfg.Epochs = 1
	res, err := Train(context.Background(), cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ValNote == "" || res.Best != nil || res.BestParams != nil || res.Epochs[0].Validated {
		t.Errorf("without a val split: note %q, best %v, epoch %+v", res.ValNote, res.Best, res.Epochs[0])
	}
	// A val split without val features is skipped too.
	if err := os.WriteFile(filepath.Join(dir, data.SplitFile("val")), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = Train(context.Background(), cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.ValNote, "val features") || res.Best != nil {
		t.Errorf("without val features: note %q, best %v", res.ValNote, res.Best)
	}
}

func TestConfigSelectBy(t *testing.T) {
	c := DefaultConfig()
	if c.SelectBy != SelectCIDEr || c.ValMaxLen != 50 {
		t.Errorf("defaults: select by %q, val max length %d", c.SelectBy, c.ValMaxLen)
	}
	c.SelectBy = "meteor"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--select-by") {
		t.Errorf("--select-by meteor: %v", err)
	}
	c = DefaultConfig()
	c.ValMaxLen = 0
	if err := c.Validate(); err == nil {
		t.Error("validation max length 0 accepted")
	}
}
