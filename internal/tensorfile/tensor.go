package tensorfile

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType is an element type, spelled as safetensors spells it.
type DType string

// The element types this package reads and writes.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U64  DType = "U64"
	U32  DType = "U32"
	U16  DType = "U16"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the number of bytes of one element, 0 for an unknown type.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// Tensor is a named n-dimensional array. Data holds the elements
// little-endian in C (row-major) order, len(Data) = NumElements()·DType.Size().
// A scalar has an empty Shape and one element.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check reports whether the tensor's type, shape and data length agree.
func (t *Tensor) check() error {
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("tensor %q: unsupported dtype %q", t.Name, t.DType)
	}
	n, ok := numElements(t.Shape)
	if !ok {
		return fmt.Errorf("tensor %q: invalid shape %v", t.Name, t.Shape)
	}
	if uint64(len(t.Data)) != n*uint64(size) {
		return fmt.Errorf("tensor %q: %d bytes of data for shape %v of %s (want %d)", t.Name, len(t.Data), t.Shape, t.DType, n*uint64(size))
	}
	return nil
}

// maxElements bounds the element count of any one tensor (2^40, a few
// terabytes of data); larger shapes are taken for corruption.
const maxElements = 1 << 40

// numElements multiplies out a shape, refusing negative dimensions and
// products beyond maxElements.
func numElements(shape []int) (uint64, bool) {
	n := uint64(1)
	for _, d := range shape {
		if d < 0 || d > maxElements {
			return 0, false
		}
		if d == 0 {
			n = 0
			continue
		}
		if n != 0 && n > maxElements/uint64(d) {
			return 0, false
		}
		n *= uint64(d)
	}
	return n, true
}

// Float32 returns the elements as float32, converting from F32, F16, BF16 or
// F64 (F64 rounds to nearest even, as torch's .float() does). Other types are
// an error naming the tensor.
func (t *Tensor) Float32() ([]float32, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	n := t.NumElements()
	out := make([]float32, n)
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor %q has dtype %s, not a floating-point type", t.Name, t.DType)
	}
	return out, nil
}

// Int64 returns the elements as int64, converting from any integer type or
// BOOL. Floating-point types are an error naming the tensor; so are U64
// values above math.MaxInt64.
func (t *Tensor) Int64() ([]int64, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	out := make([]int64, t.NumElements())
	le := binary.LittleEndian
	for i := range out {
		switch t.DType {
		case I64:
			out[i] = int64(le.Uint64(t.Data[8*i:]))
		case U64:
			v := le.Uint64(t.Data[8*i:])
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("tensor %q: element %d = %d does not fit int64", t.Name, i, v)
			}
			out[i] = int64(v)
		case I32:
			out[i] = int64(int32(le.Uint32(t.Data[4*i:])))
		case U32:
			out[i] = int64(le.Uint32(t.Data[4*i:]))
		case I16:
			out[i] = int64(int16(le.Uint16(t.Data[2*i:])))
		case U16:
			out[i] = int64(le.Uint16(t.Data[2*i:]))
		case I8:
			out[i] = int64(int8(t.Data[i]))
		case U8, Bool:
			out[i] = int64(t.Data[i])
		default:
			return nil, fmt.Errorf("tensor %q has dtype %s, not an integer type", t.Name, t.DType)
		}
	}
	return out, nil
}

// NewF32 returns an F32 tensor holding values. It panics if len(values)
// does not match shape.
func NewF32(name string, shape []int, values []float32) *Tensor {
	t := newTensor(name, F32, shape, len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
	}
	return t
}

// NewF16 returns an F16 tensor holding values rounded to half precision
// (see [Float32ToF16]). It panics if len(values) does not match shape.
func NewF16(name string, shape []int, values []float32) *Tensor {
	t := newTensor(name, F16, shape, len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint16(t.Data[2*i:], Float32ToF16(v))
	}
	return t
}

// NewI64 returns an I64 tensor holding values. It panics if len(values)
// does not match shape.
func NewI64(name string, shape []int, values []int64) *Tensor {
	t := newTensor(name, I64, shape, len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(t.Data[8*i:], uint64(v))
	}
	return t
}

func newTensor(name string, dtype DType, shape []int, count int) *Tensor {
	n, ok := numElements(shape)
	if !ok || n != uint64(count) {
		panic(fmt.Sprintf("tensorfile: tensor %q: %d values for shape %v", name, count, shape))
	}
	return &Tensor{Name: name, DType: dtype, Shape: append([]int{}, shape...), Data: make([]byte, count*dtype.Size())}
}
