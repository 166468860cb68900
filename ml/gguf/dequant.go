package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

// TensorType is a GGML tensor type.
type TensorType uint32

// The GGML tensor types this package reads (numbered as in ggml.h).
const (
	F32  TensorType = 0
	F16  TensorType = 1
	Q4_0 TensorType = 2
	Q4_1 TensorType = 3
	Q5_0 TensorType = 6
	Q5_1 TensorType = 7
	Q8_0 TensorType = 8
	Q4_K TensorType = 12
	Q5_K TensorType = 13
	Q6_K TensorType = 14
	BF16 TensorType = 30
)

// typeInfo is each readable type's name, elements per block and bytes per
// block.
var typeInfo = map[TensorType]struct {
	name        string
	block, size int
}{
	F32:  {"F32", 1, 4},
	F16:  {"F16", 1, 2},
	BF16: {"BF16", 1, 2},
	Q4_0: {"Q4_0", 32, 2 + 16},
	Q4_1: {"Q4_1", 32, 2 + 2 + 16},
	Q5_0: {"Q5_0", 32, 2 + 4 + 16},
	Q5_1: {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0: {"Q8_0", 32, 2 + 32},
	Q4_K: {"Q4_K", 256, 2 + 2 + 12 + 128},
	Q5_K: {"Q5_K", 256, 2 + 2 + 12 + 32 + 128},
	Q6_K: {"Q6_K", 256, 128 + 64 + 16 + 2},
}

// otherTypeNames names the GGML types this package does not read, for
// messages.
var otherTypeNames = map[TensorType]string{
	9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
	19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16",
	26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0",
}

func (t TensorType) String() string {
	if i, ok := typeInfo[t]; ok {
		return i.name
	}
	if s, ok := otherTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// blockSize returns the elements and bytes of one block of t, and whether
// this package reads t.
func (t TensorType) blockSize() (elems, bytes int, ok bool) {
	i, ok := typeInfo[t]
	return i.block, i.size, ok
}

func f16(b []byte) float32 { return safetensors.F16ToF32(binary.LittleEndian.Uint16(b)) }

// Dequantize decodes raw, the bytes of len(out) elements of type t, into
// out. len(out) must be a multiple of t's block size and raw exactly the
// bytes of that many blocks.
func Dequantize(t TensorType, raw []byte, out []float32) error {
	bs, ts, ok := t.blockSize()
	if !ok {
		return fmt.Errorf("tensor type %s cannot be dequantized", t)
	}
	if len(out)%bs != 0 {
		return fmt.Errorf("%d elements are not a whole number of %s blocks of %d", len(out), t, bs)
	}
	if want := len(out) / bs * ts; len(raw) != want {
		return fmt.Errorf("%d elements of %s take %d bytes, have %d", len(out), t, want, len(raw))
	}
	nb := len(out) / bs
	for i := 0; i < nb; i++ {
		b := raw[i*ts : (i+1)*ts]
		y := out[i*bs : (i+1)*bs]
		switch t {
		case F32:
			y[0] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case F16:
			y[0] = f16(b)
		case BF16:
			y[0] = safetensors.BF16ToF32(binary.LittleEndian.Uint16(b))
		case Q4_0:
			blockQ4(y, f16(b), 0, b[2:], -8)
		case Q4_1:
			blockQ4(y, f16(b), f16(b[2:]), b[4:], 0)
		case Q5_0:
			blockQ5(y, f16(b), 0, binary.LittleEndian.Uint32(b[2:]), b[6:], -16)
		case Q5_1:
			blockQ5(y, f16(b), f16(b[2:]), binary.LittleEndian.Uint32(b[4:]), b[8:], 0)
		case Q8_0:
			d := f16(b)
			for j := 0; j < 32; j++ {
				y[j] = float32(int8(b[2+j])) * d
			}
		case Q4_K:
			blockQ4K(y, b)
		case Q5_K:
			blockQ5K(y, b)
		case Q6_K:
			blockQ6K(y, b)
		}
	}
	return nil
}

// blockQ4 decodes Q4_0 (m 0, bias -8) and Q4_1 (m, bias 0): 16 bytes of
// nibbles, the low nibble of byte j is element j, the high one element
// j+16; y = (q + bias)·d + m.
func blockQ4(y []float32, d, m float32, qs []byte, bias int) {
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&0xF)+bias)*d + m
		y[j+16] = float32(int(qs[j]>>4)+bias)*d + m
	}
}

// blockQ5 decodes Q5_0 and Q5_1: as Q4 with a fifth bit per element in
// qh (bit j for element j, bit j+16 for element j+16).
func blockQ5(y []float32, d, m float32, qh uint32, qs []byte, bias int) {
	for j := 0; j < 16; j++ {
		h0 := int((qh>>j)&1) << 4
		h1 := int((qh>>(j+16))&1) << 4
		y[j] = float32(int(qs[j]&0xF)|h0+bias)*d + m
		y[j+16] = float32(int(qs[j]>>4)|h1+bias)*d + m
	}
}

// scaleMinK4 unpacks the j-th 6-bit scale and min of a Q4_K/Q5_K block's
// 12 scale bytes.
func scaleMinK4(j int, q []byte) (sc, m float32) {
	if j < 4 {
		return float32(q[j] & 63), float32(q[j+4] & 63)
	}
	return float32(q[j+4]&0xF | (q[j-4]>>6)<<4), float32(q[j+4]>>4 | (q[j]>>6)<<4)
}

// blockQ4K decodes a Q4_K super-block: d, dmin, 12 scale bytes, 128 bytes
// of nibbles; 8 sub-blocks of 32, y = d·sc·q − dmin·m.
func blockQ4K(y []float32, b []byte) {
	d, dmin := f16(b), f16(b[2:])
	scales, qs := b[4:16], b[16:144]
	for j, is := 0, 0; j < 256; j, is = j+64, is+2 {
		sc1, m1 := scaleMinK4(is, scales)
		sc2, m2 := scaleMinK4(is+1, scales)
		q := qs[j/2 : j/2+32]
		for l := 0; l < 32; l++ {
			y[j+l] = d*sc1*float32(q[l]&0xF) - dmin*m1
			y[j+32+l] = d*sc2*float32(q[l]>>4) - dmin*m2
		}
	}
}

// blockQ5K decodes a Q5_K super-block: as Q4_K with 32 bytes of high bits
// (bit 2k of qh[l] for sub-block 2k, bit 2k+1 for sub-block 2k+1).
func blockQ5K(y []float32, b []byte) {
	d, dmin := f16(b), f16(b[2:])
	scales, qh, qs := b[4:16], b[16:48], b[48:176]
	for j, is := 0, 0; j < 256; j, is = j+64, is+2 {
		sc1, m1 := scaleMinK4(is, scales)
		sc2, m2 := scaleMinK4(is+1, scales)
		q := qs[j/2 : j/2+32]
		u1, u2 := byte(1)<<is, byte(2)<<is
		for l := 0; l < 32; l++ {
			h1, h2 := float32(0), float32(0)
			if qh[l]&u1 != 0 {
				h1 = 16
			}
			if qh[l]&u2 != 0 {
				h2 = 16
			}
			y[j+l] = d*sc1*(float32(q[l]&0xF)+h1) - dmin*m1
			y[j+32+l] = d*sc2*(float32(q[l]>>4)+h2) - dmin*m2
		}
	}
}

// blockQ6K decodes a Q6_K super-block: 128 bytes of low nibbles, 64 of
// high 2-bit pairs, 16 int8 scales (one per 16 elements), d.
func blockQ6K(y []float32, b []byte) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16(b[208:])
	for n := 0; n < 2; n++ {
		l0, h0, s0, y0 := ql[64*n:], qh[32*n:], sc[8*n:], y[128*n:]
		for l := 0; l < 32; l++ {
			is := l / 16
			q1 := int(l0[l]&0xF|(h0[l]&3)<<4) - 32
			q2 := int(l0[l+32]&0xF|((h0[l]>>2)&3)<<4) - 32
			q3 := int(l0[l]>>4|((h0[l]>>4)&3)<<4) - 32
			q4 := int(l0[l+32]>>4|((h0[l]>>6)&3)<<4) - 32
			y0[l] = d * float32(int8(s0[is])) * float32(q1)
			y0[l+32] = d * float32(int8(s0[is+2])) * float32(q2)
			y0[l+64] = d * float32(int8(s0[is+4])) * float32(q3)
			y0[l+96] = d * float32(int8(s0[is+6])) * float32(q4)
		}
	}
}
