package tensorfile

import "math"

// Float32ToF16 returns the IEEE 754 binary16 bits nearest to f, ties to even,
// as numpy's astype(float16) and torch's .half() compute them: values beyond
// the largest half (65504, or from 65520 up once rounded) become ±inf, values
// below the smallest subnormal (2^-24) round to subnormals or ±0. Any NaN
// becomes the quiet NaN 0x7e00 with f's sign, as torch does (numpy instead
// keeps the top payload bits).
func Float32ToF16(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Half subnormal: value = m·2^-24 with the f32 significand
		// (implicit bit included) shifted right by 14-e.
		if e < -10 {
			return sign // below half the smallest subnormal: ±0
		}
		sig := mant | 0x800000
		shift := uint(14 - e)
		return sign | uint16(roundShift(sig, shift))
	}
	h := uint32(e)<<10 | mant>>13
	// Rounding up may carry into the exponent, up to 0x7c00 (inf): correct.
	rem := mant & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++
	}
	return sign | uint16(h)
}

// roundShift returns x >> shift rounded to nearest, ties to even.
func roundShift(x uint32, shift uint) uint32 {
	q := x >> shift
	rem := x & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rem > half || rem == half && q&1 == 1 {
		q++
	}
	return q
}

// F16ToFloat32 returns the float32 value of IEEE 754 binary16 bits h
// (exact: every half is a float32). A NaN keeps its payload and becomes
// quiet, as torch's .float() and numpy's astype(float32) widen it.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1f:
		if mant != 0 {
			return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
		}
		return math.Float32frombits(sign | 0x7f800000)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
