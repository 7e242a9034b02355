package tensorfile

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// rezip rewrites testdata/state_dict.pt record by record through edit,
// which returns the new name (or "" to drop the record), contents and
// compression method.
func rezip(t *testing.T, edit func(name string, data []byte) (string, []byte, uint16)) []byte {
	t.Helper()
	src, err := zip.OpenReader("testdata/state_dict.pt")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range src.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		name, data, method := edit(f.Name, data)
		if name == "" {
			continue
		}
		out, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := out.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTorchZipVariants(t *testing.T) {
	want := loadExpected(t)
	tests := []struct {
		name string
		edit func(string, []byte) (string, []byte, uint16)
		want string // error substring, "" for success
	}{
		{"deflated, renamed directory", func(n string, d []byte) (string, []byte, uint16) {
			return "resnet18-f37072fd/" + strings.TrimPrefix(n, "state_dict/"), d, zip.Deflate
		}, ""},
		{"little byteorder record", func(n string, d []byte) (string, []byte, uint16) {
			if strings.HasSuffix(n, "/version") {
				return "state_dict/byteorder", []byte("little"), zip.Store
			}
			return n, d, zip.Store
		}, ""},
		{"big byteorder record", func(n string, d []byte) (string, []byte, uint16) {
			if strings.HasSuffix(n, "/version") {
				return "state_dict/byteorder", []byte("big"), zip.Store
			}
			return n, d, zip.Store
		}, `byteorder record says "big"`},
		{"missing storage", func(n string, d []byte) (string, []byte, uint16) {
			if n == "state_dict/data/3" {
				return "", nil, 0
			}
			return n, d, zip.Store
		}, "missing storage record state_dict/data/3"},
		{"short storage", func(n string, d []byte) (string, []byte, uint16) {
			if n == "state_dict/data/0" {
				d = d[:len(d)-4]
			}
			return n, d, zip.Store
		}, "storage record state_dict/data/0 has 92 bytes, want 24×F32 = 96"},
		{"no data.pkl", func(n string, d []byte) (string, []byte, uint16) {
			if strings.HasSuffix(n, "data.pkl") {
				return "", nil, 0
			}
			return n, d, zip.Store
		}, "no state_dict/data.pkl record"},
		{"not in a directory", func(n string, d []byte) (string, []byte, uint16) {
			return strings.TrimPrefix(n, "state_dict/"), d, zip.Store
		}, `zip record "data.pkl" is not inside a directory`},
	}
	for _, tc := range tests {
		data := rezip(t, tc.edit)
		got, err := load("x.pt", bytes.NewReader(data), int64(len(data)))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "":
			sameTensors(t, tc.name, got, want)
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

// A zip record whose header claims far more than the archive could hold is
// refused before anything is allocated.
func TestTorchZipAbsurdSize(t *testing.T) {
	data, err := os.ReadFile("testdata/state_dict.pt")
	if err != nil {
		t.Fatal(err)
	}
	// Patch the central directory's uncompressed size of data.pkl (the
	// first record) to 2^32-1 bytes.
	cd := bytes.Index(data, []byte("PK\x01\x02"))
	if cd < 0 {
		t.Fatal("no central directory")
	}
	copy(data[cd+24:cd+28], []byte{0xff, 0xff, 0xff, 0xfe})
	_, err = load("x.pt", bytes.NewReader(data), int64(len(data)))
	if err == nil || !strings.Contains(err.Error(), "claims 4278190079 bytes") {
		t.Fatalf("err = %v", err)
	}
}
