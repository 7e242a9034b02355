package badinput

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestPosition(t *testing.T) {
	data := []byte("ab\ncd\n\nef")
	for _, c := range []struct {
		off       int64
		line, col int
	}{{0, 1, 1}, {2, 1, 3}, {3, 2, 1}, {7, 4, 1}, {9, 4, 3}, {99, 4, 3}, {-1, 1, 1}} {
		line, col := Position(data, c.off)
		if line != c.line || col != c.col {
			t.Errorf("Position(%d) = %d:%d, want %d:%d", c.off, line, col, c.line, c.col)
		}
	}
}

func TestJSONMessages(t *testing.T) {
	cases := []struct {
		data string
		v    any
		want string
	}{
		{"{\n \"a\": 1,,}", new(map[string]int), "f.json:2:9: malformed JSON: invalid character ',' looking for beginning of object key string"},
		{`{"a": "x"}`, new(struct{ A int }), "f.json:1:7: field A: expected an integer, found a string"},
		{`{"a": [1]}`, new(struct{ A string }), "f.json:1:7: field A: expected a string, found an array"},
		{`[1, 2`, new([]int), "f.json:1:6: malformed JSON: unexpected end of JSON input"},
	}
	for _, c := range cases {
		err := json.Unmarshal([]byte(c.data), c.v)
		got := JSON("f.json", []byte(c.data), err)
		if got.Error() != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.data, got.Error(), c.want)
		}
		if !errors.Is(got, err) {
			t.Errorf("%s: the JSON error is not wrapped", c.data)
		}
	}
}
