package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/captionctl/captionctl/internal/badinput"
)

// Refs are the reference captions of a COCO annotation file.
type Refs struct {
	File     string
	Captions map[int64][]string // raw captions per image, in file order
	// Listed holds the ids of the "images" section in file order, when the
	// file has one; an image listed there may have no captions.
	Listed []int64
}

// Result is one candidate caption of a COCO results file.
type Result struct {
	ImageID int64  `json:"image_id"`
	Caption string `json:"caption"`
}

// ReadRefs reads a COCO annotation file.
func ReadRefs(path string) (*Refs, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseRefs(path, data, true)
}

// ReadResults reads a COCO results file.
func ReadResults(path string) ([]Result, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parseResults(path, data, true)
}

func readFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &badinput.Error{File: path, Msg: "cannot read: " + unwrapPathError(err), Err: err}
	}
	return data, nil
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// jsonReader decodes one file as a stream so that every error can name the
// line and column it concerns.
type jsonReader struct {
	file string
	data []byte
	dec  *json.Decoder
}

func newJSONReader(file string, data []byte) *jsonReader {
	return &jsonReader{file: file, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
}

// offset is the position of the next value, after any whitespace and
// separator.
func (r *jsonReader) offset() int64 {
	off := r.dec.InputOffset()
	for off < int64(len(r.data)) && strings.IndexByte(" \t\r\n,:", r.data[off]) >= 0 {
		off++
	}
	return off
}

func (r *jsonReader) errAt(off int64, format string, args ...any) error {
	return badinput.At(r.file, r.data, off, format, args...)
}

// fail turns a decoding error for the value starting at start into a
// *badinput.Error.
func (r *jsonReader) fail(start int64, err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		// Decoder reports type errors relative to the value being decoded.
		shifted := *typ
		shifted.Offset += start
		return badinput.JSON(r.file, r.data, &shifted)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.errAt(int64(len(r.data)), "malformed JSON: the file ends in the middle of a value (truncated?)")
	}
	return badinput.JSON(r.file, r.data, err)
}

// delim reads the next token and checks it is the delimiter want.
func (r *jsonReader) delim(want json.Delim, what string) error {
	off := r.offset()
	tok, err := r.dec.Token()
	if err != nil {
		return r.fail(off, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return r.errAt(off, "expected %s, found %s", what, describeToken(tok))
	}
	return nil
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return fmt.Sprintf("%q", string(v))
	case string:
		return fmt.Sprintf("the string %q", v)
	case nil:
		return "null"
	case bool:
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("the number %v", tok)
}

// array decodes the elements of a JSON array, calling each with the index
// and start offset of each element.
func (r *jsonReader) array(what string, each func(i int, start int64) error) error {
	if err := r.delim('[', what); err != nil {
		return err
	}
	for i := 0; r.dec.More(); i++ {
		if err := each(i, r.offset()); err != nil {
			return err
		}
	}
	return r.delim(']', "the end of "+what)
}

// end checks that nothing but whitespace follows the top-level value.
func (r *jsonReader) end() error {
	off := r.offset()
	if off < int64(len(r.data)) {
		return r.errAt(off, "unexpected data after the end of the JSON value")
	}
	return nil
}

// ParseRefs parses the contents of a COCO annotation file named file.
func ParseRefs(file string, data []byte) (*Refs, error) {
	return parseRefs(file, data, false)
}

// parseRefs is ParseRefs; with owned, data is never changed afterwards and
// the captions may share its memory (saving a copy of them all).
func parseRefs(file string, data []byte, owned bool) (*Refs, error) {
	if refs, ok := fastParseRefs(file, data, owned); ok {
		return refs, nil
	}
	return parseRefsPrecise(file, data)
}

// parseRefsPrecise is ParseRefs on encoding/json: the reference for the
// fast path in fastjson.go, and the one that explains every error.
func parseRefsPrecise(file string, data []byte) (*Refs, error) {
	r := newJSONReader(file, data)
	refs := &Refs{File: file, Captions: make(map[int64][]string)}
	if err := r.delim('{', `a COCO annotation object {"images": […], "annotations": […]}`); err != nil {
		return nil, err
	}
	sawAnnotations := false
	for r.dec.More() {
		keyOff := r.offset()
		tok, err := r.dec.Token()
		if err != nil {
			return nil, r.fail(keyOff, err)
		}
		key, _ := tok.(string)
		switch key {
		case "annotations":
			sawAnnotations = true
			if err := r.annotations(refs); err != nil {
				return nil, err
			}
		case "images":
			refs.Listed = []int64{}
			if err := r.images(refs); err != nil {
				return nil, err
			}
		default:
			start := r.offset()
			var skip json.RawMessage
			if err := r.dec.Decode(&skip); err != nil {
				return nil, r.fail(start, err)
			}
		}
	}
	if err := r.delim('}', "the end of the annotation object"); err != nil {
		return nil, err
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if !sawAnnotations {
		return nil, badinput.Errorf(file, `no "annotations" section: a COCO reference file holds {"annotations": [{"image_id": …, "caption": "…"}, …]}`)
	}
	if len(refs.Captions) == 0 {
		return nil, badinput.Errorf(file, `the "annotations" section is empty: there are no reference captions`)
	}
	return refs, nil
}

type annotation struct {
	ImageID *int64  `json:"image_id"`
	Caption *string `json:"caption"`
}

func (r *jsonReader) annotations(refs *Refs) error {
	return r.array(`the "annotations" array`, func(i int, start int64) error {
		var a annotation
		if err := r.dec.Decode(&a); err != nil {
			return r.fail(start, err)
		}
		switch {
		case a.ImageID == nil:
			return r.errAt(start, "annotation %d has no image_id", i)
		case a.Caption == nil:
			return r.errAt(start, "annotation %d (image %d) has no caption (or it is null)", i, *a.ImageID)
		}
		refs.Captions[*a.ImageID] = append(refs.Captions[*a.ImageID], *a.Caption)
		return nil
	})
}

func (r *jsonReader) images(refs *Refs) error {
	return r.array(`the "images" array`, func(i int, start int64) error {
		var im struct {
			ID *int64 `json:"id"`
		}
		if err := r.dec.Decode(&im); err != nil {
			return r.fail(start, err)
		}
		if im.ID == nil {
			return r.errAt(start, "image %d of the \"images\" section has no id", i)
		}
		refs.Listed = append(refs.Listed, *im.ID)
		return nil
	})
}

type result struct {
	ImageID *int64  `json:"image_id"`
	Caption *string `json:"caption"`
}

// ParseResults parses the contents of a COCO results file named file. It
// checks the format and that no image has two results.
func ParseResults(file string, data []byte) ([]Result, error) {
	return parseResults(file, data, false)
}

// parseResults is ParseResults; with owned, data is never changed
// afterwards and the captions may share its memory.
func parseResults(file string, data []byte, owned bool) ([]Result, error) {
	if results, ok := fastParseResults(data, owned); ok {
		return results, nil
	}
	return parseResultsPrecise(file, data)
}

// parseResultsPrecise is ParseResults on encoding/json: the reference for
// the fast path in fastjson.go, and the one that explains every error.
func parseResultsPrecise(file string, data []byte) ([]Result, error) {
	r := newJSONReader(file, data)
	var results []Result
	firstAt := make(map[int64]int64) // image id → offset of its result
	err := r.array(`a COCO results array [{"image_id": …, "caption": "…"}, …]`, func(i int, start int64) error {
		var res result
		if err := r.dec.Decode(&res); err != nil {
			return r.fail(start, err)
		}
		switch {
		case res.ImageID == nil:
			return r.errAt(start, "result %d has no image_id", i)
		case res.Caption == nil:
			return r.errAt(start, "result %d (image %d) has no caption (or it is null)", i, *res.ImageID)
		}
		if prev, dup := firstAt[*res.ImageID]; dup {
			line, _ := badinput.Position(data, prev)
			return r.errAt(start, "image %d has a second result (the first is on line %d): the toolkit scores exactly one caption per image", *res.ImageID, line)
		}
		firstAt[*res.ImageID] = start
		results = append(results, Result{ImageID: *res.ImageID, Caption: *res.Caption})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if len(results) == 0 {
		return nil, badinput.Errorf(file, "no results: the list is empty")
	}
	return results, nil
}
