package tensorfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the format sniffer and all three
// readers. Whatever the input, loading returns (never panics, never
// allocates beyond the input's size times a small factor), and whatever it
// returns is well-formed and survives a safetensors round trip.
//
//	go test ./internal/tensorfile/ -run '^$' -fuzz FuzzLoad -fuzztime 1m
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*")
	for _, path := range seeds {
		if filepath.Ext(path) == ".json" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\x80\x02}q\x00."))
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, err := load("fuzz", bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		list := make([]*Tensor, 0, len(tensors))
		for name, tensor := range tensors {
			if tensor.Name != name {
				t.Fatalf("tensor %q filed under %q", tensor.Name, name)
			}
			if err := tensor.check(); err != nil {
				t.Fatal(err)
			}
			list = append(list, tensor)
		}
		var buf bytes.Buffer
		if err := EncodeSafetensors(&buf, list, nil); err != nil {
			return // a name safetensors cannot hold (invalid UTF-8, "__metadata__")
		}
		back, _, err := readSafetensors("round trip", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("re-reading what was written: %v", err)
		}
		if len(back) != len(tensors) {
			t.Fatalf("round trip kept %d of %d tensors", len(back), len(tensors))
		}
		for name, tensor := range tensors {
			if !bytes.Equal(back[name].Data, tensor.Data) {
				t.Fatalf("round trip changed %q", name)
			}
		}
	})
}
