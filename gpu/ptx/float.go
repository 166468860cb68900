package ptx

import (
	"math"
	"math/big"
	"math/bits"
)

// Rounding modes (.rn .rz .rm .rp, and .rna for conversions to f16).
const (
	rNone uint8 = iota
	rRN
	rRZ
	rRM
	rRP
	rRNA
)

const (
	canonNaN32 = 0x7fffffff
	canonNaN64 = 0x7fffffffffffffff
)

func f32(v uint64) float32 { return math.Float32frombits(uint32(v)) }
func f64(v uint64) float64 { return math.Float64frombits(v) }

// res32 and res64 are a float result as register bits: NaN results are
// the canonical NaN, as NVIDIA GPUs produce.
func res32(x float32) uint64 {
	if x != x {
		return canonNaN32
	}
	return uint64(math.Float32bits(x))
}

func res64(x float64) uint64 {
	if x != x {
		return canonNaN64
	}
	return math.Float64bits(x)
}

// ftz32 flushes a subnormal to zero of the same sign (.ftz).
func ftz32(x float32) float32 {
	u := math.Float32bits(x)
	if u&0x7f800000 == 0 {
		return math.Float32frombits(u & 0x80000000)
	}
	return x
}

func ftz64(x float64) float64 {
	u := math.Float64bits(x)
	if u&0x7ff0000000000000 == 0 {
		return math.Float64frombits(u & (1 << 63))
	}
	return x
}

// sat32 clamps to [0, 1], NaN to 0 (.sat).
func sat32(x float32) float32 {
	switch {
	case x != x || x <= 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}

func sat64(x float64) float64 {
	switch {
	case x != x || x <= 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}

// fma32 is a*b+c rounded once to the nearest float32 (fma.rn.f32).
// The product of two float32s is exact in float64; the sum p+c is
// rounded to float64 with its exact error found by TwoSum, and made
// round-to-odd (the last bit set when inexact), which makes the final
// rounding to float32 correct: plain float32(math.FMA(a, b, c)) rounds
// twice and is wrong when the float64 result lands on a float32 halfway
// point.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	z := float64(c)
	s := p + z
	u := math.Float64bits(s)
	if u&1 != 0 || u&(0x7ff<<52) == 0x7ff<<52 {
		return float32(s) // already odd, or infinite or NaN
	}
	bb := s - p
	if e := (p - (s - bb)) + (z - bb); e != 0 {
		if (e > 0) == (s > 0) {
			u++ // away from zero
		} else {
			u--
		}
		s = math.Float64frombits(u)
	}
	return float32(s)
}

// minF and maxF follow PTX min/max: a NaN operand yields the other one
// (the canonical NaN if both are NaN), and -0 is less than +0.
func minF(a, b float64) float64 {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	case a == b:
		if math.Signbit(a) {
			return a
		}
		return b
	case a < b:
		return a
	}
	return b
}

func maxF(a, b float64) float64 {
	switch {
	case a != a:
		return b
	case b != b:
		return a
	case a == b:
		if math.Signbit(a) {
			return b
		}
		return a
	case a > b:
		return a
	}
	return b
}

// Float sub-operations of opFloat.
const (
	fAdd uint8 = iota
	fSub
	fMul
	fFma
	fDiv
	fSqrt
	fRcp
	fDivApprox
	fRcpApprox
	fSqrtApprox
	fRsqrt
	fEx2
	fLg2
	fSin
	fCos
	fTanh
	fMin
	fMax
	fNeg
	fAbs
	fMinNaN
	fMaxNaN
)

// Flags of an instruction.
const (
	flFtz uint8 = 1 << iota
	flSat
	flSigned
	flCC     // writes the carry flag
	flNegC   // setp/bar.red: the predicate operand is negated
	flRelu   // cvt .relu
	flSatFin // cvt .satfinite
	flIntRnd // cvt: integer rounding (.rni ...)
)

// floatOp computes one f32 (is64 false) or f64 operation with PTX's
// rounding, .ftz and .sat; a, b, c are register bits.
func floatOp(sub, rnd, flags uint8, is64 bool, a, b, c uint64) uint64 {
	ftz := flags&flFtz != 0
	if !is64 {
		x, y, z := f32(a), f32(b), f32(c)
		if ftz {
			x, y, z = ftz32(x), ftz32(y), ftz32(z)
		}
		var q float32
		switch sub {
		case fAdd:
			q = x + y
		case fSub:
			q = x - y
		case fMul:
			q = x * y
		case fFma:
			q = fma32(x, y, z)
		case fDiv:
			q = x / y
		case fSqrt:
			q = float32(math.Sqrt(float64(x)))
		case fRcp:
			q = 1 / x
		case fDivApprox:
			q = float32(float64(x) / float64(y))
		case fRcpApprox:
			q = float32(1 / float64(x))
		case fSqrtApprox:
			q = float32(math.Sqrt(float64(x)))
		case fRsqrt:
			q = float32(1 / math.Sqrt(float64(x)))
		case fEx2:
			q = float32(math.Exp2(float64(x)))
		case fLg2:
			q = float32(math.Log2(float64(x)))
		case fSin:
			q = float32(math.Sin(float64(x)))
		case fCos:
			q = float32(math.Cos(float64(x)))
		case fTanh:
			q = float32(math.Tanh(float64(x)))
		case fMin:
			q = float32(minF(float64(x), float64(y)))
		case fMax:
			q = float32(maxF(float64(x), float64(y)))
		case fMinNaN, fMaxNaN:
			if x != x || y != y {
				return canonNaN32
			}
			if sub == fMinNaN {
				q = float32(minF(float64(x), float64(y)))
			} else {
				q = float32(maxF(float64(x), float64(y)))
			}
		case fNeg:
			q = -x
		case fAbs:
			q = float32(math.Abs(float64(x)))
		}
		if rnd > rRN && q == q {
			q = float32(directed(sub, rnd, false, float64(x), float64(y), float64(z), float64(q)))
		}
		if ftz {
			q = ftz32(q)
		}
		if flags&flSat != 0 {
			q = sat32(q)
		}
		if sub == fNeg || sub == fAbs {
			return uint64(math.Float32bits(q))
		}
		return res32(q)
	}
	x, y, z := f64(a), f64(b), f64(c)
	if ftz {
		x, y, z = ftz64(x), ftz64(y), ftz64(z)
	}
	var q float64
	switch sub {
	case fAdd:
		q = x + y
	case fSub:
		q = x - y
	case fMul:
		q = x * y
	case fFma:
		q = math.FMA(x, y, z)
	case fDiv, fDivApprox:
		q = x / y
	case fSqrt, fSqrtApprox:
		q = math.Sqrt(x)
	case fRcp, fRcpApprox:
		q = 1 / x
	case fRsqrt:
		q = 1 / math.Sqrt(x)
	case fEx2:
		q = math.Exp2(x)
	case fLg2:
		q = math.Log2(x)
	case fSin:
		q = math.Sin(x)
	case fCos:
		q = math.Cos(x)
	case fTanh:
		q = math.Tanh(x)
	case fMin:
		q = minF(x, y)
	case fMax:
		q = maxF(x, y)
	case fMinNaN, fMaxNaN:
		if x != x || y != y {
			return canonNaN64
		}
		if sub == fMinNaN {
			q = minF(x, y)
		} else {
			q = maxF(x, y)
		}
	case fNeg:
		q = -x
	case fAbs:
		q = math.Abs(x)
	}
	if rnd > rRN && q == q {
		q = directed(sub, rnd, true, x, y, z, q)
	}
	if ftz {
		q = ftz64(q)
	}
	if flags&flSat != 0 {
		q = sat64(q)
	}
	if sub == fNeg || sub == fAbs {
		return math.Float64bits(q)
	}
	return res64(q)
}

// directed turns q, the round-to-nearest result of sub on x, y, z (f32
// values held exactly in float64 when !is64), into the result under
// rounding mode rnd (.rz .rm .rp): the sign of q - exact is found
// exactly with math/big, and q moves one ulp when it lies on the wrong
// side.
func directed(sub, rnd uint8, is64 bool, x, y, z, q float64) float64 {
	finite := func(v ...float64) bool {
		for _, f := range v {
			if math.IsInf(f, 0) || f != f {
				return false
			}
		}
		return true
	}
	bf := func(f float64) *big.Float { return new(big.Float).SetFloat64(f) }
	const prec = 4500 // enough for an exact sum of float64s across the exponent range
	dir := 0          // sign of q - exact
	var addends [2]float64
	add := false
	switch sub {
	case fAdd, fSub, fMul, fFma:
		var ops []float64
		switch sub {
		case fAdd, fSub:
			ops = []float64{x, y}
		default:
			ops = []float64{x, y, z}
			if sub == fMul {
				ops = ops[:2]
			}
		}
		if !finite(ops...) {
			return q
		}
		if math.IsInf(q, 0) {
			dir = int(math.Copysign(1, q))
			break
		}
		e := new(big.Float).SetPrec(prec)
		switch sub {
		case fAdd:
			e.Add(bf(x), bf(y))
			addends, add = [2]float64{x, y}, true
		case fSub:
			e.Sub(bf(x), bf(y))
			addends, add = [2]float64{x, -y}, true
		case fMul:
			e.Mul(bf(x), bf(y))
		case fFma:
			e.Mul(bf(x), bf(y))
			e.Add(e, bf(z))
			addends, add = [2]float64{x * y, z}, true
			if x == 0 || y == 0 {
				addends[0] = math.Copysign(0, x) * math.Copysign(1, y)
			}
		}
		dir = bf(q).Cmp(e)
	case fDiv, fRcp:
		if sub == fRcp {
			x, y = 1, x
		}
		if !finite(x, y) || y == 0 {
			return q
		}
		if math.IsInf(q, 0) {
			dir = int(math.Copysign(1, q))
			break
		}
		// sign(q - x/y) = sign(q*y - x) * sign(y)
		p := new(big.Float).SetPrec(prec).Mul(bf(q), bf(y))
		dir = p.Cmp(bf(x))
		if y < 0 {
			dir = -dir
		}
	case fSqrt:
		if !finite(x) || x < 0 {
			return q
		}
		p := new(big.Float).SetPrec(prec).Mul(bf(q), bf(q))
		dir = p.Cmp(bf(x))
	default:
		return q
	}
	if dir == 0 {
		if add && q == 0 && rnd == rRM && !(addends[0] == 0 && addends[1] == 0 && math.Signbit(addends[0]) == math.Signbit(addends[1])) {
			return math.Copysign(0, -1) // an exact zero sum is -0 when rounding down
		}
		return q
	}
	step := func(toward float64) float64 {
		if is64 {
			return math.Nextafter(q, toward)
		}
		return float64(math.Nextafter32(float32(q), float32(toward)))
	}
	switch rnd {
	case rRZ:
		if dir > 0 && q > 0 || dir < 0 && q < 0 {
			return step(0)
		}
	case rRM:
		if dir > 0 {
			return step(math.Inf(-1))
		}
	case rRP:
		if dir < 0 {
			return step(math.Inf(1))
		}
	}
	return q
}

// ffmt is a binary floating-point format: exponent and fraction bits.
type ffmt struct{ ebits, mbits uint }

var (
	fmtF16  = ffmt{5, 10}
	fmtBF16 = ffmt{8, 7}
	fmtF32  = ffmt{8, 23}
	fmtF64  = ffmt{11, 52}
)

func (f ffmt) nan() uint64 { return mask(int(f.ebits + f.mbits)) } // 0x7fff, 0x7fffffff, ...
func (f ffmt) inf() uint64 { return mask(int(f.ebits)) << f.mbits }

// roundTo rounds (-1)^neg × m × 2^e to format f with rounding mode rnd
// and returns its bits. satfinite makes overflow the largest finite
// value instead of infinity.
func roundTo(neg bool, m uint64, e int, f ffmt, rnd uint8, satfinite bool) uint64 {
	var sign uint64
	if neg {
		sign = 1 << (f.ebits + f.mbits)
	}
	if m == 0 {
		return sign
	}
	bias := 1<<(f.ebits-1) - 1
	emin := 1 - bias
	ex := bits.Len64(m) - 1 + e // floor(log2 |x|)
	if ex < emin {
		ex = emin
	}
	s := ex - int(f.mbits) - e // shift that leaves mbits+1 bits (fewer for subnormals)
	var n uint64
	up := false
	if s <= 0 {
		n = m << uint(-s)
	} else {
		var rem, half uint64
		above := false // rem > half, when half does not fit
		switch {
		case s > 64:
			n, rem = 0, m // rem < half
		case s == 64:
			n, rem, half = 0, m, 1<<63
			above = m > half
		default:
			n, rem, half = m>>uint(s), m&(1<<uint(s)-1), 1<<uint(s-1)
			above = rem > half
		}
		tie := s <= 64 && rem == half
		inexact := rem != 0
		switch rnd {
		case rRN:
			up = above || tie && n&1 == 1
		case rRNA:
			up = above || tie
		case rRP:
			up = inexact && !neg
		case rRM:
			up = inexact && neg
		}
	}
	if up {
		n++
	}
	v := uint64(ex+bias-1)<<f.mbits + n
	if v >= f.inf() {
		maxFinite := f.inf() - 1
		switch {
		case satfinite || rnd == rRZ || rnd == rRP && neg || rnd == rRM && !neg:
			v = maxFinite
		default:
			v = f.inf()
		}
	}
	return sign | v
}

// decompose splits a finite float64 into sign, integer mantissa and
// exponent.
func decompose(x float64) (neg bool, m uint64, e int) {
	u := math.Float64bits(x)
	neg = u>>63 != 0
	ef := int(u >> 52 & 0x7ff)
	m = u & (1<<52 - 1)
	if ef == 0 {
		return neg, m, -1074
	}
	return neg, m | 1<<52, ef - 1075
}

// fromFloat64 rounds x to format f (cvt.rn.f16.f32, cvt.rz.f32.f64, ...).
func fromFloat64(x float64, f ffmt, rnd uint8, satfinite bool) uint64 {
	if x != x {
		return f.nan()
	}
	if math.IsInf(x, 0) {
		v := f.inf()
		if satfinite {
			v--
		}
		if x < 0 {
			v |= 1 << (f.ebits + f.mbits)
		}
		return v
	}
	neg, m, e := decompose(x)
	return roundTo(neg, m, e, f, rnd, satfinite)
}

// toFloat64 is the value of bits v of format f (exact).
func toFloat64(v uint64, f ffmt) float64 {
	sign := v >> (f.ebits + f.mbits) & 1
	ef := int(v >> f.mbits & mask(int(f.ebits)))
	frac := v & mask(int(f.mbits))
	bias := 1<<(f.ebits-1) - 1
	var x float64
	switch {
	case ef == int(mask(int(f.ebits))):
		if frac != 0 {
			return math.NaN()
		}
		x = math.Inf(1)
	case ef == 0:
		x = math.Ldexp(float64(frac), 1-bias-int(f.mbits))
	default:
		x = math.Ldexp(float64(frac|1<<f.mbits), ef-bias-int(f.mbits))
	}
	if sign != 0 {
		x = -x
	}
	return x
}

// roundInt rounds to an integral value (.rni .rzi .rmi .rpi).
func roundInt(x float64, rnd uint8) float64 {
	switch rnd {
	case rRZ:
		return math.Trunc(x)
	case rRM:
		return math.Floor(x)
	case rRP:
		return math.Ceil(x)
	}
	return math.RoundToEven(x)
}

// floatToInt converts to an integer type of bits width: rounded by rnd,
// saturated to the type's range, NaN to 0 (PTX's float-to-integer cvt).
func floatToInt(x float64, rnd uint8, bitsW int, signed bool) uint64 {
	if x != x {
		return 0
	}
	r := roundInt(x, rnd)
	if signed {
		lim := math.Ldexp(1, bitsW-1)
		switch {
		case r >= lim:
			return mask(bitsW - 1)
		case r < -lim:
			return (1 << uint(bitsW-1)) & mask(bitsW)
		}
		return uint64(int64(r)) & mask(bitsW)
	}
	if r <= 0 {
		return 0
	}
	if r >= math.Ldexp(1, bitsW) {
		return mask(bitsW)
	}
	return uint64(r)
}

// intToFloat rounds an integer (sign-extended if signed) to format f.
func intToFloat(v uint64, signed bool, f ffmt, rnd uint8) uint64 {
	neg := false
	if signed && int64(v) < 0 {
		neg, v = true, -v
	}
	return roundTo(neg, v, 0, f, rnd, false)
}
