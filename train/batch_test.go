package train

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestMakeBatchesCoversEveryPairOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0))
	var pairs []Pair
	for i := range 1003 {
		n := 3 + rng.IntN(20)
		pairs = append(pairs, Pair{Image: i / 5, Caption: make([]int, n)})
	}
	const batch, pool = 16, 4
	for epoch := range 3 {
		batches := MakeBatches(pairs, batch, pool, rng)
		seen := make([]int, len(pairs))
		partial := 0
		padding, tokens := 0, 0
		for _, b := range batches {
			if len(b.Pairs) == 0 || len(b.Pairs) > batch {
				t.Fatalf("epoch %d: batch of %d pairs", epoch, len(b.Pairs))
			}
			if len(b.Pairs) < batch {
				partial++
			}
			steps := 0
			for _, i := range b.Pairs {
				seen[i]++
				steps = max(steps, len(pairs[i].Caption)-1)
				tokens += len(pairs[i].Caption) - 1
			}
			if steps != b.Steps {
				t.Fatalf("epoch %d: batch Steps %d, longest caption needs %d", epoch, b.Steps, steps)
			}
			padding += batch*b.Steps - tokens
			tokens = 0
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("epoch %d: pair %d used %d times", epoch, i, n)
			}
		}
		if partial > 1 {
			t.Errorf("epoch %d: %d partial batches, want at most 1", epoch, partial)
		}
		// Sorting within pools keeps padding small: lengths 3..22 spread
		// uniformly would waste about half the slots unsorted.
		if frac := float64(padding) / float64(len(batches)*batch*22); frac > 0.2 {
			t.Errorf("epoch %d: padding fraction %.2f, want < 0.2", epoch, frac)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		flag string
	}{
		{func(c *Config) { c.Epochs = 0 }, "--epochs"},
		{func(c *Config) { c.Batch = 0 }, "--batch"},
		{func(c *Config) { c.LR = 0 }, "--lr"},
		{func(c *Config) { c.GradClip = -1 }, "--grad-clip"},
		{func(c *Config) { c.MaxSteps = -1 }, "--max-steps"},
		{func(c *Config) { c.Dropout = 1 }, "--dropout"},
		{func(c *Config) { c.AlphaC = -1 }, "--alpha-c"},
		{func(c *Config) { c.Arch = "rnn" }, "--arch"},
		{func(c *Config) { c.DecayAfter = -1 }, "--decay-after"},
		{func(c *Config) { c.Decay = 0 }, "--decay"},
		{func(c *Config) { c.Decay = 1.5 }, "--decay"},
		{func(c *Config) { c.Patience = -1 }, "--patience"},
		{func(c *Config) { c.TimeLimit = -1 }, "--time-limit"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%s: got %v, want an error naming the flag", tc.flag, err)
		}
	}
}
