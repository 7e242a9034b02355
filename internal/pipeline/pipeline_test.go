package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := DefaultConfig()
	valid.Dir = t.TempDir()
	if err := valid.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cases := []struct {
		name, flag string
		change     func(*Config)
	}{
		{"no dir", "--dir", func(c *Config) { c.Dir = "" }},
		{"few images", "--images", func(c *Config) { c.Images = 29 }},
		{"tiny images", "--image-size", func(c *Config) { c.ImageSize = 8 }},
		{"no time", "--time-limit", func(c *Config) { c.TrainTime = 0 }},
		{"no epochs", "--epochs", func(c *Config) { c.Epochs = 0 }},
		{"no beam", "--beam", func(c *Config) { c.Beam = 0 }},
		{"negative examples", "--examples", func(c *Config) { c.Examples = -1 }},
		{"zero dim", "--hidden-dim", func(c *Config) { c.HiddenDim = 0 }},
		{"zero lr", "--lr", func(c *Config) { c.LR = 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.change(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.flag) {
				t.Errorf("error %v, want one naming %s", err, tc.flag)
			}
		})
	}
}

// TestRunRefuses: a used directory and a cancelled context stop Run before
// it writes anything.
func TestRunRefuses(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg.Dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("Run into a used directory: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.Dir = filepath.Join(t.TempDir(), "new")
	cfg.TrainTime = time.Second
	if _, err := Run(ctx, cfg, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context: %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(cfg.Dir); len(entries) > 0 {
		t.Errorf("a cancelled Run wrote %d entries", len(entries))
	}
}
