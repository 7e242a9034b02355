package infer

import (
	"fmt"
	"math"
)

// Options says how captions are searched for. The zero value is not
// valid: start from DefaultOptions.
type Options struct {
	// Beam is the beam width K ≥ 1 (--beam): the number of live
	// hypotheses kept per image. 1 is greedy decoding.
	Beam int
	// MaxLen is the most decoder steps per caption (--max-len), ≥ 1: a
	// caption has at most MaxLen words, or MaxLen−1 and <end>.
	MaxLen int
	// LengthPenalty is the exponent A ≥ 0 of the ranking score of a
	// hypothesis, log-prob / len^A, len its number of tokens counting
	// <end> (--length-penalty). 0 ranks by the raw sum of log-probs, which
	// favours short captions; 0.6–1 offsets that.
	LengthPenalty float64
	// Top is how many alternatives each Result lists, best first
	// (--top), 1 ≤ Top ≤ Beam.
	Top int
	// NoRepeatNgram N > 0 forbids a word that would repeat an n-gram of N
	// words already in the hypothesis (--no-repeat-ngram; 1: no word twice).
	// 0 is off.
	NoRepeatNgram int
	// AllowUnk lets <unk> be emitted (--allow-unk). <pad> and <start> are
	// never emitted.
	AllowUnk bool
	// Batch is how many images are encoded and decoded at once (--batch),
	// ≥ 1; the decoder runs on Batch × Beam rows per step. Captions do not
	// depend on it.
	Batch int
	// Attention keeps each word's attention weights in Result.Alphas
	// (--attention-dir); attention decoders only.
	Attention bool
}

// DefaultOptions is beam search of width 3 (as in sgrvinod's caption.py),
// captions of up to 50 steps, no length penalty, one result per image,
// 16 images per batch.
func DefaultOptions() Options {
	return Options{Beam: 3, MaxLen: 50, Top: 1, Batch: 16}
}

// maxBeam bounds the beam width and the max length so that a search
// cannot ask for an absurd allocation.
const maxBeam = 1 << 10

// Validate reports the first invalid option, naming its flag and value.
func (o Options) Validate() error {
	switch {
	case o.Beam < 1 || o.Beam > maxBeam:
		return fmt.Errorf("--beam must be between 1 and %d, got %d", maxBeam, o.Beam)
	case o.MaxLen < 1 || o.MaxLen > 1<<16:
		return fmt.Errorf("--max-len must be between 1 and %d, got %d", 1<<16, o.MaxLen)
	case !(o.LengthPenalty >= 0) || math.IsInf(o.LengthPenalty, 0):
		return fmt.Errorf("--length-penalty must be ≥ 0 and finite, got %v", o.LengthPenalty)
	case o.Top < 1 || o.Top > o.Beam:
		return fmt.Errorf("--top must be between 1 and --beam (%d), got %d", o.Beam, o.Top)
	case o.NoRepeatNgram < 0:
		return fmt.Errorf("--no-repeat-ngram must be ≥ 0 (0: off), got %d", o.NoRepeatNgram)
	case o.Batch < 1 || o.Batch > 1<<16:
		return fmt.Errorf("--batch must be between 1 and %d, got %d", 1<<16, o.Batch)
	}
	return nil
}
