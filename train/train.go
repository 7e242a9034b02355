package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/model"
	"github.com/captionctl/captionctl/progress"
	"gorgonia.org/tensor"
)

// ErrNonFiniteLoss stops a run whose loss became NaN or ±Inf at Step (the
// 1-based count of batches run).
type ErrNonFiniteLoss struct {
	Step int
	Loss float64
}

func (e ErrNonFiniteLoss) Error() string {
	return fmt.Sprintf("training diverged: loss %v at step %d; try a lower --lr or --grad-clip", e.Loss, e.Step)
}

// EpochStats summarises one epoch (possibly cut short by MaxSteps).
type EpochStats struct {
	Epoch    int     // 1-based
	Loss     float64 // mean of the batch losses
	Batches  int
	Captions int
	Seconds  float64
	LR       float64 // Adam's learning rate during the epoch
	// Validated says whether the val split was decoded after this epoch;
	// then Bleu4 (in [0, 1]) and CIDEr (CIDEr-D, in [0, 10]) are its scores.
	Validated bool
	Bleu4     float64
	CIDEr     float64
}

// EpochReporter is an optional extension of progress.Reporter: when the
// Reporter given to Train implements it, Epoch receives each epoch's
// statistics as the epoch ends.
type EpochReporter interface {
	Epoch(EpochStats)
}

// Result is what Train did.
type Result struct {
	Config  Config
	Decoder model.DecoderConfig
	Params  *model.DecoderParams
	Vocab   *data.Vocab
	Epochs  []EpochStats
	Steps   int // batches run in all
	Pairs   int // (image, caption) pairs per epoch
	// Skipped counts train images without features (skipped by the
	// feature extractor), left out of training.
	Skipped int
	// ValNote says why there was no validation (no val split or no val
	// features); empty when the val split was decoded after each epoch.
	ValNote string
	// Best is the best validated epoch by Config.SelectBy and BestParams a
	// copy of its parameters; nil without validation.
	Best       *BestEpoch
	BestParams *model.DecoderParams
	// Stop says why the run ended before cfg.Epochs epochs: StopMaxSteps,
	// StopTimeLimit or StopPatience; empty when all epochs ran.
	Stop string
}

// Reasons for ending a run early (Result.Stop).
const (
	StopMaxSteps  = "max-steps"
	StopTimeLimit = "time-limit"
	StopPatience  = "patience"
)

// Train trains a decoder on dataDir's train split (vocab.json, train.jsonl
// and the feature store). It stops after cfg.Epochs epochs, after
// cfg.MaxSteps batches, after the batch that exceeds cfg.TimeLimit, after
// cfg.Patience epochs without val improvement, or when ctx is done (returning ctx's error with the
// result so far).
func Train(ctx context.Context, cfg Config, dataDir string, rep progress.Reporter) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep = progress.Or(rep)
	vocab, err := data.ReadVocab(filepath.Join(dataDir, "vocab.json"))
	if err != nil {
		return nil, err
	}
	images, err := data.ReadSplit(filepath.Join(dataDir, data.SplitFile("train")))
	if err != nil {
		return nil, err
	}
	feats, err := data.LoadFeatures(dataDir, "train")
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Vocab: vocab}
	var imageIDs []int64
	var pairs []Pair
	for _, im := range images {
		if !feats.Has(im.ImageID) {
			res.Skipped++
			continue
		}
		for _, toks := range im.Tokens {
			ids := make([]int, 0, len(toks)+2)
			ids = append(ids, data.StartID)
			ids = append(ids, vocab.Encode(toks)...)
			ids = append(ids, data.EndID)
			pairs = append(pairs, Pair{Image: len(imageIDs), Caption: ids})
		}
		imageIDs = append(imageIDs, im.ImageID)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("train split of %s has no caption with features", dataDir)
	}
	res.Pairs = len(pairs)

	dcfg := cfg.decoderConfig(vocab.Len(), feats.Channels, feats.Cells)
	if err := dcfg.Validate(); err != nil {
		return nil, fmt.Errorf("decoder for %s: %w", dataDir, err)
	}
	res.Decoder = dcfg
	val, note, err := newValidator(dataDir, vocab, dcfg, cfg)
	if err != nil {
		return nil, err
	}
	res.ValNote = note
	// One stream for everything random, in a fixed order: initial weights,
	// then per epoch the batch order, then per batch the dropout masks.
	src := rand.NewPCG(cfg.Seed, 0x63617074696f6e) // "caption"
	rng := rand.New(src)
	params, err := model.NewDecoderParams(dcfg, tensor.Float32, rng)
	if err != nil {
		return nil, err
	}
	res.Params = params
	opt := NewAdam(params.Tensors(), cfg.LR, cfg.GradClip)
	since := 0 // validated epochs since the best score improved
	firstEpoch := 1
	ckptPath := ""
	if cfg.RunDir != "" {
		ckptPath = filepath.Join(cfg.RunDir, CheckpointFile)
	}
	if cfg.Resume && ckptPath != "" && checkpointExists(ckptPath) {
		best, st, err := readCheckpoint(ckptPath, cfg, dcfg, params, opt, src)
		if err != nil {
			return nil, err
		}
		res.BestParams, res.Best = best, st.best
		res.Epochs, res.Steps, since = st.epochs, st.steps, st.since
		firstEpoch = st.epoch + 1
	}

	graphs := map[int]*model.DecoderTrainGraph{} // by steps; batch is fixed
	defer func() {
		for _, g := range graphs {
			g.Close()
		}
	}()
	B, size := cfg.Batch, feats.Size()
	featBuf := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(B, feats.Cells, feats.Channels))
	captions := make([][]int, 0, B)
	runStart := time.Now()

	for epoch := firstEpoch; epoch <= cfg.Epochs; epoch++ {
		batches := MakeBatches(pairs, B, cfg.PoolBatches, rng)
		rep.Start(fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs), int64(len(batches)))
		start := time.Now()
		st := EpochStats{Epoch: epoch, LR: opt.LR}
		var sum float64
		stop := false
		for _, b := range batches {
			if err := ctx.Err(); err != nil {
				rep.Done()
				return res, err
			}
			if cfg.MaxSteps > 0 && res.Steps >= cfg.MaxSteps {
				stop, res.Stop = true, StopMaxSteps
				break
			}
			tg := graphs[b.Steps]
			if tg == nil {
				if tg, err = model.NewDecoderTrainGraph(params, B, b.Steps); err != nil {
					rep.Done()
					return res, err
				}
				graphs[b.Steps] = tg
			}
			fd := featBuf.Float32s()
			clear(fd)
			captions = captions[:0]
			for row, pi := range b.Pairs {
				p := pairs[pi]
				if err := feats.Fill(fd[row*size:(row+1)*size], imageIDs[p.Image]); err != nil {
					rep.Done()
					return res, err
				}
				captions = append(captions, p.Caption)
			}
			if err := tg.SetBatch(featBuf, captions); err != nil {
				rep.Done()
				return res, err
			}
			tg.SetDropout(rng)
			loss, err := tg.Run()
			if err != nil {
				rep.Done()
				return res, err
			}
			res.Steps++
			if math.IsNaN(loss.Loss) || math.IsInf(loss.Loss, 0) {
				rep.Done()
				return res, ErrNonFiniteLoss{Step: res.Steps, Loss: loss.Loss}
			}
			grads, err := tg.Grads()
			if err != nil {
				rep.Done()
				return res, err
			}
			if err := opt.Update(grads); err != nil {
				rep.Done()
				return res, err
			}
			sum += loss.Loss
			st.Batches++
			st.Captions += loss.Captions
			rep.Add(1)
			if cfg.TimeLimit > 0 && time.Since(runStart) > cfg.TimeLimit {
				stop, res.Stop = true, StopTimeLimit
				break
			}
		}
		rep.Done()
		if st.Batches > 0 {
			st.Loss = sum / float64(st.Batches)
			st.Seconds = time.Since(start).Seconds()
			if val != nil {
				prev := res.Best
				if err := res.validate(ctx, &st, val, rep); err != nil {
					return res, err
				}
				d := afterValidation(since, res.Best != prev, cfg.DecayAfter, cfg.Patience)
				since = d.Since
				if d.Decay {
					opt.LR *= cfg.Decay
				}
				if d.Stop && !stop && epoch < cfg.Epochs {
					stop, res.Stop = true, StopPatience
				}
			}
			res.Epochs = append(res.Epochs, st)
			// Only a complete epoch is checkpointed: the next one then
			// starts exactly where an uninterrupted run would.
			if ckptPath != "" && st.Batches == len(batches) {
				err := writeCheckpoint(ckptPath, cfg, dcfg, params, res.BestParams, opt, src,
					trainState{epoch: epoch, steps: res.Steps, since: since, epochs: res.Epochs, best: res.Best})
				if err != nil {
					return res, err
				}
			}
			if er, ok := rep.(EpochReporter); ok {
				er.Epoch(st)
			}
		}
		if stop {
			break
		}
	}
	return res, nil
}
