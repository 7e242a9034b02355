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
	// Top5 is the fraction of real target tokens whose id was among the 5
	// largest logits of their step (teacher-forced, with dropout), over
	// the epoch's batches; CaptionsPerSecond is Captions/Seconds.
	Top5              float64 `json:",omitempty"`
	CaptionsPerSecond float64 `json:",omitempty"`
	LR                float64 // Adam's learning rate during the epoch
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
	// Streamed: a batch reads its rows from the shards, so memory does not
	// grow with the split or across epochs.
	feats, err := data.OpenFeatures(dataDir, "train")
	if err != nil {
		return nil, err
	}
	defer feats.Close()
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
	if val != nil {
		defer val.close()
	}
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
	var resumePos *epochPosition // set when resuming inside an epoch
	ckptPath := ""
	if cfg.RunDir != "" {
		ckptPath = filepath.Join(cfg.RunDir, CheckpointFile)
	}
	if cfg.Resume && ckptPath != "" {
		removeStaleTemps(ckptPath)
	}
	if cfg.Resume && ckptPath != "" && checkpointExists(ckptPath) {
		best, st, err := readCheckpoint(ckptPath, cfg, dcfg, params, opt, src)
		if err != nil {
			return nil, err
		}
		res.BestParams, res.Best = best, st.best
		res.Epochs, res.Steps, since = st.epochs, st.steps, st.since
		firstEpoch, resumePos = st.epoch+1, st.pos
	}

	graphs := map[int]*model.DecoderTrainGraph{} // by steps; batch is fixed
	maxSteps := 1
	for _, p := range pairs {
		maxSteps = max(maxSteps, len(p.Caption)-1)
	}
	defer func() {
		for _, g := range graphs {
			g.Close()
		}
	}()
	B, size := cfg.Batch, feats.Size()
	featBuf := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(B, feats.Cells, feats.Channels))
	captions := make([][]int, 0, B)
	runStart := time.Now()
	lastCheckpoint := runStart

	for epoch := firstEpoch; epoch <= cfg.Epochs; epoch++ {
		// pos is the epoch's place, kept current batch by batch for
		// mid-epoch checkpoints; a resumed epoch starts from the saved one.
		pos := epochPosition{}
		var batches []Batch
		if resumePos != nil {
			// Rebuild the epoch's batches from the RNG state at its start,
			// then go on with the stream where the checkpoint left it.
			pos, resumePos = *resumePos, nil
			now, err := src.MarshalBinary()
			if err != nil {
				return res, err
			}
			if err := src.UnmarshalBinary(pos.EpochRNG); err != nil {
				return res, fmt.Errorf("checkpoint %s: epoch rng: %w", ckptPath, err)
			}
			batches = MakeBatches(pairs, B, cfg.PoolBatches, rng)
			if err := src.UnmarshalBinary(now); err != nil {
				return res, err
			}
			if pos.Batch >= len(batches) {
				return res, fmt.Errorf("checkpoint %s: %d batches of epoch %d done, but the epoch has %d; was the dataset changed? start a new run dir (--out)", ckptPath, pos.Batch, epoch, len(batches))
			}
		} else {
			if pos.EpochRNG, err = src.MarshalBinary(); err != nil {
				return res, err
			}
			batches = MakeBatches(pairs, B, cfg.PoolBatches, rng)
		}
		rep.Start(fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs), int64(len(batches)))
		rep.Add(int64(pos.Batch))
		start := time.Now()
		priorSeconds, priorCaptions := pos.Seconds, pos.Captions
		st := EpochStats{Epoch: epoch, LR: opt.LR}
		dirty := false // batches done since the last checkpoint
		// saveMid checkpoints the position inside the epoch.
		saveMid := func() error {
			if ckptPath == "" || !dirty || pos.Batch == len(batches) {
				return nil
			}
			pos.Seconds = priorSeconds + time.Since(start).Seconds()
			p := pos
			err := writeCheckpoint(ckptPath, cfg, dcfg, params, res.BestParams, opt, src,
				trainState{epoch: epoch - 1, steps: res.Steps, since: since, epochs: res.Epochs, best: res.Best, pos: &p})
			dirty, lastCheckpoint = false, time.Now()
			return err
		}
		stop := false
		for _, b := range batches[pos.Batch:] {
			if err := ctx.Err(); err != nil {
				rep.Done()
				if cerr := saveMid(); cerr != nil {
					return res, cerr
				}
				return res, err
			}
			if cfg.MaxSteps > 0 && res.Steps >= cfg.MaxSteps {
				stop, res.Stop = true, StopMaxSteps
				break
			}
			key := b.Steps
			if params.Dtype == tensor.Float32 {
				// The fused engine computes only the steps a batch has:
				// one engine of the longest length serves every batch
				// (one per length would hold memory for each).
				key = maxSteps
			}
			tg := graphs[key]
			if tg == nil {
				if tg, err = model.NewDecoderTrainGraph(params, B, key); err != nil {
					rep.Done()
					return res, err
				}
				graphs[key] = tg
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
			hits, err := top5Hits(tg, captions)
			if err != nil {
				rep.Done()
				return res, err
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
			pos.Batch++
			pos.LossSum += loss.Loss
			pos.Captions += loss.Captions
			pos.Tokens += loss.Tokens
			pos.Top5 += hits
			dirty = true
			rep.Add(1)
			secs := time.Since(start).Seconds()
			progress.Describe(rep, fmt.Sprintf("epoch %d/%d loss %.3f top5 %.1f%% %.0f cap/s", epoch, cfg.Epochs,
				pos.LossSum/float64(pos.Batch), 100*ratio(pos.Top5, pos.Tokens), float64(pos.Captions-priorCaptions)/secs))
			if cfg.TimeLimit > 0 && time.Since(runStart) > cfg.TimeLimit {
				stop, res.Stop = true, StopTimeLimit
				break
			}
			if cfg.CheckpointEvery > 0 && time.Since(lastCheckpoint) >= cfg.CheckpointEvery {
				if err := saveMid(); err != nil {
					rep.Done()
					return res, err
				}
			}
		}
		rep.Done()
		if stop {
			// The position inside the epoch, before the partial epoch is
			// validated: a resumed run goes on exactly as if never stopped.
			if err := saveMid(); err != nil {
				return res, err
			}
		}
		if pos.Batch > 0 {
			st.Batches, st.Captions = pos.Batch, pos.Captions
			st.Loss = pos.LossSum / float64(pos.Batch)
			st.Seconds = priorSeconds + time.Since(start).Seconds()
			st.Top5 = ratio(pos.Top5, pos.Tokens)
			if st.Seconds > 0 {
				st.CaptionsPerSecond = float64(pos.Captions) / st.Seconds
			}
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
			// A complete epoch is checkpointed after its validation: the
			// next one then starts exactly where an uninterrupted run would.
			if ckptPath != "" && pos.Batch == len(batches) {
				err := writeCheckpoint(ckptPath, cfg, dcfg, params, res.BestParams, opt, src,
					trainState{epoch: epoch, steps: res.Steps, since: since, epochs: res.Epochs, best: res.Best})
				if err != nil {
					return res, err
				}
				lastCheckpoint = time.Now()
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

// ratio is n/d, 0 when d is 0.
func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// top5Hits counts the real target tokens of the last Run whose id is
// among the 5 largest logits of their step, as sgrvinod's accuracy(…, 5)
// does: step t of caption b predicts caption[b][t+1]. A target tied with
// the fifth largest logit counts as a hit.
func top5Hits(tg *model.DecoderTrainGraph, captions [][]int) (int, error) {
	if hits, ok := tg.TopKHits(5); ok {
		return hits, nil
	}
	hits := 0
	for t := range tg.Steps {
		logits := tg.Logits(t)
		V := logits.Shape()[len(logits.Shape())-1]
		switch v := logits.Data().(type) {
		case []float32:
			hits += topKCount(v, V, t, captions)
		case []float64:
			hits += topKCount(v, V, t, captions)
		default:
			return 0, fmt.Errorf("top-5 accuracy: logits of step %d are %v", t, logits.Dtype())
		}
	}
	return hits, nil
}

// topKCount counts, over the rows of logits (B, V) whose caption has a
// target at step t, the targets fewer than 5 logits exceed.
func topKCount[T float32 | float64](logits []T, V, t int, captions [][]int) int {
	hits := 0
	for b, caption := range captions {
		if t >= len(caption)-1 {
			continue
		}
		row := logits[b*V : (b+1)*V]
		x, above := row[caption[t+1]], 0
		for _, y := range row {
			if y > x {
				if above++; above == 5 {
					break
				}
			}
		}
		if above < 5 {
			hits++
		}
	}
	return hits
}
