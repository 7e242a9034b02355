package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets tests run captionctl as a separate process (to kill it):
// with CAPTIONCTL_MAIN=1 the test binary is captionctl.
func TestMain(m *testing.M) {
	if os.Getenv("CAPTIONCTL_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
