package eval

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/internal/badinput"
	"github.com/captionctl/captionctl/internal/oracle"
)

func TestParseOracleFiles(t *testing.T) {
	for _, name := range []string{"nlgeval_example", "coco_val2017_fakecap", "coco_fakecap_regrouped"} {
		c, err := oracle.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		refs, err := ReadRefs(filepath.Join(c.Dir, "refs.json"))
		if err != nil {
			t.Fatal(err)
		}
		results, err := ReadResults(filepath.Join(c.Dir, "res.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != len(c.Results) {
			t.Errorf("%s: %d results, want %d", name, len(results), len(c.Results))
		}
		raw := c.RawRefs()
		for id, caps := range raw {
			if strings.Join(refs.Captions[id], "\n") != strings.Join(caps, "\n") {
				t.Errorf("%s: image %d references differ", name, id)
			}
		}
	}
}

func TestParseErrorsAreBadInput(t *testing.T) {
	for _, data := range []string{``, `nul`, `[`, `[{"image_id": 1, "caption": "a"}, ]`, `[1]`, `[{"image_id": 1e400, "caption": "x"}]`, `"x"`} {
		_, err := ParseResults("r.json", []byte(data))
		var bad *badinput.Error
		if !errors.As(err, &bad) {
			t.Errorf("ParseResults(%q) = %v, want a *badinput.Error", data, err)
		}
	}
}

func seedCorpus(f *testing.F, file string) {
	f.Helper()
	data, err := os.ReadFile(filepath.Join(oracle.Dir(), "nlgeval_example", file))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}

func FuzzParseResults(f *testing.F) {
	seedCorpus(f, "res.json")
	for _, s := range []string{`[]`, `[{"image_id": 1, "caption": "a"}]`, `[{"image_id": 1, "caption": 2}]`, `[{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]`, "[\n{\"caption\": \"\\u00e9\"}\n]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		results, err := ParseResults("fuzz.json", data)
		if err != nil {
			var bad *badinput.Error
			if !errors.As(err, &bad) {
				t.Fatalf("error %v is not a *badinput.Error", err)
			}
			return
		}
		if len(results) == 0 {
			t.Fatal("no error but no results")
		}
		seen := map[int64]bool{}
		for _, r := range results {
			if seen[r.ImageID] {
				t.Fatalf("duplicate image %d accepted", r.ImageID)
			}
			seen[r.ImageID] = true
		}
	})
}

func FuzzParseRefs(f *testing.F) {
	seedCorpus(f, "refs.json")
	for _, s := range []string{`{}`, `{"annotations": []}`, `{"images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": "a"}]}`, `{"annotations": [{"image_id": 1}]}`, `{"info": {"x": [1, 2]}, "annotations": [{"image_id": -3, "caption": ""}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := ParseRefs("fuzz.json", data)
		if err != nil {
			var bad *badinput.Error
			if !errors.As(err, &bad) {
				t.Fatalf("error %v is not a *badinput.Error", err)
			}
			return
		}
		if len(refs.Captions) == 0 {
			t.Fatal("no error but no captions")
		}
	})
}
