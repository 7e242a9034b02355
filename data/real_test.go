package data

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// sharedCOCO is the real COCO data beside the checkout (../shared/data/coco).
func sharedCOCO(t *testing.T) string {
	dir := filepath.Join("..", "..", "shared", "data", "coco")
	if _, err := os.Stat(filepath.Join(dir, "captions_val2017.json")); err != nil {
		t.Skip("../shared/data/coco not present")
	}
	return dir
}

// TestPrepareRealCOCOVal prepares the complete official val2017 captions
// against the 159 val2017 images that are present locally: the other 4,841
// are skipped and recorded, and the 159 split between val and test in the
// ratio asked for.
func TestPrepareRealCOCOVal(t *testing.T) {
	coco := sharedCOCO(t)
	cfg := DefaultPrepareConfig()
	cfg.COCOCaptions = []string{filepath.Join(coco, "captions_val2017.json")}
	cfg.Images = filepath.Join(coco, "coco-mini")
	cfg.Out = t.TempDir()
	cfg.SkipBadImages, cfg.CheckImages = true, true
	res, err := Prepare(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest

	// Expected counts, computed independently from the annotation file and
	// the files on disk.
	raw, err := os.ReadFile(cfg.COCOCaptions[0])
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Images []struct {
			ID       int64  `json:"id"`
			FileName string `json:"file_name"`
		} `json:"images"`
		Annotations []struct {
			ImageID int64 `json:"image_id"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	present := map[int64]bool{}
	for _, im := range f.Images {
		if _, err := os.Stat(filepath.Join(cfg.Images, "val2017", im.FileName)); err == nil {
			present[im.ID] = true
		}
	}
	captions := 0
	for _, a := range f.Annotations {
		if present[a.ImageID] {
			captions++
		}
	}
	if len(present) != 159 || len(f.Images) != 5000 {
		t.Fatalf("shared data changed: %d images, %d present", len(f.Images), len(present))
	}
	val, test := m.Counts["val"], m.Counts["test"]
	if val.Images != 79 || test.Images != 80 || m.Counts["train"].Images != 0 {
		t.Errorf("split counts %+v, want val 79, test 80 (159 in the ratio 5000:5000), train 0", m.Counts)
	}
	if val.Captions+test.Captions != captions {
		t.Errorf("%d captions kept, want all %d of the present images", val.Captions+test.Captions, captions)
	}
	if m.DroppedImages != 5000-159 || m.DroppedCaptions != 0 {
		t.Errorf("dropped %d images, %d captions; want %d, 0", m.DroppedImages, m.DroppedCaptions, 5000-159)
	}
}

// TestPrepareRealCOCOMini prepares coco-mini's own train and val files: the
// train file's images form train, the val file's are split into val and
// test, and the vocabulary comes from train only.
func TestPrepareRealCOCOMini(t *testing.T) {
	coco := sharedCOCO(t)
	mini := filepath.Join(coco, "coco-mini")
	cfg := DefaultPrepareConfig()
	cfg.COCOCaptions = []string{filepath.Join(mini, "annotations", "captions_train2017.json"), filepath.Join(mini, "annotations", "captions_val2017.json")}
	cfg.Images, cfg.Out, cfg.CheckImages = mini, t.TempDir(), true
	res, err := Prepare(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Manifest.Counts
	if c["train"].Images != 80 || c["train"].Captions != 400 || c["val"].Images != 39 || c["test"].Images != 40 {
		t.Errorf("counts %+v; want train 80 images / 400 captions, val 39, test 40", c)
	}
	if res.Manifest.Vocab.Size < 50 {
		t.Errorf("vocabulary of %d tokens from 400 real captions", res.Manifest.Vocab.Size)
	}
	if len(res.Manifest.Inputs) != 2 || len(res.Manifest.Inputs[0].SHA256) != 64 {
		t.Errorf("inputs %+v", res.Manifest.Inputs)
	}
}
