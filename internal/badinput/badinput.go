// Package badinput is the error type for input data that cannot be used:
// unreadable or malformed files, missing fields, inconsistent contents.
// Library packages return it; cmd/captionctl maps it to exit code 3.
package badinput

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Error says what is wrong with an input file and where.
type Error struct {
	File string // path as the user gave it
	Line int    // 1-based, 0 when unknown or not meaningful
	Col  int    // 1-based, 0 when unknown
	Msg  string // what is wrong and, where useful, what to do
	Err  error  // underlying cause, if any
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += fmt.Sprintf(":%d", e.Line)
		if e.Col > 0 {
			where += fmt.Sprintf(":%d", e.Col)
		}
	}
	return where + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error for file with a formatted message.
func Errorf(file string, format string, args ...any) *Error {
	return &Error{File: file, Msg: fmt.Sprintf(format, args...)}
}

// At returns an *Error for the position of byte offset in data.
func At(file string, data []byte, offset int64, format string, args ...any) *Error {
	line, col := Position(data, offset)
	return &Error{File: file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// Position converts a byte offset in data to a 1-based line and column
// (columns count bytes).
func Position(data []byte, offset int64) (line, col int) {
	offset = max(0, min(offset, int64(len(data))))
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// JSON turns an encoding/json error from decoding data (the contents of
// file) into an *Error that gives the line and column and says what was
// expected; other errors are wrapped as they are.
func JSON(file string, data []byte, err error) *Error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		e := At(file, data, syntaxOffset(data, syntax), "malformed JSON: %s", syntax.Error())
		e.Err = err
		return e
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "top level"
		}
		// The offset is just past the offending value; point at its start.
		e := At(file, data, valueStart(data, typ.Offset-1), "field %s: expected %s, found %s", field, kindName(typ.Type), jsonValueName(typ.Value))
		e.Err = err
		return e
	}
	return &Error{File: file, Msg: err.Error(), Err: err}
}

// syntaxOffset finds the offending character of a syntax error:
// json.Unmarshal and Decoder.Decode report the offset just past it,
// Decoder.Token the offset of it. The character named in the message tells
// which.
func syntaxOffset(data []byte, err *json.SyntaxError) int64 {
	off := err.Offset
	msg := err.Error()
	i := strings.Index(msg, "invalid character '")
	if i < 0 || off <= 0 || off > int64(len(data)) {
		return off
	}
	quoted := msg[i+len("invalid character "):]
	if j := strings.Index(quoted[1:], "' "); j >= 0 {
		quoted = quoted[:j+2]
	}
	if c, _, tail, uerr := strconv.UnquoteChar(quoted[1:len(quoted)-1], '\''); uerr == nil && tail == "" && c < 0x80 {
		if data[off-1] == byte(c) {
			return off - 1
		}
		return off
	}
	return off - 1
}

// valueStart walks back from the last byte of a JSON scalar or the opening
// of a container to where the value begins (best effort, for messages).
func valueStart(data []byte, last int64) int64 {
	if last <= 0 || last >= int64(len(data)) {
		return max(0, last)
	}
	i := last
	if data[i] == '"' {
		i--
		for i > 0 && !(data[i] == '"' && data[i-1] != '\\') {
			i--
		}
		return i
	}
	for i > 0 && !bytes.ContainsRune([]byte(" \t\r\n,:[{"), rune(data[i-1])) {
		i--
	}
	return i
}

// kindName says in JSON terms what a Go type accepts.
func kindName(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return kindName(t.Elem())
	}
	return t.String()
}

// jsonValueName describes the JSON value encoding/json reports ("number",
// "number 1.5", "string", "array", …).
func jsonValueName(v string) string {
	kind, detail, _ := strings.Cut(v, " ")
	article := "a"
	if kind == "array" || kind == "object" {
		article = "an"
	}
	if detail != "" {
		return fmt.Sprintf("%s %s %s", article, kind, detail)
	}
	return article + " " + kind
}
