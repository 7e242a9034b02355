package tensorfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/captionctl/captionctl/internal/atomicfile"
	"github.com/captionctl/captionctl/internal/badinput"
)

// maxSafetensorsHeader is the largest header accepted, the limit the
// reference safetensors implementation enforces too.
const maxSafetensorsHeader = 100 << 20

// metadataKey is the header entry holding the string-to-string metadata.
const metadataKey = "__metadata__"

type safetensorsEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// LoadSafetensors reads a safetensors file: its tensors by name and the
// header's __metadata__ (nil when absent).
func LoadSafetensors(path string) (tensors map[string]*Tensor, metadata map[string]string, err error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readSafetensors(path, f, size)
}

// readSafetensors decodes a safetensors file of size bytes read through r;
// name is the path used in errors.
func readSafetensors(name string, r io.ReaderAt, size int64) (map[string]*Tensor, map[string]string, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, badinput.Errorf(name, "truncated safetensors file: %d bytes, no header length", size)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxSafetensorsHeader {
		return nil, nil, badinput.Errorf(name, "safetensors header claims %d bytes (limit %d): not a safetensors file or corrupt", n, maxSafetensorsHeader)
	}
	if int64(n) > size-8 {
		return nil, nil, badinput.Errorf(name, "truncated safetensors file: header claims %d bytes, file has %d after the length", n, size-8)
	}
	header := make([]byte, n)
	if _, err := r.ReadAt(header, 8); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		e := badinput.JSON(name, header, err)
		e.Line, e.Col = 0, 0 // positions are in the header, not the file's lines
		e.Msg = "safetensors header: " + e.Msg
		return nil, nil, e
	}
	dataStart := 8 + int64(n)
	dataLen := uint64(size - dataStart)

	var metadata map[string]string
	if m, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(m, &metadata); err != nil {
			return nil, nil, badinput.Errorf(name, "safetensors header: %s must map strings to strings: %v", metadataKey, err)
		}
		delete(raw, metadataKey)
	}

	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	entries := make(map[string]safetensorsEntry, len(raw))
	for tname, msg := range raw {
		var e safetensorsEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, badinput.Errorf(name, "safetensors header: tensor %q: %v", tname, err)
		}
		if e.DType.Size() == 0 {
			return nil, nil, badinput.Errorf(name, "tensor %q: unsupported dtype %q", tname, e.DType)
		}
		count, ok := numElements(e.Shape)
		if !ok {
			return nil, nil, badinput.Errorf(name, "tensor %q: invalid shape %v", tname, e.Shape)
		}
		if len(e.DataOffsets) != 2 || e.DataOffsets[0] > e.DataOffsets[1] || e.DataOffsets[1] > dataLen {
			return nil, nil, badinput.Errorf(name, "tensor %q: data_offsets %v outside the %d data bytes (truncated file?)", tname, e.DataOffsets, dataLen)
		}
		if want := count * uint64(e.DType.Size()); e.DataOffsets[1]-e.DataOffsets[0] != want {
			return nil, nil, badinput.Errorf(name, "tensor %q: data_offsets %v span %d bytes, shape %v of %s needs %d", tname, e.DataOffsets, e.DataOffsets[1]-e.DataOffsets[0], e.Shape, e.DType, want)
		}
		entries[tname] = e
		spans = append(spans, span{tname, e.DataOffsets[0], e.DataOffsets[1]})
	}
	// As the reference implementation requires, the tensors tile the data
	// exactly: no gaps, no overlaps, nothing after the last.
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var next uint64
	for _, s := range spans {
		if s.begin != next {
			return nil, nil, badinput.Errorf(name, "tensor %q: data starts at %d, expected %d (overlapping or gapped data_offsets)", s.name, s.begin, next)
		}
		next = s.end
	}
	if next != dataLen {
		return nil, nil, badinput.Errorf(name, "%d bytes after the last tensor's data (data_offsets cover %d of %d)", dataLen-next, next, dataLen)
	}

	tensors := make(map[string]*Tensor, len(entries))
	for tname, e := range entries {
		data := make([]byte, e.DataOffsets[1]-e.DataOffsets[0])
		if _, err := r.ReadAt(data, dataStart+int64(e.DataOffsets[0])); err != nil {
			return nil, nil, fmt.Errorf("read %s: tensor %q: %w", name, tname, err)
		}
		shape := e.Shape
		if shape == nil {
			shape = []int{}
		}
		tensors[tname] = &Tensor{Name: tname, DType: e.DType, Shape: shape, Data: data}
	}
	return tensors, metadata, nil
}

// WriteSafetensors writes tensors and metadata (nil for none) to path as a
// safetensors file, atomically: a crash never leaves a partial file under
// path. The bytes depend only on the tensors and metadata, not on the order
// of the slice: the header lists __metadata__ first, then the tensors by
// name, with no whitespace, padded with spaces to a multiple of 8 bytes; the
// data is laid out by element size, largest first, then by name, so every
// tensor is aligned to its element size (the reference implementation's
// order).
func WriteSafetensors(path string, tensors []*Tensor, metadata map[string]string) error {
	header, order, err := safetensorsHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return writeSafetensors(w, header, order)
	})
}

// EncodeSafetensors writes to w the bytes [WriteSafetensors] would write to
// a file.
func EncodeSafetensors(w io.Writer, tensors []*Tensor, metadata map[string]string) error {
	header, order, err := safetensorsHeader(tensors, metadata)
	if err != nil {
		return err
	}
	return writeSafetensors(w, header, order)
}

func writeSafetensors(w io.Writer, header []byte, order []*Tensor) error {
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, t := range order {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// safetensorsHeader returns the length-prefixed, padded header and the
// tensors in data order.
func safetensorsHeader(tensors []*Tensor, metadata map[string]string) ([]byte, []*Tensor, error) {
	seen := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if t == nil {
			return nil, nil, errors.New("nil tensor")
		}
		if t.Name == "" || t.Name == metadataKey || !utf8.ValidString(t.Name) {
			return nil, nil, fmt.Errorf("invalid tensor name %q", t.Name)
		}
		if seen[t.Name] {
			return nil, nil, fmt.Errorf("tensor %q given twice", t.Name)
		}
		seen[t.Name] = true
		if err := t.check(); err != nil {
			return nil, nil, err
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
		}
	}
	order := slices.Clone(tensors)
	sort.Slice(order, func(i, j int) bool {
		si, sj := order[i].DType.Size(), order[j].DType.Size()
		if si != sj {
			return si > sj
		}
		return order[i].Name < order[j].Name
	})
	offsets := make(map[string][2]uint64, len(order))
	var off uint64
	for _, t := range order {
		offsets[t.Name] = [2]uint64{off, off + uint64(len(t.Data))}
		off += uint64(len(t.Data))
	}
	byName := slices.Clone(tensors)
	sort.Slice(byName, func(i, j int) bool { return byName[i].Name < byName[j].Name })

	var h bytes.Buffer
	h.Write(make([]byte, 8)) // length, filled in below
	h.WriteByte('{')
	first := true
	if len(metadata) > 0 {
		h.WriteString(jsonString(metadataKey))
		h.WriteString(":{")
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			h.WriteString(jsonString(k))
			h.WriteByte(':')
			h.WriteString(jsonString(metadata[k]))
		}
		h.WriteByte('}')
		first = false
	}
	for _, t := range byName {
		if !first {
			h.WriteByte(',')
		}
		first = false
		o := offsets[t.Name]
		fmt.Fprintf(&h, `%s:{"dtype":%s,"shape":[`, jsonString(t.Name), jsonString(string(t.DType)))
		for i, d := range t.Shape {
			if i > 0 {
				h.WriteByte(',')
			}
			fmt.Fprint(&h, d)
		}
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, o[0], o[1])
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := h.Bytes()
	binary.LittleEndian.PutUint64(out, uint64(len(out)-8))
	return out, order, nil
}

// jsonString quotes s as a JSON string without HTML escaping.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return string(bytes.TrimSuffix(b.Bytes(), []byte{'\n'}))
}

// openSized opens path for reading and returns its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	return f, st.Size(), nil
}
