package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// F32ToBF16 converts a float32 to bfloat16 bits with round-to-nearest-even,
// as PyTorch does: values too large round to ±Inf, and every NaN becomes the
// canonical quiet NaN 0x7FC0.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return 0x7FC0
	}
	// Adding 0x7FFF plus the lowest kept bit rounds half to even; a carry
	// out of the mantissa correctly bumps the exponent (up to Inf).
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToF32 converts bfloat16 bits to float32 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToF16 converts a float32 to IEEE 754 binary16 bits with
// round-to-nearest-even, producing subnormals for tiny values, ±Inf for
// values that round beyond 65504, and a quiet NaN (0x7E00 with the input's
// sign) for NaN, as PyTorch does.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xFF
	man := b & 0x7FFFFF
	switch {
	case exp == 0xFF:
		if man != 0 {
			return sign | 0x7E00
		}
		return sign | 0x7C00
	case exp == 0:
		// float32 zero or subnormal: far below half the smallest f16 subnormal.
		return sign
	}
	e := exp - 127 + 15
	if e >= 0x1F {
		return sign | 0x7C00
	}
	if e <= 0 {
		// Result is an f16 subnormal (or rounds up to the smallest normal).
		// value = m * 2^(exp-150); in units of 2^-24 that is m >> (126-exp).
		m := man | 0x800000
		shift := uint(126 - exp)
		if shift > 24 {
			return sign // below half of 2^-24
		}
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	q := uint32(e)<<10 | man>>13
	rem := man & 0x1FFF
	if rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // may carry into the exponent, up to 0x7C00 (Inf)
	}
	return sign | uint16(q)
}

// F16ToF32 converts IEEE 754 binary16 bits to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1F
	man := uint32(h & 0x3FF)
	switch exp {
	case 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: man * 2^-24, exact in float32.
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	case 0x1F:
		return math.Float32frombits(sign | 0x7F800000 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// F32Bytes encodes values as little-endian float32 (dtype F32).
func F32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return out
}

// BF16Bytes encodes values as little-endian bfloat16 (dtype BF16), rounding
// to nearest even.
func BF16Bytes(v []float32) []byte {
	out := make([]byte, 2*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint16(out[2*i:], F32ToBF16(f))
	}
	return out
}

// F16Bytes encodes values as little-endian IEEE half precision (dtype F16),
// rounding to nearest even.
func F16Bytes(v []float32) []byte {
	out := make([]byte, 2*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint16(out[2*i:], F32ToF16(f))
	}
	return out
}

// DecodeFloat32 converts raw little-endian data of dtype d (F32, F16, BF16 or
// F64) into a new []float32. F64 values are rounded to nearest even.
func DecodeFloat32(d DType, raw []byte) ([]float32, error) {
	size := d.Size()
	switch d {
	case F32, F16, BF16, F64:
	default:
		return nil, fmt.Errorf("dtype %s cannot be converted to float32 (only F32, F16, BF16, F64)", d)
	}
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(raw), d)
	}
	out := make([]float32, len(raw)/size)
	switch d {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	}
	return out, nil
}

// DecodeInt64 converts raw little-endian data of an integer or boolean dtype
// (BOOL, U8, I8, U16, I16, U32, I32, I64, U64) into a new []int64. U64
// values above the int64 range are an error.
func DecodeInt64(d DType, raw []byte) ([]int64, error) {
	switch d {
	case BOOL, U8, I8, U16, I16, U32, I32, I64, U64:
	default:
		return nil, fmt.Errorf("dtype %s is not an integer type", d)
	}
	size := d.Size()
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(raw), d)
	}
	out := make([]int64, len(raw)/size)
	for i := range out {
		b := raw[i*size:]
		switch d {
		case BOOL:
			if b[0] > 1 {
				return nil, fmt.Errorf("element %d: BOOL byte %d is neither 0 nor 1", i, b[0])
			}
			out[i] = int64(b[0])
		case U8:
			out[i] = int64(b[0])
		case I8:
			out[i] = int64(int8(b[0]))
		case U16:
			out[i] = int64(binary.LittleEndian.Uint16(b))
		case I16:
			out[i] = int64(int16(binary.LittleEndian.Uint16(b)))
		case U32:
			out[i] = int64(binary.LittleEndian.Uint32(b))
		case I32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(b)))
		case I64:
			out[i] = int64(binary.LittleEndian.Uint64(b))
		case U64:
			v := binary.LittleEndian.Uint64(b)
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("element %d: U64 value %d does not fit in an int64", i, v)
			}
			out[i] = int64(v)
		}
	}
	return out, nil
}
