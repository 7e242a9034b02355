package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpShift checks ExpShift against math.Exp (within 6e-7 relative)
// over the range
// softmax uses (x − max from 0 down past float32's smallest normal).
func TestExpShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 4099)
	for i := range x {
		x[i] = float32(-100 * rng.Float64() * rng.Float64())
	}
	x[5], x[6], x[7] = 0, -1e-30, -87
	dst := make([]float32, len(x))
	sum := ExpShift(dst, x, 0)
	var want float64
	for i, v := range x {
		e := math.Exp(float64(v))
		want += e
		if d := math.Abs(float64(dst[i]) - e); d > 6e-7*e+1e-37 {
			t.Fatalf("exp(%v) = %v, want %v", v, dst[i], e)
		}
	}
	if math.Abs(sum-want) > 1e-5*want {
		t.Fatalf("sum %v, want %v", sum, want)
	}
}
