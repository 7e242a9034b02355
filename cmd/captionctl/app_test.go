package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/internal/oracle"
)

// runApp runs captionctl in-process and returns its exit code and output.
func runApp(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"captionctl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func oracleFile(name, file string) string {
	return filepath.Join(oracle.Dir(), name, file)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	refs := writeFile(t, dir, "refs.json", `{"images": [{"id": 1}, {"id": 2}, {"id": 3}],
 "annotations": [
  {"image_id": 1, "id": 1, "caption": "A man rides a horse."},
  {"image_id": 1, "id": 2, "caption": "a person on a horse"},
  {"image_id": 2, "id": 3, "caption": "Two dogs play in the snow."}
 ]}`)
	good := writeFile(t, dir, "good.json", `[{"image_id": 1, "caption": "a man riding a horse"}]`)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp the output must match
		stderr string // regexp the messages must match
	}{
		{"version", []string{"--version"}, 0, `^captionctl version \S+`, `^$`},
		{"help lists exit codes", []string{"--help"}, 0, `(?s)eval.*EXIT CODES.*130`, `^$`},
		{"data help lists its commands", []string{"data", "--help"}, 0, `(?s)synth .*prepare .*features .*EXIT CODES`, `^$`},
		{"eval help", []string{"eval", "--help"}, 0, `(?s)--refs.*--meteor-paraphrase.*EXIT CODES`, `^$`},
		{"licenses", []string{"licenses"}, 0, `(?s)Meteor 1\.5.*Lesser.*WordNet 3\.0 Copyright 2006 by Princeton`, `^$`},
		{"unknown command", []string{"frobnicate"}, 2, `^$`, `unknown command "frobnicate"`},
		{"unknown flag", []string{"eval", "--bogus"}, 2, `^$`, `bogus`},
		{"eval without files", []string{"eval"}, 2, `^$`, `needs --refs`},
		{"unknown metric", []string{"eval", "--refs", refs, "--results", good, "--metrics", "bleu,spice"}, 2, `^$`, `unknown metric "spice"`},
		{"paraphrase without meteor", []string{"eval", "--refs", refs, "--results", good, "--metrics", "bleu", "--meteor-paraphrase", "x.gz"}, 2, `^$`, `does not include meteor`},
		{"table", []string{"eval", "--refs", refs, "--results", good, "--metrics", "bleu,rouge,cider"}, 0,
			`(?s)^1 images; scores on a 0-1 scale, CIDEr-D on 0-10\nBleu_1 +0\.\d{6}.*CIDEr +\d\.\d{6}\s*$`, `covers 1 of them`},
		{"missing refs file", []string{"eval", "--refs", filepath.Join(dir, "nope.json"), "--results", good}, 3, `^$`, `nope\.json: cannot read: no such file`},
		{"malformed results", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad1.json", "[\n {\"image_id\": 1, \"caption\": \"a\"}\n {\"image_id\": 2}]")}, 3, `^$`, `bad1\.json:3:2: malformed JSON`},
		{"truncated results", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad2.json", `[{"image_id": 1, "caption": "a ma`)}, 3, `^$`, `bad2\.json:1:\d+: malformed JSON.*truncated`},
		{"caption not a string", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad3.json", "[{\"image_id\": 1,\n  \"caption\": 42}]")}, 3, `^$`, `bad3\.json:2:14: field caption: expected a string, found a number`},
		{"image id not an integer", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad4.json", `[{"image_id": "1", "caption": "a"}]`)}, 3, `^$`, `bad4\.json:1:15: field image_id: expected an integer, found a string`},
		{"missing caption", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad5.json", `[{"image_id": 1}]`)}, 3, `^$`, `bad5\.json:1:2: result 0 \(image 1\) has no caption`},
		{"empty results", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad6.json", " [ ] ")}, 3, `^$`, `bad6\.json: no results`},
		{"results not a list", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad7.json", `{"image_id": 1, "caption": "a"}`)}, 3, `^$`, `bad7\.json:1:1: expected a COCO results array`},
		{"two results for one image", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad8.json", "[{\"image_id\": 1, \"caption\": \"a\"},\n {\"image_id\": 1, \"caption\": \"b\"}]")}, 3, `^$`, `bad8\.json:2:2: image 1 has a second result \(the first is on line 1\)`},
		{"unknown image ids", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad9.json", `[{"image_id": 1, "caption": "a"}, {"image_id": 7, "caption": "b"}, {"image_id": 8, "caption": "c"}]`)}, 3, `^$`, `bad9\.json: 2 results have an image_id that .*refs\.json does not have: 7, 8`},
		{"image without references", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad10.json", `[{"image_id": 3, "caption": "a"}]`)}, 3, `^$`, `refs\.json: no reference captions for 1 image of .*bad10\.json: 3 \(listed in "images"`},
		{"refs without annotations", []string{"eval", "--refs", writeFile(t, dir, "refs2.json", `{"images": [{"id": 1}]}`), "--results", good}, 3, `^$`, `refs2\.json: no "annotations" section`},
		{"refs caption not a string", []string{"eval", "--refs", writeFile(t, dir, "refs3.json", "{\"annotations\": [\n{\"image_id\": 1, \"caption\": null}, {\"image_id\": 1, \"caption\": [\"x\"]}]}"), "--results", good}, 3, `^$`, `refs3\.json:2:1: annotation 0 \(image 1\) has no caption`},
		{"trailing data", []string{"eval", "--refs", refs, "--results", writeFile(t, dir, "bad11.json", `[{"image_id": 1, "caption": "a"}] x`)}, 3, `^$`, `bad11\.json:1:35: unexpected data after the end`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runApp(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !regexp.MustCompile(tc.stdout).MatchString(stdout) {
				t.Errorf("stdout %q does not match %q", stdout, tc.stdout)
			}
			if !regexp.MustCompile(tc.stderr).MatchString(stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tc.stderr)
			}
		})
	}
}

// TestEvalJSONMatchesToolkit scores a committed oracle case end to end —
// raw captions through tokenizer and metrics — and compares with the
// toolkit's expected.json.
func TestEvalJSONMatchesToolkit(t *testing.T) {
	for _, name := range []string{"nlgeval_example", "coco_val2017_fakecap"} {
		t.Run(name, func(t *testing.T) {
			c, err := oracle.Load(name)
			if err != nil {
				t.Fatal(err)
			}
			perImage := filepath.Join(t.TempDir(), "per_image.jsonl")
			code, stdout, stderr := runApp(t, "eval", "--refs", oracleFile(name, "refs.json"), "--results", oracleFile(name, "res.json"), "--json", "--per-image", perImage)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
			}
			keys := []string{"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "n_images", "meteor_modules"}
			if len(got) != len(keys) {
				t.Errorf("JSON has keys %v, want exactly %v", got, keys)
			}
			want := c.Expected.Scores
			for key, w := range map[string]float64{"Bleu_1": want.Bleu1, "Bleu_2": want.Bleu2, "Bleu_3": want.Bleu3, "Bleu_4": want.Bleu4, "METEOR": want.Meteor, "ROUGE_L": want.RougeL, "CIDEr": want.CIDEr} {
				g, _ := got[key].(float64)
				tol := 1e-9
				if key == "METEOR" {
					tol = 1e-6
				}
				if math.Abs(g-w) > tol {
					t.Errorf("%s = %.17g, want %.17g", key, g, w)
				}
			}
			if n, _ := got["n_images"].(float64); int(n) != c.Expected.NImages {
				t.Errorf("n_images = %v, want %d", got["n_images"], c.Expected.NImages)
			}
			if m := got["meteor_modules"]; strings.Join(toStrings(m), ",") != "exact,stem,synonym" {
				t.Errorf("meteor_modules = %v", m)
			}
			f, err := os.Open(perImage)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			i := 0
			for ; sc.Scan(); i++ {
				var line struct {
					ImageID int64   `json:"image_id"`
					CIDEr   float64 `json:"CIDEr"`
					METEOR  float64 `json:"METEOR"`
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatalf("per-image line %d: %v", i+1, err)
				}
				w := c.Expected.PerImage[i]
				if line.ImageID != w.ImageID || math.Abs(line.CIDEr-w.CIDEr) > 1e-9 || math.Abs(line.METEOR-w.Meteor) > 1e-6 {
					t.Errorf("per-image line %d: %+v, want image %d CIDEr %v METEOR %v", i+1, line, w.ImageID, w.CIDEr, w.Meteor)
				}
			}
			if i != c.Expected.NImages {
				t.Errorf("per-image file has %d lines, want %d", i, c.Expected.NImages)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
