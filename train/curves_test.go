package train

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteCurves(t *testing.T) {
	epochs := []EpochStats{
		{Epoch: 1, Loss: 4.2, Validated: true, Bleu4: 0.05, CIDEr: 0.1},
		{Epoch: 2, Loss: 3.1, Validated: true, Bleu4: 0.12, CIDEr: 0.4},
		{Epoch: 3, Loss: 2.7, Validated: true, Bleu4: 0.15, CIDEr: 0.5},
	}
	for name, eps := range map[string][]EpochStats{
		"validated":     epochs,
		"one epoch":     epochs[:1],
		"no validation": {{Epoch: 1, Loss: 4}, {Epoch: 2, Loss: 3}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "curves.png")
			if err := WriteCurves(path, eps); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("curves.png does not decode: %v", err)
			}
			if b := img.Bounds(); b.Dx() != CurvesWidth || b.Dy() != CurvesHeight {
				t.Errorf("curves.png is %d×%d, want %d×%d", b.Dx(), b.Dy(), CurvesWidth, CurvesHeight)
			}
		})
	}
	if err := WriteCurves(filepath.Join(t.TempDir(), "c.png"), nil); err == nil {
		t.Error("no epochs: no error")
	}
}
