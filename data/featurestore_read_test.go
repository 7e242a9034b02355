package data

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

// writeFeatureStore writes shards of the given split with image ids
// 100·shard + row and feature value id + 0.25·k for element k.
func writeFeatureStore(t *testing.T, dir string, shards map[string][]int, cells, channels int) {
	t.Helper()
	fdir := filepath.Join(dir, FeaturesDir)
	if err := os.MkdirAll(fdir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := FeaturesManifest{Format: FeaturesFormat, DType: "F16"}
	for split, counts := range shards {
		for s, n := range counts {
			var ids []int64
			var vals []float32
			for r := range n {
				id := int64(100*s + r)
				ids = append(ids, id)
				for k := range cells * channels {
					vals = append(vals, float32(id)+0.25*float32(k))
				}
			}
			name := split + "-0000" + string(rune('0'+s)) + ".safetensors"
			err := tensorfile.WriteSafetensors(filepath.Join(fdir, name), []*tensorfile.Tensor{
				tensorfile.NewF16("features", []int{n, cells, channels}, vals),
				tensorfile.NewI64("image_ids", []int{n}, ids),
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.Shards = append(m.Shards, ShardInfo{File: name, Split: split, Images: n})
		}
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(fdir, "manifest.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFeatures(t *testing.T) {
	dir := t.TempDir()
	writeFeatureStore(t, dir, map[string][]int{"train": {3, 2}, "val": {1}}, 2, 3)
	fs, err := LoadFeatures(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if fs.Len() != 5 || fs.Cells != 2 || fs.Channels != 3 || fs.Size() != 6 {
		t.Fatalf("len %d cells %d channels %d", fs.Len(), fs.Cells, fs.Channels)
	}
	wantIDs := []int64{0, 1, 2, 100, 101}
	for i, id := range fs.IDs() {
		if id != wantIDs[i] {
			t.Fatalf("ids %v, want %v", fs.IDs(), wantIDs)
		}
	}
	dst := make([]float32, 6)
	for _, id := range wantIDs {
		if err := fs.Fill(dst, id); err != nil {
			t.Fatal(err)
		}
		for k, v := range dst {
			// id + 0.25k is exact in F16 for these small values.
			if want := float32(id) + 0.25*float32(k); v != want {
				t.Fatalf("image %d element %d = %v, want %v", id, k, v, want)
			}
		}
	}
	if fs.Has(7) || fs.Fill(dst, 7) == nil {
		t.Error("image 7 is not in the set")
	}
	if fs.Fill(dst[:5], 0) == nil {
		t.Error("no error for a short destination")
	}
	if _, err := LoadFeatures(dir, "test"); err == nil || !strings.Contains(err.Error(), "test") {
		t.Errorf("split without shards: %v", err)
	}
}

func TestLoadFeaturesErrorsNameTheShard(t *testing.T) {
	dir := t.TempDir()
	writeFeatureStore(t, dir, map[string][]int{"train": {2}}, 1, 2)
	shard := filepath.Join(dir, FeaturesDir, "train-00000.safetensors")
	err := tensorfile.WriteSafetensors(shard, []*tensorfile.Tensor{
		tensorfile.NewF32("features", []int{2, 1, 2}, []float32{1, 2, 3, 4}),
		tensorfile.NewI64("image_ids", []int{2}, []int64{0, 1}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadFeatures(dir, "train")
	var bad *badinput.Error
	if !errors.As(err, &bad) || bad.File != shard || !strings.Contains(err.Error(), "F16") {
		t.Fatalf("got %v, want a bad-input error naming %s", err, shard)
	}

	if err := os.Remove(shard); err != nil {
		t.Fatal(err)
	}
	if _, err = LoadFeatures(dir, "train"); err == nil || !strings.Contains(err.Error(), "train-00000.safetensors") {
		t.Fatalf("missing shard: got %v, want an error naming it", err)
	}

	if _, err = LoadFeatures(t.TempDir(), "train"); err == nil || !strings.Contains(err.Error(), "captionctl data features") {
		t.Fatalf("no store: got %v, want advice to run data features", err)
	}
}
