package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// learningEnv selects the full-size learning test.
const learningEnv = "CAPTIONCTL_LEARNING"

// TestLearning is the learning test of issue 5 §3: on `data synth` images
// with `data features --weights random` ResNet-18 features, the attention
// decoder's test CIDEr-D must be at least twice that of the same decoder
// trained on all-zero features (the blind baseline, which can only learn
// caption priors) and higher than Show and Tell trained for the same wall
// time.
//
// The full size — 3,000 images of 224 pixels, DefaultConfig's decoders
// and hyper-parameters, 5 minutes of training per decoder, about 15
// minutes in all on 2 cores — runs with
//
//	CAPTIONCTL_LEARNING=full go test ./internal/pipeline -run 'TestLearning$' -v -timeout 60m
//
// (CAPTIONCTL_LEARNING_DIR=DIR keeps its files in DIR, new or empty).
// Measured on the 2-core development machine (test split of 300 images,
// beam 3): attention 0.702, blind 0.281 (2.5×), Show and Tell 0.271 —
// 21, 24 and 22 epochs; Show and Tell stopped early (--patience: its best
// val epoch was the 2nd) after 154 s of its 300. An earlier run (same
// configuration, an earlier build of the model package) gave 0.628, 0.281
// and 0.397: Show and Tell's beam captions are fragile (greedy, both runs
// give it 0.503).
//
// The default `go test` runs a reduced size in under a minute (600
// images of 112 pixels, decoders of 64, 10 epochs: 750 batches) and checks
// only that every decoder trains and scores sanely, logging the numbers:
// at that size the random features have not paid off yet — measured, the
// attention decoder's training loss was still above the blind baseline's
// (1.58 vs 1.40) and its test CIDEr-D below it (0.36 vs 0.53; the
// blind model's beam search finds the likeliest generic caption, which
// scores well on 60 test images). In the full run the attention decoder
// overtook the blind one after a few thousand batches.
func TestLearning(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Examples = 0
	full := false
	switch mode := os.Getenv(learningEnv); mode {
	case "full":
		full = true
		cfg.TrainTime, cfg.Epochs, cfg.ShowTell = 5*time.Minute, 1000, true
	case "":
		if testing.Short() {
			t.Skip("-short: trains two decoders")
		}
		cfg.Images, cfg.ImageSize = 600, 112
		cfg.EmbedDim, cfg.AttentionDim, cfg.HiddenDim = 64, 64, 64
		cfg.Epochs, cfg.TrainTime = 10, 5*time.Minute
	default:
		t.Fatalf("%s=%q: want full or nothing", learningEnv, mode)
	}
	cfg.Dir = filepath.Join(t.TempDir(), "learning")
	if dir := os.Getenv(learningEnv + "_DIR"); dir != "" {
		cfg.Dir = dir
	}
	res, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Stages {
		t.Logf("stage %-15s %6.1fs", st.Name, st.Seconds)
	}
	for _, m := range res.Models {
		s := m.Test.Corpus
		t.Logf("%-9s %d epochs, %d steps, %.0fs, final loss %.4f: test BLEU-4 %.3f, METEOR %.3f, CIDEr-D %.3f (best val CIDEr-D %.3f, greedy)",
			m.Name, m.Epochs, m.Steps, m.TrainSeconds, m.Loss, s.Bleu[3], s.Meteor, s.CIDEr, m.ValCIDEr)
	}
	att, blind := res.Model(ModelAttention), res.Model(ModelBlind)
	for _, m := range res.Models {
		// A vocabulary of about 80 words: a decoder that learned nothing
		// has a loss near ln 80 ≈ 4.4 and captions that share few n-grams
		// with the references.
		if s := m.Test.Corpus; !(m.Loss > 0 && m.Loss < 2.5) || !(s.CIDEr > 0.1 && s.CIDEr < 10) || !(s.Bleu[3] > 0 && s.Bleu[3] <= 1) {
			t.Errorf("%s: final loss %.4f, test scores %+v", m.Name, m.Loss, s)
		}
	}
	if !full {
		return
	}
	a, b, st := att.Test.Corpus.CIDEr, blind.Test.Corpus.CIDEr, res.Model(ModelShowTell).Test.Corpus.CIDEr
	if !(a >= 2*b) {
		t.Errorf("attention CIDEr-D %.3f < 2 × blind %.3f", a, b)
	}
	if !(a > st) {
		t.Errorf("attention CIDEr-D %.3f ≤ Show and Tell's %.3f", a, st)
	}
}
