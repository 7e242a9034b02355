package model

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
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

// ModelFile is a trained captioning model as stored in one self-contained
// safetensors file: the decoder's parameters as F32 tensors under their
// stable names (DecoderParams.Tensors) and, in `__metadata__`, the format
// version, the decoder config, the vocabulary, the identity of the image
// features the decoder was trained on, and provenance.
//
// The encoder's weights are not stored yet: Encoder identifies them (arch,
// weights sha256, pretrained, grid, preprocessing).
type ModelFile struct {
	Config     DecoderConfig
	Params     *DecoderParams
	Vocab      *data.Vocab
	Encoder    data.EncoderIdentity
	Provenance Provenance
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
// never leaves a partial file under path.
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
	return tensorfile.WriteSafetensors(path, tensors, meta)
}

// LoadModel reads a model file written by SaveModel. Its parameters are
// float32. Errors are *badinput.Error naming the file and, for tensors, the
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
	for name := range tensors {
		// encoder.* is reserved for the encoder's weights.
		if !want[name] && !strings.HasPrefix(name, "encoder.") {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return nil, badinput.Errorf(path, "unexpected tensor %q for a %s decoder (%d unexpected in all); the file was written for another architecture or is corrupt", extra[0], m.Config.Arch, len(extra))
	}
	return m, nil
}
