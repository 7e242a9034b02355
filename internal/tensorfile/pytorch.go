package tensorfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/captionctl/captionctl/internal/badinput"
)

// maxPickle bounds the size of a zip file's data.pkl record; a state
// dict's pickle is a few megabytes at most.
const maxPickle = 1 << 30

// maxDeflateRatio is deflate's largest possible expansion (about 1032:1),
// rounded up: a record claiming more is corrupt.
const maxDeflateRatio = 1100

// legacyMagic is the number every legacy torch.save file starts with.
var legacyMagic, _ = new(big.Int).SetString("1950a86a20f9469cfc6c", 16)

// LoadPyTorch reads a state dict that torch.save wrote, in the zip format
// (torch ≥ 1.6) or the legacy format, told apart by content. Tensors come
// back C-contiguous whatever their strides in the file.
func LoadPyTorch(path string) (map[string]*Tensor, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	switch sniff(f, size) {
	case formatTorchZip:
		return readTorchZip(path, f, size)
	case formatTorchLegacy:
		return readTorchLegacy(path, f, size)
	}
	return nil, badinput.Errorf(path, "not a PyTorch file (neither a torch.save zip archive nor a legacy pickle)")
}

// readTorchZip decodes a torch.save zip archive of size bytes.
func readTorchZip(name string, r io.ReaderAt, size int64) (map[string]*Tensor, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, &badinput.Error{File: name, Msg: fmt.Sprintf("bad zip archive: %v", err), Err: err}
	}
	if len(zr.File) == 0 {
		return nil, badinput.Errorf(name, "empty zip archive, not a torch.save file")
	}
	// As torch does, take the archive's directory name from its first
	// record: "archive/" from torch.save, often renamed after the file.
	dir, _, ok := strings.Cut(zr.File[0].Name, "/")
	if !ok {
		return nil, badinput.Errorf(name, "zip record %q is not inside a directory, not a torch.save file", zr.File[0].Name)
	}
	records := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		if rest, ok := strings.CutPrefix(f.Name, dir+"/"); ok {
			if _, dup := records[rest]; !dup {
				records[rest] = f
			}
		}
	}
	if f := records["byteorder"]; f != nil {
		order, err := readRecord(name, f, 16, size)
		if err != nil {
			return nil, err
		}
		if string(order) != "little" {
			return nil, badinput.Errorf(name, "byteorder record says %q; only little-endian files are supported", order)
		}
	}
	pklRecord := records["data.pkl"]
	if pklRecord == nil {
		return nil, badinput.Errorf(name, "no %s/data.pkl record: not a torch.save file", dir)
	}
	pkl, err := readRecord(name, pklRecord, maxPickle, size)
	if err != nil {
		return nil, err
	}
	storages := map[string]*storageRef{}
	u := &unpickler{
		file: name, what: dir + "/data.pkl",
		r: bytes.NewReader(pkl), end: int64(len(pkl)),
		persistentLoad: func(pid any) (any, error) {
			s, err := storagePID(pid, storages)
			if err == nil && s.viewOffset != 0 {
				err = errors.New("storage views are a legacy-format feature, not expected in a zip file")
			}
			return s, err
		},
	}
	obj, err := u.load()
	if err != nil {
		return nil, err
	}
	names, refs, err := stateDict(obj)
	if err != nil {
		return nil, badinput.Errorf(name, "%v", err)
	}
	tensors := make(map[string]*Tensor, len(names))
	for i, tname := range names {
		s := refs[i].storage
		if s.data == nil {
			record := "data/" + s.key
			f := records[record]
			if f == nil {
				return nil, badinput.Errorf(name, "tensor %q: missing storage record %s/%s", tname, dir, record)
			}
			want := uint64(s.numel) * uint64(s.dtype.Size())
			if f.UncompressedSize64 < want {
				return nil, badinput.Errorf(name, "tensor %q: storage record %s/%s has %d bytes, want %d×%s = %d", tname, dir, record, f.UncompressedSize64, s.numel, s.dtype, want)
			}
			if s.data, err = readRecord(name, f, want, size); err != nil {
				return nil, err
			}
		}
		t, err := materialize(tname, refs[i])
		if err != nil {
			return nil, badinput.Errorf(name, "%v", err)
		}
		tensors[tname] = t
	}
	return tensors, nil
}

// readRecord returns the first min(limit, size) bytes of zip record f,
// checking the claimed size against the archive's size before allocating.
// When it reads the whole record it also checks its CRC.
func readRecord(name string, f *zip.File, limit uint64, archiveSize int64) ([]byte, error) {
	n := f.UncompressedSize64
	plausible := f.CompressedSize64 <= uint64(archiveSize) &&
		(f.Method == zip.Store && n == f.CompressedSize64 ||
			f.Method != zip.Store && n/maxDeflateRatio <= f.CompressedSize64)
	if !plausible {
		return nil, badinput.Errorf(name, "zip record %s claims %d bytes (%d compressed) in a %d-byte file: corrupt", f.Name, n, f.CompressedSize64, archiveSize)
	}
	whole := n <= limit
	n = min(n, limit)
	rc, err := f.Open()
	if err != nil {
		return nil, &badinput.Error{File: name, Msg: fmt.Sprintf("zip record %s: %v", f.Name, err), Err: err}
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, &badinput.Error{File: name, Msg: fmt.Sprintf("zip record %s: %v (truncated file?)", f.Name, err), Err: err}
	}
	if whole {
		// Reading on to the end makes archive/zip verify the CRC.
		var probe [1]byte
		if k, err := rc.Read(probe[:]); k != 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				err = errors.New("longer than its header says")
			}
			return nil, &badinput.Error{File: name, Msg: fmt.Sprintf("zip record %s: %v", f.Name, err), Err: err}
		}
	}
	return buf, nil
}

// readTorchLegacy decodes a legacy (pre-zip) torch.save file.
func readTorchLegacy(name string, r io.ReaderAt, size int64) (map[string]*Tensor, error) {
	u := &unpickler{file: name, r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(min(size, 1<<16))), end: size}

	u.what = "magic number pickle"
	magic, err := u.load()
	if err != nil {
		return nil, err
	}
	if m, ok := magic.(*big.Int); !ok || m.Cmp(legacyMagic) != 0 {
		return nil, badinput.Errorf(name, "not a PyTorch file: starts with the pickle of %s, not the magic number 0x1950a86a20f9469cfc6c", describe(magic))
	}
	u.what = "protocol version pickle"
	version, err := u.load()
	if err != nil {
		return nil, err
	}
	if version != int64(1001) {
		return nil, badinput.Errorf(name, "unsupported legacy protocol version %s (want 1001)", describe(version))
	}
	u.what = "sys_info pickle"
	info, err := u.load()
	if err != nil {
		return nil, err
	}
	if d, ok := info.(*pyDict); ok {
		if i, ok := d.index["little_endian"]; ok && d.vals[i] != true {
			return nil, badinput.Errorf(name, "saved on a big-endian machine; only little-endian files are supported")
		}
	}

	u.what = "state dict pickle"
	storages := map[string]*storageRef{}
	u.persistentLoad = func(pid any) (any, error) { return storagePID(pid, storages) }
	obj, err := u.load()
	if err != nil {
		return nil, err
	}
	names, refs, err := stateDict(obj)
	if err != nil {
		return nil, badinput.Errorf(name, "%v", err)
	}
	u.persistentLoad = nil
	u.what = "storage keys pickle"
	keysObj, err := u.load()
	if err != nil {
		return nil, err
	}
	keys, ok := keysObj.(*pyList)
	if !ok {
		return nil, badinput.Errorf(name, "storage keys pickle holds %s, not a list", typeName(keysObj))
	}

	// The storages follow in the listed order, each an int64 element
	// count and the raw bytes.
	roots := map[string][]byte{}
	for _, k := range keys.items {
		key, ok := k.(string)
		s := storages[key]
		if !ok || s == nil {
			return nil, badinput.Errorf(name, "offset %d: storage key %s is not used by any tensor", u.pos, describe(k))
		}
		if _, dup := roots[key]; dup {
			return nil, badinput.Errorf(name, "offset %d: storage %s listed twice", u.pos, key)
		}
		countAt := u.pos
		u.what, u.opAt = "storage "+key, countAt
		var countBuf []byte
		if countBuf, err = u.read(8); err != nil {
			return nil, badinput.Errorf(name, "offset %d: storage %s: truncated file", countAt, key)
		}
		count := int64(binary.LittleEndian.Uint64(countBuf))
		if count != s.rootNumel {
			return nil, badinput.Errorf(name, "offset %d: storage %s has %d elements, its tensors expect %d", countAt, key, count, s.rootNumel)
		}
		nbytes := uint64(count) * uint64(s.dtype.Size())
		if nbytes > uint64(size-u.pos) {
			return nil, badinput.Errorf(name, "offset %d: storage %s claims %d bytes, %d left: truncated file", countAt, key, nbytes, size-u.pos)
		}
		if roots[key], err = u.read(nbytes); err != nil {
			return nil, err
		}
	}

	tensors := make(map[string]*Tensor, len(names))
	for i, tname := range names {
		s := refs[i].storage
		if s.data == nil {
			root, ok := roots[s.key]
			if !ok {
				return nil, badinput.Errorf(name, "tensor %q: storage %s missing from the file", tname, s.key)
			}
			es := int64(s.dtype.Size())
			if s.viewOffset == 0 && s.numel == s.rootNumel {
				s.data = root
			} else {
				// A view: copy, so no two tensors can share bytes.
				s.data = append([]byte(nil), root[s.viewOffset*es:(s.viewOffset+s.numel)*es]...)
			}
		}
		t, err := materialize(tname, refs[i])
		if err != nil {
			return nil, badinput.Errorf(name, "%v", err)
		}
		tensors[tname] = t
	}
	return tensors, nil
}
