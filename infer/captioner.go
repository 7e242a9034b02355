package infer

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
	"sync"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
)

// Captioner captions images, or their precomputed features, with one
// model file: the encoder and preprocessing it records and its decoder,
// searched as Options say (see captioner_search.go).
//
// A Captioner is safe for concurrent use: calls take turns. Close releases
// its compiled decoders.
type Captioner struct {
	model      *model.ModelFile
	encoder    *model.Encoder // nil when the model file has no encoder weights
	encoderErr error          // why encoder is nil

	mu       sync.Mutex
	steppers map[int]*model.DecoderStepper // by rows
}

// Result is one image's caption.
type Result struct {
	// Tokens are the caption's words, without <start> and <end>; empty,
	// never nil, for an empty caption.
	Tokens []string
	// Caption is Tokens joined by single spaces.
	Caption string
	// Score ranks captions: LogProb / len^A, len the number of tokens
	// counting <end>, A = Options.LengthPenalty.
	Score float64
	// LogProb is the sum of the tokens' log-probabilities, <end>'s
	// included when Complete.
	LogProb float64
	// Complete is false when no hypothesis reached <end> within MaxLen:
	// the caption is then the best partial one.
	Complete bool
	// Alphas holds, with Options.Attention and an attention decoder, the
	// attention weights (P = grid², position y·grid + x) under which each
	// word of Tokens was emitted (none for <end>); nil otherwise.
	Alphas [][]float32
	// Alternatives are the Options.Top best captions, best first: the
	// first is this result itself.
	Alternatives []Alternative
}

// Alternative is one of an image's best captions.
type Alternative struct {
	Caption  string
	Tokens   []string
	Score    float64
	LogProb  float64
	Complete bool
}

// LoadCaptioner reads a model file (model.LoadModel) and returns its
// Captioner. A model file without encoder weights (an older one) loads:
// it captions features, and CaptionImages says why it cannot caption
// images.
func LoadCaptioner(path string) (*Captioner, error) {
	m, err := model.LoadModel(path)
	if err != nil {
		return nil, err
	}
	c, err := NewCaptioner(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.encoderErr != nil {
		c.encoderErr = fmt.Errorf("%s: %w", path, c.encoderErr)
	}
	return c, nil
}

// NewCaptioner returns a Captioner for m, building its encoder when m has
// encoder weights. m must not be changed while the Captioner is in use.
func NewCaptioner(m *model.ModelFile) (*Captioner, error) {
	if m == nil || m.Params == nil || m.Vocab == nil {
		return nil, errors.New("new captioner: the model needs parameters and a vocabulary")
	}
	if err := m.Config.Validate(); err != nil {
		return nil, fmt.Errorf("new captioner: %w", err)
	}
	if m.Params.Config != m.Config || m.Vocab.Len() != m.Config.VocabSize {
		return nil, fmt.Errorf("new captioner: parameters (%v) or vocabulary (%d tokens) do not match the config %v", m.Params.Config, m.Vocab.Len(), m.Config)
	}
	c := &Captioner{model: m, steppers: map[int]*model.DecoderStepper{}}
	c.encoder, c.encoderErr = m.NewEncoder()
	if c.encoderErr == nil {
		if ch, g := c.encoder.Channels(), c.encoder.Grid(); ch != m.Config.FeatureDim || g*g != m.Config.GridCells {
			return nil, fmt.Errorf("new captioner: the encoder gives %d×%d×%d features, the decoder wants %d cells × %d", g, g, ch, m.Config.GridCells, m.Config.FeatureDim)
		}
	}
	return c, nil
}

// Model returns the model the Captioner uses.
func (c *Captioner) Model() *model.ModelFile { return c.model }

// Encoder returns the model's image encoder, or the error saying why
// there is none (wrapping model.ErrNoEncoderWeights for older files).
func (c *Captioner) Encoder() (*model.Encoder, error) { return c.encoder, c.encoderErr }

// Close releases the compiled decoders; the Captioner may still be used
// (it compiles them again).
func (c *Captioner) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for rows, s := range c.steppers {
		errs = append(errs, s.Close())
		delete(c.steppers, rows)
	}
	return errors.Join(errs...)
}

// searcher returns a searcher for `images` images per step with opt,
// compiling (once) a stepper of images × Beam rows. c.mu must be held.
func (c *Captioner) searcher(images int, opt Options) (*searcher, error) {
	rows := images * opt.Beam
	st, ok := c.steppers[rows]
	if !ok {
		var err error
		if st, err = model.NewDecoderStepper(c.model.Params, rows); err != nil {
			return nil, err
		}
		c.steppers[rows] = st
	}
	return newSearcher(st, opt)
}

// CaptionFeatures captions n images from their features, feats holding
// (n, P, F) float32 row-major (P grid cells, position y·grid + x; F
// channels: the feature store's layout), opt.Batch images at a time. The
// results are in the images' order.
func (c *Captioner) CaptionFeatures(ctx context.Context, feats []float32, n int, opt Options) ([]Result, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	cfg := c.model.Config
	size := cfg.GridCells * cfg.FeatureDim
	if n < 0 || len(feats) != n*size {
		return nil, fmt.Errorf("caption features: %d floats for %d images, want %d = %d × %d cells × %d", len(feats), n, n*size, n, cfg.GridCells, cfg.FeatureDim)
	}
	results := make([]Result, 0, n)
	if n == 0 {
		return results, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.searcher(min(opt.Batch, n), opt)
	if err != nil {
		return nil, err
	}
	for lo := 0; lo < n; lo += s.images {
		hi := min(lo+s.images, n)
		hyps, err := s.run(ctx, feats[lo*size:hi*size], hi-lo)
		if err != nil {
			return nil, err
		}
		for _, hs := range hyps {
			results = append(results, c.result(hs, opt))
		}
	}
	return results, nil
}

// CaptionImages captions decoded images: each is preprocessed as the
// model's features were (data.Preprocess with the model's preprocessing),
// encoded by the model's encoder and decoded, opt.Batch images at a time.
// The results are in the images' order. A model file without encoder
// weights gives an error wrapping model.ErrNoEncoderWeights.
func (c *Captioner) CaptionImages(ctx context.Context, imgs []image.Image, opt Options) ([]Result, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if c.encoder == nil {
		return nil, fmt.Errorf("caption images: %w", c.encoderErr)
	}
	for i, img := range imgs {
		if img == nil {
			return nil, fmt.Errorf("caption images: image %d is nil", i)
		}
	}
	results := make([]Result, 0, len(imgs))
	if len(imgs) == 0 {
		return results, nil
	}
	pre, err := data.NewPreprocessor(c.model.Encoder.Preprocess)
	if err != nil {
		return nil, fmt.Errorf("caption images: the model's preprocessing: %w", err)
	}
	if s := c.encoder.Config().ImageSize; s != pre.Config().ImageSize {
		return nil, fmt.Errorf("caption images: the encoder takes %d-pixel images, the preprocessing makes %d", s, pre.Config().ImageSize)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.searcher(min(opt.Batch, len(imgs)), opt)
	if err != nil {
		return nil, err
	}
	inLen := pre.Config().TensorLen()
	input := make([]float32, s.images*inLen)
	feats := make([]float32, s.images*c.encoder.FeatureLen())
	for lo := 0; lo < len(imgs); lo += s.images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+s.images, len(imgs))
		n := hi - lo
		for i, img := range imgs[lo:hi] {
			if err := pre.Into(input[i*inLen:(i+1)*inLen], img, data.CHW); err != nil {
				return nil, fmt.Errorf("caption images: image %d: %w", lo+i, err)
			}
		}
		if err := c.encoder.ForwardInto(feats, input[:n*inLen], n); err != nil {
			return nil, fmt.Errorf("caption images: %w", err)
		}
		hyps, err := s.run(ctx, feats[:n*c.encoder.FeatureLen()], n)
		if err != nil {
			return nil, err
		}
		for _, hs := range hyps {
			results = append(results, c.result(hs, opt))
		}
	}
	return results, nil
}

// result turns an image's ranked hypotheses into its Result.
func (c *Captioner) result(hyps []*hypothesis, opt Options) Result {
	alts := make([]Alternative, len(hyps))
	for i, h := range hyps {
		toks := tokens(c.model.Vocab, h.words)
		alts[i] = Alternative{Caption: strings.Join(toks, " "), Tokens: toks,
			Score: h.score(opt.LengthPenalty), LogProb: h.logProb, Complete: h.complete}
	}
	best := alts[0]
	r := Result{Tokens: best.Tokens, Caption: best.Caption, Score: best.Score, LogProb: best.LogProb,
		Complete: best.Complete, Alternatives: alts}
	if opt.Attention && c.model.Config.Arch == model.ArchAttention {
		r.Alphas = hyps[0].alphas
		if r.Alphas == nil {
			r.Alphas = [][]float32{}
		}
	}
	return r
}
