package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// demoCIDEr returns the CIDEr-D column of the demo's score table row
// whose model name starts with name.
func demoCIDEr(t *testing.T, out, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		// model words…, BLEU-4, METEOR, CIDEr-D, epochs, training
		if len(f) < 6 {
			break
		}
		v, err := strconv.ParseFloat(f[len(f)-3], 64)
		if err != nil {
			t.Fatalf("score row %q: %v", line, err)
		}
		return v
	}
	t.Fatalf("no score row for %q in:\n%s", name, out)
	return 0
}

// TestDemo runs `captionctl demo` at a reduced size (the default takes
// about eight minutes) and checks what it prints and writes. At this size
// (a few hundred batches per decoder) the attention model does not beat the blind
// baseline yet — that takes a few thousand batches, as the default demo
// and TestLearning's full size in internal/pipeline show — so only sane
// scores are asserted.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the whole pipeline")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	code, out, errOut := runApp(t, "demo", "--dir", dir, "--images", demoTestImages, "--image-size", "112",
		"--time-limit", "2m", "--epochs", demoTestEpochs, "--dim", "64", "-q")
	if code != 0 {
		t.Fatalf("demo: exit %d: %s%s", code, out, errOut)
	}
	t.Logf("demo output:\n%s", out)
	if errOut != "" {
		t.Errorf("demo -q wrote to stderr: %s", errOut)
	}
	for _, name := range []string{"attention", "blind"} {
		if c := demoCIDEr(t, out, name); !(c > 0.1 && c < 10) {
			t.Errorf("%s: CIDEr-D %.3f", name, c)
		}
	}
	if !strings.Contains(out, "× the blind baseline's") {
		t.Errorf("the summary does not compare the attention model with the blind baseline:\n%s", out)
	}
	for _, path := range []string{
		"attention/model.safetensors", "attention/curves.png", "attention/test_results.json",
		"blind/model.safetensors", "blind/test_results.json", "data/features/manifest.json",
	} {
		if _, err := os.Stat(filepath.Join(dir, path)); err != nil {
			t.Error(err)
		}
		if !strings.Contains(out, filepath.Join(dir, path)) && !strings.HasSuffix(path, "manifest.json") {
			t.Errorf("the summary does not name %s", path)
		}
	}
	sheets, _ := filepath.Glob(filepath.Join(dir, "examples", "*_attention.png"))
	if len(sheets) != 3 {
		t.Errorf("%d attention sheets, want 3: %v", len(sheets), sheets)
	}
	for _, s := range sheets {
		if !strings.Contains(out, s) {
			t.Errorf("the summary does not name %s", s)
		}
	}

	// The attention model file is self-contained: caption an image with it.
	image := filepath.Join(dir, "synth", "images", "000000.png")
	if code, capOut, errOut := runApp(t, "caption", "--model", filepath.Join(dir, "attention", "model.safetensors"), image); code != 0 || !strings.HasPrefix(capOut, image+"\t") {
		t.Errorf("caption with the demo's model: exit %d: %s%s", code, capOut, errOut)
	}
	// A second demo into the same directory is refused.
	if code, _, errOut := runApp(t, "demo", "--dir", dir, "--images", "30", "-q"); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Errorf("demo into a used directory: exit %d: %s", code, errOut)
	}
}

func TestDemoUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"few images":      {"demo", "--dir", dir, "--images", "5"},
		"zero time limit": {"demo", "--dir", dir, "--time-limit", "0s"},
		"zero dim":        {"demo", "--dir", dir, "--dim", "0"},
		"argument":        {"demo", "--dir", dir, "extra"},
		"no dir":          {"demo", "--dir", ""},
	} {
		t.Run(name, func(t *testing.T) {
			if code, out, errOut := runApp(t, args...); code != exitUsage {
				t.Errorf("exit %d, want %d: %s%s", code, exitUsage, out, errOut)
			}
		})
	}
}

// The reduced demo of TestDemo: 300 images of 112 pixels, decoders of 64,
// 6 epochs (228 batches) each; TestLearning in internal/pipeline runs a
// larger reduced size.
const (
	demoTestImages = "300"
	demoTestEpochs = "6"
)
