package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestResumeBitIdentical trains 3 epochs straight and 1 epoch then 2 more
// resumed from the checkpoint: every parameter, the best parameters and
// the loss sequence must be bit-identical.
func TestResumeBitIdentical(t *testing.T) {
	dir := writeSynthDataset(t, 16, 4, 16)
	cfg := tinyConfig()
	cfg.Epochs = 3

	straight := cfg
	straight.RunDir = t.TempDir()
	want, err := Train(context.Background(), straight, dir, nil)
	if err != nil {
		t.Fatal(err)
	}

	run := t.TempDir()
	first := cfg
	first.Epochs, first.RunDir = 1, run
	if _, err := Train(context.Background(), first, dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	if eps, err := CheckpointEpochs(filepath.Join(run, CheckpointFile)); err != nil || len(eps) != 1 {
		t.Fatalf("checkpoint epochs %v, %v", eps, err)
	}
	resumed := cfg
	resumed.RunDir, resumed.Resume = run, true
	got, err := Train(context.Background(), resumed, dir, nil)
	if err != nil {
		t.Fatal(err)
	}

	if got.Steps != want.Steps || len(got.Epochs) != len(want.Epochs) {
		t.Fatalf("resumed: %d steps, %d epochs; straight: %d, %d", got.Steps, len(got.Epochs), want.Steps, len(want.Epochs))
	}
	for i := range want.Epochs {
		if math.Float64bits(got.Epochs[i].Loss) != math.Float64bits(want.Epochs[i].Loss) || got.Epochs[i].LR != want.Epochs[i].LR {
			t.Errorf("epoch %d: resumed loss %v lr %v, straight %v %v", i+1, got.Epochs[i].Loss, got.Epochs[i].LR, want.Epochs[i].Loss, want.Epochs[i].LR)
		}
	}
	gp, wp := got.Params.Tensors(), want.Params.Tensors()
	for i := range wp {
		if !slices.Equal(float32Bits(gp[i].Tensor.Float32s()), float32Bits(wp[i].Tensor.Float32s())) {
			t.Errorf("parameter %s differs after resume", wp[i].Name)
		}
	}
	if (got.BestParams == nil) != (want.BestParams == nil) {
		t.Fatalf("best params: resumed %v, straight %v", got.BestParams != nil, want.BestParams != nil)
	}
	if want.BestParams != nil {
		if *got.Best != *want.Best {
			t.Errorf("best epoch: resumed %+v, straight %+v", *got.Best, *want.Best)
		}
		gb, wb := got.BestParams.Tensors(), want.BestParams.Tensors()
		for i := range wb {
			if !slices.Equal(float32Bits(gb[i].Tensor.Float32s()), float32Bits(wb[i].Tensor.Float32s())) {
				t.Errorf("best parameter %s differs after resume", wb[i].Name)
			}
		}
	}

	// A changed configuration is refused, naming the flag.
	bad := resumed
	bad.LR *= 2
	_, err = Train(context.Background(), bad, dir, nil)
	var mm ErrConfigMismatch
	if !errors.As(err, &mm) || mm.Flag != "--lr" {
		t.Errorf("resume with another --lr: got %v, want ErrConfigMismatch naming --lr", err)
	}
}

func float32Bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}
