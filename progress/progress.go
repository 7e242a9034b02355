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
