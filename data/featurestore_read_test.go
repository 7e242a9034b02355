package data

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// TestOpenFeaturesMatchesLoad checks that streamed rows equal loaded ones,
// bit for bit, on a store with non-trivial values (an F16 round trip of
// random numbers) in three shards.
func TestOpenFeaturesMatchesLoad(t *testing.T) {
	dir := t.TempDir()
	writeFeatureStore(t, dir, map[string][]int{"train": {4, 1, 3}, "val": {2}}, 3, 5)
	loaded, err := LoadFeatures(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	opened, err := OpenFeatures(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	if opened.Len() != loaded.Len() || opened.Cells != loaded.Cells || opened.Channels != loaded.Channels ||
		!slices.Equal(opened.IDs(), loaded.IDs()) {
		t.Fatalf("opened %d ids %v [%d, %d], loaded %d ids %v [%d, %d]", opened.Len(), opened.IDs(), opened.Cells, opened.Channels,
			loaded.Len(), loaded.IDs(), loaded.Cells, loaded.Channels)
	}
	want, got := make([]float32, loaded.Size()), make([]float32, opened.Size())
	for _, id := range loaded.IDs() {
		if err := loaded.Fill(want, id); err != nil {
			t.Fatal(err)
		}
		if err := opened.Fill(got, id); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("image %d: streamed %v, loaded %v", id, got, want)
		}
	}
	if opened.Has(7) || opened.Fill(got, 7) == nil || opened.Fill(got[:3], 0) == nil {
		t.Error("opened set: no error for a missing image or a short destination")
	}
	// Filling allocates nothing once warm: memory does not grow with use.
	if a := testing.AllocsPerRun(100, func() { opened.Fill(got, 201) }); a > 0.1 {
		t.Errorf("Fill allocates %v times per call", a)
	}
	if err := opened.Close(); err != nil {
		t.Fatal(err)
	}
	if opened.Fill(got, 0) == nil {
		t.Error("Fill after Close gave no error")
	}
	if err := loaded.Close(); err != nil {
		t.Errorf("Close of a loaded set: %v", err)
	}
}

// TestOpenFeaturesHoldsNoFeatures opens a store of 2 MB of features and
// checks that opening allocates a small fraction of that.
func TestOpenFeaturesHoldsNoFeatures(t *testing.T) {
	dir := t.TempDir()
	writeFeatureStore(t, dir, map[string][]int{"train": {50, 50}}, 49, 200) // 100·49·200·2 B ≈ 2 MB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fs, err := OpenFeatures(dir, "train")
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if n := after.TotalAlloc - before.TotalAlloc; n > 200<<10 {
		t.Errorf("OpenFeatures allocated %d bytes for 2 MB of features", n)
	}
}

// TestOpenFeaturesErrors checks that damaged shards are refused naming
// the shard, as LoadFeatures refuses them.
func TestOpenFeaturesErrors(t *testing.T) {
	dir := t.TempDir()
	writeFeatureStore(t, dir, map[string][]int{"train": {2}}, 1, 2)
	shard := filepath.Join(dir, FeaturesDir, "train-00000.safetensors")
	whole, err := os.ReadFile(shard)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func() error{
		"truncated": func() error { return os.WriteFile(shard, whole[:len(whole)-3], 0o644) },
		"no header": func() error { return os.WriteFile(shard, whole[:5], 0o644) },
		"F32": func() error {
			return tensorfile.WriteSafetensors(shard, []*tensorfile.Tensor{
				tensorfile.NewF32("features", []int{2, 1, 2}, []float32{1, 2, 3, 4}),
				tensorfile.NewI64("image_ids", []int{2}, []int64{0, 1}),
			}, nil)
		},
		"no ids": func() error {
			return tensorfile.WriteSafetensors(shard, []*tensorfile.Tensor{
				tensorfile.NewF16("features", []int{2, 1, 2}, []float32{1, 2, 3, 4}),
			}, nil)
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			if err := damage(); err != nil {
				t.Fatal(err)
			}
			_, err := OpenFeatures(dir, "train")
			var bad *badinput.Error
			if !errors.As(err, &bad) || bad.File != shard {
				t.Errorf("got %v, want a bad-input error naming %s", err, shard)
			}
		})
	}
}
