package data

import (
	"context"
	"fmt"
	"image"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	// Decoders for the formats image.DecodeConfig must recognise.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/parallel"
	"github.com/captionctl/captionctl/progress"
)

// checkImages finds every image's file under the images root (rewriting
// sources[i].file to the path found) and, with CheckImages, reads its
// header. It marks and returns the images that are missing or unreadable.
func checkImages(ctx context.Context, cfg PrepareConfig, sources []sourceImage, rep progress.Reporter) ([]Dropped, error) {
	if st, err := os.Stat(cfg.Images); err != nil || !st.IsDir() {
		return nil, badinput.Errorf(cfg.Images, "--images must be a directory holding the image files")
	}
	what := "finding images"
	if cfg.CheckImages {
		what = "checking images"
	}
	rep.Start(what, int64(len(sources)))
	defer rep.Done()
	reasons := make([]string, len(sources))
	tryCOCO := len(cfg.COCOCaptions) > 0
	files := newDirIndex(cfg.Images)
	parallel.For(len(sources), func() func(int) {
		return func(i int) {
			if ctx.Err() != nil {
				return
			}
			rel, ok := resolveImage(files, sources[i].file, tryCOCO)
			sources[i].file = rel
			switch {
			case !ok:
				reasons[i] = "file not found"
			case cfg.CheckImages:
				reasons[i] = checkImageHeader(filepath.Join(cfg.Images, rel))
			}
			rep.Add(1)
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var bad []Dropped
	for i, r := range reasons {
		if r != "" {
			sources[i].bad = r
			bad = append(bad, Dropped{Kind: "image", Split: sources[i].split, ImageID: sources[i].id, File: sources[i].file, Reason: r})
		}
	}
	return bad, nil
}

// checkImageHeader reads an image's header; it returns why the image cannot
// be used, or "" if it can.
func checkImageHeader(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "cannot open: " + err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "cannot stat: " + err.Error()
	}
	if st.Size() == 0 {
		return "empty file (0 bytes)"
	}
	cfg, format, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Sprintf("unreadable image header: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Sprintf("%s image of size %dx%d", format, cfg.Width, cfg.Height)
	}
	return ""
}

// badImagesError reports missing or unreadable images when the user has
// not asked to skip them.
func badImagesError(cfg PrepareConfig, bad []Dropped) error {
	const show = 5
	var b strings.Builder
	fmt.Fprintf(&b, "%d of the dataset's images are missing or unreadable", len(bad))
	for i, d := range bad[:min(show, len(bad))] {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s (image %d: %s)", sep, d.File, d.ImageID, d.Reason)
	}
	if len(bad) > show {
		fmt.Fprintf(&b, ", …")
	}
	b.WriteString("; check --images, or pass --skip-bad-images to leave them out (each is recorded in manifest.json)")
	return badinput.Errorf(cfg.Images, "%s", b.String())
}

// dirIndex answers "is there a regular file at ROOT/rel" from directory
// listings, read once per directory: on network and overlay file systems
// one stat per candidate path of 100,000 images takes minutes.
type dirIndex struct {
	root string
	mu   sync.Mutex
	dirs map[string]map[string]bool // directory → name → is a regular file
}

func newDirIndex(root string) *dirIndex {
	return &dirIndex{root: root, dirs: make(map[string]map[string]bool)}
}

func (x *dirIndex) exists(rel string) bool {
	dir, name := path.Split(path.Clean(filepath.ToSlash(rel)))
	x.mu.Lock()
	entries, ok := x.dirs[dir]
	if !ok {
		entries = x.list(dir)
		x.dirs[dir] = entries
	}
	x.mu.Unlock()
	return entries[name]
}

// list reads one directory; symbolic links count when they lead to a
// regular file.
func (x *dirIndex) list(dir string) map[string]bool {
	full := filepath.Join(x.root, filepath.FromSlash(dir))
	ents, err := os.ReadDir(full)
	if err != nil {
		return nil
	}
	m := make(map[string]bool, len(ents))
	for _, e := range ents {
		switch {
		case e.Type().IsRegular():
			m[e.Name()] = true
		case e.Type()&os.ModeSymlink != 0:
			if st, err := os.Stat(filepath.Join(full, e.Name())); err == nil && st.Mode().IsRegular() {
				m[e.Name()] = true
			}
		}
	}
	return m
}
