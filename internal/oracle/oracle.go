// Package oracle loads the metric reference cases under testdata/oracle: each
// is a refs/results pair scored by the COCO caption toolkit (pycocoevalcap with
// Stanford CoreNLP 3.4.1's PTBTokenizer and Meteor 1.5). Tests in every metrics
// package compare against them. Files may be stored plain or gzipped
// (NAME.json or NAME.json.gz).
package oracle

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// Cases lists every committed case, smallest first.
var Cases = []string{"nlgeval_example", "coco_val2017_fakecap", "coco_fakecap_regrouped", "coco_val2017_human_loo"}

// Scores holds one set of scores as the toolkit reports them.
type Scores struct {
	ImageID int64   `json:"image_id"`
	Bleu1   float64 `json:"Bleu_1"`
	Bleu2   float64 `json:"Bleu_2"`
	Bleu3   float64 `json:"Bleu_3"`
	Bleu4   float64 `json:"Bleu_4"`
	Meteor  float64 `json:"METEOR_exact_stem_synonym"`
	RougeL  float64 `json:"ROUGE_L"`
	CIDEr   float64 `json:"CIDEr"`
}

// BleuStats are the toolkit's integer corpus counts for BLEU.
type BleuStats struct {
	TestLen int     `json:"testlen"`
	RefLen  int     `json:"reflen"`
	Guess   []int   `json:"guess"`
	Correct []int   `json:"correct"`
	Ratio   float64 `json:"ratio"`
}

// Expected is a case's expected.json.
type Expected struct {
	NImages   int       `json:"n_images"`
	Scores    Scores    `json:"scores"`
	BleuStats BleuStats `json:"bleu_corpus_stats"`
	PerImage  []Scores  `json:"per_image"`
	Tokenized struct {
		Res  map[string]string   `json:"res"`
		Refs map[string][]string `json:"refs"`
	} `json:"tokenized"`
}

// Annotation is one reference caption of refs.json.
type Annotation struct {
	ImageID int64  `json:"image_id"`
	Caption string `json:"caption"`
}

// Result is one candidate caption of res.json.
type Result struct {
	ImageID int64  `json:"image_id"`
	Caption string `json:"caption"`
}

// Case is one loaded oracle case.
type Case struct {
	Name     string
	Dir      string
	Refs     []Annotation // annotation-file order
	Results  []Result     // results-file order
	Expected Expected
}

// Dir returns the directory holding the committed oracle cases.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "oracle")
}

// Load reads the named case from Dir.
func Load(name string) (*Case, error) {
	c := &Case{Name: name, Dir: filepath.Join(Dir(), name)}
	var refs struct {
		Annotations []Annotation `json:"annotations"`
	}
	if err := c.readJSON("refs", &refs); err != nil {
		return nil, err
	}
	c.Refs = refs.Annotations
	if err := c.readJSON("res", &c.Results); err != nil {
		return nil, err
	}
	if err := c.readJSON("expected", &c.Expected); err != nil {
		return nil, err
	}
	return c, nil
}

// ResTokenized returns the toolkit's tokenized candidate for an image.
func (c *Case) ResTokenized(id int64) string {
	return c.Expected.Tokenized.Res[strconv.FormatInt(id, 10)]
}

// RefsTokenized returns the toolkit's tokenized references for an image, in
// annotation-file order.
func (c *Case) RefsTokenized(id int64) []string {
	return c.Expected.Tokenized.Refs[strconv.FormatInt(id, 10)]
}

// RawRefs groups the raw reference captions by image, in annotation-file order.
func (c *Case) RawRefs() map[int64][]string {
	m := make(map[int64][]string)
	for _, a := range c.Refs {
		m[a.ImageID] = append(m[a.ImageID], a.Caption)
	}
	return m
}

func (c *Case) readJSON(base string, v any) error {
	path := filepath.Join(c.Dir, base+".json")
	var r io.Reader
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		path += ".gz"
		f, err = os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	} else if err != nil {
		return err
	} else {
		defer f.Close()
		r = f
	}
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
