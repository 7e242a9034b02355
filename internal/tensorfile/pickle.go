package tensorfile

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/captionctl/captionctl/internal/badinput"
)

// This file is a restricted unpickler: it understands the opcodes of
// pickle protocols 0–5 that torch.save emits for a state dict and builds
// plain Go values from them. It never executes code: a GLOBAL that is not
// on the allow list below is refused the moment it is read, and the only
// "calls" (REDUCE) it performs are the handful of tensor-rebuilding
// functions it implements itself.

// Python values as the unpickler represents them: nil (None), bool, int64,
// *big.Int (ints beyond 64 bits), float64, string, []byte, pyTuple,
// *pyList, *pyDict, pyGlobal, and the torch values *storageRef and
// *tensorRef.
type (
	pyTuple []any
	pyList  struct{ items []any }
	// pyDict is an insertion-ordered dict with hashable (scalar) keys.
	pyDict struct {
		keys  []any
		vals  []any
		index map[any]int
	}
	pyGlobal struct{ module, name string }
)

func (g pyGlobal) String() string { return g.module + "." + g.name }

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case nil, bool, int64, float64, string:
	default:
		return fmt.Errorf("unsupported dict key of type %s", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// ForbiddenGlobalError reports a pickle that references a Python global
// outside the few a state dict needs. Such a pickle would run that code
// when loaded by Python; this package refuses it instead.
type ForbiddenGlobalError struct {
	Module, Name string
}

func (e *ForbiddenGlobalError) Error() string {
	return fmt.Sprintf("refusing pickle global %s.%s: a state dict needs only tensors", e.Module, e.Name)
}

// storageDTypes maps torch's storage classes to their element type. The
// torch.cuda variants appear in legacy files saved from a GPU; the bytes
// are the same.
var storageDTypes = map[string]DType{
	"FloatStorage":    F32,
	"HalfStorage":     F16,
	"DoubleStorage":   F64,
	"BFloat16Storage": BF16,
	"LongStorage":     I64,
	"IntStorage":      I32,
	"ShortStorage":    I16,
	"CharStorage":     I8,
	"ByteStorage":     U8,
	"BoolStorage":     Bool,
}

// allowedGlobal reports whether module.name may appear in a state dict.
func allowedGlobal(module, name string) bool {
	switch module + "." + name {
	case "collections.OrderedDict",
		"torch._utils._rebuild_tensor",
		"torch._utils._rebuild_tensor_v2",
		"torch._utils._rebuild_parameter",
		"torch._utils._rebuild_parameter_with_state",
		"torch._tensor._rebuild_from_type_v2",
		// Only as the type argument of _rebuild_from_type_v2.
		"torch._tensor.Tensor", "torch.Tensor", "torch.nn.parameter.Parameter":
		return true
	}
	if module == "torch" || module == "torch.cuda" {
		_, ok := storageDTypes[name]
		return ok
	}
	return false
}

type byteReader interface {
	io.Reader
	io.ByteReader
}

// unpickler decodes one pickle at a time from r.
type unpickler struct {
	file string // path, for errors
	what string // which pickle in the file, for errors ("data.pkl")
	r    byteReader
	pos  int64 // bytes consumed from r
	end  int64 // bytes available in r
	opAt int64 // offset of the opcode being executed

	stack   []any
	marks   []int
	memo    []any          // memo[i] for the dense indices picklers write
	sparse  map[uint32]any // any others
	scratch [8]byte

	// persistentLoad resolves a persistent id (BINPERSID) to a value.
	persistentLoad func(pid any) (any, error)
}

func (u *unpickler) errorf(format string, args ...any) *badinput.Error {
	return badinput.Errorf(u.file, "%s offset %d: %s", u.what, u.opAt, fmt.Sprintf(format, args...))
}

func (u *unpickler) readByte() (byte, error) {
	if u.pos >= u.end {
		return 0, u.errorf("truncated pickle")
	}
	b, err := u.r.ReadByte()
	if err != nil {
		return 0, u.errorf("truncated pickle: %v", err)
	}
	u.pos++
	return b, nil
}

// read returns the next n bytes, refusing before allocating when fewer
// remain.
func (u *unpickler) read(n uint64) ([]byte, error) {
	if n > uint64(u.end-u.pos) {
		return nil, u.errorf("truncated pickle: %d bytes claimed, %d left", n, u.end-u.pos)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(u.r, buf); err != nil {
		return nil, u.errorf("truncated pickle: %v", err)
	}
	u.pos += int64(n)
	return buf, nil
}

func (u *unpickler) readUint(size int) (uint64, error) {
	if int64(size) > u.end-u.pos {
		return 0, u.errorf("truncated pickle")
	}
	b := u.scratch[:size]
	if _, err := io.ReadFull(u.r, b); err != nil {
		return 0, u.errorf("truncated pickle: %v", err)
	}
	u.pos += int64(size)
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// readLine returns the text up to the next newline (protocol 0 opcodes).
func (u *unpickler) readLine() (string, error) {
	var sb strings.Builder
	for {
		b, err := u.readByte()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			return sb.String(), nil
		}
		if sb.Len() > 1<<16 {
			return "", u.errorf("text line over 64 KiB")
		}
		sb.WriteByte(b)
	}
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	floor := 0
	if len(u.marks) > 0 {
		floor = u.marks[len(u.marks)-1]
	}
	if len(u.stack) <= floor {
		return nil, u.errorf("pickle stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 {
		return nil, u.errorf("pickle stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the items pushed since the last MARK and drops the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errorf("pickle MARK missing")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoGet(i uint64) error {
	if i < uint64(len(u.memo)) {
		u.push(u.memo[i])
		return nil
	}
	v, ok := u.sparse[uint32(i)]
	if !ok || i > math.MaxUint32 {
		return u.errorf("pickle memo %d not set", i)
	}
	u.push(v)
	return nil
}

func (u *unpickler) memoPut(i uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	switch {
	case i < uint64(len(u.memo)):
		u.memo[i] = v
	case i == uint64(len(u.memo)):
		u.memo = append(u.memo, v)
	case i <= math.MaxUint32:
		if u.sparse == nil {
			u.sparse = map[uint32]any{}
		}
		u.sparse[uint32(i)] = v
	default:
		return u.errorf("pickle memo index %d out of range", i)
	}
	return nil
}

// load decodes one pickle, up to and including its STOP opcode.
func (u *unpickler) load() (any, error) {
	u.stack, u.marks, u.memo, u.sparse = nil, nil, nil, nil
	for {
		u.opAt = u.pos
		op, err := u.readByte()
		if err != nil {
			return nil, err
		}
		done, err := u.step(op)
		if err != nil {
			if be, ok := err.(*badinput.Error); ok {
				return nil, be
			}
			return nil, badinput.Errorf(u.file, "%s offset %d (opcode 0x%02x): %v", u.what, u.opAt, op, err)
		}
		if done {
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
	}
}

// step executes one opcode; done reports STOP.
func (u *unpickler) step(op byte) (done bool, err error) {
	switch op {
	case 0x80: // PROTO
		v, err := u.readByte()
		if err != nil {
			return false, err
		}
		if v > 5 {
			return false, u.errorf("unsupported pickle protocol %d", v)
		}
	case 0x95: // FRAME: length of the next frame; frames need no handling
		_, err = u.readUint(8)
	case '.': // STOP
		return true, nil
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		_, err = u.pop()
	case '1': // POP_MARK
		_, err = u.popMark()
	case '2': // DUP
		var v any
		if v, err = u.top(); err == nil {
			u.push(v)
		}
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'J': // BININT
		var v uint64
		if v, err = u.readUint(4); err == nil {
			u.push(int64(int32(uint32(v))))
		}
	case 'K': // BININT1
		var v uint64
		if v, err = u.readUint(1); err == nil {
			u.push(int64(v))
		}
	case 'M': // BININT2
		var v uint64
		if v, err = u.readUint(2); err == nil {
			u.push(int64(v))
		}
	case 0x8a, 0x8b: // LONG1, LONG4
		size := 1
		if op == 0x8b {
			size = 4
		}
		var n uint64
		var b []byte
		if n, err = u.readUint(size); err == nil {
			if b, err = u.read(n); err == nil {
				u.push(decodeLong(b))
			}
		}
	case 'I': // INT (text)
		var line string
		if line, err = u.readLine(); err != nil {
			return false, err
		}
		switch line {
		case "01":
			u.push(true)
		case "00":
			u.push(false)
		default:
			v, perr := strconv.ParseInt(line, 10, 64)
			if perr != nil {
				return false, u.errorf("bad INT %q", line)
			}
			u.push(v)
		}
	case 'G': // BINFLOAT, big-endian
		var b []byte
		if b, err = u.read(8); err == nil {
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		}
	case 'X', 0x8c, 0x8d, 'T', 'U': // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, BINSTRING, SHORT_BINSTRING
		size := lengthSize(op)
		var n uint64
		var b []byte
		if n, err = u.readUint(size); err == nil {
			if b, err = u.read(n); err == nil {
				u.push(string(b))
			}
		}
	case 'B', 'C', 0x8e: // BINBYTES, SHORT_BINBYTES, BINBYTES8
		size := lengthSize(op)
		var n uint64
		var b []byte
		if n, err = u.readUint(size); err == nil {
			if b, err = u.read(n); err == nil {
				u.push(b)
			}
		}
	case ')':
		u.push(pyTuple{})
	case 't': // TUPLE
		var items []any
		if items, err = u.popMark(); err == nil {
			u.push(pyTuple(items))
		}
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(op - 0x84)
		t := make(pyTuple, n)
		for i := n - 1; i >= 0; i-- {
			if t[i], err = u.pop(); err != nil {
				return false, err
			}
		}
		u.push(t)
	case ']':
		u.push(&pyList{})
	case 'l': // LIST
		var items []any
		if items, err = u.popMark(); err == nil {
			u.push(&pyList{items: items})
		}
	case 'a', 'e': // APPEND, APPENDS
		var items []any
		if op == 'a' {
			var v any
			if v, err = u.pop(); err != nil {
				return false, err
			}
			items = []any{v}
		} else if items, err = u.popMark(); err != nil {
			return false, err
		}
		var target any
		if target, err = u.top(); err != nil {
			return false, err
		}
		l, ok := target.(*pyList)
		if !ok {
			return false, u.errorf("APPEND to %s, not a list", typeName(target))
		}
		l.items = append(l.items, items...)
	case '}':
		u.push(newDict())
	case 'd', 's', 'u': // DICT, SETITEM, SETITEMS
		var items []any
		switch op {
		case 's':
			var k, v any
			if v, err = u.pop(); err != nil {
				return false, err
			}
			if k, err = u.pop(); err != nil {
				return false, err
			}
			items = []any{k, v}
		default:
			if items, err = u.popMark(); err != nil {
				return false, err
			}
		}
		if len(items)%2 != 0 {
			return false, u.errorf("odd number of dict items")
		}
		var d *pyDict
		if op == 'd' {
			d = newDict()
			u.push(d)
		} else {
			var target any
			if target, err = u.top(); err != nil {
				return false, err
			}
			var ok bool
			if d, ok = target.(*pyDict); !ok {
				return false, u.errorf("SETITEM on %s, not a dict", typeName(target))
			}
		}
		for i := 0; i < len(items); i += 2 {
			if err := d.set(items[i], items[i+1]); err != nil {
				return false, u.errorf("%v", err)
			}
		}
	case 'c': // GLOBAL module\nname\n
		var module, name string
		if module, err = u.readLine(); err != nil {
			return false, err
		}
		if name, err = u.readLine(); err != nil {
			return false, err
		}
		err = u.global(module, name)
	case 0x93: // STACK_GLOBAL
		var m, n any
		if n, err = u.pop(); err != nil {
			return false, err
		}
		if m, err = u.pop(); err != nil {
			return false, err
		}
		module, ok1 := m.(string)
		name, ok2 := n.(string)
		if !ok1 || !ok2 {
			return false, u.errorf("STACK_GLOBAL needs two strings")
		}
		err = u.global(module, name)
	case 'R', 0x81: // REDUCE, NEWOBJ: callable(*args)
		var f, args any
		if args, err = u.pop(); err != nil {
			return false, err
		}
		if f, err = u.pop(); err != nil {
			return false, err
		}
		var v any
		if v, err = call(f, args); err != nil {
			return false, u.errorf("%v", err)
		}
		u.push(v)
	case 'b': // BUILD: obj.__setstate__(state)
		var state, obj any
		if state, err = u.pop(); err != nil {
			return false, err
		}
		if obj, err = u.top(); err != nil {
			return false, err
		}
		switch obj.(type) {
		case *pyDict:
			// OrderedDict attributes, in a state dict only _metadata
			// (per-module versions): nothing a tensor needs.
		case *tensorRef:
			// Tensor attributes (requires_grad and the like).
		default:
			return false, u.errorf("BUILD on %s with %s state", typeName(obj), typeName(state))
		}
	case 'Q', 'P': // BINPERSID, PERSID
		var pid any
		if op == 'Q' {
			if pid, err = u.pop(); err != nil {
				return false, err
			}
		} else if pid, err = u.readLine(); err != nil {
			return false, err
		}
		if u.persistentLoad == nil {
			return false, u.errorf("persistent id %s where none is expected", describe(pid))
		}
		var v any
		if v, err = u.persistentLoad(pid); err != nil {
			return false, u.errorf("%v", err)
		}
		u.push(v)
	case 'q', 'r', 'p': // BINPUT, LONG_BINPUT, PUT
		var i uint64
		switch op {
		case 'q':
			i, err = u.readUint(1)
		case 'r':
			i, err = u.readUint(4)
		default:
			i, err = u.readDecimal()
		}
		if err == nil {
			err = u.memoPut(i)
		}
	case 0x94: // MEMOIZE
		err = u.memoPut(uint64(len(u.memo) + len(u.sparse)))
	case 'h', 'j', 'g': // BINGET, LONG_BINGET, GET
		var i uint64
		switch op {
		case 'h':
			i, err = u.readUint(1)
		case 'j':
			i, err = u.readUint(4)
		default:
			i, err = u.readDecimal()
		}
		if err == nil {
			err = u.memoGet(i)
		}
	default:
		return false, u.errorf("unsupported pickle opcode 0x%02x (not something torch.save writes for a state dict)", op)
	}
	return false, err
}

func (u *unpickler) readDecimal() (uint64, error) {
	line, err := u.readLine()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(line, 10, 32)
	if err != nil {
		return 0, u.errorf("bad memo index %q", line)
	}
	return v, nil
}

// lengthSize is the width of the length prefix of a string or bytes opcode.
func lengthSize(op byte) int {
	switch op {
	case 0x8c, 'U', 'C': // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES
		return 1
	case 0x8d, 0x8e: // BINUNICODE8, BINBYTES8
		return 8
	}
	return 4
}

// global pushes module.name if it is allowed and refuses it otherwise.
func (u *unpickler) global(module, name string) error {
	if !allowedGlobal(module, name) {
		return &badinput.Error{
			File: u.file,
			Msg:  fmt.Sprintf("refusing pickle global %s.%s (%s offset %d): a state dict needs only tensors; the file may be malicious", module, name, u.what, u.opAt),
			Err:  &ForbiddenGlobalError{Module: module, Name: name},
		}
	}
	u.push(pyGlobal{module, name})
	return nil
}

// decodeLong decodes a little-endian two's-complement integer.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(v<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	v := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return "global " + v.(pyGlobal).String()
	case *storageRef:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// describe renders a small value for error messages.
func describe(v any) string { return describeDepth(v, 0) }

func describeDepth(v any, depth int) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case int64, bool, float64:
		return fmt.Sprint(x)
	case pyTuple:
		if depth > 3 {
			return "(…)"
		}
		parts := make([]string, 0, len(x))
		for i, e := range x {
			if i == 6 {
				parts = append(parts, "…")
				break
			}
			parts = append(parts, describeDepth(e, depth+1))
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return typeName(v)
}
