package tensorfile

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/captionctl/captionctl/internal/badinput"
)

type format int

const (
	formatUnknown format = iota
	formatTorchZip
	formatTorchLegacy
	formatSafetensors
)

// sniff tells the formats apart by their first bytes: a zip local file
// header, a pickle PROTO opcode, or a safetensors header length followed by
// the header's opening brace.
func sniff(r io.ReaderAt, size int64) format {
	var head [9]byte
	n, _ := r.ReadAt(head[:], 0)
	switch {
	case n >= 4 && (bytes.Equal(head[:4], []byte("PK\x03\x04")) || bytes.Equal(head[:4], []byte("PK\x05\x06"))):
		return formatTorchZip
	case n >= 1 && head[0] == 0x80:
		return formatTorchLegacy
	case n == 9 && head[8] == '{' && binary.LittleEndian.Uint64(head[:8]) <= uint64(size-8):
		return formatSafetensors
	}
	return formatUnknown
}

// Load reads the tensors of a PyTorch state dict (zip or legacy) or a
// safetensors file, telling the format from the content, not the name.
// A safetensors file's metadata is dropped; use [LoadSafetensors] for it.
func Load(path string) (map[string]*Tensor, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return load(path, f, size)
}

func load(name string, r io.ReaderAt, size int64) (map[string]*Tensor, error) {
	switch sniff(r, size) {
	case formatTorchZip:
		return readTorchZip(name, r, size)
	case formatTorchLegacy:
		return readTorchLegacy(name, r, size)
	case formatSafetensors:
		tensors, _, err := readSafetensors(name, r, size)
		return tensors, err
	}
	return nil, badinput.Errorf(name, "unrecognised tensor file: not a PyTorch zip archive, a legacy PyTorch pickle or a safetensors file")
}
