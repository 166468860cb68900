package ptx

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// halfBits maps a value (by float64 bits) to its f16 or bf16 encoding,
// built by decoding all 65536 patterns.
func halfBits(ebits, mbits int) map[uint64]uint64 {
	out := map[uint64]uint64{}
	bias := 1<<(ebits-1) - 1
	for h := 0; h < 1<<16; h++ {
		sign := h >> (ebits + mbits) & 1
		e := h >> mbits & (1<<ebits - 1)
		m := h & (1<<mbits - 1)
		var v float64
		switch {
		case e == 1<<ebits-1 && m != 0:
			continue // NaN
		case e == 1<<ebits-1:
			v = math.Inf(1)
		case e == 0:
			v = math.Ldexp(float64(m), 1-bias-mbits)
		default:
			v = math.Ldexp(float64(m+1<<mbits), e-bias-mbits)
		}
		if sign == 1 {
			v = -v
		}
		out[db(v)] = uint64(h)
	}
	return out
}

var (
	f16Bits  = halfBits(5, 10)
	bf16Bits = halfBits(8, 7)
	f16Vals  = invert(f16Bits)
	bf16Vals = invert(bf16Bits)
)

func invert(m map[uint64]uint64) map[uint64]float64 {
	out := map[uint64]float64{}
	for v, h := range m {
		out[h] = bd(v)
	}
	return out
}

// halfValue decodes f16 (or bf16) bits; NaN patterns are absent.
func halfValue(vals map[uint64]float64, h uint64) float64 {
	if v, ok := vals[h]; ok {
		return v
	}
	return math.NaN()
}

// toHalfRef converts x to f16 (bf false) or bf16 bits under mode.
func toHalfRef(x float64, mode string, bf, satfinite bool) uint64 {
	if x != x {
		return 0x7fff
	}
	f, bits := format16, f16Bits
	if bf {
		f, bits = formatBF, bf16Bits
	}
	m := modes[mode]
	if mode == "rna" {
		m = big.ToNearestAway
	}
	v := roundOracle(bigOf(x), f, m)
	if satfinite && math.IsInf(v, 0) {
		v = math.Copysign(f.max, v)
	}
	return bits[db(v)]
}

func f2iRef(x float64, mode string, w int, signed bool) uint64 {
	if x != x {
		return 0
	}
	r := map[string]func(float64) float64{"rni": math.RoundToEven, "rzi": math.Trunc, "rmi": math.Floor, "rpi": math.Ceil}[mode](x)
	if signed {
		lo, hi := -math.Ldexp(1, w-1), math.Ldexp(1, w-1)
		switch {
		case r < lo:
			return uint64(1) << (w - 1)
		case r >= hi:
			return 1<<(w-1) - 1
		}
		v := new(big.Int)
		big.NewFloat(r).Int(v)
		return uint64(v.Int64()) & (1<<w - 1 | 1<<(w-1)) & mask(w)
	}
	if r <= 0 {
		return 0
	}
	if r >= math.Ldexp(1, w) {
		return mask(w)
	}
	v := new(big.Int)
	big.NewFloat(r).Int(v)
	return v.Uint64()
}

func TestCvtIntegers(t *testing.T) {
	var sat32 [][3]uint64
	for _, v := range vals32 {
		sat32 = append(sat32, [3]uint64{v, 0, 0})
	}
	checkOps(t, []opTest{
		{"cvt.s64.s32 D:rd, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(int64(s32(a))) }},
		{"cvt.u64.u32 D:rd, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(u32(a)) }},
		{"cvt.u64.s32 D:rd, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(int64(s32(a))) }},
		{"cvt.s64.u32 D:rd, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(u32(a)) }},
		{"cvt.u32.u64 D:r, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return uint64(uint32(a)) }},
		{"cvt.s32.s64 D:r, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return uint64(uint32(a)) }},
		{"cvt.u16.u32 D:h, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(uint16(a)) }},
		{"cvt.s32.s16 D:r, A:h", singles(vals16), func(a, _, _ uint64) uint64 { return w32(int32(int16(a))) }},
		{"cvt.u32.u16 D:r, A:h", singles(vals16), func(a, _, _ uint64) uint64 { return uint64(uint16(a)) }},
		{"cvt.s32.s8 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return w32(int32(int8(a))) }},
		{"cvt.u32.u8 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(uint8(a)) }},
		{"cvt.s16.s8 D:h, A:h", singles(vals16), func(a, _, _ uint64) uint64 { return uint64(uint16(int16(int8(a)))) }},
		// A signed result in a wider register is sign-extended to it.
		{"cvt.s8.s32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return w32(int32(int8(a))) }},
		{"cvt.s16.s32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return w32(int32(int16(a))) }},
		{"cvt.u8.s32 D:r, A:r", singles(vals32), func(a, _, _ uint64) uint64 { return uint64(uint8(a)) }},
		{"cvt.sat.s8.s32 D:r, A:r", sat32, func(a, _, _ uint64) uint64 { return w32(max(-128, min(127, s32(a)))) }},
		{"cvt.sat.u8.s32 D:r, A:r", sat32, func(a, _, _ uint64) uint64 { return uint64(max(0, min(255, s32(a)))) }},
		{"cvt.sat.s32.u32 D:r, A:r", sat32, func(a, _, _ uint64) uint64 { return uint64(min(math.MaxInt32, u32(a))) }},
		{"cvt.sat.u32.s32 D:r, A:r", sat32, func(a, _, _ uint64) uint64 { return uint64(max(0, s32(a))) }},
		{"cvt.sat.u16.u32 D:h, A:r", sat32, func(a, _, _ uint64) uint64 { return uint64(min(0xffff, u32(a))) }},
		{"cvt.sat.s32.s64 D:r, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return w32(int32(max(math.MinInt32, min(math.MaxInt32, int64(a))))) }},
		{"cvt.sat.u32.u64 D:r, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return min(a, math.MaxUint32) }},
		{"cvt.sat.u64.s64 D:rd, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return uint64(max(0, int64(a))) }},
		{"cvt.sat.s64.u64 D:rd, A:rd", singles(vals64), func(a, _, _ uint64) uint64 { return min(a, math.MaxInt64) }},
	})
}

func TestCvtFloatToInt(t *testing.T) {
	extra := []float64{2147483520, 2147483648, -2147483648, -2147483904, 4294967040, 4294967296, 0.5, -0.5, 1.5, -1.5, 2.5, 1e10,
		-1e10, 9.2e18, 9.3e18, 1.8e19, 1.9e19, -9.3e18, 32767.5, -32768.7, 65535.4, 255.5, -0.9}
	var c32, c64 []uint64
	for _, v := range f32vals {
		c32 = append(c32, fb(v))
	}
	for _, v := range extra {
		c32 = append(c32, fb(float32(v)))
		c64 = append(c64, db(v))
	}
	c64 = append(c64, f64cases()...)
	var tests []opTest
	for _, mode := range []string{"rni", "rzi", "rmi", "rpi"} {
		for _, d := range []struct {
			typ, reg string
			w        int
			signed   bool
		}{{"s32", "r", 32, true}, {"u32", "r", 32, false}, {"s64", "rd", 64, true}, {"u64", "rd", 64, false}, {"s16", "h", 16, true}, {"u16", "h", 16, false}} {
			tests = append(tests,
				opTest{"cvt." + mode + "." + d.typ + ".f32 D:" + d.reg + ", A:f", singles(c32), func(a, _, _ uint64) uint64 {
					return f2iRef(float64(bf(a)), mode, d.w, d.signed)
				}},
				opTest{"cvt." + mode + "." + d.typ + ".f64 D:" + d.reg + ", A:fd", singles(c64), func(a, _, _ uint64) uint64 {
					return f2iRef(bd(a), mode, d.w, d.signed)
				}})
		}
	}
	tests = append(tests,
		opTest{"cvt.rpi.ftz.s32.f32 D:r, A:f", singles(c32), func(a, _, _ uint64) uint64 { return f2iRef(float64(flush32(bf(a))), "rpi", 32, true) }},
		opTest{"cvt.rni.s8.f32 D:r, A:f", singles(c32), func(a, _, _ uint64) uint64 {
			return uint64(uint32(int32(int8(f2iRef(float64(bf(a)), "rni", 8, true)))))
		}},
		opTest{"cvt.rzi.u8.f32 D:r, A:f", singles(c32), func(a, _, _ uint64) uint64 { return f2iRef(float64(bf(a)), "rzi", 8, false) }},
	)
	checkOps(t, tests)
}

func TestCvtIntToFloat(t *testing.T) {
	extra32 := []uint64{16777217, 16777219, 0x7fffffbf, 0x7fffffc0, 0xffffff7f, 0xffffff80, 33554435}
	extra64 := []uint64{1<<53 + 1, 1<<53 + 3, 0x7ffffffffffffdff, 0x7ffffffffffffe00, 0xfffffffffffff7ff, 0xffffffffffffffff, 1<<63 + 1, 16777217}
	c32 := singles(append(append([]uint64{}, vals32...), extra32...))
	c64 := singles(append(append([]uint64{}, vals64...), extra64...))
	var tests []opTest
	for _, mode := range []string{"rn", "rz", "rm", "rp"} {
		m := modes[mode]
		toF := func(x *big.Float, f oracleFormat) float64 { return roundOracle(x, f, m) }
		tests = append(tests,
			opTest{"cvt." + mode + ".f32.s32 D:f, A:r", c32, func(a, _, _ uint64) uint64 { return fb(float32(toF(new(big.Float).SetInt64(int64(s32(a))), format32))) }},
			opTest{"cvt." + mode + ".f32.u32 D:f, A:r", c32, func(a, _, _ uint64) uint64 {
				return fb(float32(toF(new(big.Float).SetUint64(uint64(u32(a))), format32)))
			}},
			opTest{"cvt." + mode + ".f32.s64 D:f, A:rd", c64, func(a, _, _ uint64) uint64 { return fb(float32(toF(new(big.Float).SetInt64(int64(a)), format32))) }},
			opTest{"cvt." + mode + ".f32.u64 D:f, A:rd", c64, func(a, _, _ uint64) uint64 { return fb(float32(toF(new(big.Float).SetUint64(a), format32))) }},
			opTest{"cvt." + mode + ".f64.s64 D:fd, A:rd", c64, func(a, _, _ uint64) uint64 { return db(toF(new(big.Float).SetInt64(int64(a)), format64)) }},
			opTest{"cvt." + mode + ".f64.u64 D:fd, A:rd", c64, func(a, _, _ uint64) uint64 { return db(toF(new(big.Float).SetUint64(a), format64)) }},
			opTest{"cvt." + mode + ".f16.u32 D:h, A:r", c32, func(a, _, _ uint64) uint64 { return toHalfRef(float64(u32(a)), mode, false, false) }},
			opTest{"cvt." + mode + ".f16.s16 D:h, A:h", singles(vals16), func(a, _, _ uint64) uint64 { return toHalfRef(float64(int16(a)), mode, false, false) }},
		)
	}
	tests = append(tests,
		opTest{"cvt.rn.f64.s32 D:fd, A:r", c32, func(a, _, _ uint64) uint64 { return db(float64(s32(a))) }},
		opTest{"cvt.rn.f64.u16 D:fd, A:h", singles(vals16), func(a, _, _ uint64) uint64 { return db(float64(uint16(a))) }},
	)
	checkOps(t, tests)
}

func TestCvtFloatToFloat(t *testing.T) {
	halfEdge := []float64{65504, 65519, 65520, 65536, 1e-8, 0x1p-25, 0x1.8p-25, 0x1p-24, 0x1p-14, 0x1.ffcp-15, 1 + 0x1p-11, 1 + 3*0x1p-11,
		1 + 0x1p-8, 1 + 3*0x1p-8, 0x1.fep127, 0x1.ffp127, 0x1p-133, 0x1p-134, 0x1.8p-134, -65520, -1 - 0x1p-11, 3.0e-8, 2.9e-8}
	var cf, cd []uint64
	for _, v := range f32vals {
		cf = append(cf, fb(v))
		cd = append(cd, db(float64(v)))
	}
	for _, v := range halfEdge {
		cf = append(cf, fb(float32(v)))
		cd = append(cd, db(v))
	}
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 2000; i++ {
		x := math.Ldexp(r.Float64()*2-1, r.IntN(300)-150)
		cf = append(cf, fb(float32(x)))
		cd = append(cd, db(x))
	}
	cd = append(cd, f64cases()...)
	var tests []opTest
	for _, mode := range []string{"rn", "rz", "rm", "rp"} {
		tests = append(tests,
			opTest{"cvt." + mode + ".f32.f64 D:f, A:fd", singles(cd), func(a, _, _ uint64) uint64 {
				x := bd(a)
				if x != x {
					return 0x7fffffff
				}
				return fb(float32(roundOracle(bigOf(x), format32, modes[mode])))
			}},
			opTest{"cvt." + mode + ".f16.f32 D:h, A:f", singles(cf), func(a, _, _ uint64) uint64 { return toHalfRef(float64(bf(a)), mode, false, false) }},
			opTest{"cvt." + mode + ".f16.f64 D:h, A:fd", singles(cd), func(a, _, _ uint64) uint64 { return toHalfRef(bd(a), mode, false, false) }},
			opTest{"cvt." + mode + ".bf16.f32 D:h, A:f", singles(cf), func(a, _, _ uint64) uint64 { return toHalfRef(float64(bf(a)), mode, true, false) }},
			opTest{"cvt." + mode + ".bf16.f64 D:h, A:fd", singles(cd), func(a, _, _ uint64) uint64 { return toHalfRef(bd(a), mode, true, false) }},
		)
	}
	var h16 [][3]uint64
	for h := uint64(0); h < 1<<16; h += 7 {
		h16 = append(h16, [3]uint64{h, 0, 0})
	}
	h16 = append(h16, [3]uint64{0x7c00, 0, 0}, [3]uint64{0xfc00, 0, 0}, [3]uint64{0x7e00, 0, 0}, [3]uint64{0x0001, 0, 0}, [3]uint64{0x8000, 0, 0})
	halfToF32 := func(bits map[uint64]float64) func(a, _, _ uint64) uint64 {
		return func(a, _, _ uint64) uint64 { return canon32(float32(halfValue(bits, a))) }
	}
	tests = append(tests,
		opTest{"cvt.rna.f16.f32 D:h, A:f", singles(cf), func(a, _, _ uint64) uint64 { return toHalfRef(float64(bf(a)), "rna", false, false) }},
		opTest{"cvt.rn.satfinite.f16.f32 D:h, A:f", singles(cf), func(a, _, _ uint64) uint64 { return toHalfRef(float64(bf(a)), "rn", false, true) }},
		opTest{"cvt.rn.relu.bf16.f32 D:h, A:f", singles(cf), func(a, _, _ uint64) uint64 {
			h := toHalfRef(float64(bf(a)), "rn", true, false)
			if h&0x8000 != 0 && h != 0x7fff { // negative results, -0 included, become +0
				return 0
			}
			return h
		}},
		opTest{"cvt.rn.f16x2.f32 D:r, A:f, B:f", pairs(cf[:40], 0), func(a, b, _ uint64) uint64 {
			return toHalfRef(float64(bf(a)), "rn", false, false)<<16 | toHalfRef(float64(bf(b)), "rn", false, false)
		}},
		opTest{"cvt.rz.bf16x2.f32 D:r, A:f, B:f", pairs(cf[:40], 0), func(a, b, _ uint64) uint64 {
			return toHalfRef(float64(bf(a)), "rz", true, false)<<16 | toHalfRef(float64(bf(b)), "rz", true, false)
		}},
		opTest{"cvt.f32.f16 D:f, A:h", h16, halfToF32(f16Vals)},
		opTest{"cvt.f32.bf16 D:f, A:h", h16, halfToF32(bf16Vals)},
		opTest{"cvt.f64.f16 D:fd, A:h", h16, func(a, _, _ uint64) uint64 { return canon64(halfValue(f16Vals, a)) }},
		opTest{"cvt.f64.f32 D:fd, A:f", singles(cf), func(a, _, _ uint64) uint64 { return canon64(float64(bf(a))) }},
		opTest{"cvt.ftz.f64.f32 D:fd, A:f", singles(cf), func(a, _, _ uint64) uint64 { return canon64(float64(flush32(bf(a)))) }},
		opTest{"cvt.ftz.f32.f32 D:f, A:f", singles(cf), func(a, _, _ uint64) uint64 { return canon32(flush32(bf(a))) }},
		opTest{"cvt.sat.f32.f32 D:f, A:f", singles(cf), func(a, _, _ uint64) uint64 {
			x := bf(a)
			switch {
			case x != x || x <= 0:
				return 0
			case x > 1:
				return fb(1)
			}
			return a
		}},
		opTest{"cvt.rni.f32.f32 D:f, A:f", singles(cf), func(a, _, _ uint64) uint64 { return canon32(float32(math.RoundToEven(float64(bf(a))))) }},
		opTest{"cvt.rzi.f32.f32 D:f, A:f", singles(cf), func(a, _, _ uint64) uint64 { return canon32(float32(math.Trunc(float64(bf(a))))) }},
		opTest{"cvt.rmi.f64.f64 D:fd, A:fd", singles(cd), func(a, _, _ uint64) uint64 { return canon64(math.Floor(bd(a))) }},
		opTest{"cvt.rpi.f64.f64 D:fd, A:fd", singles(cd), func(a, _, _ uint64) uint64 { return canon64(math.Ceil(bd(a))) }},
	)
	checkOps(t, tests)
}

// TestRoundToMatchesGo checks the interpreter's integer rounding against
// Go's float32 conversion (round to nearest even) on random bits.
func TestRoundToMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 200000; i++ {
		x := math.Float64frombits(r.Uint64())
		if x != x {
			continue
		}
		want := uint64(math.Float32bits(float32(x)))
		if got := fromFloat64(x, fmtF32, rRN, false); got != want {
			t.Fatalf("fromFloat64(%v) = %#x, want %#x", x, got, want)
		}
		v := r.Uint64() >> r.IntN(64)
		if got, want := intToFloat(v, false, fmtF64, rRN), math.Float64bits(float64(v)); got != want {
			t.Fatalf("intToFloat(%d) = %#x, want %#x", v, got, want)
		}
	}
}
