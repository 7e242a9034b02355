package data

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// writeCOCOScale writes a raw COCO captions file of nImages images with
// perImage captions each (Zipf-distributed words, 8 to 15 per caption) and
// creates an empty file for every image under root/folder.
func writeCOCOScale(tb testing.TB, path, root, folder string, firstID, nImages, perImage int, rng *rand.Rand) {
	tb.Helper()
	words := strings.Fields("a the man woman dog cat on in of with sitting standing riding " +
		"two table street red white black blue green large small next to near top front field water " +
		"plate pizza train bus car bike horse skateboard surfboard kite beach snow room kitchen bathroom")
	for i := 0; i < 2000; i++ {
		words = append(words, fmt.Sprintf("word%d", i))
	}
	zipf := rand.NewZipf(rng, 1.1, 2, uint64(len(words)-1))
	if err := os.MkdirAll(filepath.Join(root, folder), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprint(w, `{"info": {}, "images": [`)
	for i := 0; i < nImages; i++ {
		id := firstID + i
		name := fmt.Sprintf("COCO_%s_%012d.jpg", folder, id)
		if i > 0 {
			w.WriteString(",")
		}
		fmt.Fprintf(w, `{"id": %d, "file_name": %q, "height": 480, "width": 640}`, id, name)
		if err := os.WriteFile(filepath.Join(root, folder, name), nil, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	fmt.Fprint(w, `], "annotations": [`)
	ann := firstID * 10
	for i := 0; i < nImages; i++ {
		for j := 0; j < perImage; j++ {
			n := 8 + rng.IntN(8)
			caption := make([]string, n)
			for k := range caption {
				caption[k] = words[zipf.Uint64()]
			}
			text, _ := json.Marshal(strings.ToUpper(caption[0][:1]) + caption[0][1:] + " " + strings.Join(caption[1:], " ") + ".")
			if i > 0 || j > 0 {
				w.WriteString(",")
			}
			fmt.Fprintf(w, `{"image_id": %d, "id": %d, "caption": %s}`, firstID+i, ann, text)
			ann++
		}
	}
	fmt.Fprint(w, "]}")
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPrepareCOCOScale prepares a generated input the size of COCO
// train2014 + val2014 (123,287 images, 616,435 captions) without
// --check-images. Goal: under 60 s and 2 GB on 2 cores. The inputs take a
// while to generate; run with -benchtime 1x:
//
//	go test ./data -run XXX -bench PrepareCOCOScale -benchtime 1x
func BenchmarkPrepareCOCOScale(b *testing.B) {
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	train := filepath.Join(dir, "captions_train2014.json")
	val := filepath.Join(dir, "captions_val2014.json")
	images := filepath.Join(dir, "images")
	writeCOCOScale(b, train, images, "train2014", 1, 82783, 5, rng)
	writeCOCOScale(b, val, images, "val2014", 1_000_000, 40504, 5, rng)
	b.Run("images=123287", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			cfg := DefaultPrepareConfig()
			cfg.COCOCaptions = []string{train, val}
			cfg.Images = images
			cfg.Out = filepath.Join(dir, fmt.Sprintf("out%d", i))
			res, err := Prepare(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.Sys)/(1<<20), "MB-sys")
			if c := res.Manifest.Counts; c["train"].Images != 82783+40504-10000 || c["val"].Images != 5000 {
				b.Fatalf("counts %+v", c)
			}
		}
	})
}
