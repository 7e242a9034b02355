package data

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

// FeatureSet is one split's cached image features, read by LoadFeatures
// or opened by OpenFeatures. Loaded, the features stay in memory as the
// shards store them (F16, half the bytes of float32); opened, only the
// shards' headers and image ids are in memory and each Fill reads one
// image's rows from its shard file. Either way they are converted to
// float32 only when a batch is filled, image by image.
type FeatureSet struct {
	Split    string
	Cells    int // grid² cells per image (P)
	Channels int // features per cell (F)

	shards [][]byte            // loaded: per shard, the features tensor's F16 bytes
	files  []shardFile         // opened: per shard, the file and the features' offset
	index  map[int64]featureAt // image id → shard and row
	ids    []int64             // image ids in shard order
	// scratch holds *[]byte buffers of one image's F16 bytes for Fill on
	// an opened set.
	scratch sync.Pool
}

// shardFile is an opened shard: its features tensor starts at byte offset
// of f.
type shardFile struct {
	f      *os.File
	path   string
	offset int64
}

type featureAt struct{ shard, row int }

// LoadFeatures reads every shard of split listed in
// dataDir/features/manifest.json into memory. Errors name the manifest or
// the shard at fault and say what to do. OpenFeatures reads the same
// shards without holding their features in memory.
func LoadFeatures(dataDir, split string) (*FeatureSet, error) {
	return readFeatureStore(dataDir, split, false)
}

// OpenFeatures opens every shard of split listed in
// dataDir/features/manifest.json for streaming: it reads and checks each
// shard's header and image ids only, and each Fill reads one image's rows
// from its shard (a positioned read of Size()·2 bytes), so memory does not
// grow with the split or with use; the operating system's page cache
// keeps what fits. Close releases the files. Errors are LoadFeatures'.
func OpenFeatures(dataDir, split string) (*FeatureSet, error) {
	return readFeatureStore(dataDir, split, true)
}

func readFeatureStore(dataDir, split string, stream bool) (*FeatureSet, error) {
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
	shards := 0
	for _, info := range m.Shards {
		if info.Split != split {
			continue
		}
		path := filepath.Join(dir, info.File)
		if filepath.Base(info.File) != info.File {
			fs.Close()
			return nil, badinput.Errorf(manifestPath, "shard file %q is not a plain file name", info.File)
		}
		if stream {
			err = fs.openShard(path, info)
		} else {
			err = fs.addShard(path, info)
		}
		if err != nil {
			fs.Close()
			return nil, err
		}
		shards++
	}
	if shards == 0 {
		return nil, badinput.Errorf(manifestPath, "lists no shard of split %q; run 'captionctl data features' for it", split)
	}
	if stream {
		n := 2 * fs.Size()
		fs.scratch.New = func() any {
			b := make([]byte, n)
			return &b
		}
	}
	return fs, nil
}

// Close releases an opened set's shard files; a loaded set has none. The
// set must not be used after.
func (fs *FeatureSet) Close() error {
	var first error
	for _, sf := range fs.files {
		if err := sf.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	fs.files = nil
	return first
}

func (fs *FeatureSet) addShard(path string, info ShardInfo) error {
	tensors, _, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		return fmt.Errorf("read feature shard: %w", err)
	}
	feats, idsT := tensors["features"], tensors["image_ids"]
	if feats == nil || idsT == nil {
		return badShard(path, "lacks the features or image_ids tensor")
	}
	ids, err := idsT.Int64()
	if err != nil {
		return badShard(path, "%v", err)
	}
	if err := fs.addIndex(path, info, feats.DType, feats.Shape, int64(len(feats.Data)), ids); err != nil {
		return err
	}
	fs.shards = append(fs.shards, feats.Data)
	return nil
}

// maxShardHeader bounds a shard's safetensors header, as tensorfile does.
const maxShardHeader = 100 << 20

// openShard opens the shard at path for streaming: it reads its
// safetensors header and image ids, checks them as addShard does, and
// keeps the file open with the features tensor's offset.
func (fs *FeatureSet) openShard(path string, info ShardInfo) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read feature shard: read %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read feature shard: read %s: %w", path, err)
	}
	var lenBuf [8]byte
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return badShard(path, "truncated safetensors file: %d bytes, no header length", st.Size())
	}
	hn := binary.LittleEndian.Uint64(lenBuf[:])
	if hn > maxShardHeader || int64(hn) > st.Size()-8 {
		return badShard(path, "safetensors header claims %d bytes of a %d-byte file: truncated or not a safetensors file", hn, st.Size())
	}
	header := make([]byte, hn)
	if _, err := f.ReadAt(header, 8); err != nil {
		return fmt.Errorf("read feature shard: read %s: %w", path, err)
	}
	type entry struct {
		DType       tensorfile.DType `json:"dtype"`
		Shape       []int            `json:"shape"`
		DataOffsets []int64          `json:"data_offsets"`
	}
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(header, &entries); err != nil {
		return badShard(path, "safetensors header: %v", err)
	}
	dataStart, dataLen := 8+int64(hn), st.Size()-8-int64(hn)
	get := func(name string) (entry, error) {
		var e entry
		raw, ok := entries[name]
		if !ok {
			return e, badShard(path, "lacks the features or image_ids tensor")
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return e, badShard(path, "safetensors header: tensor %q: %v", name, err)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] < 0 || e.DataOffsets[0] > e.DataOffsets[1] || e.DataOffsets[1] > dataLen {
			return e, badShard(path, "tensor %q: data_offsets %v outside the %d data bytes (truncated file?)", name, e.DataOffsets, dataLen)
		}
		return e, nil
	}
	feats, err := get("features")
	if err != nil {
		return err
	}
	idsE, err := get("image_ids")
	if err != nil {
		return err
	}
	if idsE.DType != tensorfile.I64 || len(idsE.Shape) != 1 || idsE.Shape[0] < 0 || idsE.DataOffsets[1]-idsE.DataOffsets[0] != 8*int64(idsE.Shape[0]) {
		return badShard(path, "image_ids tensor is %s %v over %d bytes, want I64 [n]", idsE.DType, idsE.Shape, idsE.DataOffsets[1]-idsE.DataOffsets[0])
	}
	raw := make([]byte, idsE.DataOffsets[1]-idsE.DataOffsets[0])
	if _, err := f.ReadAt(raw, dataStart+idsE.DataOffsets[0]); err != nil {
		return fmt.Errorf("read feature shard: read %s: image_ids: %w", path, err)
	}
	ids := make([]int64, len(raw)/8)
	for i := range ids {
		ids[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
	}
	if err := fs.addIndex(path, info, feats.DType, feats.Shape, feats.DataOffsets[1]-feats.DataOffsets[0], ids); err != nil {
		return err
	}
	fs.files = append(fs.files, shardFile{f: f, path: path, offset: dataStart + feats.DataOffsets[0]})
	return nil
}

// badShard is the error for a shard that cannot be used.
func badShard(path, format string, args ...any) error {
	return badinput.Errorf(path, format+"; recompute it with 'captionctl data features' (delete it first)", args...)
}

// addIndex checks a shard's features tensor (dtype, shape, byte length)
// and image ids against the manifest and the other shards and indexes the
// ids as the next shard's rows.
func (fs *FeatureSet) addIndex(path string, info ShardInfo, dtype tensorfile.DType, shape []int, bytes int64, ids []int64) error {
	if dtype != tensorfile.F16 || len(shape) != 3 {
		return badShard(path, "features tensor is %s %v, want F16 [n, grid², channels]", dtype, shape)
	}
	n, cells, channels := shape[0], shape[1], shape[2]
	if n != len(ids) || n != info.Images {
		return badShard(path, "holds %d feature rows and %d image ids; the manifest says %d images", n, len(ids), info.Images)
	}
	if cells < 1 || channels < 1 {
		return badShard(path, "features tensor has shape %v", shape)
	}
	if len(fs.shards)+len(fs.files) == 0 {
		fs.Cells, fs.Channels = cells, channels
	} else if cells != fs.Cells || channels != fs.Channels {
		return badShard(path, "features are [%d, %d] per image, other shards [%d, %d]", cells, channels, fs.Cells, fs.Channels)
	}
	// The product is checked step by step: header shapes are untrusted and
	// must not overflow into a match.
	want := int64(2)
	for _, d := range shape {
		if d > 0 && want > bytes/int64(d) {
			return badShard(path, "features tensor %v needs more than its %d bytes", shape, bytes)
		}
		want *= int64(d)
	}
	if bytes != want {
		return badShard(path, "features tensor has %d bytes, want %d", bytes, want)
	}
	shard := len(fs.shards) + len(fs.files)
	for row, id := range ids {
		if _, dup := fs.index[id]; dup {
			return badShard(path, "image %d also appears in an earlier shard", id)
		}
		fs.index[id] = featureAt{shard, row}
		fs.ids = append(fs.ids, id)
	}
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
	if fs.files == nil {
		if fs.shards == nil {
			return fmt.Errorf("features of split %s: used after Close", fs.Split)
		}
		f16ToFloat32s(dst, fs.shards[at.shard][2*n*at.row:2*n*(at.row+1)])
		return nil
	}
	sf := fs.files[at.shard]
	buf := fs.scratch.Get().(*[]byte)
	defer fs.scratch.Put(buf)
	if _, err := sf.f.ReadAt(*buf, sf.offset+2*int64(n)*int64(at.row)); err != nil {
		return fmt.Errorf("read features of image %d from %s: %w", id, sf.path, err)
	}
	f16ToFloat32s(dst, *buf)
	return nil
}

// f16ToFloat32s converts the little-endian F16 values of src into dst.
func f16ToFloat32s(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = tensorfile.F16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}
