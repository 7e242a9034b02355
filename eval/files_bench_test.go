package eval

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedCase is the 5,000-image oracle case as plain files, when the shared
// folder beside the checkout has it.
func sharedCase(tb testing.TB) string {
	dir := filepath.Join("..", "..", "shared", "oracle_cases", "coco_val2017_human_loo")
	if _, err := os.Stat(filepath.Join(dir, "refs.json")); err != nil {
		tb.Skip("../shared/oracle_cases/coco_val2017_human_loo not present")
	}
	return dir
}

func BenchmarkParse(b *testing.B) {
	dir := sharedCase(b)
	refs, err := os.ReadFile(filepath.Join(dir, "refs.json"))
	if err != nil {
		b.Fatal(err)
	}
	res, err := os.ReadFile(filepath.Join(dir, "res.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("refs/annotations=20014", func(b *testing.B) {
		b.SetBytes(int64(len(refs)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseRefs("refs.json", refs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("results/images=5000", func(b *testing.B) {
		b.SetBytes(int64(len(res)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseResults("res.json", res); err != nil {
				b.Fatal(err)
			}
		}
	})
}
