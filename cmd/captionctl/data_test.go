package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestDataSynthPrepare runs the README's data commands in-process: synth,
// then prepare on its output, and checks the prepared directory's files.
func TestDataSynthPrepare(t *testing.T) {
	dir := t.TempDir()
	synth, prepared := filepath.Join(dir, "S"), filepath.Join(dir, "P")
	code, stdout, stderr := runApp(t, "data", "synth", "--out", synth, "--images", "40", "--size", "64")
	if code != 0 || !regexp.MustCompile(`wrote .*dataset\.json: 40 images \(32 train, 4 val, 4 test\), 200 captions`).MatchString(stdout) {
		t.Fatalf("synth: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runApp(t, "data", "prepare", "--karpathy", filepath.Join(synth, "dataset.json"), "--images", synth, "--out", prepared, "--check-images", "--min-word-freq", "2")
	if code != 0 || !regexp.MustCompile(`(?s)train +32 images +160 captions.*val +4 images.*vocabulary \d+ tokens`).MatchString(stdout) {
		t.Fatalf("prepare: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, f := range []string{"vocab.json", "train.jsonl", "val.jsonl", "test.jsonl", "refs_train.json", "refs_val.json", "refs_test.json", "manifest.json"} {
		if _, err := os.Stat(filepath.Join(prepared, f)); err != nil {
			t.Errorf("prepared dataset lacks %s", f)
		}
	}
	// The references score with eval: the val references against themselves.
	var refs struct {
		Annotations []struct {
			ImageID int64  `json:"image_id"`
			Caption string `json:"caption"`
		} `json:"annotations"`
	}
	b, _ := os.ReadFile(filepath.Join(prepared, "refs_val.json"))
	if err := json.Unmarshal(b, &refs); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	var results []map[string]any
	for _, a := range refs.Annotations {
		if !seen[a.ImageID] {
			seen[a.ImageID] = true
			results = append(results, map[string]any{"image_id": a.ImageID, "caption": a.Caption})
		}
	}
	res, _ := json.Marshal(results)
	resPath := filepath.Join(dir, "res.json")
	os.WriteFile(resPath, res, 0o644)
	code, stdout, stderr = runApp(t, "eval", "--refs", filepath.Join(prepared, "refs_val.json"), "--results", resPath, "--metrics", "bleu,cider")
	if code != 0 || !regexp.MustCompile(`Bleu_1 +1\.000000`).MatchString(stdout) {
		t.Errorf("eval on prepared references: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestDataCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "captions_val2017.json", `{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "image_id": 1, "caption": "x"}`)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"synth without out", []string{"data", "synth"}, 2, `--out must name`},
		{"synth too few images", []string{"data", "synth", "--out", dir, "--images", "3"}, 2, `--images must be ≥ 10, got 3`},
		{"prepare without input", []string{"data", "prepare", "--images", dir, "--out", dir}, 2, `--coco-captions FILE`},
		{"prepare both inputs", []string{"data", "prepare", "--karpathy", "k.json", "--coco-captions", "c.json", "--images", dir, "--out", dir}, 2, `cannot be combined`},
		{"prepare bad min freq", []string{"data", "prepare", "--karpathy", "k.json", "--images", dir, "--out", dir, "--min-word-freq", "0"}, 2, `--min-word-freq must be ≥ 1, got 0`},
		{"unknown data command", []string{"data", "shuffle"}, 2, `unknown data command "shuffle"`},
		{"truncated annotations", []string{"data", "prepare", "--coco-captions", bad, "--images", dir, "--out", filepath.Join(dir, "out")}, 3, `captions_val2017\.json:1:\d+: malformed JSON`},
		{"missing karpathy file", []string{"data", "prepare", "--karpathy", filepath.Join(dir, "nope.json"), "--images", dir, "--out", filepath.Join(dir, "out")}, 3, `nope\.json: cannot read`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runApp(t, tc.args...)
			if code != tc.code || !regexp.MustCompile(tc.stderr).MatchString(stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.stderr)
			}
		})
	}
}
