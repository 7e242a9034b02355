package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/internal/badinput"
)

// writePNG writes a small RGB PNG.
func writePNG(t testing.TB, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

type kImage struct {
	FilePath  string      `json:"filepath,omitempty"`
	FileName  string      `json:"filename"`
	Split     string      `json:"split"`
	ImgID     int64       `json:"imgid"`
	Sentences []kSentence `json:"sentences"`
}

type kSentence struct {
	Raw    string `json:"raw"`
	SentID int64  `json:"sentid"`
}

// karpathyFixture writes a small Karpathy-format dataset with its images.
func karpathyFixture(t testing.TB, dir string, images []kImage) string {
	t.Helper()
	for _, im := range images {
		writePNG(t, filepath.Join(dir, "imgs", im.FilePath, im.FileName))
	}
	b, err := json.Marshal(map[string]any{"dataset": "test", "images": images})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "dataset_test.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sentences(first int64, raws ...string) []kSentence {
	var s []kSentence
	for i, r := range raws {
		s = append(s, kSentence{Raw: r, SentID: first + int64(i)})
	}
	return s
}

func readLines(t *testing.T, path string) []Image {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Image
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var im Image
		if err := json.Unmarshal([]byte(line), &im); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, im)
	}
	return out
}

func TestPrepareKarpathy(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("very ", 12) + "long caption"
	ds := karpathyFixture(t, dir, []kImage{
		{FilePath: "a", FileName: "1.png", Split: "train", ImgID: 1, Sentences: sentences(10,
			"A dog runs.", "The dog is running!", "a brown dog", "A dog on grass", "dog", "A DOG again", long)},
		{FilePath: "a", FileName: "2.png", Split: "restval", ImgID: 2, Sentences: sentences(20, "A cat sits.", "a cat", "...", "Un café, s'il vous plaît")},
		{FileName: "3.png", Split: "val", ImgID: 3, Sentences: sentences(30, "A dog and a cat.", long, "!")},
		{FileName: "4.png", Split: "test", ImgID: 4, Sentences: sentences(40, "Two cats.")},
	})
	cfg := DefaultPrepareConfig()
	cfg.Karpathy, cfg.Images, cfg.Out = ds, filepath.Join(dir, "imgs"), filepath.Join(dir, "out")
	cfg.MinWordFreq, cfg.MaxLen, cfg.CaptionsPerImage = 2, 10, 5
	res, err := Prepare(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	train := readLines(t, filepath.Join(cfg.Out, "train.jsonl"))
	val := readLines(t, filepath.Join(cfg.Out, "val.jsonl"))
	test := readLines(t, filepath.Join(cfg.Out, "test.jsonl"))
	if len(train) != 2 || len(val) != 1 || len(test) != 1 {
		t.Fatalf("splits: %d train (restval joins), %d val, %d test; want 2, 1, 1", len(train), len(val), len(test))
	}
	// Image 1: 7 captions, the long one dropped (14 tokens > 10), 5 of the
	// remaining 6 kept.
	if len(train[0].Captions) != 5 || train[0].File != "a/1.png" {
		t.Errorf("image 1: %d captions, file %q; want 5, a/1.png", len(train[0].Captions), train[0].File)
	}
	// "..." tokenizes to nothing: dropped; val keeps the long caption.
	if len(train[1].Captions) != 3 || len(val[0].Captions) != 2 {
		t.Errorf("image 2 has %d captions (want 3), image 3 %d (want 2)", len(train[1].Captions), len(val[0].Captions))
	}
	// The toolkit's tokenizer and filter (ptb's own tests pin the details).
	if got := strings.Join(train[1].Tokens[2], " "); got != "un café s il vous plaît" {
		t.Errorf("non-ASCII caption tokenized as %q", got)
	}
	reasons := map[string]int{}
	for _, d := range m.Dropped {
		reasons[d.Reason]++
	}
	if reasons["tokenizes to nothing"] != 2 || reasons["14 tokens, over --max-len 10"] != 1 {
		t.Errorf("dropped: %v", reasons)
	}
	v, err := ReadVocab(filepath.Join(cfg.Out, VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	// Training words seen at least twice, by count then alphabetically.
	want := []string{PadToken, StartToken, EndToken, UnkToken, "a", "dog", "cat"}
	if fmt.Sprint(v.Tokens[:min(len(v.Tokens), len(want))]) != fmt.Sprint(want) {
		t.Errorf("vocabulary starts %v, want %v", v.Tokens, want)
	}
	for _, tok := range v.Tokens[4:] {
		if strings.Contains(tok, "two") {
			t.Errorf("vocabulary has %q from the test split", tok)
		}
	}
	// refs_train keeps every caption with tokens, even those not kept for
	// training (6 for image 1: 7 minus none empty).
	var refs struct {
		Annotations []struct {
			ImageID int64  `json:"image_id"`
			ID      int64  `json:"id"`
			Caption string `json:"caption"`
		} `json:"annotations"`
	}
	b, _ := os.ReadFile(filepath.Join(cfg.Out, RefsFile("train")))
	if err := json.Unmarshal(b, &refs); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range refs.Annotations {
		if a.ImageID == 1 {
			n++
		}
	}
	if n != 7 {
		t.Errorf("refs_train has %d captions of image 1, want all 7", n)
	}

	// Same inputs and seed: byte-identical output.
	cfg2 := cfg
	cfg2.Out = filepath.Join(dir, "out2")
	if _, err := Prepare(context.Background(), cfg2, nil); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vocab.json", "train.jsonl", "val.jsonl", "test.jsonl", "refs_train.json", "refs_val.json", "refs_test.json"} {
		a, _ := os.ReadFile(filepath.Join(cfg.Out, name))
		b, _ := os.ReadFile(filepath.Join(cfg2.Out, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two identical runs", name)
		}
	}
	am, _ := os.ReadFile(filepath.Join(cfg.Out, ManifestFile))
	bm, _ := os.ReadFile(filepath.Join(cfg2.Out, ManifestFile))
	if !bytes.Equal(bytes.ReplaceAll(am, []byte(cfg.Out), nil), bytes.ReplaceAll(bm, []byte(cfg2.Out), nil)) {
		t.Errorf("manifests differ beyond the output path")
	}
}

func TestPrepareImageProblems(t *testing.T) {
	dir := t.TempDir()
	ds := karpathyFixture(t, dir, []kImage{
		{FileName: "ok.png", Split: "train", ImgID: 1, Sentences: sentences(1, "a dog")},
		{FileName: "empty.png", Split: "train", ImgID: 2, Sentences: sentences(2, "a cat")},
		{FileName: "corrupt.jpg", Split: "val", ImgID: 3, Sentences: sentences(3, "a cow")},
		{FileName: "gone.png", Split: "test", ImgID: 4, Sentences: sentences(4, "a pig")},
	})
	imgs := filepath.Join(dir, "imgs")
	os.WriteFile(filepath.Join(imgs, "empty.png"), nil, 0o644)
	os.WriteFile(filepath.Join(imgs, "corrupt.jpg"), []byte("\xff\xd8\xff\xe0garbage"), 0o644)
	os.Remove(filepath.Join(imgs, "gone.png"))
	cfg := DefaultPrepareConfig()
	cfg.Karpathy, cfg.Images, cfg.Out, cfg.MinWordFreq = ds, imgs, filepath.Join(dir, "out"), 1

	// Without --check-images only the missing file is noticed.
	_, err := Prepare(context.Background(), cfg, nil)
	var bad *badinput.Error
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "1 of the dataset's images are missing or unreadable: gone.png (image 4: file not found)") {
		t.Fatalf("err = %v", err)
	}
	cfg.CheckImages = true
	_, err = Prepare(context.Background(), cfg, nil)
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "3 of the dataset's images") || !strings.Contains(err.Error(), "--skip-bad-images") {
		t.Fatalf("err = %v", err)
	}
	if _, statErr := os.Stat(cfg.Out); !os.IsNotExist(statErr) {
		t.Errorf("a failed prepare created %s", cfg.Out)
	}
	cfg.SkipBadImages = true
	res, err := Prepare(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for _, d := range res.Manifest.Dropped {
		got[d.ImageID] = d.Reason
	}
	if !strings.Contains(got[2], "empty file") || !strings.Contains(got[3], "unreadable image header") || got[4] != "file not found" || len(got) != 3 {
		t.Errorf("dropped images: %v", got)
	}
}

// Images in the formats people have must pass --check-images.
func TestCheckImageHeaderFormats(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, img image.Image) string {
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, buf.Bytes(), 0o644)
		return p
	}
	alpha := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	alpha.Set(1, 1, color.NRGBA{255, 0, 0, 128})
	gray := image.NewGray(image.Rect(0, 0, 4, 4))
	deep := image.NewRGBA64(image.Rect(0, 0, 4, 4))
	deep.Set(2, 2, color.RGBA64{65535, 1, 2, 65535})
	paths := []string{write("alpha.png", alpha), write("gray.png", gray), write("deep16.png", deep), write("gray16.png", image.NewGray16(image.Rect(0, 0, 3, 3)))}
	// CMYK and grayscale JPEGs made by tools/make_test_images.py.
	matches, _ := filepath.Glob(filepath.Join("..", "testdata", "images", "*.jpg"))
	if len(matches) < 2 {
		t.Fatalf("testdata/images has %d JPEG fixtures, want cmyk.jpg and gray.jpg", len(matches))
	}
	f, err := os.Open(filepath.Join("..", "testdata", "images", "cmyk.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c, _, err := image.DecodeConfig(f); err != nil || c.ColorModel != color.CMYKModel {
		t.Fatalf("cmyk.jpg: %v, colour model %v; want a CMYK JPEG", err, c.ColorModel)
	}
	paths = append(paths, matches...)
	for _, p := range paths {
		if reason := checkImageHeader(p); reason != "" {
			t.Errorf("%s: %s", p, reason)
		}
	}
}

func TestParseCOCOCaptionsErrors(t *testing.T) {
	cases := []struct{ data, want string }{
		{`{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "image_id": 1, "caption": "x"}`, "malformed JSON"},
		{`{"images": []}`, `no "annotations" section`},
		{`{"annotations": []}`, `no "images" section`},
		{`{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}], "annotations": []}`, "image id 1 is listed twice, at images[0] and images[1]"},
		{`{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 5, "image_id": 1, "caption": "x"}, {"id": 5, "image_id": 1, "caption": "y"}]}`, "annotation id 5 is used twice, at annotations[0] and annotations[1]"},
		{`{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 5, "image_id": 2, "caption": "x"}]}`, `is for image 2, which the "images" section does not list`},
		{`{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 5, "image_id": 1, "caption": 3}]}`, "field annotations.caption: expected a string, found a number"},
		{`{"images": [{"id": 1, "file_name": "../../etc/passwd"}], "annotations": []}`, "must be a path inside the images directory"},
	}
	for _, c := range cases {
		_, err := ParseCOCOCaptions("captions_val2017.json", []byte(c.data))
		var bad *badinput.Error
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "captions_val2017.json") {
			t.Errorf("%s:\n got %v\nwant …%s", c.data, err, c.want)
		}
	}
}

func TestParseKarpathyErrors(t *testing.T) {
	cases := []struct{ data, want string }{
		{`{"images": [{"filename": "a.jpg", "split": "train", "imgid": 1, "sentences": [{"raw": "x"}]}]`, "malformed JSON"},
		{`{"dataset": "coco"}`, `no "images" section`},
		{`{"images": [{"filename": "a.jpg", "split": "dev", "imgid": 1, "sentences": []}]}`, `split "dev": expected train, restval, val or test`},
		{`{"images": [{"filename": "a.jpg", "split": "train", "sentences": []}]}`, "neither cocoid nor imgid"},
		{`{"images": [{"filename": "a.jpg", "split": "train", "imgid": 1, "sentences": [{"tokens": []}]}]}`, "sentences[0] has no raw caption"},
		{`{"images": [{"filename": "a.jpg", "split": "train", "imgid": 1, "sentences": []}, {"filename": "b.jpg", "split": "val", "imgid": 1, "sentences": []}]}`, "image id 1 is listed twice"},
	}
	for _, c := range cases {
		_, err := ParseKarpathy("dataset_coco.json", []byte(c.data))
		var bad *badinput.Error
		if !errors.As(err, &bad) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant …%s", c.data, err, c.want)
		}
	}
}

func FuzzParseCOCOCaptions(f *testing.F) {
	f.Add([]byte(`{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "image_id": 1, "caption": "A dog."}]}`))
	f.Add([]byte(`{"images": [], "annotations": []}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		images, err := ParseCOCOCaptions("f.json", data)
		if err != nil {
			var bad *badinput.Error
			if !errors.As(err, &bad) {
				t.Fatalf("%v is not a *badinput.Error", err)
			}
			return
		}
		for _, im := range images {
			if len(im.captions) != len(im.annIDs) {
				t.Fatal("captions and annotation ids out of step")
			}
		}
	})
}

func FuzzParseKarpathy(f *testing.F) {
	f.Add([]byte(`{"images": [{"filepath": "val2014", "filename": "a.jpg", "split": "restval", "cocoid": 9, "sentences": [{"raw": "A dog.", "sentid": 3}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		images, err := ParseKarpathy("f.json", data)
		if err != nil {
			var bad *badinput.Error
			if !errors.As(err, &bad) {
				t.Fatalf("%v is not a *badinput.Error", err)
			}
			return
		}
		for _, im := range images {
			if im.split != "train" && im.split != "val" && im.split != "test" {
				t.Fatalf("split %q", im.split)
			}
		}
	})
}
