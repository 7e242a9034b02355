package eval

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/captionctl/captionctl/internal/oracle"
)

// checkFastParse runs the fast paths on data and, wherever one succeeds,
// checks that the precise path succeeds with the same result. It reports
// which fast paths succeeded.
func checkFastParse(t testing.TB, data []byte) (refsFast, resultsFast bool) {
	t.Helper()
	for _, owned := range []bool{false, true} {
		refsFast, resultsFast = checkFastParseMode(t, data, owned)
	}
	return refsFast, resultsFast
}

func checkFastParseMode(t testing.TB, data []byte, owned bool) (refsFast, resultsFast bool) {
	t.Helper()
	orig := bytes.Clone(data)
	refs, refsFast := fastParseRefs("f.json", data, owned)
	if refsFast {
		want, err := parseRefsPrecise("f.json", data)
		if err != nil {
			t.Fatalf("fast path accepted refs %q, precise path says %v", data, err)
		}
		if !reflect.DeepEqual(refs, want) {
			t.Fatalf("refs %q:\nfast    %#v\nprecise %#v", data, refs, want)
		}
		for id, caps := range refs.Captions {
			if cap(caps) != len(caps) {
				t.Fatalf("refs %q: captions of image %d have spare capacity %d > %d", data, id, cap(caps), len(caps))
			}
		}
	}
	results, resultsFast := fastParseResults(data, owned)
	if resultsFast {
		want, err := parseResultsPrecise("f.json", data)
		if err != nil {
			t.Fatalf("fast path accepted results %q, precise path says %v", data, err)
		}
		if !reflect.DeepEqual(results, want) {
			t.Fatalf("results %q:\nfast    %#v\nprecise %#v", data, results, want)
		}
	}
	if !bytes.Equal(data, orig) {
		t.Fatalf("input modified")
	}
	return refsFast, resultsFast
}

// readOracleFile reads a committed oracle file, plain or gzipped.
func readOracleFile(t testing.TB, name, file string) []byte {
	t.Helper()
	path := filepath.Join(oracle.Dir(), name, file)
	data, err := os.ReadFile(path)
	if err == nil {
		return data
	}
	f, err := os.Open(path + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err = io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFastPathTakenForOracleFiles(t *testing.T) {
	for _, name := range oracle.Cases {
		if refsFast, _ := checkFastParse(t, readOracleFile(t, name, "refs.json")); !refsFast {
			t.Errorf("%s: refs.json went to the precise path", name)
		}
		if _, resultsFast := checkFastParse(t, readOracleFile(t, name, "res.json")); !resultsFast {
			t.Errorf("%s: res.json went to the precise path", name)
		}
	}
}

func TestFastParseCases(t *testing.T) {
	const fast, slow = true, false
	refsCases := []struct {
		data string
		fast bool
	}{
		{`{"annotations": [{"image_id": 1, "caption": "a"}]}`, fast},
		{` {"images": [], "annotations": [{"image_id": 1, "caption": "a"}]} `, fast},
		{"\t{\"images\":[{\"id\":2,\"file_name\":\"x.jpg\"},{\"id\":1}],\n\"annotations\":[{\"image_id\":1,\"caption\":\"a\"}]}\r\n", fast},
		{`{"annotations": [{"image_id": 2, "id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}, {"image_id": 2, "caption": "c"}, {"image_id": 3, "caption": "d"}, {"image_id": 1, "caption": "e"}]}`, fast},
		{`{"info": {"a": [1, -2.5e+3, true, false, null, {"b": "\u00e9\n"}], "c": {}}, "licenses": [], "annotations": [{"x": [[[]]], "image_id": -9223372036854775808, "caption": ""}], "type": "captions"}`, fast},
		{`{"annotations": [{"image_id": 9223372036854775807, "caption": "\"\\\/\b\f\n\r\t\u0041\u00E9\ud83d\ude00"}]}`, fast},
		{`{"annotations": [{"image_id": 1, "caption": "\ud800"}, {"image_id": 1, "caption": "\ud800\u0041\udc00\ud800x\ud83d\ud83d\ude00"}]}`, fast},
		{"{\"annotations\": [{\"image_id\": 1, \"caption\": \"\xff\xc3\x28 \xed\xa0\x80 \xe2\x82 \xef\xbf\xbd \xf0\x9f\x98\x80 \u2028\"}]}", fast},
		{`{"Annotations": [], "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a"}], "IMAGES": []}`, slow},
		{`{"annotations": [{"Image_id": 1, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a", "CAPTION": "b"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "ID": 3, "caption": "a"}]}`, slow},
		{`{"images": [{"Id": 1}], "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "capti\u006fn": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a", "capſion": "b"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a", "caption": "b"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "image_id": 1, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a"}], "annotations": [{"image_id": 2, "caption": "b"}]}`, slow},
		{`{"images": [], "images": [{"id": 1}], "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": null}]}`, slow},
		{`{"annotations": [{"image_id": null, "caption": "a"}]}`, slow},
		{`{"annotations": [{"caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1}]}`, slow},
		{`{"annotations": [null]}`, slow},
		{`{"annotations": []}`, slow},
		{`{"images": [{"id": 1}]}`, slow},
		{`{"annotations": [{"image_id": -0, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1.0, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1e3, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 9223372036854775808, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": -9223372036854775809, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 12345678901234567890, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 01, "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": "1", "caption": "a"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": 1}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a"},]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a"}]},`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a"}]} x`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a\'"}]}`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "\ud83"}]}`, slow},
		{"{\"annotations\": [{\"image_id\": 1, \"caption\": \"a\tb\"}]}", slow},
		{`{"x": 01, "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": [1, 2,], "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": tru, "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": 1., "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": -, "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": 1e, "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": "\x", "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{"\ufeff" + `{"annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": ` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `, "annotations": [{"image_id": 1, "caption": "a"}]}`, slow},
		{`{"x": ` + strings.Repeat("[", 150) + strings.Repeat("]", 150) + `, "annotations": [{"image_id": 1, "caption": "a"}]}`, fast},
		{`[{"image_id": 1, "caption": "a"}]`, slow},
		{``, slow},
		{`{`, slow},
		{`{"annotations": [{"image_id": 1, "caption": "a"}]`, slow},
	}
	for _, c := range refsCases {
		if refsFast, _ := checkFastParse(t, []byte(c.data)); refsFast != c.fast {
			t.Errorf("refs %q: fast path %v, want %v", c.data, refsFast, c.fast)
		}
	}
	resultsCases := []struct {
		data string
		fast bool
	}{
		{`[{"image_id": 1, "caption": "a"}]`, fast},
		{"\n[\n{\"image_id\": 2, \"caption\": \"b\", \"score\": 0.5},\n{\"caption\": \"\\u00e9\", \"image_id\": 1}\n]\n", fast},
		{`[{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]`, slow},
		{`[]`, slow},
		{` [ ] `, slow},
		{`[{"image_id": 1, "Caption": "a"}]`, slow},
		{`[{"image_id": 1, "caption": "a"}] ,`, slow},
		{`[{"image_id": 1, "caption": "a"}, 1]`, slow},
		{`{"image_id": 1, "caption": "a"}`, slow},
	}
	for _, c := range resultsCases {
		if _, resultsFast := checkFastParse(t, []byte(c.data)); resultsFast != c.fast {
			t.Errorf("results %q: fast path %v, want %v", c.data, resultsFast, c.fast)
		}
	}
}

// TestFastParseCopiesStrings checks that the parsed captions do not share
// memory with the input.
func TestFastParseCopiesStrings(t *testing.T) {
	data := []byte(`{"annotations": [{"image_id": 1, "caption": "abc"}, {"image_id": 1, "caption": "d\u00e9f"}]}`)
	refs, ok := fastParseRefs("f.json", data, false)
	if !ok {
		t.Fatal("fast path not taken")
	}
	res := []byte(`[{"image_id": 1, "caption": "xyz"}]`)
	results, ok := fastParseResults(res, false)
	if !ok {
		t.Fatal("fast path not taken")
	}
	for i := range data {
		data[i] = '#'
	}
	for i := range res {
		res[i] = '#'
	}
	if got := refs.Captions[1]; !reflect.DeepEqual(got, []string{"abc", "déf"}) {
		t.Errorf("captions %q after the input changed", got)
	}
	if results[0].Caption != "xyz" {
		t.Errorf("caption %q after the input changed", results[0].Caption)
	}
}

// randomJSON builds COCO-shaped documents with tricky strings, keys, ids and
// unknown values, most of them valid.
type randomJSON struct {
	rng   *rand.Rand
	b     strings.Builder
	chaos bool // whether the document may hold what the fast path refuses
}

func (g *randomJSON) pick(n int) int { return g.rng.IntN(n) }

// rare is true now and then in a chaotic document.
func (g *randomJSON) rare(n int) bool { return g.chaos && g.pick(n) == 0 }

func (g *randomJSON) str() {
	g.b.WriteByte('"')
	for range g.pick(8) {
		k := g.pick(16)
		if !g.chaos && (k == 6 || k == 7) {
			k = 8
		}
		switch k {
		case 0:
			g.b.WriteString(`\"\\\/\b\f\n\r\t`[2*g.pick(8):][:2])
		case 1:
			fmt.Fprintf(&g.b, `\u%04x`, g.pick(0x10000))
		case 2:
			fmt.Fprintf(&g.b, `\u%04X`, 0xd800+g.pick(0x800))
		case 3:
			fmt.Fprintf(&g.b, `\u%04x\u%04x`, 0xd800+g.pick(0x400), 0xdc00+g.pick(0x400))
		case 4:
			g.b.WriteByte(byte(0x80 + g.pick(0x80)))
		case 5:
			g.b.WriteString([]string{"é", "\ufffd", "😀", "\u2028", "\xed\xa0\x80", "\xe2\x82", "\xc0\xaf", "\xf4\x90\x80\x80"}[g.pick(8)])
		case 6:
			g.b.WriteString(`\u00`)
			g.b.WriteString([]string{"e9", "E9", "0", "g0", "00"}[g.pick(5)])
		case 7:
			g.b.WriteByte(byte(g.pick(0x80))) // may be a control character, quote or backslash
		default:
			g.b.WriteString("a cat on a mat "[g.pick(8):][:4])
		}
	}
	g.b.WriteByte('"')
}

func (g *randomJSON) key(names ...string) {
	if !g.chaos {
		g.b.WriteString([]string{`"x"`, `"score"`, `"info"`, `"file_name"`, `"Image"`, `"images_"`}[g.pick(6)] + ": ")
		return
	}
	switch g.pick(20) {
	case 0:
		g.str()
	case 1:
		if !g.chaos {
			g.b.WriteString(`"y"`)
			break
		}
		name := []byte(names[g.pick(len(names))])
		name[g.pick(len(name))] &^= 0x20
		g.b.WriteString(strconv.Quote(string(name)))
	case 2, 3, 4:
		g.b.WriteString([]string{`"id"`, `"x"`, `"score"`, `"info"`}[g.pick(4)])
	default:
		g.b.WriteString(strconv.Quote(names[g.pick(len(names))]))
	}
	g.b.WriteString([]string{": ", ":", " : "}[g.pick(3)])
}

func (g *randomJSON) id() {
	if !g.rare(10) {
		g.b.WriteString(strconv.Itoa(g.pick([]int{3, 100}[g.pick(2)]) - 1))
		return
	}
	g.b.WriteString([]string{"-0", "1.0", "1e3", "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809", "00", "null", `"1"`, "-", "123456789012345678901"}[g.pick(12)])
}

func (g *randomJSON) value(depth int) {
	switch n := g.pick(10); {
	case n < 3 || depth > 3:
		literals := []string{"true", "false", "null", "0", "-1.5e+3", "2E-2", "0.0", "-0", "1.", "tru", "nul", "-"}
		if !g.chaos {
			literals = literals[:8]
		}
		g.b.WriteString(literals[g.pick(len(literals))])
	case n < 5:
		g.str()
	case n < 7:
		g.b.WriteByte('[')
		for i := range g.pick(3) {
			if i > 0 {
				g.b.WriteString(", ")
			}
			g.value(depth + 1)
		}
		g.b.WriteByte(']')
	default:
		g.b.WriteByte('{')
		for i := range g.pick(3) {
			if i > 0 {
				g.b.WriteString(", ")
			}
			g.str()
			g.b.WriteString(": ")
			g.value(depth + 1)
		}
		g.b.WriteByte('}')
	}
}

// object writes an object with the fields names (each usually once, in a
// random order), some of them twice or missing, and unknown ones.
func (g *randomJSON) object(fields map[string]func()) {
	g.b.WriteByte('{')
	var order []string
	for name := range fields {
		if !g.rare(15) {
			order = append(order, name)
		}
		if g.rare(30) {
			order = append(order, name)
		}
	}
	if g.pick(3) == 0 {
		order = append(order, "")
	}
	g.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	for i, name := range order {
		if i > 0 {
			g.b.WriteString(", ")
		}
		if name == "" {
			g.key(names...)
			g.value(0)
			continue
		}
		g.b.WriteString(strconv.Quote(name) + ": ")
		fields[name]()
	}
	g.b.WriteByte('}')
}

func (g *randomJSON) caption() {
	if g.rare(30) {
		g.value(0)
		return
	}
	g.str()
}

func (g *randomJSON) list(n int, elem func()) {
	g.b.WriteByte('[')
	for i := range n {
		if i > 0 {
			g.b.WriteString([]string{",", ", ", ",\n"}[g.pick(3)])
		}
		elem()
	}
	g.b.WriteByte(']')
}

func (g *randomJSON) refs() []byte {
	g.b.Reset()
	g.chaos = g.pick(2) == 0
	fields := map[string]func(){
		"annotations": func() {
			g.list(g.pick(6), func() {
				g.object(map[string]func(){"image_id": g.id, "caption": g.caption})
			})
		},
		"images": func() {
			g.list(g.pick(4), func() { g.object(map[string]func(){"id": g.id}) })
		},
	}
	g.object(fields)
	return []byte(g.b.String())
}

func (g *randomJSON) results() []byte {
	g.b.Reset()
	g.chaos = g.pick(2) == 0
	g.list(g.pick(5), func() {
		g.object(map[string]func(){"image_id": g.id, "caption": g.caption})
	})
	return []byte(g.b.String())
}

// TestFastParseRandom compares the two paths on many generated documents.
func TestFastParseRandom(t *testing.T) {
	g := &randomJSON{rng: rand.New(rand.NewPCG(1, 2))}
	n := 20000
	if testing.Short() {
		n = 2000
	}
	var refsFast, resultsFast int
	for range n {
		if ok, _ := checkFastParse(t, g.refs()); ok {
			refsFast++
		}
		if _, ok := checkFastParse(t, g.results()); ok {
			resultsFast++
		}
	}
	t.Logf("fast path taken for %d refs and %d results documents of %d", refsFast, resultsFast, n)
	if refsFast < n/5 || resultsFast < n/5 {
		t.Errorf("fast path taken for only %d refs and %d results documents of %d", refsFast, resultsFast, n)
	}
}

func FuzzFastParse(f *testing.F) {
	for _, name := range oracle.Cases {
		for _, file := range []string{"refs.json", "res.json"} {
			if data, err := os.ReadFile(filepath.Join(oracle.Dir(), name, file)); err == nil {
				f.Add(data)
			}
		}
	}
	for _, s := range []string{
		`{"images": [{"id": 1}, {"id": 2, "x": [1, {"y": null}]}], "info": {"v": "1.0"}, "annotations": [{"image_id": 1, "id": 5, "caption": "a\u00e9\ud83d\ude00\ud800\u0041\n"}, {"image_id": 2, "caption": "b"}, {"image_id": 1, "caption": "c"}]}`,
		"{\"annotations\": [{\"image_id\": -7, \"caption\": \"\xff\xed\xa0\x80\xe2\x82\\udc00\\\\\\\"\"}]}",
		`{"annotations": [{"Image_ID": 1, "image_id": 2, "caption": "a"}]}`,
		`{"annotations": [{"image_id": 1, "caption": "a", "capti\u006fn": "b"}]}`,
		`{"annotations": [{"image_id": 1e2, "caption": "a"}, {"image_id": -0, "caption": "b"}]}`,
		`[{"image_id": 1, "caption": "a"}, {"image_id": 2, "caption": "\t\u0000", "score": [-1.5e-3, true, false, null, {}]}]`,
		`[{"image_id": 1, "CAPTION": "a", "caption": "b"}]`,
		`[{"image_id": 9223372036854775807, "caption": ""}, {"image_id": -9223372036854775808, "caption": "x"}]`,
	} {
		f.Add([]byte(s))
	}
	g := &randomJSON{rng: rand.New(rand.NewPCG(3, 4))}
	for range 20 {
		f.Add(g.refs())
		f.Add(g.results())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastParse(t, data)
	})
}

// BenchmarkReadParse is BenchmarkParse for ReadRefs and ReadResults, whose
// captions share the memory of the file contents.
func BenchmarkReadParse(b *testing.B) {
	dir := sharedCase(b)
	for _, name := range []string{"refs.json", "res.json"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if name == "refs.json" {
					_, err = parseRefs(name, data, true)
				} else {
					_, err = parseResults(name, data, true)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
