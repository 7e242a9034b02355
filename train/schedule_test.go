package train

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestAfterValidation(t *testing.T) {
	for _, tc := range []struct {
		since      int
		improved   bool
		decayAfter int
		patience   int
		want       plateauDecision
	}{
		{0, true, 8, 20, plateauDecision{}},
		{7, true, 8, 20, plateauDecision{}},
		{0, false, 8, 20, plateauDecision{Since: 1}},
		{7, false, 8, 20, plateauDecision{Since: 8, Decay: true}},
		{8, false, 8, 20, plateauDecision{Since: 9}},
		{15, false, 8, 20, plateauDecision{Since: 16, Decay: true}},
		{19, false, 8, 20, plateauDecision{Since: 20, Stop: true}},
		{15, false, 8, 16, plateauDecision{Since: 16, Stop: true}}, // stop wins over decay
		{7, false, 0, 20, plateauDecision{Since: 8}},               // decay disabled
		{99, false, 0, 0, plateauDecision{Since: 100}},             // both disabled
		{0, false, 1, 0, plateauDecision{Since: 1, Decay: true}},
	} {
		if got := afterValidation(tc.since, tc.improved, tc.decayAfter, tc.patience); got != tc.want {
			t.Errorf("afterValidation(%d, %v, %d, %d) = %+v, want %+v", tc.since, tc.improved, tc.decayAfter, tc.patience, got, tc.want)
		}
	}
}

// TestPlateauSchedule replays a scripted sequence of val scores through
// the same bookkeeping as Train and checks at which epochs the learning
// rate decays and the run stops.
func TestPlateauSchedule(t *testing.T) {
	// Improves at epochs 1, 2 and 5, then never again.
	scores := []float64{0.1, 0.2, 0.2, 0.15, 0.3}
	for range 40 {
		scores = append(scores, 0.25)
	}
	lr, best, since := 1.0, -1.0, 0
	var decays []int
	stopAt := 0
	var lrs []float64
	for i, s := range scores {
		epoch := i + 1
		lrs = append(lrs, lr)
		improved := s > best
		if improved {
			best = s
		}
		d := afterValidation(since, improved, 8, 20)
		since = d.Since
		if d.Decay {
			lr *= 0.8
			decays = append(decays, epoch)
		}
		if d.Stop {
			stopAt = epoch
			break
		}
	}
	// Epochs 3–4 do not improve (since 1, 2), epoch 5 resets; from epoch 6
	// on since = epoch − 5: decay after epochs 13 and 21, stop after 25.
	if !slices.Equal(decays, []int{13, 21}) || stopAt != 25 {
		t.Fatalf("decays after epochs %v, stop after %d; want [13 21], 25", decays, stopAt)
	}
	if want := 0.8; lrs[12] != 1 || lrs[13] != want || lrs[20] != want || lrs[21] != want*0.8 {
		t.Errorf("learning rates %v", lrs)
	}
}

func TestTrainTimeLimit(t *testing.T) {
	dir := writeSynthDataset(t, 16, 4, 16)
	cfg := tinyConfig()
	cfg.Epochs = 3
	cfg.TimeLimit = time.Nanosecond
	res, err := Train(context.Background(), cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 1 || len(res.Epochs) != 1 || res.Stop != StopTimeLimit || res.Epochs[0].LR != cfg.LR {
		t.Fatalf("steps %d, epochs %d, stop %q, lr %v; want 1 step in 1 epoch, stop %q, lr %v",
			res.Steps, len(res.Epochs), res.Stop, res.Epochs[0].LR, StopTimeLimit, cfg.LR)
	}
}

func TestTrainPatience(t *testing.T) {
	dir := writeSynthDataset(t, 16, 4, 16)
	addValSplit(t, dir, 8, 4, 16)
	cfg := tinyConfig()
	cfg.Epochs = 6
	cfg.MaxSteps = 0
	cfg.LR = 1e-12 // nothing is learned: the val score never improves after epoch 1
	cfg.DecayAfter, cfg.Decay, cfg.Patience = 1, 0.5, 2
	res, err := Train(context.Background(), cfg, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Epoch 1 sets the best; epoch 2 does not improve (decay), epoch 3
	// neither (patience 2: stop).
	if len(res.Epochs) != 3 || res.Stop != StopPatience {
		t.Fatalf("%d epochs, stop %q; want 3, %q", len(res.Epochs), res.Stop, StopPatience)
	}
	if lrs := []float64{res.Epochs[0].LR, res.Epochs[1].LR, res.Epochs[2].LR}; !slices.Equal(lrs, []float64{1e-12, 1e-12, 0.5e-12}) {
		t.Errorf("learning rates %v", lrs)
	}
}
