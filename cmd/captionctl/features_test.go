package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// prepareSynth runs data synth and data prepare in-process.
func prepareSynth(t *testing.T, images int) string {
	t.Helper()
	dir := t.TempDir()
	synth, prepared := filepath.Join(dir, "S"), filepath.Join(dir, "P")
	if code, out, errOut := runApp(t, "data", "synth", "--out", synth, "--images", strconv.Itoa(images), "--size", "64", "-q"); code != 0 {
		t.Fatalf("synth: %s%s", out, errOut)
	}
	if code, out, errOut := runApp(t, "data", "prepare", "--karpathy", filepath.Join(synth, "dataset.json"), "--images", synth, "--out", prepared, "-q"); code != 0 {
		t.Fatalf("prepare: %s%s", out, errOut)
	}
	return prepared
}

func featureArgs(data string) []string {
	return []string{"data", "features", "--data", data, "--encoder", "resnet18", "--weights", "random",
		"--image-size", "64", "--grid", "7", "--batch", "2", "--shard-images", "3", "-q"}
}

func readShards(t *testing.T, data string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	entries, _ := os.ReadDir(filepath.Join(data, "features"))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(data, "features", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestFeaturesKill9Resume kills `captionctl data features` with SIGKILL
// mid-run, resumes it, and checks that the shards equal an uninterrupted
// run's: nothing lost, nothing duplicated, no half-written file.
func TestFeaturesKill9Resume(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the encoder three times")
	}
	killed := prepareSynth(t, 30) // 24 train (8 shards), 3 val, 3 test
	cmd := exec.Command(os.Args[0], featureArgs(killed)...)
	cmd.Env = append(os.Environ(), "CAPTIONCTL_MAIN=1")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once a few shards exist.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		entries, _ := filepath.Glob(filepath.Join(killed, "features", "train-*.safetensors"))
		if len(entries) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	partial := readShards(t, killed)
	if _, done := partial["manifest.json"]; done {
		t.Skip("the run finished before it could be killed")
	}

	code, out, stderr := runApp(t, featureArgs(killed)...)
	if code != 0 || !regexp.MustCompile(`already complete`).MatchString(out) {
		t.Fatalf("resume: exit %d\n%s%s", code, out, stderr)
	}
	fresh := prepareSynth(t, 30)
	if code, out, stderr := runApp(t, featureArgs(fresh)...); code != 0 {
		t.Fatalf("uninterrupted run: %s%s", out, stderr)
	}
	got, want := readShards(t, killed), readShards(t, fresh)
	if len(got) != len(want) {
		t.Errorf("resumed store has %d files, uninterrupted %d", len(got), len(want))
	}
	for name, w := range want {
		if name == "manifest.json" {
			continue
		}
		if !bytes.Equal(got[name], w) {
			t.Errorf("%s differs from the uninterrupted run's", name)
		}
	}
	for name := range got {
		if strings.Contains(name, "tmp") {
			t.Errorf("leftover temporary file %s", name)
		}
	}
}
