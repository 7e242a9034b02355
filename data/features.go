package data

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/progress"
)

// FeaturesFormat is the format tag of features/manifest.json and of every
// shard's metadata.
const FeaturesFormat = "captionctl-features/1"

// FeaturesDir is the feature store's directory inside a prepared dataset.
const FeaturesDir = "features"

// FeatureEncoder computes image features; model.Encoder implements it.
type FeatureEncoder interface {
	// Forward maps n preprocessed images, laid out as InputLayout says
	// (image after image), to features [n, Grid()*Grid(), Channels()].
	Forward(input []float32, n int) ([]float32, error)
	Channels() int
	Grid() int
	InputLayout() TensorLayout
}

// EncoderIdentity says which encoder made a feature store; stores made by
// different encoders never mix.
type EncoderIdentity struct {
	Arch          string           `json:"encoder"`
	WeightsSHA256 string           `json:"weights_sha256"` // "random:<seed>" for --weights random
	Pretrained    bool             `json:"pretrained"`
	Grid          int              `json:"grid"`
	Channels      int              `json:"channels"`
	Preprocess    PreprocessConfig `json:"preprocess"`
}

// FeaturesConfig configures ExtractFeatures.
type FeaturesConfig struct {
	Data           string   // prepared dataset directory
	Images         string   // images root; "" takes the dataset manifest's
	Splits         []string // default: train, val, test
	Batch          int      // images per forward pass
	Workers        int      // decoding goroutines; 0: GOMAXPROCS
	Shard, Shards  int      // compute only shards with index % Shards == Shard (Shards 0 or 1: all)
	Strict         bool     // a bad image is an error instead of a recorded skip
	ImagesPerShard int      // 0: about 128 MB of features per shard
	Identity       EncoderIdentity
}

// Validate checks the configuration; messages name the flag.
func (c FeaturesConfig) Validate() error {
	switch {
	case c.Data == "":
		return fmt.Errorf("--data DIR is required: a dataset made by 'captionctl data prepare'")
	case c.Batch < 1:
		return fmt.Errorf("--batch must be ≥ 1, got %d", c.Batch)
	case c.Workers < 0:
		return fmt.Errorf("--workers must be ≥ 0, got %d", c.Workers)
	case c.Shards < 0 || (c.Shards > 0 && (c.Shard < 0 || c.Shard >= c.Shards)):
		return fmt.Errorf("--shard must be i/n with 0 ≤ i < n, got %d/%d", c.Shard, c.Shards)
	case c.ImagesPerShard < 0:
		return fmt.Errorf("images per shard must be ≥ 0, got %d", c.ImagesPerShard)
	}
	for _, s := range c.Splits {
		if !slices.Contains(Splits, s) {
			return fmt.Errorf("--splits: unknown split %q: choose from train, val, test", s)
		}
	}
	return c.Identity.Preprocess.Validate()
}

// FeaturesManifest is features/manifest.json, written once every shard of
// every split exists.
type FeaturesManifest struct {
	Format         string          `json:"format"`
	Identity       EncoderIdentity `json:"identity"`
	DType          string          `json:"dtype"`
	ImagesPerShard int             `json:"images_per_shard"`
	Shards         []ShardInfo     `json:"shards"`
	Skipped        []Dropped       `json:"skipped"`
}

// ShardInfo describes one complete shard.
type ShardInfo struct {
	File   string `json:"file"`
	Split  string `json:"split"`
	Images int    `json:"images"`
	Bytes  int64  `json:"bytes"`
}

// FeaturesResult says what ExtractFeatures did.
type FeaturesResult struct {
	Computed, Verified, Left int // shards computed now, found complete, left to other machines
	Images                   int // images encoded now
	Skipped                  []Dropped
	Manifest                 *FeaturesManifest // nil until every shard exists
}

// shardPlan is one shard to have: its split, index and images.
type shardPlan struct {
	split  string
	index  int
	images []Image
}

func (p shardPlan) file() string { return fmt.Sprintf("%s-%05d.safetensors", p.split, p.index) }

// ExtractFeatures encodes every image of the chosen splits once and stores
// the features in F16 shards under DIR/features. A shard is written only
// when complete (atomically), so an interrupted run loses at most the shards
// in progress; a rerun verifies complete shards and computes the rest.
func ExtractFeatures(ctx context.Context, cfg FeaturesConfig, enc FeatureEncoder, rep progress.Reporter) (*FeaturesResult, error) {
	if len(cfg.Splits) == 0 {
		cfg.Splits = Splits
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep = progress.Or(rep)
	if enc.Grid() != cfg.Identity.Grid || enc.Channels() != cfg.Identity.Channels {
		return nil, fmt.Errorf("encoder gives %d×%d×%d features, the identity says %d×%d×%d",
			enc.Grid(), enc.Grid(), enc.Channels(), cfg.Identity.Grid, cfg.Identity.Grid, cfg.Identity.Channels)
	}
	if cfg.Images == "" {
		root, err := datasetImagesRoot(cfg.Data)
		if err != nil {
			return nil, err
		}
		cfg.Images = root
	}
	perImage := cfg.Identity.Grid * cfg.Identity.Grid * cfg.Identity.Channels
	if cfg.ImagesPerShard == 0 {
		cfg.ImagesPerShard = max(1, (128<<20)/(2*perImage))
	}
	dir := filepath.Join(cfg.Data, FeaturesDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	identity, err := json.Marshal(cfg.Identity)
	if err != nil {
		return nil, err
	}
	var plans []shardPlan
	for _, split := range cfg.Splits {
		images, err := ReadSplit(filepath.Join(cfg.Data, SplitFile(split)))
		if err != nil {
			return nil, err
		}
		for i := 0; i*cfg.ImagesPerShard < len(images); i++ {
			plans = append(plans, shardPlan{split: split, index: i, images: images[i*cfg.ImagesPerShard : min(len(images), (i+1)*cfg.ImagesPerShard)]})
		}
	}

	res := &FeaturesResult{}
	var pending []shardPlan
	var done []ShardInfo
	var skipped []Dropped
	rep.Start("verifying shards", int64(len(plans)))
	for k, p := range plans {
		info, sk, ok, err := verifyShard(filepath.Join(dir, p.file()), p, string(identity))
		if err != nil {
			rep.Done()
			return nil, err
		}
		switch {
		case ok:
			res.Verified++
			done = append(done, info)
			skipped = append(skipped, sk...)
		case cfg.Shards > 1 && k%cfg.Shards != cfg.Shard:
			res.Left++
		default:
			pending = append(pending, p)
		}
		rep.Add(1)
	}
	rep.Done()

	total := 0
	for _, p := range pending {
		total += len(p.images)
	}
	rep.Start("encoding images", int64(total))
	ex := newExtractor(ctx, cfg, enc, rep)
	for _, p := range pending {
		info, sk, err := ex.shard(dir, p, string(identity))
		if err != nil {
			rep.Done()
			return nil, err
		}
		res.Computed++
		res.Images += info.Images
		res.Skipped = append(res.Skipped, sk...)
		done = append(done, info)
		skipped = append(skipped, sk...)
	}
	rep.Done()

	if res.Left == 0 {
		slices.SortFunc(done, func(a, b ShardInfo) int { return strings.Compare(a.File, b.File) })
		m := &FeaturesManifest{Format: FeaturesFormat, Identity: cfg.Identity, DType: "F16", ImagesPerShard: cfg.ImagesPerShard, Shards: done, Skipped: skipped}
		if m.Skipped == nil {
			m.Skipped = []Dropped{}
		}
		if err := atomicfile.Write(filepath.Join(dir, ManifestFile), 0o644, func(w io.Writer) error { return writeJSON(w, m) }); err != nil {
			return nil, err
		}
		res.Manifest = m
	}
	return res, nil
}

// datasetImagesRoot reads the images root from a prepared dataset's
// manifest.
func datasetImagesRoot(dataDir string) (string, error) {
	path := filepath.Join(dataDir, ManifestFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", badinput.Errorf(path, "cannot read: %v; is --data a dataset made by 'captionctl data prepare'?", err)
	}
	var m struct {
		Format     string `json:"format"`
		ImagesRoot string `json:"images_root"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", badinput.JSON(path, raw, err)
	}
	if m.Format != ManifestFormat {
		return "", badinput.Errorf(path, "format %q, want %q", m.Format, ManifestFormat)
	}
	return m.ImagesRoot, nil
}

// ReadSplit reads a prepared split file (<split>.jsonl).
func ReadSplit(path string) ([]Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, badinput.Errorf(path, "cannot read: %v", err)
	}
	defer f.Close()
	var images []Image
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var im Image
		if err := json.Unmarshal(sc.Bytes(), &im); err != nil {
			e := badinput.JSON(path, sc.Bytes(), err)
			e.Line = line
			return nil, e
		}
		images = append(images, im)
	}
	if err := sc.Err(); err != nil {
		return nil, badinput.Errorf(path, "read: %v", err)
	}
	return images, nil
}

// shardMeta is what a shard's safetensors metadata holds.
type shardMeta struct {
	Format   string    `json:"format"`
	Identity string    `json:"identity"` // the EncoderIdentity as JSON
	Split    string    `json:"split"`
	Index    int       `json:"index"`
	Skipped  []Dropped `json:"skipped"`
}

// verifyShard checks a shard that exists: made by the same encoder, for the
// images planned (less those it records as skipped), with the right shapes.
// ok is false when the shard does not exist; a shard that exists but does
// not fit is an error naming it.
func verifyShard(path string, p shardPlan, identity string) (ShardInfo, []Dropped, bool, error) {
	st, err := os.Stat(path)
	if os.IsNotExist(err) {
		return ShardInfo{}, nil, false, nil
	}
	if err != nil {
		return ShardInfo{}, nil, false, err
	}
	tensors, meta, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		return ShardInfo{}, nil, false, fmt.Errorf("%w; delete the shard to recompute it", err)
	}
	bad := func(format string, args ...any) (ShardInfo, []Dropped, bool, error) {
		return ShardInfo{}, nil, false, badinput.Errorf(path, format+"; delete it to recompute it, or use another dataset copy", args...)
	}
	var m shardMeta
	if err := json.Unmarshal([]byte(meta["captionctl"]), &m); err != nil || m.Format != FeaturesFormat {
		return bad("not a captionctl feature shard")
	}
	if m.Identity != identity {
		return ShardInfo{}, nil, false, badinput.Errorf(path, "made by another encoder or preprocessing (%s), not %s; a feature store holds one encoder's features: remove %s, or prepare a copy of the dataset, to extract these",
			m.Identity, identity, filepath.Dir(path))
	}
	ids, feats := tensors["image_ids"], tensors["features"]
	if ids == nil || feats == nil {
		return bad("lacks the image_ids or features tensor")
	}
	got, err := ids.Int64()
	if err != nil {
		return bad("%v", err)
	}
	skippedIDs := make(map[int64]bool, len(m.Skipped))
	for _, d := range m.Skipped {
		skippedIDs[d.ImageID] = true
	}
	var want []int64
	for _, im := range p.images {
		if !skippedIDs[im.ImageID] {
			want = append(want, im.ImageID)
		}
	}
	if !slices.Equal(got, want) {
		return bad("holds other images than the dataset's %s split assigns it (the dataset was prepared again?)", p.split)
	}
	if feats.DType != tensorfile.F16 || len(feats.Shape) != 3 || feats.Shape[0] != len(want) {
		return bad("features tensor is %s %v, want F16 [%d, grid², channels]", feats.DType, feats.Shape, len(want))
	}
	return ShardInfo{File: filepath.Base(path), Split: p.split, Images: len(want), Bytes: st.Size()}, m.Skipped, true, nil
}

// extractor runs the decode → preprocess → encode pipeline.
type extractor struct {
	ctx    context.Context
	cfg    FeaturesConfig
	enc    FeatureEncoder
	rep    progress.Reporter
	inLen  int // floats per preprocessed image
	outLen int // floats per image's features
}

func newExtractor(ctx context.Context, cfg FeaturesConfig, enc FeatureEncoder, rep progress.Reporter) *extractor {
	return &extractor{ctx: ctx, cfg: cfg, enc: enc, rep: rep,
		inLen: cfg.Identity.Preprocess.TensorLen(), outLen: enc.Grid() * enc.Grid() * enc.Channels()}
}

// batch is a set of preprocessed images ready for the encoder.
type batch struct {
	input []float32
	ids   []int64
	err   error
}

// shard computes and writes one shard.
func (x *extractor) shard(dir string, p shardPlan, identity string) (ShardInfo, []Dropped, error) {
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	batches := make(chan *batch, 1) // one batch decodes while the encoder runs the previous one
	var skipped []Dropped
	var skipMu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		x.loadBatches(ctx, p, batches, func(d Dropped) {
			skipMu.Lock()
			skipped = append(skipped, d)
			skipMu.Unlock()
		})
	}()
	// Drain and join the loader whatever happens below.
	defer func() {
		cancel()
		for range batches {
		}
		wg.Wait()
	}()

	f16 := make([]byte, 0, 2*len(p.images)*x.outLen) // little-endian IEEE halves
	var ids []int64
	for b := range batches {
		if b.err != nil {
			return ShardInfo{}, nil, b.err
		}
		if len(b.ids) > 0 {
			out, err := x.enc.Forward(b.input, len(b.ids))
			if err != nil {
				return ShardInfo{}, nil, fmt.Errorf("encode %s: %w", p.file(), err)
			}
			for _, v := range out[:len(b.ids)*x.outLen] {
				h := tensorfile.Float32ToF16(v)
				f16 = append(f16, byte(h), byte(h>>8))
			}
			ids = append(ids, b.ids...)
		}
		x.rep.Add(int64(len(b.ids)))
	}
	if err := ctx.Err(); err != nil {
		return ShardInfo{}, nil, err
	}
	skipMu.Lock()
	defer skipMu.Unlock()
	// Skips in dataset order, whatever order the workers met them in.
	order := make(map[int64]int, len(p.images))
	for i, im := range p.images {
		order[im.ImageID] = i
	}
	slices.SortFunc(skipped, func(a, b Dropped) int { return order[a.ImageID] - order[b.ImageID] })
	if skipped == nil {
		skipped = []Dropped{}
	}
	meta, err := json.Marshal(shardMeta{Format: FeaturesFormat, Identity: identity, Split: p.split, Index: p.index, Skipped: skipped})
	if err != nil {
		return ShardInfo{}, nil, err
	}
	g := x.enc.Grid()
	feats := &tensorfile.Tensor{Name: "features", DType: tensorfile.F16, Shape: []int{len(ids), g * g, x.enc.Channels()}, Data: f16}
	idTensor := tensorfile.NewI64("image_ids", []int{len(ids)}, ids)
	path := filepath.Join(dir, p.file())
	if err := tensorfile.WriteSafetensors(path, []*tensorfile.Tensor{feats, idTensor}, map[string]string{"captionctl": string(meta)}); err != nil {
		return ShardInfo{}, nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return ShardInfo{}, nil, err
	}
	return ShardInfo{File: p.file(), Split: p.split, Images: len(ids), Bytes: st.Size()}, skipped, nil
}

// loadBatches decodes and preprocesses a shard's images on worker
// goroutines and sends them in batches, in dataset order.
func (x *extractor) loadBatches(ctx context.Context, p shardPlan, out chan<- *batch, skip func(Dropped)) {
	workers := x.cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	layout := x.enc.InputLayout()
	pre := make([]*Preprocessor, workers)
	for i := range pre {
		var err error
		if pre[i], err = NewPreprocessor(x.cfg.Identity.Preprocess); err != nil {
			out <- &batch{err: err}
			return
		}
	}
	for start := 0; start < len(p.images); start += x.cfg.Batch {
		images := p.images[start:min(len(p.images), start+x.cfg.Batch)]
		input := make([]float32, len(images)*x.inLen)
		ok := make([]bool, len(images))
		errs := make([]error, len(images))
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					path := filepath.Join(x.cfg.Images, filepath.FromSlash(images[i].File))
					img, err := DecodeImage(path)
					if err == nil {
						err = pre[w].Into(input[i*x.inLen:(i+1)*x.inLen], img, layout)
					}
					if err != nil {
						errs[i] = err
						continue
					}
					ok[i] = true
				}
			}()
		}
		for i := range images {
			if ctx.Err() != nil {
				break
			}
			next <- i
		}
		close(next)
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return
		}
		b := &batch{input: input[:0]}
		for i, im := range images {
			if !ok[i] {
				var bad *badinput.Error
				if x.cfg.Strict || !errors.As(errs[i], &bad) {
					out <- &batch{err: fmt.Errorf("image %d: %w", im.ImageID, errs[i])}
					return
				}
				skip(Dropped{Kind: "image", Split: p.split, ImageID: im.ImageID, File: im.File, Reason: bad.Msg})
				continue
			}
			b.input = append(b.input, input[i*x.inLen:(i+1)*x.inLen]...)
			b.ids = append(b.ids, im.ImageID)
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
	}
}

// SHA256File hashes a file (the encoder weights, for the identity).
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
