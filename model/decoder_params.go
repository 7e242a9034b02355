package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// DecoderParams holds the decoder's parameters as plain tensors, apart from
// any graph: the graphs built by NewDecoderTrainGraph and NewDecoderStepper
// bind these very tensors (no copies), so an optimizer that updates them in
// place updates every graph, and a model file is just these tensors under
// their names (Tensors). Once graphs are built, change values in place
// (copy into the tensors), never replace the tensors themselves.
//
// Weights are stored (in, out), the transpose of torch.nn.Linear's weight,
// so that every product is x·W with x a (B, in) row batch. Shapes below use
// B batch, P grid cells, F feature dim, E embedding, A attention, H hidden,
// V vocabulary.
//
// # Soft attention (ArchAttention)
//
// With a (B, P, F) the image features, ā = mean_p a_p (B, F) and y_t the
// previous word (<start> at t = 0):
//
//	h_0 = tanh(ā·W_inith + b_inith)                  (B, H)
//	c_0 = tanh(ā·W_initc + b_initc)                  (B, H)
//	u   = a·W_a + b_a                                (B, P, A)  once per batch
//	e_t = relu(u + (h_{t−1}·W_h)[:, None, :])·w      (B, P)
//	α_t = softmax_p(e_t)                             (B, P)
//	z_t = Σ_p α_tp a_p                               (B, F)
//	β_t = σ(h_{t−1}·W_β + b_β)                       (B, F)
//	x_t = Emb[y_{t−1}]                               (B, E)
//	k_t = x_t·W_ek + (β_t⊙z_t)·W_zk + h_{t−1}·W_hk + b_k   for k ∈ {i, f, g, o}
//	i, f, o = σ(k_t);  g = tanh(g_t)
//	c_t = f⊙c_{t−1} + i⊙g;  h_t = o⊙tanh(c_t)       (B, H)
//	logits_t = (m_t⊙h_t)·W_o + b_o                   (B, V)
//
// m_t is the dropout mask, Bernoulli(1 − p)/(1 − p) per element in training
// and all ones otherwise. The relu and the per-feature gate β follow the
// sgrvinod tutorial; the four gate blocks are exactly PyTorch's LSTMCell on
// the concatenated input [x_t; β_t⊙z_t], stored per gate (see the gorgonia
// notes: no slicing of a 4H-wide product).
//
// # Show and Tell (ArchShowTell)
//
// The pooled feature enters the LSTM once, as the input before <start>,
// from a zero state: (h_0, c_0) = LSTM(ā·W_img + b_img, 0, 0); the word
// steps are the LSTM above without the context term (no z, no β, no α).
//
// # Loss
//
// With targets y_t (B) for t = 0..T−1, r_bt = 1 where step t is a real
// token of caption b (up to and including <end>) and N = Σ r_bt:
//
//	L = −(1/N) Σ_t Σ_b r_bt log softmax(logits_t)[b, y_t]
//	    + α_c · (1/(B'·P)) Σ_b Σ_p (1 − Σ_t r_bt α_tbp)²
//
// B' is the number of non-empty captions in the batch (B but for a partial
// last batch). The penalty is the sgrvinod tutorial's
// `((1 − alphas.sum(1))²).mean()`: a mean over captions AND grid cells, so
// that its α_c = 1 default means the same here. (Xu et al. sum over the
// grid cells instead; that is α_c·P here. With P = 49 or 196 and captions
// of ~12 words that penalty has a floor of ~27 or ~170 per caption, far
// above the cross-entropy: it keeps the attention uniform and the model
// learned no better than a blind one.) The cross-entropy is the same mean
// over real tokens, and like the tutorial's the alphas are zero past each
// caption's length. Unlike the tutorial, h_0 and
// c_0 pass through tanh, as in Xu et al.'s own code.
type DecoderParams struct {
	Config DecoderConfig
	Dtype  tensor.Dtype

	Embedding *tensor.Dense // (V, E) decoder.embedding.weight

	// ArchAttention: initial state from the mean feature.
	InitH, InitHBias *tensor.Dense // (F, H), (H)
	InitC, InitCBias *tensor.Dense // (F, H), (H)
	// ArchShowTell: the pooled feature mapped to an LSTM input.
	Image, ImageBias *tensor.Dense // (F, E), (E)

	// ArchAttention: attention MLP and gate.
	AttEncoder     *tensor.Dense // W_a (F, A)
	AttEncoderBias *tensor.Dense // b_a (A)
	AttDecoder     *tensor.Dense // W_h (H, A)
	AttScore       *tensor.Dense // w (A)
	Gate, GateBias *tensor.Dense // W_β (H, F), b_β (F)

	// LSTM gates in PyTorch's order i, f, g, o.
	LSTM [4]DecoderGate

	Output     *tensor.Dense // W_o (H, V)
	OutputBias *tensor.Dense // b_o (V)
}

// DecoderGate is one LSTM gate's parameters: k = x·Input + z·Context +
// h·Hidden + Bias.
type DecoderGate struct {
	Input   *tensor.Dense // (E, H)
	Context *tensor.Dense // (F, H); nil for ArchShowTell
	Hidden  *tensor.Dense // (H, H)
	Bias    *tensor.Dense // (H)
}

// decoderGateNames are the LSTM gates in PyTorch's order.
var decoderGateNames = [4]string{"i", "f", "g", "o"}

// DecoderTensor is one parameter with its stable name in model files.
type DecoderTensor struct {
	Name   string
	Tensor *tensor.Dense
}

// decParamSpec describes one parameter: where it lives in DecoderParams,
// its name, shape and initial distribution.
type decParamSpec struct {
	name  string
	shape tensor.Shape
	ptr   **tensor.Dense
	// bound of the initial uniform distribution U(−bound, bound); 0 for
	// zeros.
	bound float64
}

// specs lists the parameters of p's architecture in their canonical order
// (model files, gradients, initialisation and the PyTorch fixture all use
// it).
func (p *DecoderParams) specs() []decParamSpec {
	c := p.Config
	V, E, F, A, H := c.VocabSize, c.EmbedDim, c.FeatureDim, c.AttentionDim, c.HiddenDim
	// PyTorch's defaults: Linear draws weight and bias from U(±1/√fan_in),
	// LSTMCell everything from U(±1/√H); the tutorial draws the embedding
	// and output weight from U(±0.1) and zeroes the output bias.
	lin := func(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }
	s := []decParamSpec{{"decoder.embedding.weight", tensor.Shape{V, E}, &p.Embedding, 0.1}}
	if c.Arch == ArchAttention {
		s = append(s,
			decParamSpec{"decoder.init_h.weight", tensor.Shape{F, H}, &p.InitH, lin(F)},
			decParamSpec{"decoder.init_h.bias", tensor.Shape{H}, &p.InitHBias, lin(F)},
			decParamSpec{"decoder.init_c.weight", tensor.Shape{F, H}, &p.InitC, lin(F)},
			decParamSpec{"decoder.init_c.bias", tensor.Shape{H}, &p.InitCBias, lin(F)},
			decParamSpec{"decoder.attention.encoder.weight", tensor.Shape{F, A}, &p.AttEncoder, lin(F)},
			decParamSpec{"decoder.attention.encoder.bias", tensor.Shape{A}, &p.AttEncoderBias, lin(F)},
			decParamSpec{"decoder.attention.decoder.weight", tensor.Shape{H, A}, &p.AttDecoder, lin(H)},
			decParamSpec{"decoder.attention.score.weight", tensor.Shape{A}, &p.AttScore, lin(A)},
			decParamSpec{"decoder.f_beta.weight", tensor.Shape{H, F}, &p.Gate, lin(H)},
			decParamSpec{"decoder.f_beta.bias", tensor.Shape{F}, &p.GateBias, lin(H)},
		)
	} else {
		s = append(s,
			decParamSpec{"decoder.image.weight", tensor.Shape{F, E}, &p.Image, lin(F)},
			decParamSpec{"decoder.image.bias", tensor.Shape{E}, &p.ImageBias, lin(F)},
		)
	}
	for k, gate := range decoderGateNames {
		g := &p.LSTM[k]
		prefix := "decoder.lstm." + gate + "."
		s = append(s, decParamSpec{prefix + "input.weight", tensor.Shape{E, H}, &g.Input, lin(H)})
		if c.Arch == ArchAttention {
			s = append(s, decParamSpec{prefix + "context.weight", tensor.Shape{F, H}, &g.Context, lin(H)})
		}
		s = append(s,
			decParamSpec{prefix + "hidden.weight", tensor.Shape{H, H}, &g.Hidden, lin(H)},
			decParamSpec{prefix + "bias", tensor.Shape{H}, &g.Bias, lin(H)},
		)
	}
	return append(s,
		decParamSpec{"decoder.output.weight", tensor.Shape{H, V}, &p.Output, 0.1},
		decParamSpec{"decoder.output.bias", tensor.Shape{V}, &p.OutputBias, 0},
	)
}

// NewDecoderParamsZero allocates cfg's parameters, all zero, in dtype
// (tensor.Float32 for training and inference, tensor.Float64 for gradient
// checks). Loading a model file fills them.
func NewDecoderParamsZero(cfg DecoderConfig, dtype tensor.Dtype) (*DecoderParams, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("decoder config: %w", err)
	}
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, fmt.Errorf("decoder parameters must be float32 or float64, got %v", dtype)
	}
	p := &DecoderParams{Config: cfg, Dtype: dtype}
	for _, s := range p.specs() {
		*s.ptr = tensor.New(tensor.Of(dtype), tensor.WithShape(s.shape...))
	}
	return p, nil
}

// NewDecoderParams allocates cfg's parameters and draws their initial
// values from rng, tensor by tensor in Names order, element by element in
// row-major order, so that the same seed gives the same parameters. The
// distributions are PyTorch's defaults for the corresponding layers (see
// specs); gorgonia's initialisers are not used: they seed from the clock.
func NewDecoderParams(cfg DecoderConfig, dtype tensor.Dtype, rng *rand.Rand) (*DecoderParams, error) {
	p, err := NewDecoderParamsZero(cfg, dtype)
	if err != nil {
		return nil, err
	}
	for _, s := range p.specs() {
		if s.bound == 0 {
			continue
		}
		switch data := (*s.ptr).Data().(type) {
		case []float32:
			for i := range data {
				data[i] = float32((2*rng.Float64() - 1) * s.bound)
			}
		case []float64:
			for i := range data {
				data[i] = (2*rng.Float64() - 1) * s.bound
			}
		}
	}
	return p, nil
}

// Tensors returns the parameters with their stable names, in the canonical
// order. The tensors are p's own, not copies.
func (p *DecoderParams) Tensors() []DecoderTensor {
	specs := p.specs()
	out := make([]DecoderTensor, len(specs))
	for i, s := range specs {
		out[i] = DecoderTensor{Name: s.name, Tensor: *s.ptr}
	}
	return out
}

// Count returns the number of scalar parameters.
func (p *DecoderParams) Count() int {
	n := 0
	for _, t := range p.Tensors() {
		n += t.Tensor.Shape().TotalSize()
	}
	return n
}
