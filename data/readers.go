package data

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/progress"
)

// readInputs reads the configured caption files into source images, in
// input order, with each input's size and sha256.
func readInputs(ctx context.Context, cfg PrepareConfig, rep progress.Reporter) ([]Input, []sourceImage, error) {
	files := cfg.COCOCaptions
	if cfg.Karpathy != "" {
		files = []string{cfg.Karpathy}
	}
	rep.Start("reading captions", int64(len(files)))
	defer rep.Done()
	var inputs []Input
	var sources []sourceImage
	seen := make(map[int64]string) // image id → the input that has it
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		in, raw, err := hashFile(f)
		if err != nil {
			return nil, nil, err
		}
		inputs = append(inputs, in)
		var images []sourceImage
		if cfg.Karpathy != "" {
			images, err = ParseKarpathy(f, raw)
		} else {
			images, err = ParseCOCOCaptions(f, raw)
		}
		if err != nil {
			return nil, nil, err
		}
		for _, im := range images {
			if other, dup := seen[im.id]; dup {
				return nil, nil, badinput.Errorf(f, "image %d is also in %s: give each image once", im.id, other)
			}
			seen[im.id] = f
		}
		sources = append(sources, images...)
		rep.Add(1)
	}
	return inputs, sources, nil
}

type cocoCaptionsFile struct {
	Images      *[]cocoImage      `json:"images"`
	Annotations *[]cocoAnnotation `json:"annotations"`
}

type cocoImage struct {
	ID       *int64  `json:"id"`
	FileName *string `json:"file_name"`
}

type cocoAnnotation struct {
	ID      *int64  `json:"id"`
	ImageID *int64  `json:"image_id"`
	Caption *string `json:"caption"`
}

// ParseCOCOCaptions reads a raw COCO captions file (captions_train2014.json
// and the like): images with id and file_name, annotations with id,
// image_id and caption. A file whose name contains "train" gives training
// images; the split of the others is drawn later.
func ParseCOCOCaptions(file string, data []byte) ([]sourceImage, error) {
	var f cocoCaptionsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, badinput.JSON(file, data, err)
	}
	if f.Annotations == nil {
		return nil, badinput.Errorf(file, `no "annotations" section: a COCO captions file holds {"images": […], "annotations": [{"id", "image_id", "caption"}, …]}`)
	}
	if f.Images == nil {
		return nil, badinput.Errorf(file, `no "images" section: a COCO captions file lists each image's "id" and "file_name" there`)
	}
	split := ""
	if strings.Contains(strings.ToLower(filepath.Base(file)), "train") {
		split = "train"
	}
	index := make(map[int64]int, len(*f.Images))
	images := make([]sourceImage, 0, len(*f.Images))
	for i, im := range *f.Images {
		switch {
		case im.ID == nil:
			return nil, badinput.Errorf(file, "images[%d] has no id", i)
		case im.FileName == nil || *im.FileName == "":
			return nil, badinput.Errorf(file, "images[%d] (id %d) has no file_name", i, *im.ID)
		}
		if j, dup := index[*im.ID]; dup {
			return nil, badinput.Errorf(file, "image id %d is listed twice, at images[%d] and images[%d]", *im.ID, j, i)
		}
		if err := checkRelPath(*im.FileName); err != nil {
			return nil, badinput.Errorf(file, "images[%d] (id %d) file_name %q: %v", i, *im.ID, *im.FileName, err)
		}
		index[*im.ID] = i
		images = append(images, sourceImage{id: *im.ID, file: *im.FileName, split: split, input: file})
	}
	annIDs := make(map[int64]int, len(*f.Annotations))
	for i, a := range *f.Annotations {
		switch {
		case a.ImageID == nil:
			return nil, badinput.Errorf(file, "annotations[%d] has no image_id", i)
		case a.Caption == nil:
			return nil, badinput.Errorf(file, "annotations[%d] (image %d) has no caption (or it is null)", i, *a.ImageID)
		case a.ID == nil:
			return nil, badinput.Errorf(file, "annotations[%d] (image %d) has no id", i, *a.ImageID)
		}
		if j, dup := annIDs[*a.ID]; dup {
			return nil, badinput.Errorf(file, "annotation id %d is used twice, at annotations[%d] and annotations[%d]", *a.ID, j, i)
		}
		annIDs[*a.ID] = i
		k, ok := index[*a.ImageID]
		if !ok {
			return nil, badinput.Errorf(file, "annotations[%d] (id %d) is for image %d, which the \"images\" section does not list", i, *a.ID, *a.ImageID)
		}
		images[k].captions = append(images[k].captions, *a.Caption)
		images[k].annIDs = append(images[k].annIDs, *a.ID)
	}
	return images, nil
}

type karpathyFile struct {
	Images *[]karpathyImage `json:"images"`
}

type karpathyImage struct {
	FilePath  *string             `json:"filepath"`
	FileName  *string             `json:"filename"`
	Split     *string             `json:"split"`
	ImgID     *int64              `json:"imgid"`
	COCOID    *int64              `json:"cocoid"`
	Sentences *[]karpathySentence `json:"sentences"`
}

type karpathySentence struct {
	Raw    *string `json:"raw"`
	SentID *int64  `json:"sentid"`
}

// ParseKarpathy reads Karpathy's dataset_coco.json, dataset_flickr8k.json or
// dataset_flickr30k.json (or captionctl's synthetic dataset.json): images
// with filepath (optional), filename, split, imgid or cocoid, and sentences
// with raw. The image id is cocoid when present, else imgid; restval joins
// train.
func ParseKarpathy(file string, data []byte) ([]sourceImage, error) {
	var f karpathyFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, badinput.JSON(file, data, err)
	}
	if f.Images == nil {
		return nil, badinput.Errorf(file, `no "images" section: a Karpathy dataset file holds {"images": [{"filename", "split", "sentences": [{"raw"}, …]}, …]}`)
	}
	images := make([]sourceImage, 0, len(*f.Images))
	index := make(map[int64]int, len(*f.Images))
	for i, im := range *f.Images {
		at := fmt.Sprintf("images[%d]", i)
		if im.FileName == nil || *im.FileName == "" {
			return nil, badinput.Errorf(file, "%s has no filename", at)
		}
		at += fmt.Sprintf(" (%s)", *im.FileName)
		var id int64
		switch {
		case im.COCOID != nil:
			id = *im.COCOID
		case im.ImgID != nil:
			id = *im.ImgID
		default:
			return nil, badinput.Errorf(file, "%s has neither cocoid nor imgid", at)
		}
		if j, dup := index[id]; dup {
			return nil, badinput.Errorf(file, "image id %d is listed twice, at images[%d] and images[%d]", id, j, i)
		}
		index[id] = i
		if im.Split == nil {
			return nil, badinput.Errorf(file, "%s has no split", at)
		}
		split := *im.Split
		switch split {
		case "train", "val", "test":
		case "restval":
			split = "train"
		default:
			return nil, badinput.Errorf(file, "%s has split %q: expected train, restval, val or test", at, split)
		}
		rel := *im.FileName
		if im.FilePath != nil && *im.FilePath != "" {
			rel = path.Join(*im.FilePath, rel)
		}
		if err := checkRelPath(rel); err != nil {
			return nil, badinput.Errorf(file, "%s: %v", at, err)
		}
		if im.Sentences == nil {
			return nil, badinput.Errorf(file, "%s has no sentences", at)
		}
		src := sourceImage{id: id, file: rel, split: split, input: file}
		for j, s := range *im.Sentences {
			if s.Raw == nil {
				return nil, badinput.Errorf(file, "%s sentences[%d] has no raw caption", at, j)
			}
			sentID := int64(j)
			if s.SentID != nil {
				sentID = *s.SentID
			}
			src.captions = append(src.captions, *s.Raw)
			src.annIDs = append(src.annIDs, sentID)
		}
		images = append(images, src)
	}
	return images, nil
}

// checkRelPath refuses file names that would leave the images root.
func checkRelPath(p string) error {
	clean := path.Clean(filepath.ToSlash(p))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return fmt.Errorf("must be a path inside the images directory")
	}
	return nil
}
