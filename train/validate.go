package train

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/infer"
	"github.com/captionctl/captionctl/metrics"
	"github.com/captionctl/captionctl/model"
	"github.com/captionctl/captionctl/progress"
)

// Model selection criteria (Config.SelectBy, --select-by).
const (
	SelectCIDEr = "cider"
	SelectBleu4 = "bleu4"
)

// BestEpoch is the epoch whose parameters scored best on the val split by
// Config.SelectBy.
type BestEpoch struct {
	Epoch int
	Bleu4 float64 // corpus BLEU-4 of greedy captions, in [0, 1]
	CIDEr float64 // CIDEr-D of greedy captions, in [0, 10]
}

// validator decodes the val split greedily and scores the captions.
type validator struct {
	feats  *data.FeatureSet
	ids    []int64
	refs   map[int64][]string
	vocab  *data.Vocab
	maxLen int
	batch  int
	beam   int // beam width; ≤ 1: greedy
}

// newValidator prepares validation on dataDir's val split. It returns a
// nil validator and a note saying why when the dataset has no val split,
// no val features or no val image with both features and references; a
// val split whose files are present but unreadable is an error.
func newValidator(dataDir string, vocab *data.Vocab, dcfg model.DecoderConfig, cfg Config) (*validator, string, error) {
	splitPath := filepath.Join(dataDir, data.SplitFile("val"))
	if _, err := os.Stat(splitPath); os.IsNotExist(err) {
		return nil, "no validation: the dataset has no val split (" + data.SplitFile("val") + ")", nil
	}
	has, err := hasValFeatures(dataDir)
	if err != nil {
		return nil, "", err
	}
	if !has {
		return nil, "no validation: the dataset has no val features; run 'captionctl data features' for the val split", nil
	}
	images, err := data.ReadSplit(splitPath)
	if err != nil {
		return nil, "", err
	}
	feats, err := data.OpenFeatures(dataDir, "val")
	if err != nil {
		return nil, "", err
	}
	if feats.Cells != dcfg.GridCells || feats.Channels != dcfg.FeatureDim {
		feats.Close()
		return nil, "", fmt.Errorf("val features of %s are %d×%d, the train features %d×%d", dataDir, feats.Cells, feats.Channels, dcfg.GridCells, dcfg.FeatureDim)
	}
	v := &validator{feats: feats, refs: map[int64][]string{}, vocab: vocab, maxLen: cfg.ValMaxLen, batch: cfg.Batch, beam: cfg.ValBeam}
	for _, im := range images {
		if !feats.Has(im.ImageID) {
			continue
		}
		// The split's tokens are the PTB tokenizer's output, so joined by
		// spaces they are what metrics expects.
		var refs []string
		for _, toks := range im.Tokens {
			if len(toks) > 0 {
				refs = append(refs, strings.Join(toks, " "))
			}
		}
		if len(refs) == 0 {
			continue
		}
		if _, dup := v.refs[im.ImageID]; dup {
			continue
		}
		v.ids = append(v.ids, im.ImageID)
		v.refs[im.ImageID] = refs
	}
	if len(v.ids) == 0 {
		feats.Close()
		return nil, "no validation: no val image has both features and reference captions", nil
	}
	return v, "", nil
}

// close releases the val features' shard files.
func (v *validator) close() { v.feats.Close() }

// hasValFeatures reports whether dataDir's features manifest lists a val
// shard.
func hasValFeatures(dataDir string) (bool, error) {
	path := filepath.Join(dataDir, data.FeaturesDir, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	var m data.FeaturesManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	for _, s := range m.Shards {
		if s.Split == "val" {
			return true, nil
		}
	}
	return false, nil
}

// run captions the val images with params, greedily or by beam search of
// width v.beam, and returns corpus BLEU-4 and CIDEr-D.
func (v *validator) run(ctx context.Context, params *model.DecoderParams) (bleu4, cider float64, err error) {
	var caps map[int64][]string
	if v.beam > 1 {
		caps, err = infer.Beam(params, v.feats, v.ids, v.vocab, v.maxLen, v.beam, v.batch)
	} else {
		caps, err = infer.Greedy(params, v.feats, v.ids, v.vocab, v.maxLen, v.batch)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("validation: %w", err)
	}
	images := make([]metrics.Image, len(v.ids))
	for i, id := range v.ids {
		images[i] = metrics.Image{ID: id, Candidate: strings.Join(caps[id], " "), Refs: v.refs[id]}
	}
	rep, err := metrics.Score(ctx, images, metrics.Options{Metrics: []metrics.Metric{metrics.BLEU, metrics.CIDEr}})
	if err != nil {
		return 0, 0, fmt.Errorf("validation: %w", err)
	}
	return rep.Corpus.Bleu[3], rep.Corpus.CIDEr, nil
}

// selectScore is the score that cfg.SelectBy ranks epochs by.
func (c Config) selectScore(bleu4, cider float64) float64 {
	if c.SelectBy == SelectBleu4 {
		return bleu4
	}
	return cider
}

// copyParams copies src's values into dst, allocating dst (same
// configuration and type) when nil.
func copyParams(dst, src *model.DecoderParams) (*model.DecoderParams, error) {
	if dst == nil {
		var err error
		if dst, err = model.NewDecoderParamsZero(src.Config, src.Dtype); err != nil {
			return nil, err
		}
	}
	d, s := dst.Tensors(), src.Tensors()
	if len(d) != len(s) {
		return nil, fmt.Errorf("copy parameters: %d tensors into %d", len(s), len(d))
	}
	for i := range s {
		switch sv := s[i].Tensor.Data().(type) {
		case []float32:
			copy(d[i].Tensor.Data().([]float32), sv)
		case []float64:
			copy(d[i].Tensor.Data().([]float64), sv)
		default:
			return nil, fmt.Errorf("copy parameters: %s has type %v", s[i].Name, s[i].Tensor.Dtype())
		}
	}
	return dst, nil
}

// validate scores res.Params on the val split into st and keeps a copy of
// the parameters when they are the best so far.
func (res *Result) validate(ctx context.Context, st *EpochStats, v *validator, rep progress.Reporter) error {
	rep.Start(fmt.Sprintf("validate %d", st.Epoch), 0)
	bleu4, cider, err := v.run(ctx, res.Params)
	rep.Done()
	if err != nil {
		return err
	}
	st.Validated, st.Bleu4, st.CIDEr = true, bleu4, cider
	cfg := res.Config
	if res.Best != nil && !(cfg.selectScore(bleu4, cider) > cfg.selectScore(res.Best.Bleu4, res.Best.CIDEr)) {
		return nil
	}
	if res.BestParams, err = copyParams(res.BestParams, res.Params); err != nil {
		return err
	}
	res.Best = &BestEpoch{Epoch: st.Epoch, Bleu4: bleu4, CIDEr: cider}
	return nil
}
