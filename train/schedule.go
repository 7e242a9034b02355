package train

// Learning-rate decay and early stopping (--decay-after, --decay,
// --patience) follow the sgrvinod tutorial's main loop: a counter of
// epochs since the --select-by val score last improved (strictly) is
// updated after each validated epoch; then
//
//   - when the counter reaches Patience (> 0), training stops
//     (the tutorial's `if epochs_since_improvement == 20: break`);
//   - otherwise, when the counter is > 0 and a multiple of DecayAfter
//     (> 0), Adam's learning rate is multiplied by Decay for the following
//     epochs (the tutorial's `if epochs_since_improvement > 0 and
//     epochs_since_improvement % 8 == 0: adjust_learning_rate(0.8)`).
//
// So with the defaults (8, 0.8, 20) the rate shrinks after the 8th and
// 16th epoch in a row without improvement and the run stops after the
// 20th. The tutorial checks both at the start of the next epoch; doing it
// at the end of the validated epoch is the same except that a stop happens
// before, not instead of, a last pointless epoch. Epochs without
// validation leave the counter and the rate alone.

// plateauDecision is what to do after a validated epoch.
type plateauDecision struct {
	Since int  // epochs since the last improvement, this one included
	Decay bool // multiply the learning rate by Config.Decay
	Stop  bool // stop training (patience exhausted)
}

// afterValidation updates the count of epochs since improvement (since,
// before this epoch) given whether this epoch improved the best score,
// and decides on decay and early stopping. It is pure, for testing.
func afterValidation(since int, improved bool, decayAfter, patience int) plateauDecision {
	if improved {
		return plateauDecision{}
	}
	since++
	d := plateauDecision{Since: since}
	if patience > 0 && since >= patience {
		d.Stop = true
		return d
	}
	if decayAfter > 0 && since%decayAfter == 0 {
		d.Decay = true
	}
	return d
}
