package ptx

import (
	"math"
	"math/big"
	"math/bits"
	"testing"
)

var vals32 = []uint64{0, 1, 2, 3, 7, 15, 16, 31, 32, 33, 63, 64, 100, 0x7fff, 0x8000, 0xffff, 0x12345678, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff, 0xdeadbeef}

var vals64 = []uint64{0, 1, 2, 31, 32, 63, 64, 65, 0xffffffff, 0x100000000, 0x7fffffffffffffff, 0x8000000000000000, 0xffffffffffffffff, 0xfffffffffffffffe, 0x123456789abcdef0, 0xfedcba9876543210}

var vals16 = []uint64{0, 1, 2, 15, 16, 17, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0x8001, 0xfffe, 0xffff, 0x1234}

func s32(v uint64) int32  { return int32(uint32(v)) }
func u32(v uint64) uint32 { return uint32(v) }
func w32(v int32) uint64  { return uint64(uint32(v)) }

func TestIntegerArithmetic(t *testing.T) {
	checkOps(t, []opTest{
		{"add.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a) + u32(b)) }},
		{"sub.u32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a) - u32(b)) }},
		{"add.s64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { return a + b }},
		{"add.u16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return uint64(uint16(a) + uint16(b)) }},
		{"sub.s16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return uint64(uint16(a) - uint16(b)) }},
		{"add.s32 D:r, A:r, -5", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(u32(a) - 5) }},
		{"add.u32 D:r, A:r, 0xffffffff", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(u32(a) - 1) }},
		{"mul.lo.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a) * u32(b)) }},
		{"mul.lo.u64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { return a * b }},
		{"mul.lo.s16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return uint64(uint16(a) * uint16(b)) }},
		{"mul.hi.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return w32(int32(int64(s32(a)) * int64(s32(b)) >> 32)) }},
		{"mul.hi.u32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(uint64(u32(a)) * uint64(u32(b)) >> 32) }},
		{"mul.hi.u16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return uint64(uint16(a)) * uint64(uint16(b)) >> 16 }},
		{"mul.hi.s16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 {
			return uint64(uint16(int32(int16(a)) * int32(int16(b)) >> 16))
		}},
		{"mul.hi.u64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { hi, _ := bits.Mul64(a, b); return hi }},
		{"mul.hi.s64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 {
			p := new(big.Int).Mul(big.NewInt(int64(a)), big.NewInt(int64(b)))
			return uint64(new(big.Int).Rsh(p, 64).Int64())
		}},
		{"mul.wide.s32 D:rd, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(int64(s32(a)) * int64(s32(b))) }},
		{"mul.wide.u32 D:rd, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a)) * uint64(u32(b)) }},
		{"mul.wide.s16 D:r, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return w32(int32(int16(a)) * int32(int16(b))) }},
		{"mul.wide.u16 D:r, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return uint64(uint16(a)) * uint64(uint16(b)) }},
		{"mad.lo.s32 D:r, A:r, B:r, C:r", pairs(vals32, 0x80000000), func(a, b, c uint64) uint64 { return uint64(u32(a)*u32(b) + u32(c)) }},
		{"mad.lo.s32 D:r, A:r, 3, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a)*3 + u32(b)) }},
		{"mad.hi.u32 D:r, A:r, B:r, C:r", pairs(vals32, 5), func(a, b, c uint64) uint64 {
			return uint64(uint32(uint64(u32(a))*uint64(u32(b))>>32) + u32(c))
		}},
		{"mad.wide.s32 D:rd, A:r, B:r, C:rd", pairs(vals32, 0xffffffffffffffff), func(a, b, c uint64) uint64 {
			return uint64(int64(s32(a))*int64(s32(b))) + c
		}},
		{"mad.wide.u32 D:rd, A:r, B:r, C:rd", pairs(vals32, 1<<40), func(a, b, c uint64) uint64 { return uint64(u32(a))*uint64(u32(b)) + c }},
		{"neg.s32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(-u32(a)) }},
		{"neg.s64 D:rd, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return -a }},
		{"abs.s32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 {
			if s32(a) < 0 {
				return w32(-s32(a)) // abs(INT_MIN) is INT_MIN
			}
			return a
		}},
		{"abs.s16 D:h, A:h", singles(vals16), func(a, _, _ uint64) uint64 {
			if int16(a) < 0 {
				return uint64(uint16(-int16(a)))
			}
			return a
		}},
		{"add.sat.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			return w32(int32(max(math.MinInt32, min(math.MaxInt32, int64(s32(a))+int64(s32(b))))))
		}},
		{"sub.sat.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			return w32(int32(max(math.MinInt32, min(math.MaxInt32, int64(s32(a))-int64(s32(b))))))
		}},
	})
}

func TestIntegerDivision(t *testing.T) {
	// Division by zero is unspecified in PTX; the interpreter gives all
	// ones for div and the dividend for rem.
	checkOps(t, []opTest{
		{"div.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			if u32(b) == 0 {
				return 0xffffffff
			}
			if s32(a) == math.MinInt32 && s32(b) == -1 {
				return a // overflow wraps
			}
			return w32(s32(a) / s32(b))
		}},
		{"rem.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			if u32(b) == 0 {
				return a
			}
			if s32(b) == -1 {
				return 0
			}
			return w32(s32(a) % s32(b))
		}},
		{"div.u32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			if u32(b) == 0 {
				return 0xffffffff
			}
			return uint64(u32(a) / u32(b))
		}},
		{"rem.u32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			if u32(b) == 0 {
				return a
			}
			return uint64(u32(a) % u32(b))
		}},
		{"div.s64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 {
			switch {
			case b == 0:
				return math.MaxUint64
			case int64(a) == math.MinInt64 && int64(b) == -1:
				return a
			}
			return uint64(int64(a) / int64(b))
		}},
		{"rem.u64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 {
			if b == 0 {
				return a
			}
			return a % b
		}},
		{"div.s16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 {
			switch {
			case uint16(b) == 0:
				return 0xffff
			case int16(a) == math.MinInt16 && int16(b) == -1:
				return a
			}
			return uint64(uint16(int16(a) / int16(b)))
		}},
		{"rem.u16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 {
			if uint16(b) == 0 {
				return a
			}
			return uint64(uint16(a) % uint16(b))
		}},
	})
}

func TestIntegerMinMax(t *testing.T) {
	checkOps(t, []opTest{
		{"min.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return w32(min(s32(a), s32(b))) }},
		{"max.s32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return w32(max(s32(a), s32(b))) }},
		{"min.u32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(min(u32(a), u32(b))) }},
		{"max.u32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(max(u32(a), u32(b))) }},
		{"min.s16 D:h, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return uint64(uint16(min(int16(a), int16(b)))) }},
		{"max.s16 D:h, A:h, -1", singles(vals16), func(a, _, _ uint64) uint64 { return uint64(uint16(max(int16(a), -1))) }},
		{"min.s64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { return uint64(min(int64(a), int64(b))) }},
		{"max.u64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { return max(a, b) }},
	})
}

func TestLogicAndShifts(t *testing.T) {
	shifts := []uint64{0, 1, 5, 15, 16, 31, 32, 33, 63, 64, 65, 255, 256, 0x80000000, 0xffffffff}
	var sh32, sh64, sh16 [][3]uint64
	for _, a := range vals32 {
		for _, s := range shifts {
			sh32 = append(sh32, [3]uint64{a, s, 0})
		}
	}
	for _, a := range vals64 {
		for _, s := range shifts {
			sh64 = append(sh64, [3]uint64{a, s, 0})
		}
	}
	for _, a := range vals16 {
		for _, s := range shifts {
			sh16 = append(sh16, [3]uint64{a, s, 0})
		}
	}
	// PTX clamps shift amounts: >= the width gives 0 (shl, shr.u) or
	// the sign (shr.s). Go's shifts behave the same for unsigned amounts.
	checkOps(t, []opTest{
		{"and.b32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a) & u32(b)) }},
		{"or.b32 D:r, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return uint64(u32(a) | u32(b)) }},
		{"xor.b64 D:rd, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { return a ^ b }},
		{"and.b32 D:r, A:r, -65536", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(u32(a) & 0xffff0000) }},
		{"not.b32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(^u32(a)) }},
		{"not.b16 D:h, A:h", singles(vals16), func(a, _, _ uint64) uint64 { return uint64(^uint16(a)) }},
		{"cnot.b32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return b2(u32(a) == 0) }},
		{"shl.b32 D:r, A:r, B:r", sh32, func(a, b, _ uint64) uint64 { return uint64(u32(a) << u32(b)) }},
		{"shr.u32 D:r, A:r, B:r", sh32, func(a, b, _ uint64) uint64 { return uint64(u32(a) >> u32(b)) }},
		{"shr.b32 D:r, A:r, B:r", sh32, func(a, b, _ uint64) uint64 { return uint64(u32(a) >> u32(b)) }},
		{"shr.s32 D:r, A:r, B:r", sh32, func(a, b, _ uint64) uint64 { return w32(s32(a) >> u32(b)) }},
		{"shl.b64 D:rd, A:rd, B:r", sh64, func(a, b, _ uint64) uint64 { return a << u32(b) }},
		{"shr.u64 D:rd, A:rd, B:r", sh64, func(a, b, _ uint64) uint64 { return a >> u32(b) }},
		{"shr.s64 D:rd, A:rd, B:r", sh64, func(a, b, _ uint64) uint64 { return uint64(int64(a) >> u32(b)) }},
		{"shl.b16 D:h, A:h, B:r", sh16, func(a, b, _ uint64) uint64 { return uint64(uint16(a) << u32(b)) }},
		{"shr.s16 D:h, A:h, B:r", sh16, func(a, b, _ uint64) uint64 { return uint64(uint16(int16(a) >> u32(b))) }},
		{"shl.b32 D:r, A:r, 31", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(u32(a) << 31) }},
	})
}

// bfeRef, bfiRef and prmtRef follow the pseudocode of the PTX ISA bit by bit.
func bfeRef(a, b, c uint64, w int, signed bool) uint64 {
	msb := w - 1
	pos, ln := int(b&0xff), int(c&0xff)
	sbit := uint64(0)
	if signed && ln != 0 {
		sbit = a >> min(pos+ln-1, msb) & 1
	}
	var d uint64
	for i := 0; i <= msb; i++ {
		bit := sbit
		if i < ln && pos+i <= msb {
			bit = a >> (pos + i) & 1
		}
		d |= bit << i
	}
	return d
}

func bfiRef(a, b, c, d uint64, w int) uint64 {
	pos, ln := int(c&0xff), int(d&0xff)
	f := b & (1<<w - 1)
	if w == 64 {
		f = b
	}
	for i := 0; i < ln && pos+i <= w-1; i++ {
		f = f&^(1<<(pos+i)) | (a>>i&1)<<(pos+i)
	}
	return f
}

func prmtRef(a, b, c uint32) uint32 {
	bytes := [8]uint32{a & 0xff, a >> 8 & 0xff, a >> 16 & 0xff, a >> 24, b & 0xff, b >> 8 & 0xff, b >> 16 & 0xff, b >> 24}
	var d uint32
	for i := 0; i < 4; i++ {
		sel := c >> (4 * i) & 0xf
		v := bytes[sel&7]
		if sel&8 != 0 {
			if v&0x80 != 0 {
				v = 0xff
			} else {
				v = 0
			}
		}
		d |= v << (8 * i)
	}
	return d
}

func TestBitInstructions(t *testing.T) {
	fields := []uint64{0, 1, 4, 8, 16, 24, 31, 32, 33, 40, 63, 64, 200, 255, 256, 0x108}
	var bfe32, bfe64, bfi32 [][3]uint64
	for _, a := range []uint64{0, 0xffffffff, 0x80000000, 0x12345678, 0xdeadbeef, 0x7fffffff} {
		for _, p := range fields {
			for _, l := range fields {
				bfe32 = append(bfe32, [3]uint64{a, p, l})
				bfi32 = append(bfi32, [3]uint64{a, 0x0f0f0f0f, p | l<<16})
			}
		}
	}
	for _, a := range []uint64{0, 0xffffffffffffffff, 0x8000000000000000, 0x123456789abcdef0} {
		for _, p := range fields {
			for _, l := range fields {
				bfe64 = append(bfe64, [3]uint64{a, p, l})
			}
		}
	}
	var prm [][3]uint64
	for _, c := range []uint64{0x3210, 0x7654, 0x0000, 0x4321, 0x89ab, 0xffff, 0x1357, 0xcdef, 0x7531} {
		for _, a := range []uint64{0x12345678, 0x80ff7f01, 0} {
			prm = append(prm, [3]uint64{a, 0x9abcdef0, c})
		}
	}
	var shf [][3]uint64
	for _, n := range []uint64{0, 1, 8, 31, 32, 33, 63, 100} {
		shf = append(shf, [3]uint64{0x12345678, 0x9abcdef0, n}, [3]uint64{0xffffffff, 0, n})
	}
	checkOps(t, []opTest{
		{"popc.b32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(bits.OnesCount32(u32(a))) }},
		{"popc.b64 D:r, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return uint64(bits.OnesCount64(a)) }},
		{"clz.b32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(bits.LeadingZeros32(u32(a))) }},
		{"clz.b64 D:r, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return uint64(bits.LeadingZeros64(a)) }},
		{"brev.b32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(bits.Reverse32(u32(a))) }},
		{"brev.b64 D:rd, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return bits.Reverse64(a) }},
		{"bfind.u32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 {
			if u32(a) == 0 {
				return 0xffffffff
			}
			return uint64(31 - bits.LeadingZeros32(u32(a)))
		}},
		{"bfind.s32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 {
			x := u32(a)
			if s32(a) < 0 {
				x = ^x
			}
			if x == 0 {
				return 0xffffffff
			}
			return uint64(31 - bits.LeadingZeros32(x))
		}},
		{"bfind.shiftamt.u32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 {
			if u32(a) == 0 {
				return 0xffffffff
			}
			return uint64(bits.LeadingZeros32(u32(a)))
		}},
		{"bfe.u32 D:r, A:r, B:r, C:r", bfe32, func(a, b, c uint64) uint64 { return bfeRef(a, b, c, 32, false) }},
		{"bfe.s32 D:r, A:r, B:r, C:r", bfe32, func(a, b, c uint64) uint64 { return bfeRef(a, b, c, 32, true) }},
		{"bfe.u64 D:rd, A:rd, B:r, C:r", bfe64, func(a, b, c uint64) uint64 { return bfeRef(a, b, c, 64, false) }},
		{"bfe.s64 D:rd, A:rd, B:r, C:r", bfe64, func(a, b, c uint64) uint64 { return bfeRef(a, b, c, 64, true) }},
		{"bfe.u32 D:r, A:r, 16, 1", singles(vals32), func(a, _, _ uint64) uint64 { return a >> 16 & 1 }},
		{"shr.u32 %r5, C:r, 16; and.b32 %r6, C:r, 0xffff; bfi.b32 D:r, A:r, B:r, %r6, %r5", bfi32, func(a, b, c uint64) uint64 {
			return bfiRef(a, b, c&0xffff, c>>16, 32)
		}},
		{"prmt.b32 D:r, A:r, B:r, C:r", prm, func(a, b, c uint64) uint64 { return uint64(prmtRef(u32(a), u32(b), u32(c))) }},
		{"prmt.b32.rc8 D:r, A:r, B:r, 1", prm[:1], func(a, _, _ uint64) uint64 { return uint64(a>>8&0xff) * 0x01010101 }},
		{"prmt.b32.f4e D:r, A:r, B:r, 2", prm[:1], func(a, b, _ uint64) uint64 { return uint64(uint32((b<<32 | a) >> 16)) }},
		{"shf.l.wrap.b32 D:r, A:r, B:r, C:r", shf, func(a, b, c uint64) uint64 {
			return uint64(uint32((b<<32 | a) << (c & 31) >> 32))
		}},
		{"shf.r.clamp.b32 D:r, A:r, B:r, C:r", shf, func(a, b, c uint64) uint64 {
			return uint64(uint32((b<<32 | a) >> min(c, 32)))
		}},
		{"shf.r.wrap.b32 D:r, A:r, B:r, C:r", shf, func(a, b, c uint64) uint64 {
			return uint64(uint32((b<<32 | a) >> (c & 31)))
		}},
	})
}

func TestCompareAndSelect(t *testing.T) {
	type cmp struct {
		name string
		s    func(x, y int64) bool
		u    func(x, y uint64) bool
	}
	cmps := []cmp{
		{"eq", func(x, y int64) bool { return x == y }, func(x, y uint64) bool { return x == y }},
		{"ne", func(x, y int64) bool { return x != y }, func(x, y uint64) bool { return x != y }},
		{"lt", func(x, y int64) bool { return x < y }, func(x, y uint64) bool { return x < y }},
		{"le", func(x, y int64) bool { return x <= y }, func(x, y uint64) bool { return x <= y }},
		{"gt", func(x, y int64) bool { return x > y }, func(x, y uint64) bool { return x > y }},
		{"ge", func(x, y int64) bool { return x >= y }, func(x, y uint64) bool { return x >= y }},
	}
	unsignedNames := map[string]string{"lt": "lo", "le": "ls", "gt": "hi", "ge": "hs"}
	var tests []opTest
	for _, c := range cmps {
		tests = append(tests,
			opTest{"setp." + c.name + ".s32 D:p, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return b2(c.s(int64(s32(a)), int64(s32(b)))) }},
			opTest{"setp." + c.name + ".u32 D:p, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return b2(c.u(uint64(u32(a)), uint64(u32(b)))) }},
			opTest{"setp." + c.name + ".s64 D:p, A:rd, B:rd", pairs(vals64, 0), func(a, b, _ uint64) uint64 { return b2(c.s(int64(a), int64(b))) }},
			opTest{"setp." + c.name + ".s16 D:p, A:h, B:h", pairs(vals16, 0), func(a, b, _ uint64) uint64 { return b2(c.s(int64(int16(a)), int64(int16(b)))) }},
		)
		if un, ok := unsignedNames[c.name]; ok {
			tests = append(tests, opTest{"setp." + un + ".s32 D:p, A:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return b2(c.u(uint64(u32(a)), uint64(u32(b)))) }})
		}
	}
	var withC [][3]uint64
	for _, cs := range pairs([]uint64{0, 1, 5, 0xffffffff}, 0) {
		withC = append(withC, [3]uint64{cs[0], cs[1], 0}, [3]uint64{cs[0], cs[1], 1})
	}
	lt := func(a, b uint64) bool { return s32(a) < s32(b) }
	tests = append(tests,
		opTest{"setp.lt.and.s32 D:p, A:r, B:r, C:p", withC, func(a, b, c uint64) uint64 { return b2(lt(a, b) && c != 0) }},
		opTest{"setp.lt.or.s32 D:p, A:r, B:r, !C:p", withC, func(a, b, c uint64) uint64 { return b2(lt(a, b) || c == 0) }},
		opTest{"setp.lt.xor.s32 D:p, A:r, B:r, C:p", withC, func(a, b, c uint64) uint64 { return b2(lt(a, b) != (c != 0)) }},
		opTest{"setp.lt.s32 %p5|D:p, A:r, B:r", withC, func(a, b, _ uint64) uint64 { return b2(!lt(a, b)) }},
		opTest{"setp.lt.and.s32 %p5|D:p, A:r, B:r, C:p", withC, func(a, b, c uint64) uint64 { return b2(!lt(a, b) && c != 0) }},
		opTest{"selp.b32 D:r, A:r, B:r, C:p", withC, func(a, b, c uint64) uint64 {
			if c != 0 {
				return a
			}
			return b
		}},
		opTest{"selp.u64 D:rd, A:rd, 7, C:p", withC, func(a, _, c uint64) uint64 {
			if c != 0 {
				return a
			}
			return 7
		}},
		opTest{"selp.f32 D:f, 0f3F800000, 0f00000000, C:p", withC, func(_, _, c uint64) uint64 {
			if c != 0 {
				return 0x3f800000
			}
			return 0
		}},
		opTest{"and.pred D:p, A:p, B:p", withC, func(a, b, _ uint64) uint64 { return b2(a != 0 && b != 0) }},
		opTest{"or.pred D:p, A:p, B:p", withC, func(a, b, _ uint64) uint64 { return b2(a != 0 || b != 0) }},
		opTest{"xor.pred D:p, A:p, B:p", withC, func(a, b, _ uint64) uint64 { return b2((a != 0) != (b != 0)) }},
		opTest{"not.pred D:p, A:p", withC, func(a, _, _ uint64) uint64 { return b2(a == 0) }},
		opTest{"mov.pred D:p, 1", withC[:1], func(_, _, _ uint64) uint64 { return 1 }},
	)
	checkOps(t, tests)
}

func TestCarryAndPredication(t *testing.T) {
	checkOps(t, []opTest{
		{"add.cc.u32 %r5, A:r, B:r; addc.u32 D:r, 0, 0", pairs(vals32, 0), func(a, b, _ uint64) uint64 { return (uint64(u32(a)) + uint64(u32(b))) >> 32 }},
		{"sub.cc.u32 %r5, A:r, B:r; subc.u32 D:r, 0, 0", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			if u32(a) < u32(b) {
				return 0xffffffff
			}
			return 0
		}},
		// A 128-bit addition: (C, A) + (0, B) + 1 in the high word.
		{"add.cc.u64 %rd5, A:rd, B:rd; addc.cc.u64 D:rd, C:rd, 1", pairs(vals64, 0xfffffffffffffffe), func(a, b, c uint64) uint64 {
			_, carry := bits.Add64(a, b, 0)
			return c + 1 + carry
		}},
		{"add.cc.s32 %r5, A:r, B:r; addc.cc.s32 %r6, 0, 0; addc.u32 D:r, %r6, %r6", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			cy := (uint64(u32(a)) + uint64(u32(b))) >> 32
			return 2 * cy
		}},
		{"mov.u32 D:r, 5; setp.eq.u32 %p5, A:r, 0; @%p5 mov.u32 D:r, 7; @!%p5 add.u32 D:r, D:r, B:r", pairs(vals32, 0), func(a, b, _ uint64) uint64 {
			if u32(a) == 0 {
				return 7
			}
			return uint64(5 + u32(b))
		}},
		{"mov.u32 D:r, 1; setp.ne.u32 %p5, A:r, 0; @%p5 bra $skip; mov.u32 D:r, 2; $skip: add.u32 D:r, D:r, 10", singles(vals32), func(a, _, _ uint64) uint64 {
			if u32(a) != 0 {
				return 11
			}
			return 12
		}},
	})
}

func TestMovPackUnpack(t *testing.T) {
	checkOps(t, []opTest{
		{"mov.b32 {%h5, %h6}, A:r; mov.b32 D:r, {%h6, %h5}", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(bits.RotateLeft32(u32(a), 16)) }},
		{"mov.b32 {%h5, %h6}, A:r; cvt.u32.u16 D:r, %h6", singles(vals32), func(a, _, _ uint64) uint64 { return a >> 16 & 0xffff }},
		{"{ .reg .b16 tmp; mov.b32 {tmp, D:h}, A:r; }", singles(vals32), func(a, _, _ uint64) uint64 { return a >> 16 & 0xffff }},
		{"mov.b32 {_, D:h}, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return a >> 16 & 0xffff }},
		{"mov.b64 {%r5, %r6}, A:rd; mov.b64 D:rd, {%r6, %r5}", singles(vals64), func(a, _, _ uint64) uint64 { return bits.RotateLeft64(a, 32) }},
		{"mov.b64 {%h4, %h5, %h6, %h7}, A:rd; mov.b64 D:rd, {%h7, %h6, %h5, %h4}", singles(vals64), func(a, _, _ uint64) uint64 {
			return a>>48 | a>>16&0xffff0000 | a<<16&0xffff00000000 | a<<48
		}},
		{"mov.b32 D:f, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return a }},
		{"mov.u32 D:r, 0x80000000", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return 0x80000000 }},
		{"mov.u64 D:rd, -1", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return math.MaxUint64 }},
		{"mov.u32 D:r, 0b101", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return 5 }},
		{"mov.u32 D:r, 017", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return 15 }},
		{"mov.u32 D:r, WARP_SZ", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return 32 }},
		{"mov.f64 D:fd, 0d3FF8000000000000", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return math.Float64bits(1.5) }},
		{"mov.f32 D:f, 0f3FC00000", singles(vals32[:1]), func(_, _, _ uint64) uint64 { return uint64(math.Float32bits(1.5)) }},
		{"add.f64 D:fd, A:fd, 1.5", singles([]uint64{math.Float64bits(2)}), func(_, _, _ uint64) uint64 { return math.Float64bits(3.5) }},
	})
}
