package data

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/progress"
)

// File names inside a prepared dataset directory.
const (
	VocabFile    = "vocab.json"
	ManifestFile = "manifest.json"
)

// SplitFile is the name of a split's image list.
func SplitFile(split string) string { return split + ".jsonl" }

// RefsFile is the name of a split's COCO-format references.
func RefsFile(split string) string { return "refs_" + split + ".json" }

// writeDataset writes every file of a prepared dataset, the manifest last:
// a directory with a manifest is complete.
func writeDataset(ctx context.Context, dir string, splits map[string][]Image, v *Vocab, m *Manifest, rep progress.Reporter) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	// An old manifest would vouch for files about to change.
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !os.IsNotExist(err) {
		return err
	}
	total := int64(0)
	for _, s := range Splits {
		total += int64(len(splits[s]))
	}
	rep.Start("writing", total)
	defer rep.Done()
	if err := WriteVocab(filepath.Join(dir, VocabFile), v); err != nil {
		return err
	}
	for _, s := range Splits {
		if err := ctx.Err(); err != nil {
			return err
		}
		images := splits[s]
		if err := atomicfile.Write(filepath.Join(dir, SplitFile(s)), 0o644, func(w io.Writer) error {
			return writeSplit(w, images, rep)
		}); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, RefsFile(s)), 0o644, func(w io.Writer) error {
			return writeRefs(w, s, images)
		}); err != nil {
			return err
		}
	}
	return atomicfile.Write(filepath.Join(dir, ManifestFile), 0o644, func(w io.Writer) error {
		return writeJSON(w, m)
	})
}

func writeSplit(w io.Writer, images []Image, rep progress.Reporter) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range images {
		if err := enc.Encode(&images[i]); err != nil {
			return err
		}
		rep.Add(1)
	}
	return nil
}

type refsImage struct {
	ID       int64  `json:"id"`
	FileName string `json:"file_name"`
}

type refsAnnotation struct {
	ImageID int64  `json:"image_id"`
	ID      int64  `json:"id"`
	Caption string `json:"caption"`
}

// writeRefs writes a split's captions in the COCO annotation format, one
// image or annotation per line.
func writeRefs(w io.Writer, split string, images []Image) error {
	line := func(v any, last bool) error {
		b, err := marshalNoEscape(v)
		if err != nil {
			return err
		}
		sep := ",\n"
		if last {
			sep = "\n"
		}
		_, err = fmt.Fprintf(w, "  %s%s", b, sep)
		return err
	}
	if _, err := fmt.Fprintf(w, "{\"info\": {\"description\": \"captionctl references, split %s\"},\n \"images\": [\n", split); err != nil {
		return err
	}
	for i, im := range images {
		if err := line(refsImage{ID: im.ImageID, FileName: im.File}, i == len(images)-1); err != nil {
			return err
		}
	}
	if _, err := io.WriteString(w, " ],\n \"annotations\": [\n"); err != nil {
		return err
	}
	n := 0
	for _, im := range images {
		n += len(im.refCaptions)
	}
	k := 0
	for _, im := range images {
		for j, c := range im.refCaptions {
			k++
			if err := line(refsAnnotation{ImageID: im.ImageID, ID: im.refAnnIDs[j], Caption: c}, k == n); err != nil {
				return err
			}
		}
	}
	_, err := io.WriteString(w, " ]\n}\n")
	return err
}

func marshalNoEscape(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
