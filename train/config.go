// Package train trains the caption decoder on cached image features with
// teacher forcing: batches of (image, caption) pairs grouped by caption
// length, the loss of model.DecoderParams, Adam with gradient clipping.
//
// After each epoch the val split (when the dataset has val features) is
// captioned by greedy decoding and scored with BLEU-4 and CIDEr-D; the best
// epoch's parameters by Config.SelectBy are kept. The learning rate decays
// and training stops early when that score stops improving (see
// afterValidation), and a run can be bounded by a wall-clock time limit.
// With Config.RunDir set, a checkpoint is written after every epoch, every
// Config.CheckpointEvery inside an epoch and when a run stops inside one;
// Config.Resume continues from it exactly, rebuilding the epoch's batch
// order from the RNG state saved at the epoch's start. The train split's
// features are streamed from the shards (data.OpenFeatures). With Config.ValBeam > 1 the val
// captions come from beam search (infer.Beam) instead.
package train

import (
	"fmt"
	"math"
	"time"

	"github.com/captionctl/captionctl/model"
)

// Config is the typed training configuration; field comments name the
// `captionctl train` flag that sets each.
type Config struct {
	Arch         string  // --arch: model.ArchAttention or model.ArchShowTell
	EmbedDim     int     // --embed-dim
	AttentionDim int     // --attention-dim
	HiddenDim    int     // --hidden-dim
	Epochs       int     // --epochs
	Batch        int     // --batch: captions per batch
	LR           float64 // --lr: Adam learning rate
	GradClip     float64 // --grad-clip: clip each gradient element to ±GradClip; 0 disables
	AlphaC       float64 // --alpha-c: weight of the doubly stochastic attention penalty
	Dropout      float64 // --dropout: probability of zeroing an element of h_t
	Seed         uint64  // --seed: initial weights, shuffling and dropout
	MaxSteps     int     // --max-steps: stop after this many batches in all; 0: no limit
	ValMaxLen    int     // longest greedy validation caption, in words
	// ValBeam (--val-beam) is the beam width of validation captioning; 0
	// (the zero value, as in checkpoints written before it existed) and 1
	// mean greedy decoding.
	ValBeam    int     `json:",omitempty"`
	SelectBy   string  // --select-by: SelectCIDEr or SelectBleu4, the val score that picks the best epoch
	DecayAfter int     // --decay-after: multiply the lr by Decay after each N epochs in a row without val improvement; 0 disables
	Decay      float64 // --decay: learning-rate shrink factor in (0, 1]
	Patience   int     // --patience: stop after N epochs in a row without val improvement; 0 disables
	// TimeLimit (--time-limit) stops the run after the batch during which
	// it is exceeded, as a normal end; 0: no limit.
	TimeLimit time.Duration
	// CheckpointEvery (--checkpoint-every) writes RunDir's checkpoint also
	// inside an epoch, after the first batch that ends this much wall time
	// after the last checkpoint; 0: at epoch ends only. A resumed run may
	// change it.
	CheckpointEvery time.Duration
	// PoolBatches is how many batches' worth of shuffled pairs are sorted
	// by caption length together before being cut into batches.
	PoolBatches int
	// RunDir, when not empty, is where the checkpoint CheckpointFile is
	// written: at the end of every complete epoch, every CheckpointEvery,
	// and when the run stops inside an epoch (MaxSteps, TimeLimit, ctx).
	RunDir string `json:"-"`
	// Resume (--resume) continues the run checkpointed in RunDir, when it
	// has a checkpoint: the configuration must match the saved one except
	// for Epochs, MaxSteps, TimeLimit and CheckpointEvery.
	Resume bool `json:"-"`
}

// DefaultConfig returns the defaults of issue 5 (the sgrvinod tutorial's
// hyper-parameters).
func DefaultConfig() Config {
	d := model.DefaultDecoderConfig()
	return Config{
		Arch:         d.Arch,
		EmbedDim:     d.EmbedDim,
		AttentionDim: d.AttentionDim,
		HiddenDim:    d.HiddenDim,
		Epochs:       20,
		Batch:        32,
		LR:           4e-4,
		GradClip:     5,
		AlphaC:       1,
		Dropout:      0.5,
		Seed:         1,
		MaxSteps:     0,
		PoolBatches:  100,
		ValMaxLen:    50,
		SelectBy:     SelectCIDEr,
		DecayAfter:   8,
		Decay:        0.8,
		Patience:     20,
		// CheckpointEvery bounds the work a kill -9 loses.
		CheckpointEvery: 10 * time.Minute,
	}
}

// Validate reports the first invalid field, naming its flag.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("--epochs must be ≥ 1, got %d", c.Epochs)
	case c.Batch < 1:
		return fmt.Errorf("--batch must be ≥ 1, got %d", c.Batch)
	case !(c.LR > 0) || math.IsInf(c.LR, 1):
		return fmt.Errorf("--lr must be a finite number > 0, got %v", c.LR)
	case !(c.GradClip >= 0) || math.IsInf(c.GradClip, 1):
		return fmt.Errorf("--grad-clip must be a finite number ≥ 0 (0 disables clipping), got %v", c.GradClip)
	case c.MaxSteps < 0:
		return fmt.Errorf("--max-steps must be ≥ 0 (0: no limit), got %d", c.MaxSteps)
	case c.PoolBatches < 1:
		return fmt.Errorf("pool batches must be ≥ 1, got %d", c.PoolBatches)
	case c.ValBeam < 0:
		return fmt.Errorf("--val-beam must be ≥ 1, got %d", c.ValBeam)
	case c.ValMaxLen < 1:
		return fmt.Errorf("validation max length must be ≥ 1, got %d", c.ValMaxLen)
	case c.SelectBy != SelectCIDEr && c.SelectBy != SelectBleu4:
		return fmt.Errorf("--select-by must be %s or %s, got %q", SelectCIDEr, SelectBleu4, c.SelectBy)
	case c.DecayAfter < 0:
		return fmt.Errorf("--decay-after must be ≥ 0 (0: no decay), got %d", c.DecayAfter)
	case !(c.Decay > 0 && c.Decay <= 1):
		return fmt.Errorf("--decay must be in (0, 1], got %v", c.Decay)
	case c.Patience < 0:
		return fmt.Errorf("--patience must be ≥ 0 (0: no early stop), got %d", c.Patience)
	case c.TimeLimit < 0:
		return fmt.Errorf("--time-limit must be ≥ 0 (0: no limit), got %v", c.TimeLimit)
	case c.CheckpointEvery < 0:
		return fmt.Errorf("--checkpoint-every must be ≥ 0 (0: at epoch ends only), got %v", c.CheckpointEvery)
	}
	// The decoder's own fields (--arch, dims, --dropout, --alpha-c) are
	// checked by its Validate with placeholder data sizes.
	d := c.decoderConfig(5, 1, 1)
	return d.Validate()
}

// decoderConfig is the decoder configuration for data of the given sizes.
func (c Config) decoderConfig(vocab, channels, cells int) model.DecoderConfig {
	return model.DecoderConfig{
		Arch:         c.Arch,
		VocabSize:    vocab,
		FeatureDim:   channels,
		GridCells:    cells,
		EmbedDim:     c.EmbedDim,
		AttentionDim: c.AttentionDim,
		HiddenDim:    c.HiddenDim,
		Dropout:      c.Dropout,
		AlphaC:       c.AlphaC,
	}
}
