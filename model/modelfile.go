package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"

	"gorgonia.org/tensor"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/tensorfile"
)

// ModelFormat is the `format` metadata value of model files; LoadModel
// refuses any other.
const ModelFormat = "captionctl/1"

// Metadata keys of a model file's `__metadata__` (DESIGN.md §3).
const (
	metaFormat     = "format"
	metaConfig     = "config"
	metaVocab      = "vocab"
	metaEncoder    = "encoder"
	metaProvenance = "provenance"
)

// EncoderTensorPrefix prefixes the encoder's tensors in a model file:
// "encoder.layer1.0.conv1.weight" is torchvision's "layer1.0.conv1.weight".
const EncoderTensorPrefix = "encoder."

// ErrNoEncoderWeights is returned (wrapped) by ModelFile.NewEncoder for a
// model file that holds no encoder weights, such as one written before
// model files were self-contained: such a model can caption cached
// features but not images.
var ErrNoEncoderWeights = errors.New("the model file holds no encoder weights")

// ModelFile is a trained captioning model as stored in one self-contained
// safetensors file: the decoder's parameters as F32 tensors under their
// stable names (DecoderParams.Tensors), the encoder's weights as F32
// tensors under EncoderTensorPrefix and, in `__metadata__`, the format
// version, the decoder config, the vocabulary, the identity of the image
// features the decoder was trained on (arch, weights sha256, grid,
// preprocessing), and provenance. With the encoder weights the file holds
// everything needed to caption an image (NewEncoder, then the decoder).
type ModelFile struct {
	Config     DecoderConfig
	Params     *DecoderParams
	Vocab      *data.Vocab
	Encoder    data.EncoderIdentity
	Provenance Provenance

	// EncoderWeights is the encoder's torchvision state dict, keys without
	// EncoderTensorPrefix ("conv1.weight", "bn1.running_var", …), batch
	// norm NOT folded: the file stays a plain torchvision state dict that
	// Python can load (strip the prefix), and NewEncoder folds it exactly
	// as 'data features' did, so the features are bit-identical. The
	// classifier (fc.*) and num_batches_tracked are not stored; tensors are
	// stored as F32. Nil for a file without encoder weights (older files):
	// see EncoderStateDict for how train fills it.
	EncoderWeights map[string]*tensorfile.Tensor
}

// EncoderConfig is the encoder configuration the model's features were
// made with, from the encoder identity: arch, grid and the preprocessing's
// image size.
func (m *ModelFile) EncoderConfig() (EncoderConfig, error) {
	return encoderConfigOf(m.Encoder)
}

// encoderConfigOf is the encoder config an identity describes.
func encoderConfigOf(id data.EncoderIdentity) (EncoderConfig, error) {
	cfg := EncoderConfig{Arch: id.Arch, Grid: id.Grid, ImageSize: id.Preprocess.ImageSize}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("encoder identity %+v: %w", id, err)
	}
	if err := id.Preprocess.Validate(); err != nil {
		return cfg, fmt.Errorf("encoder identity: %w", err)
	}
	if ch := resnetArchs[cfg.Arch].channels(); id.Channels != 0 && id.Channels != ch {
		return cfg, fmt.Errorf("encoder identity says %s gives %d channels, it gives %d", cfg.Arch, id.Channels, ch)
	}
	return cfg, nil
}

// BlindWeightsID is the encoder weights id of all-zero features, on which
// `captionctl demo` trains its blind baseline.
const BlindWeightsID = "zeros"

// NewEncoder builds the model's image encoder from EncoderWeights (batch
// norm folded by the package-level NewEncoder). Without encoder weights
// the error wraps ErrNoEncoderWeights and says what to do.
func (m *ModelFile) NewEncoder() (*Encoder, error) {
	if len(m.EncoderWeights) == 0 {
		if m.Encoder.WeightsSHA256 == BlindWeightsID {
			return nil, fmt.Errorf("%w: it was trained on all-zero features (a blind baseline) and never looks at images; caption its dataset's features with 'captionctl eval --model … --data …'", ErrNoEncoderWeights)
		}
		return nil, fmt.Errorf("%w (a model from an older captionctl): retrain it with this version to caption images, or caption precomputed features ('captionctl eval --model … --data …')", ErrNoEncoderWeights)
	}
	cfg, err := m.EncoderConfig()
	if err != nil {
		return nil, err
	}
	return NewEncoder(cfg, m.EncoderWeights)
}

// RandomEncoderRNG is the random stream of `captionctl data features
// --weights random --seed SEED`, recorded in the features' identity as
// "random:seed=SEED": RandomEncoder(cfg, RandomEncoderRNG(seed)).
func RandomEncoderRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x5eed_e5c0de))
}

// RandomWeightsSeed parses a "random:seed=SEED" (or "random:SEED") weights
// identity; ok is false for anything else, e.g. a sha256.
func RandomWeightsSeed(weightsID string) (seed uint64, ok bool) {
	rest, ok := strings.CutPrefix(weightsID, "random:")
	if !ok {
		return 0, false
	}
	rest = strings.TrimPrefix(rest, "seed=")
	seed, err := strconv.ParseUint(rest, 10, 64)
	return seed, err == nil
}

// EncoderStateDict re-creates the encoder weights a feature store was made
// with, for ModelFile.EncoderWeights: for a "random:seed=SEED" identity
// the seeded torchvision initialisation of `data features --weights
// random` (weightsPath is ignored), otherwise the torchvision weights file
// at weightsPath (.pth or .safetensors), whose sha256 must be the
// identity's. The state dict is checked by building the encoder from it,
// so a model file never holds weights that do not fit its identity.
func EncoderStateDict(id data.EncoderIdentity, weightsPath string) (map[string]*tensorfile.Tensor, error) {
	cfg, err := encoderConfigOf(id)
	if err != nil {
		return nil, err
	}
	var sd map[string]*tensorfile.Tensor
	if seed, ok := RandomWeightsSeed(id.WeightsSHA256); ok {
		sd = randomStateDict(resnetArchs[cfg.Arch], RandomEncoderRNG(seed))
	} else {
		if weightsPath == "" {
			return nil, fmt.Errorf("the features were made with %s weights of sha256 %s: give that weights file (the one passed to 'data features --weights')", cfg.Arch, id.WeightsSHA256)
		}
		sum, err := data.SHA256File(weightsPath)
		if err != nil {
			return nil, err
		}
		if sum != id.WeightsSHA256 {
			return nil, badinput.Errorf(weightsPath, "sha256 %s, but the features were made with weights of sha256 %s: give the weights file passed to 'data features --weights'", sum, id.WeightsSHA256)
		}
		if sd, err = tensorfile.Load(weightsPath); err != nil {
			return nil, err
		}
	}
	if _, err := NewEncoder(cfg, sd); err != nil {
		if weightsPath != "" {
			return nil, fmt.Errorf("%s: %w", weightsPath, err)
		}
		return nil, err
	}
	return sd, nil
}

// encoderTensors returns the state dict's tensors to store, as F32 under
// EncoderTensorPrefix, after checking them against cfg's architecture.
func encoderTensors(cfg EncoderConfig, sd map[string]*tensorfile.Tensor) ([]*tensorfile.Tensor, error) {
	if err := checkStateDict(resnetArchs[cfg.Arch], sd); err != nil {
		return nil, err
	}
	var out []*tensorfile.Tensor
	for name, t := range sd {
		if !storedEncoderKey(name) {
			continue
		}
		values, err := t.Float32()
		if err != nil {
			return nil, &WeightsError{Arch: cfg.Arch, Tensor: name, Msg: err.Error()}
		}
		out = append(out, tensorfile.NewF32(EncoderTensorPrefix+name, t.Shape, values))
	}
	return out, nil
}

// storedEncoderKey says whether a state-dict key goes into model files:
// not the classifier, not batch norm's counter.
func storedEncoderKey(name string) bool {
	return !strings.HasPrefix(name, "fc.") && !strings.HasSuffix(name, ".num_batches_tracked")
}

// checkStateDict checks that sd has every convolution and batch-norm
// tensor of arch with its shape, and nothing else but the classifier and
// num_batches_tracked, without folding anything.
func checkStateDict(arch resnetArch, sd map[string]*tensorfile.Tensor) error {
	want := map[string][]int{}
	stem, blocks := arch.plan()
	add := func(s *convSpec) {
		if s == nil {
			return
		}
		want[s.conv+".weight"] = []int{s.cout, s.cin, s.k, s.k}
		for _, suffix := range []string{".weight", ".bias", ".running_mean", ".running_var"} {
			want[s.bn+suffix] = []int{s.cout}
		}
	}
	add(&stem)
	for _, b := range blocks {
		add(b.conv1)
		add(b.conv2)
		add(b.conv3)
		add(b.down)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.SortFunc(names, naturalCompare)
	for _, name := range names {
		t, ok := sd[name]
		switch {
		case !ok:
			return &WeightsError{Arch: arch.name, Tensor: name, Msg: "missing from the weights"}
		case !slices.Equal(t.Shape, want[name]):
			return &WeightsError{Arch: arch.name, Tensor: name, Msg: fmt.Sprintf("shape %v, want %v", t.Shape, want[name])}
		}
	}
	for name := range sd {
		if _, ok := want[name]; !ok && storedEncoderKey(name) {
			return &WeightsError{Arch: arch.name, Tensor: name, Msg: "no such tensor in " + arch.name}
		}
	}
	return nil
}

// Provenance says where a model came from. It is saved as JSON in the
// model file: add fields freely, never rename them.
type Provenance struct {
	// DataManifestSHA256 is the sha256 of the training dataset's
	// manifest.json.
	DataManifestSHA256 string `json:"data_manifest_sha256"`
	// Seed is the training seed (--seed).
	Seed uint64 `json:"seed"`
	// Epoch is the epoch (1-based) whose end state the file holds.
	Epoch int `json:"epoch"`
	// Steps is the number of batches trained in all.
	Steps int `json:"steps"`
	// Selection says which model of the run this is: "last" (the last
	// epoch's) or "best" (by the validation score named in Metrics).
	Selection string `json:"selection,omitempty"`
	// Metrics holds scores at Epoch: training loss, validation scores.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// SaveModel writes m to path as a safetensors file, atomically: a crash
// never leaves a partial file under path. EncoderWeights, when set, must
// fit m.Encoder (arch, grid, channels = the decoder's feature dim); they
// are stored as F32 under EncoderTensorPrefix.
func SaveModel(path string, m *ModelFile) error {
	if m == nil || m.Params == nil || m.Vocab == nil {
		return fmt.Errorf("save model %s: parameters and vocabulary are required", path)
	}
	if err := m.Config.Validate(); err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	if m.Params.Config != m.Config {
		return fmt.Errorf("save model %s: parameters are for config %v, not %v", path, m.Params.Config, m.Config)
	}
	if m.Vocab.Len() != m.Config.VocabSize {
		return fmt.Errorf("save model %s: vocabulary has %d tokens, config says %d", path, m.Vocab.Len(), m.Config.VocabSize)
	}
	meta := map[string]string{metaFormat: ModelFormat, metaConfig: m.Config.String()}
	for key, v := range map[string]any{metaVocab: m.Vocab, metaEncoder: m.Encoder, metaProvenance: m.Provenance} {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("save model %s: %s: %w", path, key, err)
		}
		meta[key] = string(b)
	}
	var tensors []*tensorfile.Tensor
	for _, p := range m.Params.Tensors() {
		var values []float32
		switch d := p.Tensor.Data().(type) {
		case []float32:
			values = d
		case []float64:
			values = make([]float32, len(d))
			for i, v := range d {
				values[i] = float32(v)
			}
		default:
			return fmt.Errorf("save model %s: tensor %q has unsupported type %T", path, p.Name, d)
		}
		tensors = append(tensors, tensorfile.NewF32(p.Name, []int(p.Tensor.Shape()), values))
	}
	if m.EncoderWeights != nil {
		cfg, err := m.EncoderConfig()
		if err != nil {
			return fmt.Errorf("save model %s: %w", path, err)
		}
		if ch := resnetArchs[cfg.Arch].channels(); ch != m.Config.FeatureDim || cfg.Grid*cfg.Grid != m.Config.GridCells {
			return fmt.Errorf("save model %s: the %s encoder gives %d×%d×%d features, the decoder wants %d cells × %d", path, cfg.Arch, cfg.Grid, cfg.Grid, ch, m.Config.GridCells, m.Config.FeatureDim)
		}
		enc, err := encoderTensors(cfg, m.EncoderWeights)
		if err != nil {
			return fmt.Errorf("save model %s: encoder: %w", path, err)
		}
		tensors = append(tensors, enc...)
	}
	return tensorfile.WriteSafetensors(path, tensors, meta)
}

// LoadModel reads a model file written by SaveModel. Its parameters are
// float32. The encoder's tensors, when the file has them, are checked
// against the encoder identity and returned in EncoderWeights; a file
// without them (an older one) loads with EncoderWeights nil. Errors are *badinput.Error naming the file and, for tensors, the
// missing or mismatched tensor.
func LoadModel(path string) (*ModelFile, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, &badinput.Error{File: path, Msg: "cannot read model file: " + err.Error(), Err: err}
	}
	tensors, meta, err := tensorfile.LoadSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	const hint = "; is it a model written by 'captionctl train'?"
	format, ok := meta[metaFormat]
	switch {
	case !ok:
		return nil, badinput.Errorf(path, "no %q in the safetensors metadata: not a captionctl model file%s", metaFormat, hint)
	case format != ModelFormat:
		if strings.HasPrefix(format, "captionctl/") {
			return nil, badinput.Errorf(path, "model format is %q, this captionctl reads %q: use a captionctl version that reads it, or retrain", format, ModelFormat)
		}
		return nil, badinput.Errorf(path, "format is %q, want %q: not a captionctl model file%s", format, ModelFormat, hint)
	}
	m := &ModelFile{}
	m.Vocab = &data.Vocab{}
	for _, f := range []struct {
		key string
		v   any
	}{{metaConfig, &m.Config}, {metaVocab, m.Vocab}, {metaEncoder, &m.Encoder}, {metaProvenance, &m.Provenance}} {
		raw, ok := meta[f.key]
		if !ok {
			return nil, badinput.Errorf(path, "metadata %q is missing%s", f.key, hint)
		}
		if err := json.Unmarshal([]byte(raw), f.v); err != nil {
			return nil, badinput.Errorf(path, "metadata %q: %v", f.key, err)
		}
	}
	if err := m.Config.Validate(); err != nil {
		return nil, badinput.Errorf(path, "metadata %q: %v", metaConfig, err)
	}
	if m.Vocab.Len() != m.Config.VocabSize {
		return nil, badinput.Errorf(path, "vocabulary has %d tokens but the config says vocab_size %d", m.Vocab.Len(), m.Config.VocabSize)
	}
	if m.Encoder.Channels != 0 && m.Encoder.Channels != m.Config.FeatureDim {
		return nil, badinput.Errorf(path, "encoder gives %d channels but the decoder's feature_dim is %d", m.Encoder.Channels, m.Config.FeatureDim)
	}
	if m.Encoder.Grid != 0 && m.Encoder.Grid*m.Encoder.Grid != m.Config.GridCells {
		return nil, badinput.Errorf(path, "encoder grid %d×%d does not match the decoder's grid_cells %d", m.Encoder.Grid, m.Encoder.Grid, m.Config.GridCells)
	}
	if m.Params, err = NewDecoderParamsZero(m.Config, tensor.Float32); err != nil {
		return nil, badinput.Errorf(path, "%v", err)
	}
	want := map[string]bool{}
	for _, p := range m.Params.Tensors() {
		want[p.Name] = true
		t, ok := tensors[p.Name]
		if !ok {
			return nil, badinput.Errorf(path, "tensor %q is missing (a %s decoder needs it); the file is incomplete or was written for another architecture", p.Name, m.Config.Arch)
		}
		shape := []int(p.Tensor.Shape())
		if !slices.Equal(t.Shape, shape) {
			return nil, badinput.Errorf(path, "tensor %q has shape %v, the config %v needs %v", p.Name, t.Shape, m.Config, shape)
		}
		values, err := t.Float32()
		if err != nil {
			return nil, badinput.Errorf(path, "%v", err)
		}
		copy(p.Tensor.Data().([]float32), values)
	}
	var extra []string
	for name, t := range tensors {
		if key, ok := strings.CutPrefix(name, EncoderTensorPrefix); ok {
			if m.EncoderWeights == nil {
				m.EncoderWeights = map[string]*tensorfile.Tensor{}
			}
			m.EncoderWeights[key] = t
			continue
		}
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, badinput.Errorf(path, "unexpected tensor %q for a %s decoder (%d unexpected in all); the file was written for another architecture or is corrupt", extra[0], m.Config.Arch, len(extra))
	}
	if m.EncoderWeights != nil {
		cfg, err := m.EncoderConfig()
		if err != nil {
			return nil, badinput.Errorf(path, "metadata %q: %v", metaEncoder, err)
		}
		if ch := resnetArchs[cfg.Arch].channels(); ch != m.Config.FeatureDim {
			return nil, badinput.Errorf(path, "the %s encoder gives %d channels but the decoder's feature_dim is %d", cfg.Arch, ch, m.Config.FeatureDim)
		}
		if err := checkStateDict(resnetArchs[cfg.Arch], m.EncoderWeights); err != nil {
			var we *WeightsError
			if errors.As(err, &we) {
				return nil, badinput.Errorf(path, "encoder tensor %q: %s; the file is incomplete or corrupt", EncoderTensorPrefix+we.Tensor, we.Msg)
			}
			return nil, badinput.Errorf(path, "encoder: %v", err)
		}
	}
	return m, nil
}
