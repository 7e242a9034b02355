package tensorfile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
)

// f16_cases.json holds float32 bit patterns (specials, boundaries, ties,
// subnormals and random ones) with the half bits torch 1.13's .half() and
// numpy's astype(float16) give, and the SHA-256 of torch's .float() of all
// 65536 halves; tools/make_tensorfile_fixtures.py writes it.
type f16Cases struct {
	Source string `json:"source"`
	Cases  []struct {
		F32   string `json:"f32"`
		Torch string `json:"torch"`
		Numpy string `json:"numpy"`
	} `json:"cases"`
	WidenSHA256 string `json:"widen_sha256"`
}

func hexBits(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadF16Cases(t *testing.T) f16Cases {
	t.Helper()
	data, err := os.ReadFile("testdata/f16_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c f16Cases
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Cases) < 600 {
		t.Fatalf("only %d cases", len(c.Cases))
	}
	return c
}

func TestFloat32ToF16MatchesTorch(t *testing.T) {
	c := loadF16Cases(t)
	for _, tc := range c.Cases {
		in := math.Float32frombits(uint32(hexBits(t, tc.F32)))
		got := Float32ToF16(in)
		if want := uint16(hexBits(t, tc.Torch)); got != want {
			t.Errorf("Float32ToF16(%g = %s) = %#04x, torch gives %#04x", in, tc.F32, got, want)
		}
		// numpy agrees except on NaN payloads.
		if numpy := uint16(hexBits(t, tc.Numpy)); got != numpy && !math.IsNaN(float64(in)) {
			t.Errorf("Float32ToF16(%g = %s) = %#04x, numpy gives %#04x", in, tc.F32, got, numpy)
		}
	}
}

func TestF16ToFloat32MatchesTorch(t *testing.T) {
	c := loadF16Cases(t)
	var widened []byte
	for h := 0; h < 1<<16; h++ {
		widened = binary.LittleEndian.AppendUint32(widened, math.Float32bits(F16ToFloat32(uint16(h))))
	}
	if got := fmt.Sprintf("%x", sha256.Sum256(widened)); got != c.WidenSHA256 {
		t.Errorf("SHA-256 of all 65536 widened halves = %s, torch gives %s", got, c.WidenSHA256)
	}
}

// Widening then narrowing gives every half back (NaNs become the quiet
// NaN of their sign).
func TestF16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		want := uint16(h)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			want = uint16(h)&0x8000 | 0x7e00
		}
		if got := Float32ToF16(F16ToFloat32(uint16(h))); got != want {
			t.Fatalf("%#04x → %g → %#04x", h, F16ToFloat32(uint16(h)), got)
		}
	}
}

// Hand-computed bit patterns, IEEE 754 binary16.
func TestFloat32ToF16Known(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},                 // largest half
		{65519.996, 0x7bff},             // below the midpoint to 65536
		{65520, 0x7c00},                 // midpoint rounds to even: inf
		{1e10, 0x7c00},                  // overflow → inf
		{float32(math.Inf(-1)), 0xfc00}, // -inf
		{0x1p-14, 0x0400},               // smallest normal
		{0x1p-24, 0x0001},               // smallest subnormal
		{0x1p-25, 0x0000},               // tie between 0 and 2^-24: even (0)
		{0x1.8p-24, 0x0002},             // tie between 1 and 2 ulps: even (2)
		{0x1.0001p-25, 0x0001},          // just above the tie
		{1 + 0x1p-11, 0x3c00},           // tie: even (1.0)
		{1 + 0x3p-11, 0x3c02},           // tie: even (up)
		{0x1.ffep-15, 0x0400},           // largest-subnormal region rounding up into the normals
		{float32(math.NaN()), 0x7e00},   // quiet NaN
		{-float32(math.NaN()), 0xfe00},  // negative NaN
	}
	for _, tc := range tests {
		if got := Float32ToF16(tc.in); got != tc.want {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", tc.in, got, tc.want)
		}
	}
}

func BenchmarkFloat32ToF16(b *testing.B) {
	values := make([]float32, 1<<12)
	for i := range values {
		values[i] = float32(i-2048) * 0.37
	}
	b.ReportAllocs()
	var sink uint16
	for b.Loop() {
		for _, v := range values {
			sink ^= Float32ToF16(v)
		}
	}
	_ = sink
}
