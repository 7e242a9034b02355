package train

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"

	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/model"
	"gorgonia.org/tensor"
)

// CheckpointFile is the name, inside Config.RunDir, of the checkpoint
// written at the end of every complete epoch, every Config.CheckpointEvery
// of wall time at a batch boundary, and when a run stops inside an epoch.
const CheckpointFile = "last.safetensors"

const checkpointFormat = "captionctl-checkpoint/1"

// ErrConfigMismatch is returned by Train with Config.Resume when the
// checkpoint was written under a different configuration.
type ErrConfigMismatch struct {
	Field      string // the Config field
	Flag       string // its `captionctl train` flag
	Saved, Now string
}

func (e ErrConfigMismatch) Error() string {
	return fmt.Sprintf("cannot resume: %s was %s in the checkpointed run, now %s; restore the flag or start a new run dir (--out)", e.Flag, e.Saved, e.Now)
}

// resumeMayChange lists the Config fields a resumed run may change: the
// bounds of the run and where it is written.
var resumeMayChange = map[string]bool{"Epochs": true, "MaxSteps": true, "TimeLimit": true, "CheckpointEvery": true, "RunDir": true, "Resume": true}

// configFlags names the flag of each Config field, for errors.
var configFlags = map[string]string{
	"Arch": "--arch", "EmbedDim": "--embed-dim", "AttentionDim": "--attention-dim", "HiddenDim": "--hidden-dim",
	"Batch": "--batch", "LR": "--lr", "GradClip": "--grad-clip", "AlphaC": "--alpha-c", "Dropout": "--dropout",
	"Seed": "--seed", "SelectBy": "--select-by", "DecayAfter": "--decay-after", "Decay": "--decay",
	"Patience": "--patience",
}

// checkConfig compares the resumed configuration now with the saved one.
func checkConfig(saved, now Config) error {
	sv, nv := reflect.ValueOf(saved), reflect.ValueOf(now)
	for i := range sv.NumField() {
		f := sv.Type().Field(i)
		if resumeMayChange[f.Name] {
			continue
		}
		if !reflect.DeepEqual(sv.Field(i).Interface(), nv.Field(i).Interface()) {
			flag := configFlags[f.Name]
			if flag == "" {
				flag = f.Name
			}
			return ErrConfigMismatch{Field: f.Name, Flag: flag,
				Saved: fmt.Sprint(sv.Field(i).Interface()), Now: fmt.Sprint(nv.Field(i).Interface())}
		}
	}
	return nil
}

// trainState is what a checkpoint holds besides tensors.
type trainState struct {
	epoch  int // complete epochs
	steps  int
	since  int
	epochs []EpochStats
	best   *BestEpoch
	// pos is where inside epoch+1 the run is; nil at an epoch boundary.
	pos *epochPosition
}

// epochPosition is a checkpoint's place inside an epoch: how to rebuild
// the epoch's batch order, how many of its batches are done and the
// statistics accumulated over them. The RNG itself is saved as it is
// after the last batch done (the dropout masks of the next batch come
// next); EpochRNG is its state when the epoch began, from which
// MakeBatches rebuilds the same batches.
type epochPosition struct {
	EpochRNG []byte  `json:"epoch_rng"` // src.MarshalBinary before MakeBatches
	Batch    int     `json:"batch"`     // batches done, 1 ≤ Batch < the epoch's batches
	LossSum  float64 `json:"loss_sum"`  // Σ batch losses, in batch order (JSON keeps float64 exact)
	Captions int     `json:"captions"`
	Tokens   int     `json:"tokens"`
	Top5     int     `json:"top5"`    // target tokens among the 5 largest logits
	Seconds  float64 `json:"seconds"` // wall time spent on the epoch's batches so far
}

// writeCheckpoint writes path atomically: the parameters, Adam's moments,
// the best parameters so far and, in the metadata, the configuration,
// the RNG state, Adam's step and learning rate and the early-stopping
// state.
func writeCheckpoint(path string, cfg Config, dcfg model.DecoderConfig, params, best *model.DecoderParams, opt *Adam, src *rand.PCG, st trainState) error {
	var ts []*tensorfile.Tensor
	add := func(prefix string, list []model.DecoderTensor) error {
		for _, p := range list {
			v, ok := p.Tensor.Data().([]float32)
			if !ok {
				return fmt.Errorf("checkpoint: %s has dtype %v; only float32 is supported", p.Name, p.Tensor.Dtype())
			}
			ts = append(ts, tensorfile.NewF32(prefix+p.Name, []int(p.Tensor.Shape()), v))
		}
		return nil
	}
	if err := add("", params.Tensors()); err != nil {
		return err
	}
	var m, v []model.DecoderTensor
	for i, p := range opt.params {
		m = append(m, model.DecoderTensor{Name: p.Name, Tensor: opt.m[i]})
		v = append(v, model.DecoderTensor{Name: p.Name, Tensor: opt.v[i]})
	}
	if err := add("adam.m.", m); err != nil {
		return err
	}
	if err := add("adam.v.", v); err != nil {
		return err
	}
	if best != nil {
		if err := add("best.", best.Tensors()); err != nil {
			return err
		}
	}
	rngState, err := src.MarshalBinary()
	if err != nil {
		return err
	}
	cj, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	dj, err := json.Marshal(dcfg)
	if err != nil {
		return err
	}
	ej, err := json.Marshal(st.epochs)
	if err != nil {
		return err
	}
	meta := map[string]string{
		"format":     checkpointFormat,
		"config":     string(cj),
		"decoder":    string(dj),
		"rng":        base64.StdEncoding.EncodeToString(rngState),
		"epoch":      strconv.Itoa(st.epoch),
		"steps":      strconv.Itoa(st.steps),
		"adam_step":  strconv.Itoa(opt.Step),
		"lr":         strconv.FormatFloat(opt.LR, 'g', -1, 64),
		"since_best": strconv.Itoa(st.since),
		"epochs":     string(ej),
	}
	if st.best != nil {
		bj, err := json.Marshal(st.best)
		if err != nil {
			return err
		}
		meta["best"] = string(bj)
	}
	if st.pos != nil {
		pj, err := json.Marshal(st.pos)
		if err != nil {
			return err
		}
		meta["position"] = string(pj)
	}
	return tensorfile.WriteSafetensors(path, ts, meta)
}

// CheckpointEpochs returns the statistics of the epochs recorded in the
// checkpoint at path.
func CheckpointEpochs(path string) ([]EpochStats, error) {
	_, meta, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		return nil, err
	}
	if meta["format"] != checkpointFormat {
		return nil, fmt.Errorf("%s is not a captionctl checkpoint", path)
	}
	var epochs []EpochStats
	if err := json.Unmarshal([]byte(meta["epochs"]), &epochs); err != nil {
		return nil, fmt.Errorf("%s: epochs: %w", path, err)
	}
	return epochs, nil
}

// readCheckpoint restores the state saved at path into params, opt and
// src after checking the configuration; it returns the best parameters
// (nil when none were saved) and the training state.
func readCheckpoint(path string, cfg Config, dcfg model.DecoderConfig, params *model.DecoderParams, opt *Adam, src *rand.PCG) (*model.DecoderParams, trainState, error) {
	var st trainState
	ts, meta, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		return nil, st, err
	}
	bad := func(what string, err error) error {
		return fmt.Errorf("checkpoint %s: %s: %v", path, what, err)
	}
	if meta["format"] != checkpointFormat {
		return nil, st, fmt.Errorf("%s is not a captionctl checkpoint (format %q)", path, meta["format"])
	}
	var saved Config
	if err := json.Unmarshal([]byte(meta["config"]), &saved); err != nil {
		return nil, st, bad("config", err)
	}
	if err := checkConfig(saved, cfg); err != nil {
		return nil, st, err
	}
	var sd model.DecoderConfig
	if err := json.Unmarshal([]byte(meta["decoder"]), &sd); err != nil {
		return nil, st, bad("decoder", err)
	}
	if sd != dcfg {
		return nil, st, fmt.Errorf("cannot resume: the checkpoint's decoder is %+v, the data now gives %+v; was the dataset changed? start a new run dir (--out)", sd, dcfg)
	}
	load := func(prefix string, list []model.DecoderTensor) error {
		for _, p := range list {
			t := ts[prefix+p.Name]
			if t == nil {
				return bad(prefix+p.Name, errors.New("missing"))
			}
			vals, err := t.Float32()
			if err != nil {
				return bad(t.Name, err)
			}
			dst, ok := p.Tensor.Data().([]float32)
			if !ok || len(dst) != len(vals) {
				return bad(t.Name, fmt.Errorf("%d values for %v", len(vals), p.Tensor.Shape()))
			}
			copy(dst, vals)
		}
		return nil
	}
	if err := load("", params.Tensors()); err != nil {
		return nil, st, err
	}
	var m, v []model.DecoderTensor
	for i, p := range opt.params {
		m = append(m, model.DecoderTensor{Name: p.Name, Tensor: opt.m[i]})
		v = append(v, model.DecoderTensor{Name: p.Name, Tensor: opt.v[i]})
	}
	if err := load("adam.m.", m); err != nil {
		return nil, st, err
	}
	if err := load("adam.v.", v); err != nil {
		return nil, st, err
	}
	var best *model.DecoderParams
	if b, ok := meta["best"]; ok {
		if err := json.Unmarshal([]byte(b), &st.best); err != nil {
			return nil, st, bad("best", err)
		}
		if best, err = model.NewDecoderParamsZero(dcfg, tensor.Float32); err != nil {
			return nil, st, err
		}
		if err := load("best.", best.Tensors()); err != nil {
			return nil, st, err
		}
	}
	rs, err := base64.StdEncoding.DecodeString(meta["rng"])
	if err != nil {
		return nil, st, bad("rng", err)
	}
	if err := src.UnmarshalBinary(rs); err != nil {
		return nil, st, bad("rng", err)
	}
	ints := []struct {
		key string
		dst *int
	}{{"epoch", &st.epoch}, {"steps", &st.steps}, {"adam_step", &opt.Step}, {"since_best", &st.since}}
	for _, f := range ints {
		if *f.dst, err = strconv.Atoi(meta[f.key]); err != nil {
			return nil, st, bad(f.key, err)
		}
	}
	if opt.LR, err = strconv.ParseFloat(meta["lr"], 64); err != nil {
		return nil, st, bad("lr", err)
	}
	if err := json.Unmarshal([]byte(meta["epochs"]), &st.epochs); err != nil {
		return nil, st, bad("epochs", err)
	}
	if p, ok := meta["position"]; ok {
		if err := json.Unmarshal([]byte(p), &st.pos); err != nil {
			return nil, st, bad("position", err)
		}
		if st.pos.Batch < 1 || len(st.pos.EpochRNG) == 0 {
			return nil, st, bad("position", fmt.Errorf("batch %d with %d bytes of epoch RNG state", st.pos.Batch, len(st.pos.EpochRNG)))
		}
	}
	return best, st, nil
}

// removeStaleTemps removes the temporary files that writes of path cut
// short by a crash or kill -9 left behind (atomic writes go through
// ".<name>.tmp-*" in the same directory); each can be as large as a
// checkpoint. Only a resumed run calls it: no other write of path is
// under way then.
func removeStaleTemps(path string) {
	temps, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*"))
	for _, t := range temps {
		os.Remove(t)
	}
}

// checkpointExists reports whether path exists.
func checkpointExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
