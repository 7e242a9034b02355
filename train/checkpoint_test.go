package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/progress"
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

	sameRun(t, got, want)

	// A changed configuration is refused, naming the flag.
	bad := resumed
	bad.LR *= 2
	_, err = Train(context.Background(), bad, dir, nil)
	var mm ErrConfigMismatch
	if !errors.As(err, &mm) || mm.Flag != "--lr" {
		t.Errorf("resume with another --lr: got %v, want ErrConfigMismatch naming --lr", err)
	}
}

// sameRun fails t unless got's steps, epoch losses and learning rates,
// parameters and best parameters are bit-identical to want's.
func sameRun(t *testing.T, got, want *Result) {
	t.Helper()
	if got.Steps != want.Steps || len(got.Epochs) != len(want.Epochs) {
		t.Fatalf("resumed: %d steps, %d epochs; straight: %d, %d", got.Steps, len(got.Epochs), want.Steps, len(want.Epochs))
	}
	for i := range want.Epochs {
		g, w := got.Epochs[i], want.Epochs[i]
		if math.Float64bits(g.Loss) != math.Float64bits(w.Loss) || g.LR != w.LR || g.Batches != w.Batches ||
			g.Captions != w.Captions || g.Top5 != w.Top5 {
			t.Errorf("epoch %d: resumed %+v, straight %+v", i+1, g, w)
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
}

// TestResumeMidEpoch stops runs inside an epoch — by MaxSteps, and by
// taking the periodic checkpoint (CheckpointEvery 1ns: after every batch)
// as it was after batch k, as a kill -9 would leave it — and resumes them:
// the result must be bit-identical to an uninterrupted run's.
func TestResumeMidEpoch(t *testing.T) {
	dir := writeSynthDataset(t, 16, 4, 16) // 48 pairs: 6 batches of 8 per epoch
	cfg := tinyConfig()
	cfg.Epochs = 3
	cfg.CheckpointEvery = 0

	straight := cfg
	straight.RunDir = t.TempDir()
	want, err := Train(context.Background(), straight, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want.Steps != 18 {
		t.Fatalf("straight run: %d steps, want 18", want.Steps)
	}
	resume := func(t *testing.T, run string) *Result {
		t.Helper()
		resumed := cfg
		resumed.RunDir, resumed.Resume = run, true
		got, err := Train(context.Background(), resumed, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("max-steps", func(t *testing.T) {
		run := t.TempDir()
		first := cfg
		first.RunDir, first.MaxSteps = run, 8 // epoch 2, batch 2
		res, err := Train(context.Background(), first, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Stop != StopMaxSteps || res.Steps != 8 {
			t.Fatalf("first part: stop %q after %d steps", res.Stop, res.Steps)
		}
		checkPosition(t, run, "1", 2)
		// A kill -9 during a checkpoint write leaves its temporary file;
		// resuming removes it.
		stale := filepath.Join(run, "."+CheckpointFile+".tmp-123")
		if err := os.WriteFile(stale, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		sameRun(t, resume(t, run), want)
		if _, err := os.Stat(stale); !os.IsNotExist(err) {
			t.Errorf("stale temporary checkpoint %s: %v, want removed", stale, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		run := t.TempDir()
		first := cfg
		first.RunDir = run
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := Train(ctx, first, dir, &cancelAt{at: 10, cancel: cancel}) // epoch 2, batch 4
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		checkPosition(t, run, "1", 4)
		sameRun(t, resume(t, run), want)
	})

	for _, k := range []int{1, 6, 7, 9, 13, 17} {
		t.Run(fmt.Sprintf("periodic-after-%d", k), func(t *testing.T) {
			run := t.TempDir()
			first := cfg
			first.RunDir, first.CheckpointEvery = run, time.Nanosecond
			snap := &checkpointSnapshot{path: filepath.Join(run, CheckpointFile), at: k + 1}
			if _, err := Train(context.Background(), first, dir, snap); err != nil {
				t.Fatal(err)
			}
			if snap.data == nil {
				t.Fatalf("no checkpoint after batch %d", k)
			}
			again := t.TempDir()
			if err := os.WriteFile(filepath.Join(again, CheckpointFile), snap.data, 0o644); err != nil {
				t.Fatal(err)
			}
			sameRun(t, resume(t, again), want)
		})
	}
}

// checkpointSnapshot copies the checkpoint file as it is when batch at
// is reported done, i.e. as the previous batch left it.
type checkpointSnapshot struct {
	progress.Silent
	path string
	at   int
	done int
	data []byte
}

func (s *checkpointSnapshot) Add(n int64) {
	s.done += int(n)
	if n > 0 && s.done == s.at && s.data == nil {
		s.data, _ = os.ReadFile(s.path)
	}
}

// checkPosition fails t unless run's checkpoint is after epoch and batch
// batches of the next epoch.
func checkPosition(t *testing.T, run, epoch string, batch int) {
	t.Helper()
	_, meta, err := tensorfile.LoadSafetensors(filepath.Join(run, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	var pos epochPosition
	if err := json.Unmarshal([]byte(meta["position"]), &pos); err != nil || meta["epoch"] != epoch || pos.Batch != batch {
		t.Fatalf("checkpoint after epoch %s, position %s (%v); want epoch %s, batch %d", meta["epoch"], meta["position"], err, epoch, batch)
	}
}

// cancelAt calls cancel when batch at is reported done.
type cancelAt struct {
	progress.Silent
	at, done int
	cancel   func()
}

func (c *cancelAt) Add(n int64) {
	if c.done += int(n); c.done == c.at {
		c.cancel()
	}
}

func float32Bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}
