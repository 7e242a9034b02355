package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
)

// photosDir holds real photographs (../shared/data/photos).
func photosDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data", "photos", "debian-darknet")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("real photographs not available: %v", err)
	}
	return dir
}

// tinyCaptionModel writes a small random model of the given architecture
// and returns its path.
func tinyCaptionModel(t *testing.T, arch string) string {
	t.Helper()
	return tinyCaptionModelFile(t, arch, true)
}

// tinyCaptionModelFile is tinyCaptionModel, without the encoder's weights
// (a model file from before they were stored) when withEncoder is false.
func tinyCaptionModelFile(t *testing.T, arch string, withEncoder bool) string {
	t.Helper()
	vocab := data.BuildVocab([][]string{{"a", "dog", "on", "the", "grass"}, {"a", "bird", "in", "the", "sky"}}, 1)
	cfg := model.DecoderConfig{Arch: arch, VocabSize: vocab.Len(), FeatureDim: 512, GridCells: 49,
		EmbedDim: 8, AttentionDim: 8, HiddenDim: 8, Dropout: 0.5, AlphaC: 1}
	params, err := model.NewDecoderParams(cfg, tensor.Float32, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	// Never <end>: every caption has --max-len words, so that there are
	// words to show.
	params.OutputBias.Data().([]float32)[vocab.ID("<end>")] = -100
	// A seeded random ResNet-18 on 32-pixel crops: fast, and self-contained.
	pre := data.DefaultPreprocessConfig()
	pre.ImageSize, pre.ResizeSize = 32, 36
	id := data.EncoderIdentity{Arch: "resnet18", WeightsSHA256: "random:seed=3", Grid: 7, Channels: 512, Preprocess: pre}
	encoder, err := model.EncoderStateDict(id, "")
	if err != nil {
		t.Fatal(err)
	}
	m := &model.ModelFile{
		Config: cfg, Params: params, Vocab: vocab, Encoder: id, EncoderWeights: encoder,
		Provenance: model.Provenance{Seed: 1, Epoch: 1, Steps: 1, Selection: "last"},
	}
	if !withEncoder {
		m.EncoderWeights = nil
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%s-%v.safetensors", arch, withEncoder))
	if err := model.SaveModel(path, m); err != nil {
		t.Fatal(err)
	}
	return path
}

// runAppStdin is runApp with stdin.
func runAppStdin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	app := newApp(&out, &errOut)
	app.Reader = strings.NewReader(stdin)
	ctx := context.Background()
	err := app.RunContext(ctx, append([]string{"captionctl"}, args...))
	code = exitCode(ctx, err)
	if err != nil {
		errOut.WriteString("captionctl: " + err.Error() + "\n")
	}
	return code, out.String(), errOut.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// outputFiles returns the first column of text output lines.
func outputFiles(t *testing.T, out string) []string {
	t.Helper()
	var files []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		file, caption, ok := strings.Cut(line, "\t")
		if !ok || strings.TrimSpace(caption) == "" {
			t.Errorf("output line %q is not FILE<TAB>caption", line)
		}
		files = append(files, file)
	}
	return files
}

func TestCaptionUsageErrors(t *testing.T) {
	// Flags and arguments are checked before the model is read: only the
	// showtell case needs a model file.
	empty := t.TempDir()
	modelPath := filepath.Join(empty, "never-read.safetensors")
	showtell := tinyCaptionModel(t, model.ArchShowTell)
	img := filepath.Join(photosDir(t), "dog.jpg")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"caption", img}, "--model FILE is required"},
		{[]string{"caption", "--model", modelPath}, "at least one IMAGE"},
		{[]string{"caption", "--model", modelPath, "--beam", "0", img}, "--beam must be between 1 and"},
		{[]string{"caption", "--model", modelPath, "--max-len", "0", img}, "--max-len must be between 1 and"},
		{[]string{"caption", "--model", modelPath, "--beam", "2", "--top", "3", img}, "--top must be between 1 and --beam (2)"},
		{[]string{"caption", "--model", modelPath, "--batch", "0", img}, "--batch must be between 1 and"},
		{[]string{"caption", "--model", modelPath, "--beam", "x", img}, "invalid value"},
		{[]string{"caption", "--model", modelPath, empty}, "no images to caption"},
		{[]string{"caption", "--model", showtell, "--attention-dir", filepath.Join(empty, "maps"), img}, "has no attention"},
	}
	for _, c := range cases {
		code, out, errOut := runAppStdin(t, "", c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 naming %q", c.args, code, out, errOut, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "maps")); err == nil {
		t.Error("--attention-dir created for a showtell model")
	}
}

func TestCaptionModelErrors(t *testing.T) {
	img := filepath.Join(photosDir(t), "dog.jpg")
	dir := t.TempDir()
	cases := []struct {
		name, model, want string
	}{
		{"no encoder weights", tinyCaptionModelFile(t, model.ArchAttention, false), "no encoder weights"},
		{"missing", filepath.Join(dir, "none.safetensors"), "cannot read model file"},
		{"not a model", writeFile(t, dir, "junk.safetensors", "junk"), "junk.safetensors"},
	}
	for _, c := range cases {
		code, out, errOut := runAppStdin(t, "", "caption", "--model", c.model, img)
		if code != exitBadInput || out != "" || !strings.Contains(errOut, c.model) || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 3 naming %s and %q", c.name, code, out, errOut, c.model, c.want)
		}
	}
}

func TestCaptionInputs(t *testing.T) {
	photos := photosDir(t)
	modelPath := tinyCaptionModel(t, model.ArchAttention)
	dir := t.TempDir()
	// A directory tree: images by extension in sorted order, others and
	// dot-files skipped.
	tree := filepath.Join(dir, "tree")
	copyFile(t, filepath.Join(photos, "horses.jpg"), filepath.Join(tree, "b", "horses.JPG"))
	copyFile(t, filepath.Join(photos, "eagle.jpg"), filepath.Join(tree, "a.jpeg"))
	copyFile(t, filepath.Join(photos, "dog.jpg"), filepath.Join(tree, ".hidden.jpg"))
	copyFile(t, filepath.Join(photos, "dog.jpg"), filepath.Join(tree, ".git", "x.jpg"))
	writeFile(t, tree, "notes.txt", "not an image")
	// A bad image and a missing one among good ones.
	bad := writeFile(t, dir, "broken.jpg", "\xff\xd8\xff\xe0 truncated")
	missing := filepath.Join(dir, "missing.png")
	dog := filepath.Join(photos, "dog.jpg")
	// A COCO val2017 image and a PNG, read from stdin (a blank line is
	// skipped).
	coco := filepath.Join("..", "..", "..", "shared", "data", "coco", "coco-mini", "val2017", "000000000139.jpg")
	if _, err := os.Stat(coco); err != nil {
		coco = filepath.Join(photos, "giraffe.jpg")
	}
	camera := filepath.Join(photos, "..", "debian-skimage", "camera.png")
	if _, err := os.Stat(camera); err != nil {
		camera = filepath.Join(photos, "person.jpg")
	}
	stdin := coco + "\n\n" + bad + "\n" + camera + "\n"

	code, out, errOut := runAppStdin(t, stdin, "caption", "--model", modelPath, "--beam", "2", "--max-len", "5", "--batch", "2",
		dog, missing, tree, "-")
	if code != exitBadInput {
		t.Fatalf("exit %d, want 3; stderr:\n%s", code, errOut)
	}
	want := []string{dog, filepath.Join(tree, "a.jpeg"), filepath.Join(tree, "b", "horses.JPG"), coco, camera}
	if got := outputFiles(t, out); !reflect.DeepEqual(got, want) {
		t.Errorf("captioned %q, want %q", got, want)
	}
	for _, name := range []string{missing, bad} {
		if !strings.Contains(errOut, name+": ") {
			t.Errorf("stderr does not name %s:\n%s", name, errOut)
		}
	}
	if !strings.Contains(errOut, "2 of 7 images could not be captioned") {
		t.Errorf("stderr has no summary:\n%s", errOut)
	}
	if n := strings.Count(errOut, "\n"); n != 3 {
		t.Errorf("stderr has %d lines, want 3 (two images, one summary):\n%s", n, errOut)
	}
}

func TestCaptionJSON(t *testing.T) {
	photos := photosDir(t)
	modelPath := tinyCaptionModel(t, model.ArchAttention)
	images := []string{filepath.Join(photos, "dog.jpg"), filepath.Join(photos, "eagle.jpg")}
	code, out, errOut := runAppStdin(t, "", append([]string{"caption", "--model", modelPath, "--json", "--beam", "3", "--top", "2", "--max-len", "6"}, images...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	var i int
	for ; sc.Scan(); i++ {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, sc.Bytes())
		}
		var keys []string
		for k := range line {
			keys = append(keys, k)
		}
		if len(keys) != 5 || line["file"] != images[i] {
			t.Errorf("line %d: %s", i+1, sc.Bytes())
		}
		var got struct {
			File, Caption string
			Score         float64
			Tokens        []string
			Alternatives  []struct {
				Caption string
				Score   float64
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Caption != strings.Join(got.Tokens, " ") {
			t.Errorf("line %d: caption %q is not its tokens %q", i+1, got.Caption, got.Tokens)
		}
		if len(got.Alternatives) != 2 || got.Alternatives[0].Caption != got.Caption || got.Alternatives[0].Score != got.Score ||
			got.Alternatives[1].Score > got.Score {
			t.Errorf("line %d: --top 2 gives alternatives %+v, want the best (%q, %v) then a worse one", i+1, got.Alternatives, got.Caption, got.Score)
		}
	}
	if i != len(images) {
		t.Errorf("%d JSON lines, want %d", i, len(images))
	}

	// Text with --top 2: two lines per image, best first, the same
	// captions as the JSON lines'.
	code, text, errOut := runAppStdin(t, "", append([]string{"caption", "--model", modelPath, "--beam", "3", "--top", "2", "--max-len", "6"}, images...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var want []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			File         string
			Alternatives []struct{ Caption string }
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		for _, a := range r.Alternatives {
			want = append(want, r.File+"\t"+a.Caption)
		}
	}
	if got := strings.Split(strings.TrimSuffix(text, "\n"), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("text output with --top 2:\n%q\nwant\n%q", got, want)
	}
}

func TestCaptionAttentionMaps(t *testing.T) {
	photos := photosDir(t)
	modelPath := tinyCaptionModel(t, model.ArchAttention)
	maps := filepath.Join(t.TempDir(), "maps")
	// Two images named dog: the second's maps are dog-2_….
	other := filepath.Join(t.TempDir(), "dog.jpg")
	copyFile(t, filepath.Join(photos, "eagle.jpg"), other)
	code, out, errOut := runAppStdin(t, "", "caption", "--model", modelPath, "--json", "--beam", "1", "--max-len", "4",
		"--attention-dir", maps, filepath.Join(photos, "dog.jpg"), other)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var results []struct{ Tokens []string }
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct{ Tokens []string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	entries, err := os.ReadDir(maps)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for i, name := range []string{"dog", "dog-2"} {
		words := results[i].Tokens
		if len(words) != 4 {
			t.Errorf("image %d: caption %q, want --max-len 4 words (the model never ends)", i+1, words)
		}
		for j, w := range words {
			wantName := fmt.Sprintf("%s_%02d_%s.png", name, j+1, w)
			checkPNG(t, filepath.Join(maps, wantName), attentionSide, attentionSide)
		}
		cols := min(len(words)+1, 5)
		rows := (len(words) + 1 + cols - 1) / cols
		checkPNG(t, filepath.Join(maps, name+"_attention.png"), cols*(attentionSide+4)+4, rows*(attentionSide+4)+4)
	}
	// Per image: one map per word and the sheet.
	if want := len(results[0].Tokens) + 1 + len(results[1].Tokens) + 1; len(names) != want {
		t.Errorf("%d files %q, want %d", len(names), names, want)
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			t.Errorf("temporary file %s left behind", n)
		}
	}
}

func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Errorf("%s is %d×%d, want %d×%d", path, b.Dx(), b.Dy(), w, h)
	}
}

func TestCaptionInterrupted(t *testing.T) {
	modelPath := tinyCaptionModel(t, model.ArchAttention)
	maps := filepath.Join(t.TempDir(), "maps")
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := newApp(&out, &errOut).RunContext(ctx, []string{"captionctl", "caption", "--model", modelPath,
		"--attention-dir", maps, filepath.Join(photosDir(t), "dog.jpg")})
	if code := exitCode(ctx, err); code != exitInterrupted || out.Len() != 0 {
		t.Errorf("exit %d (%v), stdout %q; want 130 and nothing printed", code, err, out.String())
	}
	if entries, _ := os.ReadDir(maps); len(entries) != 0 {
		t.Errorf("%d files in --attention-dir after an interrupt before captioning", len(entries))
	}
}
