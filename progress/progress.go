// Package progress is how long-running library calls report progress
// without printing: they take a Reporter, and only cmd/captionctl renders
// it (a progress bar on stderr). A nil Reporter is silent.
package progress

// Reporter receives the progress of one long step at a time.
type Reporter interface {
	// Start begins a step: what it does, in a few words, and how many units
	// it will take (0 if unknown).
	Start(what string, total int64)
	// Add reports n more units done. It may be called from several
	// goroutines at once.
	Add(n int64)
	// Done ends the step.
	Done()
}

// Or returns r, or a silent Reporter when r is nil.
func Or(r Reporter) Reporter {
	if r == nil {
		return Silent{}
	}
	return r
}

// Silent discards progress.
type Silent struct{}

func (Silent) Start(string, int64) {}
func (Silent) Add(int64)           {}
func (Silent) Done()               {}

// Describer is an optional extension of Reporter: a Reporter that
// implements it shows a changing description of the current step, such as
// running statistics ("epoch 3/20 loss 2.41 top5 61.2% 312 cap/s").
type Describer interface {
	// Describe replaces the description given to Start until the step
	// ends.
	Describe(what string)
}

// Describe sets r's description of the current step when r implements
// Describer, and does nothing otherwise.
func Describe(r Reporter, what string) {
	if d, ok := r.(Describer); ok {
		d.Describe(what)
	}
}
