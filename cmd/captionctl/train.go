package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/model"
	"github.com/captionctl/captionctl/progress"
	"github.com/captionctl/captionctl/train"
)

// Files of a training run directory (DESIGN.md §3).
const (
	runModelFile  = "model.safetensors"
	runConfigFile = "config.json"
	runLogFile    = "log.jsonl"
	runCurvesFile = "curves.png"
)

func trainCommand() *cli.Command {
	def := train.DefaultConfig()
	return &cli.Command{
		Name:  "train",
		Usage: "train a caption decoder (Show, Attend and Tell) on a prepared dataset's cached features",
		UsageText: "captionctl train --data DIR --out RUNDIR [options]\n\n" +
			"   captionctl train --data P --out runs/r1\n" +
			"   captionctl train --data P --out runs/st --arch showtell --epochs 10",
		Description: "Trains the decoder with teacher forcing on every (image, caption) pair of the train split, batched by\n" +
			"caption length, with Adam and gradient clipping, on the features made by 'captionctl data features'.\n" +
			"After each epoch the val split is captioned by greedy decoding (--val-beam K: beam search) and scored (BLEU-4, CIDEr-D).\n" +
			"Writes to RUNDIR: model.safetensors (the best epoch's model by --select-by; the last epoch's when the\n" +
			"dataset has no val features; with the encoder's weights, from --encoder-weights or regenerated for\n" +
			"--weights random features, so that 'captionctl caption' needs nothing else), config.json (the effective configuration), curves.png (loss and val scores\n" +
			"per epoch) and log.jsonl (one line per\n" +
			"epoch, with the val scores and learning rate).\n" +
			"The learning rate is multiplied by --decay whenever the --select-by score has not improved for a multiple\n" +
			"of --decay-after epochs in a row; training stops after --patience such epochs, or after --time-limit.\n" +
			"Every file is written atomically. The same seed gives the same numbers.\n" +
			"last.safetensors checkpoints the run (weights, Adam state, RNG state, position in the epoch, early-stopping\n" +
			"state, best weights) at the end of every epoch, every --checkpoint-every of wall time at a batch boundary, and\n" +
			"when the run stops inside an epoch (Ctrl-C, --max-steps, --time-limit); --resume continues it from there, even\n" +
			"after kill -9, giving the same weights as a run never stopped.\n" +
			"The progress bar shows the epoch's running loss, top-5 accuracy (real target words among the 5 highest\n" +
			"scores, teacher-forced) and captions per second; log.jsonl records them per epoch.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "prepared dataset `DIR` with features", Category: "Input"},
			&cli.StringFlag{Name: "encoder-weights", Usage: "the encoder weights `FILE` given to 'data features --weights', stored in the model file so that 'captionctl caption' needs nothing else (not needed for --weights random features)", Category: "Input"},
			&cli.StringFlag{Name: "out", Usage: "run `DIR` to write the model, config and log to", Category: "Output"},
			&cli.StringFlag{Name: "arch", Value: def.Arch, Usage: "decoder `ARCH`: attention or showtell", Category: "Model"},
			&cli.IntFlag{Name: "embed-dim", Value: def.EmbedDim, Usage: "word embedding size `N`", Category: "Model"},
			&cli.IntFlag{Name: "attention-dim", Value: def.AttentionDim, Usage: "attention MLP size `N`", Category: "Model"},
			&cli.IntFlag{Name: "hidden-dim", Value: def.HiddenDim, Usage: "LSTM state size `N`", Category: "Model"},
			&cli.Float64Flag{Name: "dropout", Value: def.Dropout, Usage: "dropout probability `P` in [0, 1)", Category: "Model"},
			&cli.IntFlag{Name: "epochs", Value: def.Epochs, Usage: "`N` passes over the train split", Category: "Training"},
			&cli.IntFlag{Name: "batch", Value: def.Batch, Usage: "`N` captions per batch", Category: "Training"},
			&cli.Float64Flag{Name: "lr", Value: def.LR, Usage: "Adam learning rate `F`", Category: "Training"},
			&cli.Float64Flag{Name: "grad-clip", Value: def.GradClip, Usage: "clip each gradient element to ±`F` (0: no clipping)", Category: "Training"},
			&cli.Float64Flag{Name: "alpha-c", Value: def.AlphaC, Usage: "weight `F` of the doubly stochastic attention penalty", Category: "Training"},
			&cli.Uint64Flag{Name: "seed", Value: def.Seed, Usage: "`SEED` of the initial weights, shuffling and dropout", Category: "Training"},
			&cli.IntFlag{Name: "max-steps", Value: def.MaxSteps, Usage: "stop after `N` batches in all (0: no limit)", Category: "Training"},
			&cli.IntFlag{Name: "decay-after", Value: def.DecayAfter, Usage: "multiply the learning rate by --decay after each `N` epochs in a row without val improvement (0: never)", Category: "Training"},
			&cli.Float64Flag{Name: "decay", Value: def.Decay, Usage: "learning-rate shrink factor `F` in (0, 1]", Category: "Training"},
			&cli.IntFlag{Name: "patience", Value: def.Patience, Usage: "stop after `N` epochs in a row without val improvement (0: never)", Category: "Training"},
			&cli.DurationFlag{Name: "time-limit", Value: def.TimeLimit, Usage: "stop after the batch that exceeds `DURATION` (e.g. 90m; 0: no limit), keeping the best model so far", Category: "Training"},
			&cli.DurationFlag{Name: "checkpoint-every", Value: def.CheckpointEvery, Usage: "also write last.safetensors inside an epoch, after the batch that ends `DURATION` after the last one (0: at epoch ends only)", Category: "Training"},
			&cli.BoolFlag{Name: "resume", Usage: "continue the run checkpointed in --out (last.safetensors) exactly, with the same configuration; --epochs, --max-steps, --time-limit and --checkpoint-every may change", Category: "Training"},
			&cli.StringFlag{Name: "select-by", Value: def.SelectBy, Usage: "val `SCORE` that picks the best epoch: cider or bleu4", Category: "Validation"},
			&cli.IntFlag{Name: "val-beam", Value: 1, Usage: "caption the val split by beam search of width `K` (1: greedy)", Category: "Validation"},
			quietFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("train takes no arguments, got %q", c.Args().First())
			}
			dataDir, out := c.String("data"), c.String("out")
			if dataDir == "" {
				return usagef("--data DIR is required: a dataset made by 'captionctl data prepare' and 'captionctl data features'")
			}
			if out == "" {
				return usagef("--out RUNDIR is required: the directory to write the model, config and log to")
			}
			cfg := def
			cfg.Arch = c.String("arch")
			cfg.EmbedDim, cfg.AttentionDim, cfg.HiddenDim = c.Int("embed-dim"), c.Int("attention-dim"), c.Int("hidden-dim")
			cfg.Dropout, cfg.AlphaC = c.Float64("dropout"), c.Float64("alpha-c")
			cfg.Epochs, cfg.Batch, cfg.MaxSteps = c.Int("epochs"), c.Int("batch"), c.Int("max-steps")
			cfg.LR, cfg.GradClip, cfg.Seed = c.Float64("lr"), c.Float64("grad-clip"), c.Uint64("seed")
			cfg.SelectBy = c.String("select-by")
			cfg.DecayAfter, cfg.Decay, cfg.Patience = c.Int("decay-after"), c.Float64("decay"), c.Int("patience")
			cfg.TimeLimit, cfg.CheckpointEvery = c.Duration("time-limit"), c.Duration("checkpoint-every")
			switch k := c.Int("val-beam"); {
			case k < 1:
				return usagef("--val-beam must be ≥ 1 (1: greedy), got %d", k)
			case k > 1:
				cfg.ValBeam = k
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			cfg.RunDir, cfg.Resume = out, c.Bool("resume")
			_, errModel := os.Stat(filepath.Join(out, runModelFile))
			_, errLast := os.Stat(filepath.Join(out, train.CheckpointFile))
			switch {
			case !cfg.Resume && (errModel == nil || errLast == nil):
				return usagef("%s already holds a run (%s or %s): continue it with --resume, choose another --out or remove it", out, runModelFile, train.CheckpointFile)
			case cfg.Resume && errModel == nil && errLast != nil:
				return usagef("%s already holds a trained model (%s) but no checkpoint (%s) to --resume from: choose another --out or remove it", out, runModelFile, train.CheckpointFile)
			}
			return runTrain(c, cfg, dataDir, c.String("encoder-weights"), out)
		},
	}
}

// runConfig is RUNDIR/config.json.
type runConfig struct {
	Data         string  `json:"data"`
	Arch         string  `json:"arch"`
	EmbedDim     int     `json:"embed_dim"`
	AttentionDim int     `json:"attention_dim"`
	HiddenDim    int     `json:"hidden_dim"`
	Dropout      float64 `json:"dropout"`
	AlphaC       float64 `json:"alpha_c"`
	Epochs       int     `json:"epochs"`
	Batch        int     `json:"batch"`
	LR           float64 `json:"lr"`
	GradClip     float64 `json:"grad_clip"`
	Seed         uint64  `json:"seed"`
	MaxSteps     int     `json:"max_steps"`
	PoolBatches  int     `json:"pool_batches"`
	SelectBy     string  `json:"select_by"`
	DecayAfter   int     `json:"decay_after"`
	Decay        float64 `json:"decay"`
	Patience     int     `json:"patience"`
	TimeLimit    string  `json:"time_limit"` // Go duration syntax; "0s": none
	// CheckpointEvery is the wall time between mid-epoch checkpoints, Go
	// duration syntax; "0s": at epoch ends only.
	CheckpointEvery string `json:"checkpoint_every"`
	ValMaxLen       int    `json:"val_max_len"`
	ValBeam         int    `json:"val_beam,omitempty"` // > 1: beam validation
	// Decoder is the decoder configuration with the data's sizes, as saved
	// in the model file; absent until the data has been read.
	Decoder *model.DecoderConfig `json:"decoder,omitempty"`
}

func newRunConfig(cfg train.Config, dataDir string) runConfig {
	return runConfig{
		Data: dataDir, Arch: cfg.Arch, EmbedDim: cfg.EmbedDim, AttentionDim: cfg.AttentionDim, HiddenDim: cfg.HiddenDim,
		Dropout: cfg.Dropout, AlphaC: cfg.AlphaC, Epochs: cfg.Epochs, Batch: cfg.Batch, LR: cfg.LR,
		GradClip: cfg.GradClip, Seed: cfg.Seed, MaxSteps: cfg.MaxSteps, PoolBatches: cfg.PoolBatches,
		SelectBy: cfg.SelectBy, ValMaxLen: cfg.ValMaxLen, ValBeam: cfg.ValBeam,
		DecayAfter: cfg.DecayAfter, Decay: cfg.Decay, Patience: cfg.Patience, TimeLimit: cfg.TimeLimit.String(),
		CheckpointEvery: cfg.CheckpointEvery.String(),
	}
}

// logLine is one line of RUNDIR/log.jsonl.
type logLine struct {
	Epoch    int     `json:"epoch"`
	Loss     float64 `json:"loss"`
	Batches  int     `json:"batches"`
	Captions int     `json:"captions"`
	Seconds  float64 `json:"seconds"`
	LR       float64 `json:"lr"` // Adam's learning rate during the epoch
	// Top5 is the fraction of real target tokens among the 5 largest
	// logits (teacher-forced, with dropout), in [0, 1].
	Top5 float64 `json:"top5"`
	// CaptionsPerSecond is captions over seconds.
	CaptionsPerSecond float64 `json:"captions_per_s"`
	// The val scores of greedy captions; absent without validation.
	ValBleu4 *float64 `json:"val_bleu4,omitempty"`
	ValCIDEr *float64 `json:"val_cider,omitempty"`
}

func newLogLine(st train.EpochStats) logLine {
	l := logLine{Epoch: st.Epoch, Loss: st.Loss, Batches: st.Batches, Captions: st.Captions, Seconds: st.Seconds, LR: st.LR,
		Top5: st.Top5, CaptionsPerSecond: st.CaptionsPerSecond}
	if st.Validated {
		b, c := st.Bleu4, st.CIDEr
		l.ValBleu4, l.ValCIDEr = &b, &c
	}
	return l
}

// epochLog is the reporter given to train.Train: it forwards progress to
// the bar, prints a line per epoch on stderr and rewrites log.jsonl
// (atomically) as each epoch ends.
type epochLog struct {
	progress.Reporter
	stderr io.Writer
	quiet  bool
	path   string
	curves string // curves.png, rewritten after each epoch
	lines  []logLine
	epochs []train.EpochStats
	err    error
}

func (l *epochLog) Epoch(st train.EpochStats) {
	l.lines = append(l.lines, newLogLine(st))
	l.epochs = append(l.epochs, st)
	if !l.quiet {
		val := ""
		if st.Validated {
			val = fmt.Sprintf(", val BLEU-4 %.4f, CIDEr-D %.4f", st.Bleu4, st.CIDEr)
		}
		fmt.Fprintf(l.stderr, "epoch %d: loss %.4f, top-5 %.1f%%, %d batches, %d captions, %.1fs (%.0f captions/s)%s\n",
			st.Epoch, st.Loss, 100*st.Top5, st.Batches, st.Captions, st.Seconds, st.CaptionsPerSecond, val)
	}
	if err := l.write(); err != nil && l.err == nil {
		l.err = err
	}
	if err := train.WriteCurves(l.curves, l.epochs); err != nil && l.err == nil {
		l.err = err
	}
}

// Describe forwards the running statistics to the bar (progress.Describer).
func (l *epochLog) Describe(what string) { progress.Describe(l.Reporter, what) }

func (l *epochLog) write() error {
	return atomicfile.Write(l.path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, line := range l.lines {
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeJSONFile(path string, v any) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// readFeaturesIdentity returns the encoder identity of dataDir's features.
func readFeaturesIdentity(dataDir string) (data.EncoderIdentity, error) {
	path := filepath.Join(dataDir, data.FeaturesDir, data.ManifestFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return data.EncoderIdentity{}, &badinput.Error{File: path, Msg: "cannot read: " + err.Error() + "; run 'captionctl data features' on this dataset first", Err: err}
	}
	var m data.FeaturesManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return data.EncoderIdentity{}, badinput.Errorf(path, "not a captionctl features manifest: %v", err)
	}
	return m.Identity, nil
}

// encoderWeights returns the weights of the encoder that made features of
// the given identity, for the model file: regenerated from the seed for
// --weights random features, otherwise read from weightsPath after
// checking its sha256 against the identity's.
func encoderWeights(identity data.EncoderIdentity, weightsPath string) (map[string]*tensorfile.Tensor, error) {
	_, random := model.RandomWeightsSeed(identity.WeightsSHA256)
	if !random {
		if weightsPath == "" {
			return nil, usagef("--encoder-weights FILE is required: the features were made with %s weights of sha256 %s; give the file passed to 'data features --weights' so the model file can caption images on its own",
				identity.Arch, identity.WeightsSHA256)
		}
		if _, err := os.Stat(weightsPath); err != nil {
			return nil, &badinput.Error{File: weightsPath, Msg: "--encoder-weights: cannot read: " + pathErrorText(err), Err: err}
		}
	}
	sd, err := model.EncoderStateDict(identity, weightsPath)
	if err != nil {
		return nil, fmt.Errorf("--encoder-weights: %w", err)
	}
	return sd, nil
}

func runTrain(c *cli.Context, cfg train.Config, dataDir, weightsPath, out string) error {
	identity, err := readFeaturesIdentity(dataDir)
	if err != nil {
		return err
	}
	// Before training, so that a wrong file fails at once.
	encWeights, err := encoderWeights(identity, weightsPath)
	if err != nil {
		return err
	}
	manifestSHA, err := data.SHA256File(filepath.Join(dataDir, data.ManifestFile))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	rc := newRunConfig(cfg, dataDir)
	configPath := filepath.Join(out, runConfigFile)
	if err := writeJSONFile(configPath, rc); err != nil {
		return err
	}
	quiet := c.Bool("quiet")
	log := &epochLog{
		Reporter: newReporter(c.App.ErrWriter, quiet), stderr: c.App.ErrWriter, quiet: quiet,
		path: filepath.Join(out, runLogFile), curves: filepath.Join(out, runCurvesFile),
	}
	if ckpt := filepath.Join(out, train.CheckpointFile); cfg.Resume {
		if _, err := os.Stat(ckpt); err == nil {
			epochs, err := train.CheckpointEpochs(ckpt)
			if err != nil {
				return err
			}
			for _, st := range epochs {
				log.lines = append(log.lines, newLogLine(st))
			}
			log.epochs = append(log.epochs, epochs...)
		}
	}
	res, err := train.Train(c.Context, cfg, dataDir, log)
	var mismatch train.ErrConfigMismatch
	if errors.As(err, &mismatch) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if log.err != nil {
		return log.err
	}
	if len(res.Epochs) == 0 {
		return errors.New("no batch was trained (--max-steps 0 epochs?): nothing to save")
	}
	if len(log.lines) == 0 { // an EpochReporter that was not called: write the log now
		for _, st := range res.Epochs {
			log.lines = append(log.lines, newLogLine(st))
		}
		if err := log.write(); err != nil {
			return err
		}
		if err := train.WriteCurves(log.curves, res.Epochs); err != nil {
			return err
		}
	}
	dec := res.Decoder
	rc.Decoder = &dec
	if err := writeJSONFile(configPath, rc); err != nil {
		return err
	}
	last := res.Epochs[len(res.Epochs)-1]
	m := &model.ModelFile{
		Config: res.Decoder, Params: res.Params, Vocab: res.Vocab, Encoder: identity, EncoderWeights: encWeights,
		Provenance: model.Provenance{
			DataManifestSHA256: manifestSHA, Seed: cfg.Seed, Epoch: last.Epoch, Steps: res.Steps,
			Selection: "last", Metrics: map[string]float64{"train_loss": last.Loss},
		},
	}
	if res.Best != nil && res.BestParams != nil {
		m.Params = res.BestParams
		m.Provenance.Epoch, m.Provenance.Selection = res.Best.Epoch, "best"
		m.Provenance.Metrics = map[string]float64{"val_bleu4": res.Best.Bleu4, "val_cider": res.Best.CIDEr}
		m.Provenance.Steps = 0
		for _, st := range res.Epochs {
			if st.Epoch <= res.Best.Epoch {
				m.Provenance.Steps += st.Batches
			}
			if st.Epoch == res.Best.Epoch {
				m.Provenance.Metrics["train_loss"] = st.Loss
			}
		}
	}
	modelPath := filepath.Join(out, runModelFile)
	if err := model.SaveModel(modelPath, m); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "trained a %s decoder (%d parameters) on %d captions for %d epochs (%d steps): final loss %.4f\n",
		res.Decoder.Arch, res.Params.Count(), res.Pairs, len(res.Epochs), res.Steps, last.Loss)
	switch res.Stop {
	case train.StopPatience:
		fmt.Fprintf(w, "stopped early after epoch %d: no val %s improvement in %d epochs (--patience)\n", last.Epoch, cfg.SelectBy, cfg.Patience)
	case train.StopTimeLimit:
		fmt.Fprintf(w, "stopped early in epoch %d: --time-limit %v reached\n", last.Epoch, cfg.TimeLimit)
	case train.StopMaxSteps:
		fmt.Fprintf(w, "stopped early in epoch %d: --max-steps %d reached\n", last.Epoch, cfg.MaxSteps)
	}
	if res.Skipped > 0 {
		fmt.Fprintf(w, "left out %d train images without features\n", res.Skipped)
	}
	if res.Best != nil {
		how := "greedy"
		if cfg.ValBeam > 1 {
			how = fmt.Sprintf("beam %d", cfg.ValBeam)
		}
		fmt.Fprintf(w, "val (%s): final BLEU-4 %.4f, CIDEr-D %.4f; best by %s: epoch %d, BLEU-4 %.4f, CIDEr-D %.4f\n",
			how, last.Bleu4, last.CIDEr, cfg.SelectBy, res.Best.Epoch, res.Best.Bleu4, res.Best.CIDEr)
		fmt.Fprintf(w, "model (best epoch, %d): %s\n", res.Best.Epoch, modelPath)
	} else {
		fmt.Fprintf(w, "%s\nmodel (last epoch): %s\n", res.ValNote, modelPath)
	}
	fmt.Fprintf(w, "config: %s\nlog: %s\ncurves: %s\n", configPath, log.path, log.curves)
	return nil
}
