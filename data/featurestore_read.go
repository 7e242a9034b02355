package data

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

// FeatureSet is one split's cached image features, read by LoadFeatures.
// The features stay in memory as the shards store them (F16, half the
// bytes of float32) and are converted to float32 only when a batch is
// filled, image by image.
type FeatureSet struct {
	Split    string
	Cells    int // grid² cells per image (P)
	Channels int // features per cell (F)

	shards [][]byte            // per shard: the features tensor's F16 bytes
	index  map[int64]featureAt // image id → shard and row
	ids    []int64             // image ids in shard order
}

type featureAt struct{ shard, row int }

// LoadFeatures reads every shard of split listed in
// dataDir/features/manifest.json. Errors name the manifest or the shard at
// fault and say what to do.
func LoadFeatures(dataDir, split string) (*FeatureSet, error) {
	dir := filepath.Join(dataDir, FeaturesDir)
	manifestPath := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		return nil, &badinput.Error{File: manifestPath, Msg: "cannot read: " + err.Error() + "; run 'captionctl data features' on this dataset first", Err: err}
	}
	var m FeaturesManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		if bad := badinput.JSON(manifestPath, raw, err); bad.Line > 0 {
			return nil, bad
		}
		return nil, badinput.Errorf(manifestPath, "not a captionctl features manifest: %v", err)
	}
	if m.Format != FeaturesFormat {
		return nil, badinput.Errorf(manifestPath, "format is %q, want %q", m.Format, FeaturesFormat)
	}
	fs := &FeatureSet{Split: split, index: make(map[int64]featureAt)}
	for _, info := range m.Shards {
		if info.Split != split {
			continue
		}
		path := filepath.Join(dir, info.File)
		if filepath.Base(info.File) != info.File {
			return nil, badinput.Errorf(manifestPath, "shard file %q is not a plain file name", info.File)
		}
		if err := fs.addShard(path, info); err != nil {
			return nil, err
		}
	}
	if len(fs.shards) == 0 {
		return nil, badinput.Errorf(manifestPath, "lists no shard of split %q; run 'captionctl data features' for it", split)
	}
	return fs, nil
}

func (fs *FeatureSet) addShard(path string, info ShardInfo) error {
	tensors, _, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		return fmt.Errorf("read feature shard: %w", err)
	}
	bad := func(format string, args ...any) error {
		return badinput.Errorf(path, format+"; recompute it with 'captionctl data features' (delete it first)", args...)
	}
	feats, idsT := tensors["features"], tensors["image_ids"]
	if feats == nil || idsT == nil {
		return bad("lacks the features or image_ids tensor")
	}
	if feats.DType != tensorfile.F16 || len(feats.Shape) != 3 {
		return bad("features tensor is %s %v, want F16 [n, grid², channels]", feats.DType, feats.Shape)
	}
	ids, err := idsT.Int64()
	if err != nil {
		return bad("%v", err)
	}
	n, cells, channels := feats.Shape[0], feats.Shape[1], feats.Shape[2]
	if n != len(ids) || n != info.Images {
		return bad("holds %d feature rows and %d image ids; the manifest says %d images", n, len(ids), info.Images)
	}
	if cells < 1 || channels < 1 {
		return bad("features tensor has shape %v", feats.Shape)
	}
	if len(fs.shards) == 0 {
		fs.Cells, fs.Channels = cells, channels
	} else if cells != fs.Cells || channels != fs.Channels {
		return bad("features are [%d, %d] per image, other shards [%d, %d]", cells, channels, fs.Cells, fs.Channels)
	}
	if len(feats.Data) != 2*n*cells*channels {
		return bad("features tensor has %d bytes, want %d", len(feats.Data), 2*n*cells*channels)
	}
	shard := len(fs.shards)
	for row, id := range ids {
		if _, dup := fs.index[id]; dup {
			return bad("image %d also appears in an earlier shard", id)
		}
		fs.index[id] = featureAt{shard, row}
		fs.ids = append(fs.ids, id)
	}
	fs.shards = append(fs.shards, feats.Data)
	return nil
}

// Len is the number of images.
func (fs *FeatureSet) Len() int { return len(fs.ids) }

// IDs returns the image ids in shard order (the slice is fs's own).
func (fs *FeatureSet) IDs() []int64 { return fs.ids }

// Has reports whether the set holds image id's features.
func (fs *FeatureSet) Has(id int64) bool {
	_, ok := fs.index[id]
	return ok
}

// Size is Cells·Channels, the float32 count of one image's features.
func (fs *FeatureSet) Size() int { return fs.Cells * fs.Channels }

// Fill converts image id's features to float32 into dst, which must hold
// Size() values laid out [cell][channel].
func (fs *FeatureSet) Fill(dst []float32, id int64) error {
	at, ok := fs.index[id]
	if !ok {
		return fmt.Errorf("features of split %s: no image %d", fs.Split, id)
	}
	n := fs.Size()
	if len(dst) != n {
		return fmt.Errorf("features of split %s: destination holds %d values, want %d", fs.Split, len(dst), n)
	}
	src := fs.shards[at.shard][2*n*at.row : 2*n*(at.row+1)]
	for i := range dst {
		dst[i] = tensorfile.F16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
	return nil
}
