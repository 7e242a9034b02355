package tensorfile

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/internal/badinput"
)

// The state dict fixtures are one state dict (tools/make_tensorfile_fixtures.py,
// torch 1.13) saved three ways; expected.safetensors holds each of its
// tensors made contiguous, written by hand from Python.
var stateDictFixtures = []string{"state_dict.pt", "state_dict_archive.pt", "state_dict_legacy.pt"}

func loadExpected(t *testing.T) map[string]*Tensor {
	t.Helper()
	want, meta, err := LoadSafetensors("testdata/expected.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if meta["source"] != "tools/make_tensorfile_fixtures.py" {
		t.Fatalf("metadata = %v", meta)
	}
	return want
}

// sameTensors compares two tensor sets exactly: names, dtypes, shapes and
// every data byte.
func sameTensors(t *testing.T, label string, got, want map[string]*Tensor) {
	t.Helper()
	if g, w := sortedNames(got), sortedNames(want); !slices.Equal(g, w) {
		t.Fatalf("%s: tensors %v, want %v", label, g, w)
	}
	for name, w := range want {
		g := got[name]
		if g.Name != name || g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s: %s is %s %s %v, want %s %v", label, name, g.Name, g.DType, g.Shape, w.DType, w.Shape)
			continue
		}
		if !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: %s data differs:\n got %x\nwant %x", label, name, g.Data, w.Data)
		}
	}
}

func sortedNames(m map[string]*Tensor) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestLoadPyTorchMatchesTorch(t *testing.T) {
	want := loadExpected(t)
	if len(want) != 27 {
		t.Fatalf("expected.safetensors has %d tensors, want 27", len(want))
	}
	for _, name := range stateDictFixtures {
		path := filepath.Join("testdata", name)
		got, err := LoadPyTorch(path)
		if err != nil {
			t.Fatal(err)
		}
		sameTensors(t, name, got, want)
		// Load must sniff the same format.
		sniffed, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		sameTensors(t, name+" via Load", sniffed, want)
	}
}

// Values written out by hand from the fixture script's definitions, so the
// test does not rest on the Python-written expected file alone.
func TestLoadPyTorchValues(t *testing.T) {
	for _, name := range stateDictFixtures {
		tensors, err := LoadPyTorch(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		f32 := func(key string) []float32 {
			v, err := tensors[key].Float32()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
		i64 := func(key string) []int64 {
			v, err := tensors[key].Int64()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return v
		}
		cases := []struct {
			key   string
			dtype DType
			shape []int
			got   any
			want  any
		}{
			// base = arange(12).reshape(3, 4) * 0.5; base.t()
			{"transposed", F32, []int{4, 3}, f32("transposed"), []float32{0, 2, 4, 0.5, 2.5, 4.5, 1, 3, 5, 1.5, 3.5, 5.5}},
			// shared = arange(20) + 0.25
			{"shared.a", F32, []int{4}, f32("shared.a"), []float32{2.25, 3.25, 4.25, 5.25}},
			{"shared.b", F32, []int{2, 3}, f32("shared.b"), []float32{8.25, 9.25, 10.25, 11.25, 12.25, 13.25}},
			{"shared.every3", F32, []int{7}, f32("shared.every3"), []float32{1.25, 4.25, 7.25, 10.25, 13.25, 16.25, 19.25}},
			// arange(24, f16).reshape(2, 3, 4).permute(2, 0, 1)
			{"permuted", F16, []int{4, 2, 3}, f32("permuted")[:7], []float32{0, 4, 8, 12, 16, 20, 1}},
			{"bn.num_batches_tracked", I64, []int{}, i64("bn.num_batches_tracked"), []int64{7}},
			{"long.big", I64, []int{2}, i64("long.big"), []int64{math.MinInt64, 1<<62 + 1}},
			{"int.index", I32, []int{4}, i64("int.index"), []int64{math.MinInt32, -1, 0, math.MaxInt32}},
			{"short.v", I16, []int{2}, i64("short.v"), []int64{-32768, 12345}},
			{"char.v", I8, []int{3}, i64("char.v"), []int64{-128, 127, 5}},
			{"byte.v", U8, []int{3}, i64("byte.v"), []int64{0, 200, 255}},
			{"mask", Bool, []int{3}, i64("mask"), []int64{1, 0, 1}},
			{"double.weight", F64, []int{5}, f32("double.weight")[:2], []float32{1.0 / 3.0, float32(math.Inf(-1))}},
			{"half.weight", F16, []int{3, 4}, f32("half.weight")[:4], []float32{1, -2.5, 65504, 1023.0 / (1 << 24)}}, // 6.1e-05 rounds to the largest subnormal,
			{"empty", F32, []int{0, 3}, f32("empty"), []float32{}},
			{"scalar.f32", F32, []int{}, f32("scalar.f32"), []float32{2.75}},
			{"param.weight", F32, []int{1, 2}, f32("param.weight"), []float32{0.5, -1.5}},
			{"tied.b", F32, []int{2}, f32("tied.b"), []float32{1.5, 2.5}},
			// [[3, 4], [5, 6]].t() through _rebuild_from_type_v2
			{"attr.tensor", F32, []int{2, 2}, f32("attr.tensor"), []float32{3, 5, 4, 6}},
		}
		for _, c := range cases {
			tensor := tensors[c.key]
			if tensor.DType != c.dtype || !slices.Equal(tensor.Shape, c.shape) {
				t.Errorf("%s: %s is %s %v, want %s %v", name, c.key, tensor.DType, tensor.Shape, c.dtype, c.shape)
			}
			var equal bool
			switch g := c.got.(type) {
			case []float32:
				equal = slices.Equal(g, c.want.([]float32))
			case []int64:
				equal = slices.Equal(g, c.want.([]int64))
			}
			if !equal {
				t.Errorf("%s: %s = %v, want %v", name, c.key, c.got, c.want)
			}
		}
	}
}

// Each tensor gets its own bytes, even when the file shares a storage.
func TestLoadPyTorchNoAliasing(t *testing.T) {
	for _, name := range stateDictFixtures {
		tensors, err := LoadPyTorch(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range [][2]string{{"shared.a", "shared.b"}, {"tied.a", "tied.b"}} {
			a, b := tensors[pair[0]], tensors[pair[1]]
			before, _ := b.Float32()
			for i := range a.Data {
				a.Data[i] = 0xff
			}
			if after, _ := b.Float32(); !slices.Equal(before, after) {
				t.Errorf("%s: writing %s changed %s from %v to %v", name, pair[0], pair[1], before, after)
			}
		}
	}
}

func TestMaliciousPickleRefused(t *testing.T) {
	for _, c := range []struct{ file, module, name string }{
		{"malicious.pt", "posix", "system"},
		// Protocol 2 spells builtins as Python 2's __builtin__.
		{"malicious_legacy.pt", "__builtin__", "eval"},
	} {
		path := filepath.Join("testdata", c.file)
		for _, load := range []func(string) (map[string]*Tensor, error){LoadPyTorch, Load} {
			tensors, err := load(path)
			if err == nil {
				t.Fatalf("%s: loaded %d tensors, want refusal", c.file, len(tensors))
			}
			var forbidden *ForbiddenGlobalError
			if !errors.As(err, &forbidden) || forbidden.Module != c.module || forbidden.Name != c.name {
				t.Fatalf("%s: err = %v, want ForbiddenGlobalError %s.%s", c.file, err, c.module, c.name)
			}
			var bad *badinput.Error
			if !errors.As(err, &bad) {
				t.Errorf("%s: err %T is not a *badinput.Error", c.file, err)
			}
			msg := err.Error()
			for _, want := range []string{path, "refusing pickle global " + c.module + "." + c.name, "needs only tensors"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: error %q does not mention %q", c.file, msg, want)
				}
			}
		}
	}
}

// Every proper prefix of every fixture is an error, never a panic and never
// a silently shorter state dict.
func TestTruncatedFixtures(t *testing.T) {
	for _, name := range append(stateDictFixtures, "expected.safetensors") {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(data); n++ {
			if tensors, err := load(name, bytes.NewReader(data[:n]), int64(n)); err == nil {
				t.Fatalf("%s truncated to %d of %d bytes: loaded %d tensors, want an error", name, n, len(data), len(tensors))
			}
		}
	}
}

// Flipping any byte of a fixture may or may not be detected (zip CRCs
// cover storage data, not every header byte), but it never panics, and
// whatever loads is well-formed. To keep the test fast it flips every
// third byte (FuzzLoad goes further); state_dict_archive.pt differs from
// state_dict.pt only in its directory name.
func TestCorruptedFixtures(t *testing.T) {
	for _, name := range []string{"state_dict.pt", "state_dict_legacy.pt", "expected.safetensors"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(data); i += 3 {
			corrupt := slices.Clone(data)
			corrupt[i] ^= 0xa5
			tensors, err := load(name, bytes.NewReader(corrupt), int64(len(corrupt)))
			if err != nil {
				continue
			}
			for _, tensor := range tensors {
				if err := tensor.check(); err != nil {
					t.Fatalf("%s with byte %d flipped: %v", name, i, err)
				}
			}
		}
	}
}

// legacyHead is the start of every legacy torch.save file: the pickled
// magic number, protocol version 1001 and (here empty) sys_info.
const legacyHead = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19." + "\x80\x02M\xe9\x03." + "\x80\x02}."

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "unrecognised tensor file"},
		{"text", "hello world", "unrecognised tensor file"},
		// pickle.dumps(42, protocol=2): a pickle, but no torch magic.
		{"plain pickle", "\x80\x02K*.", "not a PyTorch file"},
		// Legacy magic, version 1001, sys_info {}, then {'a': 1}.
		{"legacy not tensors", legacyHead + "\x80\x02}X\x01\x00\x00\x00aK\x01s.", `state dict entry "a" holds int, not a tensor`},
		{"legacy old version", legacyHead[:15] + "\x80\x02M\xe8\x03.", "unsupported legacy protocol version 1000"},
		{"legacy forbidden global", legacyHead + "\x80\x02csubprocess\nPopen\n.", "refusing pickle global subprocess.Popen (state dict pickle offset 27)"},
		{"legacy module pid", legacyHead + "\x80\x02X\x06\x00\x00\x00module\x85Q.", "unsupported persistent id \"module\""},
		{"zip not torch", "PK\x05\x06" + strings.Repeat("\x00", 18), "empty zip archive"},
		{"bad zip", "PK\x03\x04garbage", "bad zip archive"},
		{"safetensors huge header", "\xff\xff\xff\xff\xff\x00\x00\x00{", "unrecognised tensor file"},
		{"pickle unknown opcode", "\x80\x02\xff", "unsupported pickle opcode 0xff"},
		{"pickle huge string", "\x80\x02X\xff\xff\xff\x7f", "truncated pickle: 2147483647 bytes claimed"},
		{"pickle stack underflow", "\x80\x02t", "MARK missing"},
	}
	for _, tc := range tests {
		_, err := load("x.pt", bytes.NewReader([]byte(tc.data)), int64(len(tc.data)))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "x.pt: ") {
			t.Errorf("%s: err = %v, want x.pt: …%s…", tc.name, err, tc.want)
		}
	}
}

// Hand-built strided views exercise the bounds checks torch never trips.
func TestMaterializeBounds(t *testing.T) {
	storage := func() *storageRef {
		return &storageRef{key: "0", dtype: F32, numel: 6, rootNumel: 6, data: make([]byte, 24), refs: 2}
	}
	tests := []struct {
		name   string
		offset int64
		size   []int
		stride []int64
		want   string // error substring, "" for success
	}{
		{"whole", 0, []int{2, 3}, []int64{3, 1}, ""},
		{"transposed", 0, []int{3, 2}, []int64{1, 3}, ""},
		{"last element", 5, []int{1}, []int64{1}, ""},
		{"offset past end", 6, []int{1}, []int64{1}, "storage offset 6 past"},
		{"runs past end", 1, []int{2, 3}, []int64{3, 1}, "run past its storage"},
		{"huge stride", 0, []int{2}, []int64{1 << 62}, "runs past its storage"},
		{"expanded", 0, []int{4, 6}, []int64{0, 1}, "expanded view"},
	}
	for _, tc := range tests {
		_, err := materialize("w", &tensorRef{storage: storage(), offset: tc.offset, size: tc.size, stride: tc.stride})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
