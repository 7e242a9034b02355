package oracle

import "testing"

func TestLoadAll(t *testing.T) {
	for _, name := range Cases {
		c, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Results) != c.Expected.NImages || len(c.Expected.PerImage) != c.Expected.NImages {
			t.Errorf("%s: %d results, %d per-image scores, n_images %d", name, len(c.Results), len(c.Expected.PerImage), c.Expected.NImages)
		}
		for _, r := range c.Results {
			if len(c.RefsTokenized(r.ImageID)) == 0 {
				t.Errorf("%s: image %d has no tokenized references", name, r.ImageID)
			}
		}
	}
}
