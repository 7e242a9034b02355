package data

import (
	"bytes"
	"encoding/binary"
	"image"

	"github.com/disintegration/imaging"
)

// EXIF orientation, as Pillow's ImageOps.exif_transpose applies it.
//
// A camera stores the sensor's pixels as read out and records in the EXIF
// Orientation tag (0x0112) how to turn them upright. torchvision's default
// loader ignores the tag; captionctl honours it, so a portrait photo taken
// with the phone held upright reaches the encoder upright. The reference
// fixtures (tools/make_preprocess_fixtures.py) therefore call
// ImageOps.exif_transpose before convert('RGB').
//
// Only the first APP1 "Exif" segment of a JPEG and the eXIf chunk of a PNG
// are read, as Pillow 9.4 does; orientation in XMP or in PNG text chunks is
// not. A missing, malformed or out-of-range tag means "as stored".

// exifOrientation returns the EXIF orientation (1…8) recorded in an
// encoded JPEG or PNG image, or 1 when there is none.
func exifOrientation(data []byte) int {
	var tiff []byte
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8")):
		tiff = jpegExif(data)
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		tiff = pngExif(data)
	}
	if o := tiffOrientation(tiff); o >= 1 && o <= 8 {
		return o
	}
	return 1
}

// jpegExif returns the TIFF structure of the first APP1 Exif segment, or nil.
func jpegExif(data []byte) []byte {
	pos := 2
	for pos+4 <= len(data) {
		if data[pos] != 0xff {
			return nil
		}
		marker := data[pos+1]
		switch {
		case marker == 0xff: // fill byte
			pos++
			continue
		case marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7): // no length
			pos += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image
			return nil
		}
		n := int(binary.BigEndian.Uint16(data[pos+2:]))
		if n < 2 || pos+2+n > len(data) {
			return nil
		}
		segment := data[pos+4 : pos+2+n]
		if marker == 0xe1 && bytes.HasPrefix(segment, []byte("Exif\x00")) {
			return bytes.TrimPrefix(segment, []byte("Exif\x00\x00"))
		}
		pos += 2 + n
	}
	return nil
}

// pngExif returns the contents of the eXIf chunk, or nil.
func pngExif(data []byte) []byte {
	pos := 8
	for pos+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[pos:]))
		kind := string(data[pos+4 : pos+8])
		if n < 0 || n > len(data)-pos-12 {
			return nil
		}
		if kind == "eXIf" {
			return bytes.TrimPrefix(data[pos+8:pos+8+n], []byte("Exif\x00\x00"))
		}
		if kind == "IEND" {
			return nil
		}
		pos += 12 + n
	}
	return nil
}

// tiffOrientation reads tag 0x0112 of the first IFD of a TIFF structure; 0
// when absent or malformed.
func tiffOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 0
	}
	var order binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		order = binary.LittleEndian
	case "MM\x00*":
		order = binary.BigEndian
	default:
		return 0
	}
	ifd := int64(order.Uint32(tiff[4:]))
	if ifd < 8 || ifd+2 > int64(len(tiff)) {
		return 0
	}
	count := int64(order.Uint16(tiff[ifd:]))
	for i := range count {
		entry := ifd + 2 + 12*i
		if entry+12 > int64(len(tiff)) {
			return 0
		}
		e := tiff[entry : entry+12]
		if order.Uint16(e) != 0x0112 {
			continue
		}
		if order.Uint32(e[4:]) != 1 { // a list of values is no orientation
			return 0
		}
		switch order.Uint16(e[2:]) { // field type
		case 1: // BYTE
			return int(e[8])
		case 3: // SHORT
			return int(order.Uint16(e[8:]))
		case 4: // LONG
			return int(min(order.Uint32(e[8:]), 9))
		}
		return 0
	}
	return 0
}

// orient turns an image stored with EXIF orientation o upright: the
// transposition Pillow's ImageOps.exif_transpose applies (Pillow's
// ROTATE_90 is counter-clockwise, as are imaging's rotations).
func orient(img *image.NRGBA, o int) *image.NRGBA {
	switch o {
	case 2:
		return imaging.FlipH(img) // Pillow FLIP_LEFT_RIGHT
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img) // FLIP_TOP_BOTTOM
	case 5:
		return imaging.Transpose(img) // out(x, y) = in(y, x)
	case 6:
		return imaging.Rotate270(img) // Pillow ROTATE_270: 90° clockwise
	case 7:
		return imaging.Transverse(img) // out(x, y) = in(w-1-y, h-1-x)
	case 8:
		return imaging.Rotate90(img) // 90° counter-clockwise
	}
	return img
}
