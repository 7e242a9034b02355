package data

import (
	"fmt"
	"image"
	"math"
)

// Image preprocessing for the frozen encoder: torchvision's standard
// ImageNet evaluation transform, reproduced so that the encoder sees the
// tensor PyTorch would give it:
//
//	transforms.Compose([
//	    transforms.Resize(ResizeSize),     # shorter side, PIL bilinear, antialiased
//	    transforms.CenterCrop(ImageSize),
//	    transforms.ToTensor(),             # uint8 / 255
//	    transforms.Normalize(Mean, Std),
//	])
//
// applied to DecodeImage's output (PIL's convert('RGB') plus EXIF
// orientation). The uint8 image after Resize and CenterCrop equals
// torchvision's exactly for the same decoded pixels; JPEG decoding differs
// from libjpeg-turbo by at most a few levels on a few percent of pixels
// (see preprocess_ycbcr.go). The fixtures under testdata/preprocess,
// made by tools/make_preprocess_fixtures.py, pin both.

// ImageNetMean and ImageNetStd are the per-channel (R, G, B) statistics
// torchvision's ImageNet models are trained with.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// PreprocessConfig says how an image becomes the encoder's input tensor.
type PreprocessConfig struct {
	// ImageSize is the side S of the square the encoder sees.
	ImageSize int `json:"image_size"`
	// ResizeSize is the length the shorter side is resized to before the
	// centre crop; 0 means ImageSize·256/224 rounded down (256 for 224,
	// torchvision's and timm's crop ratio of 0.875). The longer side becomes
	// int(ResizeSize·long/short), as torchvision computes it.
	ResizeSize int `json:"resize_size"`
	// Mean and Std normalise each channel (R, G, B) of the [0, 1] image:
	// (x − Mean) / Std.
	Mean [3]float32 `json:"mean"`
	Std  [3]float32 `json:"std"`
}

// DefaultPreprocessConfig is torchvision's ImageNet evaluation transform:
// Resize(256), CenterCrop(224), ImageNet mean and std.
func DefaultPreprocessConfig() PreprocessConfig {
	return PreprocessConfig{ImageSize: 224, ResizeSize: 256, Mean: ImageNetMean, Std: ImageNetStd}
}

// Validate says what is wrong with the config, naming the field.
func (c PreprocessConfig) Validate() error {
	const maxSide = 8192
	switch {
	case c.ImageSize < 1 || c.ImageSize > maxSide:
		return fmt.Errorf("preprocessing image_size must be between 1 and %d, got %d", maxSide, c.ImageSize)
	case c.ResizeSize != 0 && (c.ResizeSize < c.ImageSize || c.ResizeSize > maxSide):
		return fmt.Errorf("preprocessing resize_size must be 0 (for image_size·256/224) or between image_size (%d) and %d, got %d", c.ImageSize, maxSide, c.ResizeSize)
	}
	for i, name := range [3]string{"R", "G", "B"} {
		m, s := float64(c.Mean[i]), float64(c.Std[i])
		if math.IsNaN(m) || math.IsInf(m, 0) {
			return fmt.Errorf("preprocessing mean[%d] (%s) must be finite, got %v", i, name, m)
		}
		if !(s > 0) || math.IsInf(s, 0) {
			return fmt.Errorf("preprocessing std[%d] (%s) must be positive and finite, got %v", i, name, s)
		}
	}
	return nil
}

// ShorterSide is the length the shorter side is resized to: ResizeSize, or
// ImageSize·256/224 when that is 0.
func (c PreprocessConfig) ShorterSide() int {
	if c.ResizeSize != 0 {
		return c.ResizeSize
	}
	return c.ImageSize * 256 / 224
}

// TensorLen is the number of float32 values of one preprocessed image,
// 3·ImageSize².
func (c PreprocessConfig) TensorLen() int {
	return 3 * c.ImageSize * c.ImageSize
}

// TensorLayout is the order of the values PreprocessInto writes.
type TensorLayout int

const (
	// CHW is [3, S, S], index c·S² + y·S + x: PyTorch's layout for one
	// image of an NCHW batch, what ToTensor returns.
	CHW TensorLayout = iota
	// HWC is [S, S, 3], index (y·S + x)·3 + c: one image of an NHWC batch.
	HWC
)

func (l TensorLayout) String() string {
	switch l {
	case CHW:
		return "CHW"
	case HWC:
		return "HWC"
	}
	return fmt.Sprintf("TensorLayout(%d)", int(l))
}

// Preprocess returns the encoder's input for img, a float32 tensor
// [3, S, S] in CHW order (S = cfg.ImageSize). img is typically
// DecodeImage's output; other images are first converted as DecodeImage
// converts decoded pixels.
func Preprocess(img image.Image, cfg PreprocessConfig) ([]float32, error) {
	p, err := NewPreprocessor(cfg)
	if err != nil {
		return nil, err
	}
	dst := make([]float32, cfg.TensorLen())
	return dst, p.Into(dst, img, CHW)
}

// PreprocessInto writes the encoder's input for img into dst, which must
// hold exactly cfg.TensorLen() values, in the given layout. A worker that
// preprocesses many images should keep a Preprocessor instead, which
// reuses its buffers.
func PreprocessInto(dst []float32, img image.Image, cfg PreprocessConfig, layout TensorLayout) error {
	p, err := NewPreprocessor(cfg)
	if err != nil {
		return err
	}
	return p.Into(dst, img, layout)
}

// ResizeCrop returns the uint8 image after Resize and CenterCrop, before
// ToTensor: the S×S square the encoder sees (for drawing attention maps
// over, and for checking against PIL).
func ResizeCrop(img image.Image, cfg PreprocessConfig) (*image.NRGBA, error) {
	p, err := NewPreprocessor(cfg)
	if err != nil {
		return nil, err
	}
	rgb := p.resizeCrop(img)
	s := cfg.ImageSize
	out := image.NewNRGBA(image.Rect(0, 0, s, s))
	for i := range s * s {
		out.Pix[4*i], out.Pix[4*i+1], out.Pix[4*i+2], out.Pix[4*i+3] = rgb[3*i], rgb[3*i+1], rgb[3*i+2], 255
	}
	return out, nil
}

// A Preprocessor turns images into encoder input for one config, reusing
// its buffers across calls. It is not safe for concurrent use: give each
// worker its own.
type Preprocessor struct {
	cfg PreprocessConfig
	// lut[c][v] = (v/255 − Mean[c]) / Std[c] in float32, as ToTensor and
	// Normalize compute it.
	lut     [3][256]float32
	rgb     []uint8 // S×S×3 crop
	scratch resampleScratch
}

// NewPreprocessor validates cfg and returns a Preprocessor for it.
func NewPreprocessor(cfg PreprocessConfig) (*Preprocessor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Preprocessor{cfg: cfg}
	for c := range 3 {
		for v := range 256 {
			// Two float32 operations, each rounded, like torch's div(255)
			// then sub_(mean).div_(std).
			x := float32(v) / 255
			p.lut[c][v] = (x - cfg.Mean[c]) / cfg.Std[c]
		}
	}
	return p, nil
}

// Config returns the preprocessor's config.
func (p *Preprocessor) Config() PreprocessConfig { return p.cfg }

// Into writes the encoder's input for img into dst (length
// Config().TensorLen()) in the given layout.
func (p *Preprocessor) Into(dst []float32, img image.Image, layout TensorLayout) error {
	n := p.cfg.TensorLen()
	if len(dst) != n {
		return fmt.Errorf("preprocess into a tensor of %d values, need 3·%d·%d = %d", len(dst), p.cfg.ImageSize, p.cfg.ImageSize, n)
	}
	if layout != CHW && layout != HWC {
		return fmt.Errorf("unknown tensor layout %v", layout)
	}
	rgb := p.resizeCrop(img)
	switch layout {
	case CHW:
		plane := n / 3
		r, g, b := dst[:plane], dst[plane:2*plane], dst[2*plane:]
		for i := range plane {
			r[i] = p.lut[0][rgb[3*i]]
			g[i] = p.lut[1][rgb[3*i+1]]
			b[i] = p.lut[2][rgb[3*i+2]]
		}
	case HWC:
		for i := 0; i < n; i += 3 {
			dst[i] = p.lut[0][rgb[i]]
			dst[i+1] = p.lut[1][rgb[i+1]]
			dst[i+2] = p.lut[2][rgb[i+2]]
		}
	}
	return nil
}

// resizeCrop returns the S×S×3 uint8 crop of img, in p's buffer.
func (p *Preprocessor) resizeCrop(img image.Image) []uint8 {
	m, ok := img.(*image.NRGBA)
	if !ok || m.Rect.Min != (image.Point{}) {
		m = toNRGBA(img)
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	outW, outH := resizedSize(w, h, p.cfg.ShorterSide())
	s := p.cfg.ImageSize
	left, top := centerCropOrigin(outW, s), centerCropOrigin(outH, s)
	p.rgb = resizeCrop(p.rgb, &p.scratch, m, outW, outH, left, top, s, s)
	return p.rgb
}

// resizedSize is torchvision's size for Resize(short) of a w×h image: the
// shorter side becomes short, the longer int(short·long/shorter), computed
// in float64 as Python does.
func resizedSize(w, h, short int) (outW, outH int) {
	if w <= h {
		return short, int(float64(short*h) / float64(w))
	}
	return int(float64(short*w) / float64(h)), short
}

// centerCropOrigin is torchvision's CenterCrop offset along one side:
// int(round((size − crop) / 2)), Python's round halving to even.
func centerCropOrigin(size, crop int) int {
	return int(math.RoundToEven(float64(size-crop) / 2))
}
