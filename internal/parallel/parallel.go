// Package parallel runs loops over independent items on every core.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunk is how many consecutive indexes a goroutine takes at a time: large
// enough to keep the counter cold, small enough to balance uneven items.
const chunk = 64

// For calls the body for every index in [0, n) on up to GOMAXPROCS
// goroutines and returns when all are done. Each goroutine calls newBody once
// to get its body, so that it can own scratch memory.
func For(n int, newBody func() func(i int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), (n+chunk-1)/chunk))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := newBody()
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					body(i)
				}
			}
		}()
	}
	wg.Wait()
}

// Each calls body(i) for every index in [0, n) on up to GOMAXPROCS
// goroutines, handing out one index at a time: for few, large items
// (For hands out chunks of 64).
func Each(n int, body func(i int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body(i)
			}
		}()
	}
	wg.Wait()
}
