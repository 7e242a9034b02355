package tensorfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResNet18 checks a real torchvision state dict: resnet18 (random
// init, seed 0) saved by torch 1.13 in both formats must load with every
// key, shape and value equal to the safetensors copy Python wrote. The
// files are 45 MB each, so they are not committed; make them and run with
//
//	/usr/bin/python3 tools/make_tensorfile_fixtures.py --resnet /tmp/tensorfile-resnet18
//	TENSORFILE_RESNET_DIR=/tmp/tensorfile-resnet18 go test ./internal/tensorfile/ -run ResNet18 -v
func TestResNet18(t *testing.T) {
	dir := os.Getenv("TENSORFILE_RESNET_DIR")
	if dir == "" {
		t.Skip("TENSORFILE_RESNET_DIR not set; see the comment on TestResNet18")
	}
	want, meta, err := LoadSafetensors(filepath.Join(dir, "resnet18.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if meta["source"] != "torchvision.models.resnet18()" || len(want) != 122 {
		t.Fatalf("resnet18.safetensors: metadata %v, %d tensors; want torchvision's resnet18 with 122", meta, len(want))
	}
	if w := want["fc.weight"]; w == nil || w.DType != F32 || len(w.Shape) != 2 || w.Shape[0] != 1000 || w.Shape[1] != 512 {
		t.Fatalf("fc.weight = %+v", w)
	}
	for _, name := range []string{"resnet18.pth", "resnet18-legacy.pth"} {
		got, err := Load(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sameTensors(t, name, got, want)
	}
}
