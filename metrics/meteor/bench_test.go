package meteor

import (
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/captionctl/captionctl/internal/oracle"
)

// cpuTime returns the process's user+system CPU time, so benchmarks can
// report CPU per operation next to wall time (the 2-core machines are
// shared, which makes wall time noisy).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkScorer measures loading the embedded resources (New) and scoring
// the 5,000-image leave-one-out case: Score5000 sequentially with a fresh
// Scorer each iteration, so word caches start cold as in one CLI run;
// Score5000Parallel the same over GOMAXPROCS goroutines; Score5000Warm with
// one Scorer whose caches already hold every word.
func BenchmarkScorer(b *testing.B) {
	b.Run("New", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			if _, err := New(Options{}); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, start)
	})
	c, err := oracle.Load("coco_val2017_human_loo")
	if err != nil {
		b.Fatal(err)
	}
	hyps := make([]string, len(c.Results))
	refs := make([][]string, len(c.Results))
	for i, r := range c.Results {
		hyps[i], refs[i] = c.ResTokenized(r.ImageID), c.RefsTokenized(r.ImageID)
	}
	b.Run("Score5000", func(b *testing.B) {
		b.ReportAllocs()
		start := cpuTime()
		for b.Loop() {
			s, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			stats := make([]Stats, len(hyps))
			for i := range hyps {
				stats[i] = s.Stats(hyps[i], refs[i])
			}
			_ = CorpusScore(stats)
		}
		reportCPU(b, start)
	})
	b.Run("Score5000Parallel", func(b *testing.B) {
		b.ReportAllocs()
		workers := runtime.GOMAXPROCS(0)
		start := cpuTime()
		for b.Loop() {
			s, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			stats := make([]Stats, len(hyps))
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < len(hyps); i += workers {
						stats[i] = s.Stats(hyps[i], refs[i])
					}
				}(w)
			}
			wg.Wait()
			_ = CorpusScore(stats)
		}
		reportCPU(b, start)
	})
	b.Run("Score5000Warm", func(b *testing.B) {
		b.ReportAllocs()
		s, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range hyps {
			s.Stats(hyps[i], refs[i])
		}
		start := cpuTime()
		for b.Loop() {
			for i := range hyps {
				s.Stats(hyps[i], refs[i])
			}
		}
		reportCPU(b, start)
	})
}
