package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"

	// Decoders DecodeImage accepts; imaging also registers BMP and TIFF
	// (golang.org/x/image).
	_ "image/gif"
	"image/jpeg"
	"image/png"

	"github.com/captionctl/captionctl/internal/badinput"
)

// MaxImagePixels is the largest image, in pixels (width × height), that
// DecodeImage decodes; larger ones are refused before any pixel memory is
// allocated. A 100-megapixel image takes 400 MB as 8-bit RGBA, more while
// its decoder holds its own planes.
const MaxImagePixels = 100_000_000

// maxImageFileBytes bounds the file DecodeImage reads into memory.
const maxImageFileBytes = 1 << 30

// DecodeImage reads an image file (JPEG, PNG, GIF, BMP or TIFF) and returns
// it as 8-bit RGB, the way torchvision's default loader sees it
// (PIL's Image.open(f).convert('RGB')), with its EXIF orientation applied
// (ImageOps.exif_transpose; torchvision's loader skips that step). The
// result's alpha is 255 everywhere and its bounds start at (0, 0).
//
// Conversions, each as Pillow 9.4 does it:
//   - grayscale: the value copied to R, G and B;
//   - alpha (RGBA, grey+alpha, palettes with transparency): alpha dropped,
//     the stored colour kept (no compositing onto a background);
//   - JPEG YCbCr: libjpeg-turbo's fancy upsampling and colour conversion
//     (see preprocess_ycbcr.go);
//   - CMYK JPEG (Adobe, stored inverted): R = (255−K) − (C·(255−K))/255,
//     rounded as Pillow's cmyk2rgb, likewise G from M and B from Y;
//   - 16-bit samples: the high byte (Pillow's "RGB;16B" unpacking).
//
// Departures from Pillow, each rare: a 16-bit grayscale PNG keeps its high
// byte, where Pillow opens it as mode "I" and clips every value above 255
// to white; a GIF's transparent colour is black (Go's GIF decoder does not
// keep it); a YCCK JPEG uses Go's colour conversion; 4-component JPEGs
// without an Adobe marker are refused.
//
// Every error is a *badinput.Error naming path.
func DecodeImage(path string) (*image.NRGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &badinput.Error{File: path, Msg: "cannot open image: " + errorText(err), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxImageFileBytes+1))
	if err != nil {
		return nil, &badinput.Error{File: path, Msg: "cannot read image: " + errorText(err), Err: err}
	}
	if len(data) > maxImageFileBytes {
		return nil, badinput.Errorf(path, "image file larger than %d MiB", maxImageFileBytes>>20)
	}
	return DecodeImageBytes(path, data)
}

// DecodeImageBytes is DecodeImage for an image already in memory; name is
// the file name errors give.
func DecodeImageBytes(name string, data []byte) (*image.NRGBA, error) {
	return decodeImage(name, data, MaxImagePixels)
}

// errorText is err's message without the file name that *fs.PathError
// repeats.
func errorText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func decodeImage(name string, data []byte, maxPixels int) (*image.NRGBA, error) {
	if len(data) == 0 {
		return nil, badinput.Errorf(name, "empty file (0 bytes), not an image")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if errors.Is(err, image.ErrFormat) {
		return nil, badinput.Errorf(name, "unsupported image format (file starts with % x); captionctl reads JPEG, PNG, GIF, BMP and TIFF", data[:min(len(data), 8)])
	}
	if err != nil {
		return nil, &badinput.Error{File: name, Msg: fmt.Sprintf("corrupt %s header: %v", format, err), Err: err}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, badinput.Errorf(name, "%s image has no pixels (%d×%d)", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, badinput.Errorf(name, "%s image is %d×%d, over the limit of %d megapixels", format, cfg.Width, cfg.Height, maxPixels/1_000_000)
	}
	img, err := safeDecode(data)
	if err != nil {
		what := "corrupt or truncated"
		var jpegUnsupported jpeg.UnsupportedError
		var pngUnsupported png.UnsupportedError
		if errors.As(err, &jpegUnsupported) || errors.As(err, &pngUnsupported) {
			what = "unsupported kind of"
		}
		return nil, &badinput.Error{File: name, Msg: fmt.Sprintf("%s %s data: %v", what, format, err), Err: err}
	}
	rgb := toNRGBA(img)
	if o := exifOrientation(data); o != 1 {
		rgb = orient(rgb, o)
	}
	return rgb, nil
}

// safeDecode runs the registered decoder, turning a decoder panic on
// malformed data into an error.
func safeDecode(data []byte) (img image.Image, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("decoder failed on malformed data: %v", r)
		}
	}()
	img, _, err = image.Decode(bytes.NewReader(data))
	return img, err
}

// toNRGBA converts a decoded image to opaque 8-bit RGB with Pillow's
// convert('RGB') semantics (see DecodeImage), in a new image whose bounds
// start at (0, 0).
func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	var out *image.NRGBA
	switch m := img.(type) {
	case *image.YCbCr:
		if b.Min.X < 0 || b.Min.Y < 0 { // not from a decoder; Go's chroma indexing differs
			out = mapPixels(img, func(x, y int) (r, g, b uint8) { return straightRGB(img.At(x, y)) })
			break
		}
		out = ycbcrToNRGBA(m)
	case *image.NRGBA:
		out = image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		for y := b.Min.Y; y < b.Max.Y; y++ {
			i := m.PixOffset(b.Min.X, y)
			copy(out.Pix[(y-b.Min.Y)*out.Stride:], m.Pix[i:i+4*b.Dx()])
		}
	case *image.Gray:
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			v := m.Pix[m.PixOffset(x, y)]
			return v, v, v
		})
	case *image.Gray16:
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			v := m.Pix[m.PixOffset(x, y)] // big-endian: high byte first
			return v, v, v
		})
	case *image.RGBA64: // 16-bit RGB PNG or TIFF
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			p := m.Pix[m.PixOffset(x, y):]
			if a := uint32(p[6])<<8 | uint32(p[7]); a != 0xffff {
				c := m.RGBA64At(x, y)
				return unpremultiply16(uint32(c.R), uint32(c.G), uint32(c.B), uint32(c.A))
			}
			return p[0], p[2], p[4]
		})
	case *image.NRGBA64:
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			p := m.Pix[m.PixOffset(x, y):]
			return p[0], p[2], p[4]
		})
	case *image.CMYK:
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			p := m.Pix[m.PixOffset(x, y):]
			return cmykToRGB(p[0], p[1], p[2], p[3])
		})
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range m.Palette[:min(len(m.Palette), 256)] {
			lut[i][0], lut[i][1], lut[i][2] = straightRGB(c)
		}
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			c := lut[m.Pix[m.PixOffset(x, y)]]
			return c[0], c[1], c[2]
		})
	default:
		out = mapPixels(img, func(x, y int) (r, g, b uint8) {
			return straightRGB(img.At(x, y))
		})
	}
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 255
	}
	out.Rect = image.Rect(0, 0, b.Dx(), b.Dy())
	return out
}

// mapPixels builds an image the size of img from a per-pixel function of
// img's coordinates.
func mapPixels(img image.Image, rgb func(x, y int) (r, g, b uint8)) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := out.Pix[(y-b.Min.Y)*out.Stride:]
		for x := b.Min.X; x < b.Max.X; x++ {
			p := row[4*(x-b.Min.X):]
			p[0], p[1], p[2] = rgb(x, y)
		}
	}
	return out
}

// straightRGB returns a colour's stored (non-premultiplied) 8-bit RGB.
func straightRGB(c color.Color) (r, g, b uint8) {
	switch c := c.(type) {
	case color.NRGBA:
		return c.R, c.G, c.B
	case color.NRGBA64:
		return uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)
	case color.Gray:
		return c.Y, c.Y, c.Y
	case color.Gray16:
		return uint8(c.Y >> 8), uint8(c.Y >> 8), uint8(c.Y >> 8)
	}
	r32, g32, b32, a32 := c.RGBA()
	return unpremultiply16(r32, g32, b32, a32)
}

// unpremultiply16 turns 16-bit alpha-premultiplied RGB into straight 8-bit
// RGB; a fully transparent colour is black.
func unpremultiply16(r, g, b, a uint32) (uint8, uint8, uint8) {
	if a == 0xffff || a == 0 {
		return uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)
	}
	un := func(v uint32) uint8 { return uint8(min((v*0xffff+a/2)/a, 0xffff) >> 8) }
	return un(r), un(g), un(b)
}

// cmykToRGB is Pillow's cmyk2rgb: each ink darkens what black leaves,
// with Pillow's rounded division by 255.
func cmykToRGB(c, m, y, k uint8) (r, g, b uint8) {
	nk := int32(255 - k)
	ink := func(v uint8) uint8 {
		t := int32(v)*nk + 128
		return uint8(max(nk-((t+t>>8)>>8), 0))
	}
	return ink(c), ink(m), ink(y)
}
