package main

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/captionctl/captionctl/progress"
)

// barReporter renders library progress as a progress bar on stderr.
type barReporter struct {
	w   io.Writer
	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// newReporter returns a progress bar on w when w is a terminal and quiet is
// off; otherwise a silent reporter (scripts and logs get no bar noise).
func newReporter(w io.Writer, quiet bool) progress.Reporter {
	f, ok := w.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return progress.Silent{}
	}
	return &barReporter{w: w}
}

func (r *barReporter) Start(what string, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if total <= 0 {
		total = -1 // a spinner
	}
	r.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(r.w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("it"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionClearOnFinish(),
	)
}

func (r *barReporter) Add(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.Add64(n)
	}
}

// Describe replaces the bar's description (progress.Describer).
func (r *barReporter) Describe(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.Describe(what)
	}
}

func (r *barReporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		r.bar.Finish()
		r.bar = nil
	}
}
