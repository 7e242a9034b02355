package ptb

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/captionctl/captionctl/metrics/ptb/internal/lexgen"
)

// TestLexerTables checks that lexer_tables.go is what internal/lexgen makes
// of the grammar now.
func TestLexerTables(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile("lexer_tables.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, lexgen.Source()) {
		t.Fatal("lexer_tables.go is out of date: run go generate ./metrics/ptb")
	}
}

// TestColdStart logs how long the first TokenizeAll calls of a process
// take on the 5,000-image case, run as captionctl eval runs them (both
// sets at once), and the calls after them. It measures the cold path only
// when it runs first in a fresh process:
//
//	go test -run '^TestColdStart$' -count=1 -v ./metrics/ptb/
func TestColdStart(t *testing.T) {
	cold := theLex == nil
	bs := caseBatches(t, "coco_val2017_human_loo")
	for i := range 3 {
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			TokenizeAll(bs[0].captions)
		}()
		TokenizeAll(bs[1].captions)
		wg.Wait()
		note := ""
		if i == 0 && !cold {
			note = " (not cold: the lexer was already in use)"
		}
		t.Logf("call %d: %d + %d captions in %v%s", i+1, len(bs[0].captions), len(bs[1].captions), time.Since(start), note)
	}
}

// BenchmarkNewLexer measures decoding the compiled grammar, which the first
// tokenization of a process pays for.
func BenchmarkNewLexer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newLexer()
	}
}
