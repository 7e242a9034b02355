package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/captionctl/captionctl/data"
	"github.com/captionctl/captionctl/internal/tensorfile"
	"github.com/captionctl/captionctl/model"
	"github.com/captionctl/captionctl/train"
)

func TestTrainCommand(t *testing.T) {
	prepared := prepareSynth(t, 30)
	if code, out, errOut := runApp(t, featureArgs(prepared)...); code != 0 {
		t.Fatalf("features: exit %d: %s%s", code, out, errOut)
	}
	run := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--data", prepared, "--out", run, "--embed-dim", "32", "--attention-dim", "32",
		"--hidden-dim", "32", "--epochs", "2", "--batch", "8", "--seed", "3", "-q"}
	code, out, errOut := runApp(t, args...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(out, "best epoch") || !strings.Contains(out, "CIDEr-D") || !strings.Contains(out, "model.safetensors") {
		t.Errorf("summary does not name the model as the best epoch's with val scores:\n%s", out)
	}

	m, err := model.LoadModel(filepath.Join(run, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want := model.DecoderConfig{Arch: model.ArchAttention, VocabSize: m.Vocab.Len(), FeatureDim: 512, GridCells: 49,
		EmbedDim: 32, AttentionDim: 32, HiddenDim: 32, Dropout: 0.5, AlphaC: 1}
	if m.Config != want {
		t.Errorf("model config %v, want %v", m.Config, want)
	}
	if m.Encoder.Arch != "resnet18" || m.Encoder.Pretrained || m.Encoder.Grid != 7 || m.Encoder.Channels != 512 {
		t.Errorf("encoder identity %+v", m.Encoder)
	}
	p := m.Provenance
	if p.Seed != 3 || p.Epoch < 1 || p.Epoch > 2 || p.Steps == 0 || len(p.DataManifestSHA256) != 64 || p.Selection != "best" {
		t.Errorf("provenance %+v", p)
	}

	var cfg runConfig
	raw, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Epochs != 2 || cfg.Batch != 8 || cfg.Seed != 3 || cfg.HiddenDim != 32 || cfg.LR != 4e-4 ||
		cfg.Decoder == nil || *cfg.Decoder != m.Config {
		t.Errorf("config.json: %s", raw)
	}

	if raw, err := os.ReadFile(filepath.Join(run, "curves.png")); err != nil {
		t.Error(err)
	} else if img, err := png.Decode(bytes.NewReader(raw)); err != nil {
		t.Errorf("curves.png: %v", err)
	} else if b := img.Bounds(); b.Dx() != train.CurvesWidth || b.Dy() != train.CurvesHeight {
		t.Errorf("curves.png is %v", b)
	}

	f, err := os.Open(filepath.Join(run, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []logLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log.jsonl: %v: %s", err, sc.Text())
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 {
		t.Fatalf("log.jsonl has %d lines, want 2", len(lines))
	}
	for i, l := range lines {
		if l.Epoch != i+1 || l.LR != 4e-4 || !(l.Loss > 0) || l.Batches == 0 || l.Captions == 0 || l.Seconds <= 0 ||
			l.ValBleu4 == nil || l.ValCIDEr == nil || *l.ValBleu4 < 0 || *l.ValBleu4 > 1 || *l.ValCIDEr < 0 || *l.ValCIDEr > 10 ||
			!(l.Top5 > 0 && l.Top5 <= 1) || !(l.CaptionsPerSecond > 0) {
			t.Errorf("log line %d: %+v", i, l)
		}
	}
	if best := lines[p.Epoch-1]; p.Metrics["train_loss"] != best.Loss || best.ValCIDEr == nil || p.Metrics["val_cider"] != *best.ValCIDEr ||
		p.Metrics["val_bleu4"] != *best.ValBleu4 {
		t.Errorf("model's metrics %v, log's best epoch %+v", p.Metrics, best)
	}

	// A second run into the same RUNDIR is refused rather than overwriting.
	if code, _, errOut := runApp(t, args...); code != exitUsage || !strings.Contains(errOut, "already holds") {
		t.Errorf("train into an existing run: exit %d, want %d: %s", code, exitUsage, errOut)
	}

	// Show and Tell, cut short by --max-steps.
	st := filepath.Join(t.TempDir(), "st")
	code, out, errOut = runApp(t, "train", "--data", prepared, "--out", st, "--arch", "showtell", "--embed-dim", "16",
		"--hidden-dim", "16", "--epochs", "3", "--batch", "8", "--max-steps", "2", "--select-by", "bleu4", "-q")
	if code != 0 {
		t.Fatalf("train showtell: exit %d: %s%s", code, out, errOut)
	}
	ms, err := model.LoadModel(filepath.Join(st, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if ms.Config.Arch != model.ArchShowTell || ms.Provenance.Steps != 2 {
		t.Errorf("showtell model: %v, %+v", ms.Config, ms.Provenance)
	}
	if !strings.Contains(out, "--max-steps 2 reached") {
		t.Errorf("summary does not say the run stopped at --max-steps:\n%s", out)
	}

	// A tiny --time-limit ends the run after its first batch, normally.
	tl := filepath.Join(t.TempDir(), "tl")
	code, out, errOut = runApp(t, "train", "--data", prepared, "--out", tl, "--embed-dim", "16", "--attention-dim", "16",
		"--hidden-dim", "16", "--epochs", "3", "--batch", "8", "--time-limit", "1ns", "-q")
	if code != 0 {
		t.Fatalf("train --time-limit: exit %d: %s%s", code, out, errOut)
	}
	if !strings.Contains(out, "--time-limit 1ns reached") {
		t.Errorf("summary does not say the run hit --time-limit:\n%s", out)
	}
	mt, err := model.LoadModel(filepath.Join(tl, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if mt.Provenance.Steps != 1 || mt.Provenance.Selection != "best" {
		t.Errorf("time-limited model: %+v", mt.Provenance)
	}
}

func TestTrainUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]string{
		"no --data":                   {"train", "--out", dir},
		"no --out":                    {"train", "--data", dir},
		"bad --arch":                  {"train", "--data", dir, "--out", dir, "--arch", "transformer"},
		"zero --epochs":               {"train", "--data", dir, "--out", dir, "--epochs", "0"},
		"zero --batch":                {"train", "--data", dir, "--out", dir, "--batch", "0"},
		"negative --lr":               {"train", "--data", dir, "--out", dir, "--lr", "-1"},
		"--dropout 1":                 {"train", "--data", dir, "--out", dir, "--dropout", "1"},
		"negative clip":               {"train", "--data", dir, "--out", dir, "--grad-clip", "-1"},
		"negative alpha-c":            {"train", "--data", dir, "--out", dir, "--alpha-c", "-0.5"},
		"negative steps":              {"train", "--data", dir, "--out", dir, "--max-steps", "-1"},
		"zero --hidden-dim":           {"train", "--data", dir, "--out", dir, "--hidden-dim", "0"},
		"unknown flag":                {"train", "--data", dir, "--out", dir, "--bogus"},
		"not a number":                {"train", "--data", dir, "--out", dir, "--epochs", "many"},
		"argument":                    {"train", "--data", dir, "--out", dir, "extra"},
		"bad --select-by":             {"train", "--data", dir, "--out", dir, "--select-by", "meteor"},
		"negative --patience":         {"train", "--data", dir, "--out", dir, "--patience", "-1"},
		"--decay 0":                   {"train", "--data", dir, "--out", dir, "--decay", "0"},
		"negative --decay-after":      {"train", "--data", dir, "--out", dir, "--decay-after", "-2"},
		"negative --time-limit":       {"train", "--data", dir, "--out", dir, "--time-limit", "-1m"},
		"bad --time-limit":            {"train", "--data", dir, "--out", dir, "--time-limit", "soon"},
		"negative --checkpoint-every": {"train", "--data", dir, "--out", dir, "--checkpoint-every", "-1s"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			if code, out, errOut := runApp(t, args...); code != exitUsage {
				t.Errorf("exit %d, want %d: %s%s", code, exitUsage, out, errOut)
			}
		})
	}
	// A directory that is not a dataset is bad input, not bad usage.
	if code, _, errOut := runApp(t, "train", "--data", dir, "--out", filepath.Join(dir, "run"), "-q"); code != exitBadInput {
		t.Errorf("train on an empty directory: exit %d, want %d: %s", code, exitBadInput, errOut)
	}
}

func TestTrainResume(t *testing.T) {
	prepared := prepareSynth(t, 30)
	if code, out, errOut := runApp(t, featureArgs(prepared)...); code != 0 {
		t.Fatalf("features: exit %d: %s%s", code, out, errOut)
	}
	run := filepath.Join(t.TempDir(), "run")
	base := []string{"train", "--data", prepared, "--out", run, "--embed-dim", "16", "--attention-dim", "16",
		"--hidden-dim", "16", "--batch", "8", "--seed", "3", "-q"}
	if code, out, errOut := runApp(t, append(base, "--epochs", "1")...); code != 0 {
		t.Fatalf("train 1 epoch: exit %d: %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(run, train.CheckpointFile)); err != nil {
		t.Fatal(err)
	}
	// Without --resume the run is refused, pointing at --resume.
	if code, _, errOut := runApp(t, append(base, "--epochs", "2")...); code != exitUsage || !strings.Contains(errOut, "--resume") {
		t.Errorf("train into an existing run without --resume: exit %d, want %d: %s", code, exitUsage, errOut)
	}
	// A changed flag is refused, naming it.
	if code, _, errOut := runApp(t, append(base, "--epochs", "2", "--resume", "--lr", "1e-3")...); code != exitUsage || !strings.Contains(errOut, "--lr") {
		t.Errorf("--resume with another --lr: exit %d, want %d: %s", code, exitUsage, errOut)
	}
	if code, out, errOut := runApp(t, append(base, "--epochs", "2", "--resume")...); code != 0 {
		t.Fatalf("train --resume --epochs 2: exit %d: %s%s", code, out, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(run, "log.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var epochs []int
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var l logLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log.jsonl: %v: %s", err, line)
		}
		epochs = append(epochs, l.Epoch)
	}
	if len(epochs) != 2 || epochs[0] != 1 || epochs[1] != 2 {
		t.Errorf("log.jsonl epochs %v, want [1 2]", epochs)
	}
	if _, err := model.LoadModel(filepath.Join(run, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
}

// TestTrainKill9Resume kills `captionctl train` with SIGKILL while it
// writes a checkpoint after every batch (--checkpoint-every 1ns), resumes
// it, and compares every tensor of the final checkpoint (weights, Adam
// moments, best weights) and of the model with an uninterrupted run's:
// they must be bit-identical.
func TestTrainKill9Resume(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: trains three times")
	}
	prepared := prepareSynth(t, 30)
	if code, out, errOut := runApp(t, featureArgs(prepared)...); code != 0 {
		t.Fatalf("features: exit %d: %s%s", code, out, errOut)
	}
	args := func(run string) []string {
		return []string{"train", "--data", prepared, "--out", run, "--embed-dim", "16", "--attention-dim", "16",
			"--hidden-dim", "16", "--batch", "4", "--epochs", "4", "--seed", "3", "--checkpoint-every", "1ns", "-q"}
	}
	killed := filepath.Join(t.TempDir(), "killed")
	cmd := exec.Command(os.Args[0], args(killed)...)
	cmd.Env = append(os.Environ(), "CAPTIONCTL_MAIN=1")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it inside the second epoch, most likely while it writes a
	// checkpoint.
	last := filepath.Join(killed, train.CheckpointFile)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, meta, err := tensorfile.LoadSafetensors(last); err == nil && meta["epoch"] == "1" && meta["position"] != "" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(15 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if _, err := os.Stat(filepath.Join(killed, "model.safetensors")); err == nil {
		t.Skip("the run finished before it could be killed")
	}
	if _, meta, err := tensorfile.LoadSafetensors(last); err == nil {
		t.Logf("killed after epoch %s, position in the next %s", meta["epoch"], meta["position"])
	}
	if code, out, errOut := runApp(t, append(args(killed), "--resume")...); code != 0 {
		t.Fatalf("resume after kill -9: exit %d: %s%s", code, out, errOut)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if code, out, errOut := runApp(t, args(fresh)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s%s", code, out, errOut)
	}
	if temps, _ := filepath.Glob(filepath.Join(killed, "."+train.CheckpointFile+".tmp-*")); len(temps) > 0 {
		t.Errorf("resume left the killed run's temporary files: %v", temps)
	}
	for _, name := range []string{train.CheckpointFile, "model.safetensors"} {
		got, _, err := tensorfile.LoadSafetensors(filepath.Join(killed, name))
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := tensorfile.LoadSafetensors(filepath.Join(fresh, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: resumed has %d tensors, uninterrupted %d", name, len(got), len(want))
		}
		for tn, w := range want {
			if g := got[tn]; g == nil || !bytes.Equal(g.Data, w.Data) {
				t.Errorf("%s: tensor %s differs from the uninterrupted run's", name, tn)
			}
		}
	}
}

// TestTrainStoresEncoder: the model file of `captionctl train` carries the
// encoder's weights, so `captionctl caption` captions image files with it
// alone — for --weights random features (weights regenerated from the
// seed) and for features made from a weights file (--encoder-weights,
// checked against the features' sha256 before training).
func TestTrainStoresEncoder(t *testing.T) {
	prepared := prepareSynth(t, 30)
	image := filepath.Join(filepath.Dir(prepared), "S", "images", "000000.png")
	tiny := []string{"--embed-dim", "8", "--attention-dim", "8", "--hidden-dim", "8", "--epochs", "1", "--batch", "8", "--max-steps", "2", "-q"}

	t.Run("random weights", func(t *testing.T) {
		if code, out, errOut := runApp(t, featureArgs(prepared)...); code != 0 {
			t.Fatalf("features: exit %d: %s%s", code, out, errOut)
		}
		run := filepath.Join(t.TempDir(), "run")
		if code, out, errOut := runApp(t, append([]string{"train", "--data", prepared, "--out", run}, tiny...)...); code != 0 {
			t.Fatalf("train: exit %d: %s%s", code, out, errOut)
		}
		modelPath := filepath.Join(run, "model.safetensors")
		m, err := model.LoadModel(modelPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.EncoderWeights) == 0 {
			t.Fatal("the model file holds no encoder weights")
		}
		code, out, errOut := runApp(t, "caption", "--model", modelPath, "--beam", "2", "--max-len", "5", image)
		if code != 0 || !strings.HasPrefix(out, image+"\t") {
			t.Errorf("caption with the trained model: exit %d: %s%s", code, out, errOut)
		}
	})

	t.Run("weights file", func(t *testing.T) {
		// A ResNet-18 weights file (seeded random values, as a user's
		// torchvision .safetensors would hold trained ones).
		pre := data.DefaultPreprocessConfig()
		sd, err := model.EncoderStateDict(data.EncoderIdentity{Arch: "resnet18", WeightsSHA256: "random:seed=9", Grid: 7, Channels: 512, Preprocess: pre}, "")
		if err != nil {
			t.Fatal(err)
		}
		var list []*tensorfile.Tensor
		for _, tt := range sd {
			list = append(list, tt)
		}
		weights := filepath.Join(t.TempDir(), "resnet18.safetensors")
		if err := tensorfile.WriteSafetensors(weights, list, nil); err != nil {
			t.Fatal(err)
		}
		withFile := filepath.Join(t.TempDir(), "P")
		if err := os.CopyFS(withFile, os.DirFS(prepared)); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(withFile, "features")); err != nil {
			t.Fatal(err)
		}
		args := featureArgs(withFile)
		for i := range args {
			if args[i] == "random" {
				args[i] = weights
			}
		}
		if code, out, errOut := runApp(t, args...); code != 0 {
			t.Fatalf("features --weights %s: exit %d: %s%s", weights, code, out, errOut)
		}
		trainArgs := func(run string, extra ...string) []string {
			return append(append([]string{"train", "--data", withFile, "--out", run}, tiny...), extra...)
		}

		// Without --encoder-weights: bad usage, before any training.
		run := filepath.Join(t.TempDir(), "run")
		if code, _, errOut := runApp(t, trainArgs(run)...); code != exitUsage || !strings.Contains(errOut, "--encoder-weights") {
			t.Errorf("train without --encoder-weights: exit %d, want %d: %s", code, exitUsage, errOut)
		}
		// Another file than the features': bad input naming it.
		other := filepath.Join(t.TempDir(), "other.safetensors")
		if err := tensorfile.WriteSafetensors(other, list[:len(list)-1], nil); err != nil {
			t.Fatal(err)
		}
		for _, wrong := range []string{other, filepath.Join(t.TempDir(), "missing.pth")} {
			if code, _, errOut := runApp(t, trainArgs(run, "--encoder-weights", wrong)...); code != exitBadInput || !strings.Contains(errOut, wrong) {
				t.Errorf("train --encoder-weights %s: exit %d, want %d naming the file: %s", wrong, code, exitBadInput, errOut)
			}
		}
		if _, err := os.Stat(filepath.Join(run, "model.safetensors")); err == nil {
			t.Error("a refused run wrote a model")
		}

		if code, out, errOut := runApp(t, trainArgs(run, "--encoder-weights", weights)...); code != 0 {
			t.Fatalf("train --encoder-weights: exit %d: %s%s", code, out, errOut)
		}
		modelPath := filepath.Join(run, "model.safetensors")
		code, out, errOut := runApp(t, "caption", "--model", modelPath, "--beam", "2", "--max-len", "5", image)
		if code != 0 || !strings.HasPrefix(out, image+"\t") {
			t.Errorf("caption with the trained model: exit %d: %s%s", code, out, errOut)
		}
	})
}
