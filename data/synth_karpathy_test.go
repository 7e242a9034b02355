package data

import (
	"fmt"
	"os"
	"testing"
)

// TestSynthReadsAsKarpathy checks that the reader for Karpathy's files
// takes dataset.json as it is.
func TestSynthReadsAsKarpathy(t *testing.T) {
	res := synthRun(t, SynthConfig{Out: t.TempDir(), Images: 20, Seed: 1, Size: 32})
	data, err := os.ReadFile(res.Dataset)
	if err != nil {
		t.Fatal(err)
	}
	images, err := ParseKarpathy(res.Dataset, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != 20 {
		t.Fatalf("%d images, want 20", len(images))
	}
	for i, im := range images {
		if im.id != int64(i) || im.file != fmt.Sprintf("images/%06d.png", i) || len(im.captions) != 5 {
			t.Errorf("image %d: id %d, file %q, %d captions", i, im.id, im.file, len(im.captions))
		}
	}
}
