package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/eval"
)

// trainTinyModel prepares a 30-image synthetic dataset (24 train, 3 val,
// 3 test) with cached features and trains a tiny model on it for two
// steps; it returns the dataset and the model file.
func trainTinyModel(t *testing.T) (prepared, modelPath string) {
	t.Helper()
	prepared = prepareSynth(t, 30)
	if code, out, errOut := runApp(t, featureArgs(prepared)...); code != 0 {
		t.Fatalf("features: exit %d: %s%s", code, out, errOut)
	}
	run := filepath.Join(t.TempDir(), "run")
	if code, out, errOut := runApp(t, "train", "--data", prepared, "--out", run, "--embed-dim", "16", "--attention-dim", "16",
		"--hidden-dim", "16", "--epochs", "1", "--batch", "8", "--max-steps", "2", "--seed", "1", "-q"); code != 0 {
		t.Fatalf("train: exit %d: %s%s", code, out, errOut)
	}
	return prepared, filepath.Join(run, "model.safetensors")
}

// splitIDs returns the image ids of a prepared split, in order.
func splitIDs(t *testing.T, prepared, split string) []int64 {
	t.Helper()
	images, err := data.ReadSplit(filepath.Join(prepared, data.SplitFile(split)))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, im := range images {
		ids = append(ids, im.ImageID)
	}
	return ids
}

func resultIDs(results []eval.Result) []int64 {
	var ids []int64
	for _, r := range results {
		ids = append(ids, r.ImageID)
	}
	return ids
}

// TestEvalModel runs `eval --model` end to end on a tiny trained model:
// from the cached features, its results file scored by `eval --refs
// --results` gives the very same JSON; without usable features it
// captions the same images from the image files.
func TestEvalModel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: extracts features and trains a model")
	}
	prepared, modelPath := trainTinyModel(t)
	dir := t.TempDir()
	results := filepath.Join(dir, "results.json")
	perImage := filepath.Join(dir, "per_image.jsonl")
	testIDs := splitIDs(t, prepared, "test")

	code, out, errOut := runApp(t, "eval", "--model", modelPath, "--data", prepared, "--split", "test", "--beam", "3",
		"--max-len", "16", "--out", results, "--per-image", perImage, "--json", "--metrics", "bleu,rouge,cider", "-q")
	if code != 0 {
		t.Fatalf("eval --model: exit %d: %s%s", code, out, errOut)
	}
	var scores map[string]any
	if err := json.Unmarshal([]byte(out), &scores); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, out)
	}
	for _, k := range []string{"Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr", "n_images"} {
		if _, ok := scores[k]; !ok {
			t.Errorf("--json output lacks %q: %s", k, out)
		}
	}
	if n, _ := scores["n_images"].(float64); int(n) != len(testIDs) {
		t.Errorf("n_images %v, the test split has %d images", scores["n_images"], len(testIDs))
	}
	got, err := eval.ReadResults(results)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resultIDs(got), testIDs) {
		t.Errorf("results for images %v, want the test split's %v", resultIDs(got), testIDs)
	}
	for _, r := range got {
		if strings.TrimSpace(r.Caption) != r.Caption || strings.Contains(r.Caption, "<") {
			t.Errorf("caption %q has special tokens or stray spaces", r.Caption)
		}
	}
	if raw, err := os.ReadFile(perImage); err != nil {
		t.Error(err)
	} else if n := strings.Count(string(raw), "\n"); n != len(testIDs) {
		t.Errorf("--per-image has %d lines, want %d", n, len(testIDs))
	}

	// The same results scored by the --refs/--results mode: same output.
	code, out2, errOut := runApp(t, "eval", "--refs", filepath.Join(prepared, "refs_test.json"), "--results", results,
		"--json", "--metrics", "bleu,rouge,cider")
	if code != 0 || out2 != out {
		t.Errorf("eval --refs --results on eval --model's results: exit %d, output %q, want %q (%s)", code, out2, out, errOut)
	}

	// The table, without --out.
	code, out, errOut = runApp(t, "eval", "--model", modelPath, "--data", prepared, "--metrics", "bleu,cider", "-q")
	if code != 0 || !regexp.MustCompile(`(?s)^3 images; scores on a 0-1 scale, CIDEr-D on 0-10\nBleu_1 +\d\.\d{6}.*CIDEr +\d\.\d{6}\s*$`).MatchString(out) {
		t.Errorf("table: exit %d:\n%s%s", code, out, errOut)
	}

	// Features made by another encoder are not used: the images are
	// captioned from the files with the model's own encoder.
	manifestPath := filepath.Join(prepared, data.FeaturesDir, "manifest.json")
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var fm data.FeaturesManifest
	if err := json.Unmarshal(raw, &fm); err != nil {
		t.Fatal(err)
	}
	fm.Identity.WeightsSHA256 = "random:999"
	if raw, err = json.Marshal(fm); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifestPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	fromImages := filepath.Join(dir, "from_images.json")
	code, out, errOut = runApp(t, "eval", "--model", modelPath, "--data", prepared, "--beam", "3", "--max-len", "16",
		"--out", fromImages, "--json", "--metrics", "bleu", "-q")
	if code != 0 {
		t.Fatalf("eval --model from images: exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "another encoder") || !strings.Contains(errOut, "from the image files") {
		t.Errorf("stderr does not say why the images are captioned from the files: %s", errOut)
	}
	got2, err := eval.ReadResults(fromImages)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resultIDs(got2), testIDs) {
		t.Errorf("results from images for %v, want %v", resultIDs(got2), testIDs)
	}
	// The stored features are F16, the encoder's float32: captions agree
	// unless a near tie tips; report, do not fail.
	for i := range min(len(got), len(got2)) {
		if got[i].Caption != got2[i].Caption {
			t.Logf("image %d: %q from features, %q from the image", got[i].ImageID, got[i].Caption, got2[i].Caption)
		}
	}

	// No readable image under --images: bad input, each image named.
	code, out, errOut = runApp(t, "eval", "--model", modelPath, "--data", prepared, "--images", t.TempDir(), "-q")
	if code != exitBadInput || out != "" || strings.Count(errOut, "left out") != len(testIDs) || !strings.Contains(errOut, "none of the 3 images") {
		t.Errorf("--images without the images: exit %d (want %d), stdout %q, stderr %s", code, exitBadInput, out, errOut)
	}

	// Interrupted: exit 130 and no results file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	interrupted := filepath.Join(dir, "interrupted.json")
	var stdout, stderr bytes.Buffer
	code = run(ctx, []string{"captionctl", "eval", "--model", modelPath, "--data", prepared, "--out", interrupted, "-q"}, &stdout, &stderr)
	if _, err := os.Stat(interrupted); code != exitInterrupted || !os.IsNotExist(err) {
		t.Errorf("interrupted: exit %d (want %d), --out file: %v; %s%s", code, exitInterrupted, err, stdout.String(), stderr.String())
	}
}

// TestEvalModelErrors: usage errors (exit 2) and bad input (exit 3, the
// file named) of `eval --model`, without a trained model: every case
// fails before one would be read, or on a file that is not a model.
func TestEvalModelErrors(t *testing.T) {
	dir := t.TempDir()
	notModel := writeFile(t, dir, "model.safetensors", "not a model")
	empty := t.TempDir()
	onlyRefs := t.TempDir()
	writeFile(t, onlyRefs, "refs_test.json", `{"annotations": [{"image_id": 1, "caption": "a red square"}]}`)
	withSplit := t.TempDir()
	writeFile(t, withSplit, "refs_test.json", `{"annotations": [{"image_id": 1, "caption": "a red square"}]}`)
	writeFile(t, withSplit, "test.jsonl", `{"image_id": 1, "file": "a.png", "captions": ["a red square"], "tokens": [["a", "red", "square"]]}`+"\n")
	refs := writeFile(t, dir, "refs.json", `{"annotations": [{"image_id": 1, "caption": "a"}]}`)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"model and refs", []string{"--model", notModel, "--data", empty, "--refs", refs}, 2, `not both`},
		{"model and results", []string{"--model", notModel, "--results", refs}, 2, `not both`},
		{"model without data", []string{"--model", notModel}, 2, `--model needs --data`},
		{"data without model", []string{"--data", empty}, 2, `--data is given without --model`},
		{"out without model", []string{"--refs", refs, "--results", refs, "--out", "x.json"}, 2, `--out applies to eval --model only`},
		{"beam without model", []string{"--refs", refs, "--results", refs, "--beam", "5"}, 2, `--beam applies to eval --model only`},
		{"bad beam", []string{"--model", notModel, "--data", empty, "--beam", "0"}, 2, `--beam must be between 1 and`},
		{"bad max-len", []string{"--model", notModel, "--data", empty, "--max-len", "0"}, 2, `--max-len must be`},
		{"bad batch", []string{"--model", notModel, "--data", empty, "--batch", "0"}, 2, `--batch must be`},
		{"bad split", []string{"--model", notModel, "--data", empty, "--split", "dev"}, 2, `--split must be one of train, val, test, got "dev"`},
		{"arguments", []string{"--model", notModel, "--data", empty, "extra"}, 2, `takes no arguments`},
		{"no refs for the split", []string{"--model", notModel, "--data", empty}, 3, regexp.QuoteMeta(filepath.Join(empty, "refs_test.json")) + `: cannot read`},
		{"no split file", []string{"--model", notModel, "--data", onlyRefs}, 3, regexp.QuoteMeta(filepath.Join(onlyRefs, "test.jsonl")) + `: cannot read`},
		{"not a model", []string{"--model", notModel, "--data", withSplit}, 3, regexp.QuoteMeta(notModel)},
		{"missing model", []string{"--model", filepath.Join(dir, "nope.safetensors"), "--data", withSplit}, 3, `nope\.safetensors: cannot read model file`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runApp(t, append([]string{"eval"}, tc.args...)...)
			if code != tc.code || stdout != "" || !regexp.MustCompile(tc.stderr).MatchString(stderr) {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tc.code, stdout, stderr, tc.stderr)
			}
		})
	}
}
