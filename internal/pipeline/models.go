package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/eval"
	"github.com/captionctl/captionctl/infer"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/model"
	"github.com/captionctl/captionctl/train"
)

// The trained models, by ModelResult.Name.
const (
	ModelAttention = "attention" // Show, Attend and Tell on the real features
	ModelBlind     = "blind"     // the same decoder on all-zero features
	ModelShowTell  = "showtell"  // Show and Tell on the real features
)

// Files of a model's directory.
const (
	ModelFile   = "model.safetensors"
	CurvesFile  = "curves.png"
	ResultsFile = "test_results.json"
)

// ModelResult is one trained and evaluated decoder.
type ModelResult struct {
	Name    string
	Arch    string
	Dir     string
	Model   string // its model file
	Curves  string // loss and val scores per epoch
	Results string // the test captions, COCO results format
	// Params is the decoder's parameter count.
	Params int
	// Epochs is the number of epochs begun, Steps the batches run, Stop
	// why training stopped early ("" when all Config.Epochs ran).
	Epochs, Steps int
	Stop          string
	// TrainSeconds is the wall time of training, validation included.
	TrainSeconds float64
	// Loss is the last epoch's mean training loss (teacher-forced
	// cross-entropy per token, plus the attention penalty when AlphaC >
	// 0).
	Loss float64
	// ValCIDEr is the best epoch's val CIDEr-D (greedy), which picked the
	// model.
	ValCIDEr float64
	// Test scores the model's beam-search captions of the test split
	// (0–1, CIDEr-D 0–10).
	Test *eval.Report
	// Captions are its test captions by image id.
	Captions map[int64]string

	dataDir string // the dataset with the features it was trained on
}

func (r *runner) trainAttention(ctx context.Context) error {
	m, err := r.train(ctx, ModelAttention, model.ArchAttention, r.res.Data, r.cfg.trainConfig(model.ArchAttention))
	if err != nil {
		return err
	}
	r.res.Models = append(r.res.Models, m)
	return nil
}

func (r *runner) trainBlind(ctx context.Context) error {
	m, err := r.train(ctx, ModelBlind, model.ArchAttention, r.blindData, r.cfg.trainConfig(model.ArchAttention))
	if err != nil {
		return err
	}
	r.res.Models = append(r.res.Models, m)
	return nil
}

// trainShowTell trains Show and Tell for the wall time the attention
// decoder took, however many epochs that is.
func (r *runner) trainShowTell(ctx context.Context) error {
	cfg := r.cfg.trainConfig(model.ArchShowTell)
	cfg.TimeLimit = time.Duration(r.res.Model(ModelAttention).TrainSeconds * float64(time.Second))
	cfg.Epochs = 100 * r.cfg.Epochs
	m, err := r.train(ctx, ModelShowTell, model.ArchShowTell, r.res.Data, cfg)
	if err != nil {
		return err
	}
	r.res.Models = append(r.res.Models, m)
	return nil
}

// train trains one decoder on dataDir's features into DIR/name and saves
// its best epoch's model, with the encoder's weights unless it is the
// blind baseline.
func (r *runner) train(ctx context.Context, name, arch, dataDir string, cfg train.Config) (*ModelResult, error) {
	dir := r.path(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := train.Train(ctx, cfg, dataDir, r.rep)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	if len(res.Epochs) == 0 {
		return nil, fmt.Errorf("%s: no batch was trained", name)
	}
	mr := &ModelResult{
		Name: name, Arch: arch, Dir: dir, Model: filepath.Join(dir, ModelFile), Curves: filepath.Join(dir, CurvesFile),
		Params: res.Params.Count(), Epochs: len(res.Epochs), Steps: res.Steps, Stop: res.Stop, TrainSeconds: secs,
		dataDir: dataDir,
	}
	if err := train.WriteCurves(mr.Curves, res.Epochs); err != nil {
		return nil, err
	}
	last := res.Epochs[len(res.Epochs)-1]
	mr.Loss = last.Loss
	m := &model.ModelFile{
		Config: res.Decoder, Params: res.Params, Vocab: res.Vocab, Encoder: r.identity,
		Provenance: model.Provenance{Seed: cfg.Seed, Epoch: last.Epoch, Steps: res.Steps, Selection: "last",
			Metrics: map[string]float64{"train_loss": last.Loss}},
	}
	if sha, err := data.SHA256File(filepath.Join(dataDir, data.ManifestFile)); err == nil {
		m.Provenance.DataManifestSHA256 = sha
	}
	if res.Best != nil && res.BestParams != nil {
		m.Params = res.BestParams
		m.Provenance.Epoch, m.Provenance.Selection = res.Best.Epoch, "best"
		m.Provenance.Metrics = map[string]float64{"val_bleu4": res.Best.Bleu4, "val_cider": res.Best.CIDEr}
		mr.ValCIDEr = res.Best.CIDEr
	}
	if name == ModelBlind {
		// It never looked at an image: it gets no encoder, and an identity
		// that matches only its own all-zero features.
		m.Encoder.WeightsSHA256 = blindWeightsID
	} else if m.EncoderWeights, err = model.EncoderStateDict(r.identity, ""); err != nil {
		return nil, err
	}
	if err := model.SaveModel(mr.Model, m); err != nil {
		return nil, err
	}
	return mr, nil
}

// evaluate captions the test split of every model from its cached
// features by beam search, writes the captions and scores them, as
// `captionctl eval --model` does.
func (r *runner) evaluate(ctx context.Context) error {
	refs, err := eval.ReadRefs(filepath.Join(r.res.Data, data.RefsFile("test")))
	if err != nil {
		return err
	}
	images, err := data.ReadSplit(filepath.Join(r.res.Data, data.SplitFile("test")))
	if err != nil {
		return err
	}
	for _, m := range r.res.Models {
		if err := r.evaluateModel(ctx, m, refs, images); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return nil
}

// searchOptions are the test captions' beam search options.
func (r *runner) searchOptions() infer.Options {
	opt := infer.DefaultOptions()
	opt.Beam, opt.MaxLen = r.cfg.Beam, 20
	return opt
}

func (r *runner) evaluateModel(ctx context.Context, m *ModelResult, refs *eval.Refs, images []data.Image) error {
	captioner, err := infer.LoadCaptioner(m.Model)
	if err != nil {
		return err
	}
	defer captioner.Close()
	fs, err := data.OpenFeatures(m.dataDir, "test")
	if err != nil {
		return err
	}
	defer fs.Close()
	var ids []int64
	for _, im := range images {
		if fs.Has(im.ImageID) {
			ids = append(ids, im.ImageID)
		}
	}
	opt := r.searchOptions()
	r.rep.Start(fmt.Sprintf("captioning test (%s)", m.Name), int64(len(ids)))
	defer r.rep.Done()
	size := fs.Size()
	chunk := 8 * opt.Batch
	feats := make([]float32, min(chunk, len(ids))*size)
	results := make([]eval.Result, 0, len(ids))
	m.Captions = make(map[int64]string, len(ids))
	for lo := 0; lo < len(ids); lo += chunk {
		hi := min(lo+chunk, len(ids))
		for i, id := range ids[lo:hi] {
			if err := fs.Fill(feats[i*size:(i+1)*size], id); err != nil {
				return err
			}
		}
		res, err := captioner.CaptionFeatures(ctx, feats[:(hi-lo)*size], hi-lo, opt)
		if err != nil {
			return err
		}
		for i, c := range res {
			results = append(results, eval.Result{ImageID: ids[lo+i], Caption: c.Caption})
			m.Captions[ids[lo+i]] = c.Caption
		}
		r.rep.Add(int64(hi - lo))
	}
	m.Results = filepath.Join(m.Dir, ResultsFile)
	if err := atomicfile.Write(m.Results, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(results)
	}); err != nil {
		return err
	}
	m.Test, err = eval.ScoreResults(ctx, refs, results, m.Results, eval.Options{})
	return err
}
