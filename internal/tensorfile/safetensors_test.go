package tensorfile

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func sampleTensors() []*Tensor {
	return []*Tensor{
		NewF16("features", []int{2, 3, 2}, []float32{0, 1, -2, 0.5, 65504, 1e-7, 3, 4, 5, 6, 7, 8}),
		NewI64("image_ids", []int{2}, []int64{139, 1 << 40}),
		NewF32("decoder.w", []int{3}, []float32{1.5, float32(math.Inf(-1)), -0}),
		NewF32("scalar", []int{}, []float32{42}),
		NewF32("empty", []int{0, 4}, nil),
		{Name: "u8", DType: U8, Shape: []int{3}, Data: []byte{1, 2, 3}},
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shard.safetensors")
	meta := map[string]string{"format": "captionctl/1", "config": `{"grid":7}`, "note": "<&> é"}
	tensors := sampleTensors()
	if err := WriteSafetensors(path, tensors, meta); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotMeta) != len(meta) {
		t.Errorf("metadata = %v, want %v", gotMeta, meta)
	}
	for k, v := range meta {
		if gotMeta[k] != v {
			t.Errorf("metadata[%q] = %q, want %q", k, gotMeta[k], v)
		}
	}
	want := map[string]*Tensor{}
	for _, tensor := range tensors {
		want[tensor.Name] = tensor
	}
	sameTensors(t, "round trip", got, want)

	// Rewriting what was read, in any order, gives the same bytes.
	first, _ := os.ReadFile(path)
	var reread []*Tensor
	for _, name := range sortedNames(got) {
		reread = append([]*Tensor{got[name]}, reread...)
	}
	path2 := filepath.Join(dir, "again.safetensors")
	if err := WriteSafetensors(path2, reread, gotMeta); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path2)
	if !bytes.Equal(first, second) {
		t.Fatalf("rewrite differs:\n%q\n%q", first, second)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the directory, want 2 (temporary left behind?)", len(entries))
	}
}

// The layout is pinned: header length, compact sorted header padded with
// spaces to 8 bytes, data by element size then name.
func TestSafetensorsLayout(t *testing.T) {
	var buf bytes.Buffer
	tensors := []*Tensor{
		NewF16("b", []int{1}, []float32{1}),
		NewI64("a", []int{1}, []int64{-1}),
		NewF16("a2", []int{}, []float32{2}),
	}
	if err := EncodeSafetensors(&buf, tensors, map[string]string{"z": "1", "k": "v"}); err != nil {
		t.Fatal(err)
	}
	header := `{"__metadata__":{"k":"v","z":"1"},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},` +
		`"a2":{"dtype":"F16","shape":[],"data_offsets":[8,10]},"b":{"dtype":"F16","shape":[1],"data_offsets":[10,12]}}`
	header += strings.Repeat(" ", (8-len(header)%8)%8)
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	want = append(want, header...)
	want = append(want, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x40, 0x00, 0x3c)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

// Go rewrites the hand-written Python file byte for byte: both follow the
// same layout rules.
func TestSafetensorsRewritePythonFile(t *testing.T) {
	orig, err := os.ReadFile("testdata/expected.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	tensors, meta, err := LoadSafetensors("testdata/expected.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	var list []*Tensor
	for _, tensor := range tensors {
		list = append(list, tensor)
	}
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, list, meta); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), orig) {
		t.Fatalf("rewrite of expected.safetensors differs from the Python-written bytes")
	}
}

func TestWriteSafetensorsRefuses(t *testing.T) {
	good := NewF32("w", []int{2}, []float32{1, 2})
	tests := []struct {
		name    string
		tensors []*Tensor
		meta    map[string]string
		want    string
	}{
		{"duplicate", []*Tensor{good, good}, nil, `tensor "w" given twice`},
		{"reserved name", []*Tensor{{Name: "__metadata__", DType: U8, Shape: []int{}, Data: []byte{0}}}, nil, "invalid tensor name"},
		{"short data", []*Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: make([]byte, 7)}}, nil, "7 bytes of data"},
		{"unknown dtype", []*Tensor{{Name: "x", DType: "C64", Shape: []int{}, Data: make([]byte, 8)}}, nil, "unsupported dtype"},
		{"negative dim", []*Tensor{{Name: "x", DType: U8, Shape: []int{-1}}}, nil, "invalid shape"},
		{"bad utf-8", []*Tensor{good}, map[string]string{"k": "\xff"}, "not valid UTF-8"},
	}
	for _, tc := range tests {
		path := filepath.Join(t.TempDir(), "x.safetensors")
		err := WriteSafetensors(path, tc.tensors, tc.meta)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if _, statErr := os.Stat(path); statErr == nil {
			t.Errorf("%s: file written despite the error", tc.name)
		}
	}
}

func TestSafetensorsCorrupt(t *testing.T) {
	file := func(header string, data int) string {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
		return string(append(append(b, header...), make([]byte, data)...))
	}
	tests := []struct{ name, file, want string }{
		{"short", "\x10\x00\x00", "truncated safetensors file"},
		{"huge header", "\x00\x00\x00\x00\x00\x01\x00\x00{}", "header claims 1099511627776 bytes"},
		{"header past end", file(`{}`, 0)[:9], "truncated safetensors file"},
		{"bad json", file(`{"a":`, 0), "safetensors header"},
		{"bad dtype", file(`{"a":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "a": unsupported dtype "Q8"`},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "needs 8"},
		{"past end", file(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}`, 4), "outside the 4 data bytes"},
		{"terabytes", file(`{"a":{"dtype":"F32","shape":[1000000,1000000,1000],"data_offsets":[0,4]}}`, 4), "invalid shape"},
		{"overlap", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3), "overlapping"},
		{"trailing", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 3), "1 bytes after the last tensor"},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, 0), "__metadata__ must map strings to strings"},
		{"negative dim", file(`{"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,0]}}`, 0), "invalid shape"},
	}
	for _, tc := range tests {
		_, _, err := readSafetensors("x.safetensors", strings.NewReader(tc.file), int64(len(tc.file)))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "x.safetensors: ") {
			t.Errorf("%s: err = %v, want x.safetensors: …%s…", tc.name, err, tc.want)
		}
	}
}

func TestTensorConversions(t *testing.T) {
	f16 := NewF16("h", []int{2}, []float32{1.5, -65504})
	if v, err := f16.Float32(); err != nil || !slices.Equal(v, []float32{1.5, -65504}) {
		t.Errorf("F16 Float32() = %v, %v", v, err)
	}
	bf16 := &Tensor{Name: "b", DType: BF16, Shape: []int{2}, Data: []byte{0x80, 0x3f, 0x20, 0xc1}} // 1, -10
	if v, err := bf16.Float32(); err != nil || !slices.Equal(v, []float32{1, -10}) {
		t.Errorf("BF16 Float32() = %v, %v", v, err)
	}
	ids := NewI64("image_ids", []int{1}, []int64{7})
	if _, err := ids.Float32(); err == nil || !strings.Contains(err.Error(), `tensor "image_ids" has dtype I64`) {
		t.Errorf("I64 Float32() err = %v", err)
	}
	if _, err := f16.Int64(); err == nil || !strings.Contains(err.Error(), `tensor "h" has dtype F16`) {
		t.Errorf("F16 Int64() err = %v", err)
	}
	u64 := &Tensor{Name: "u", DType: U64, Shape: []int{1}, Data: bytes.Repeat([]byte{0xff}, 8)}
	if _, err := u64.Int64(); err == nil || !strings.Contains(err.Error(), "does not fit int64") {
		t.Errorf("U64 Int64() err = %v", err)
	}
	short := &Tensor{Name: "s", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}
	if _, err := short.Float32(); err == nil || !strings.Contains(err.Error(), `tensor "s": 4 bytes of data`) {
		t.Errorf("short Float32() err = %v", err)
	}
}
