package ptx

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// The float tests compare against an oracle that computes the exact
// result with math/big and rounds it to the format with integer
// arithmetic, independently of the interpreter's own rounding code.

// format32 and format64 describe binary32 and binary64 for the oracle:
// significand bits, the exponent of the smallest subnormal, and the
// largest finite value.
type oracleFormat struct {
	p    int
	qmin int
	max  float64
}

var (
	format32 = oracleFormat{24, -149, math.MaxFloat32}
	format64 = oracleFormat{53, -1074, math.MaxFloat64}
	format16 = oracleFormat{11, -24, 65504}
	formatBF = oracleFormat{8, -133, 0x1.fep127}
)

// roundOracle rounds the exact x to format f under mode.
func roundOracle(x *big.Float, f oracleFormat, mode big.RoundingMode) float64 {
	if x.Sign() == 0 {
		if x.Signbit() {
			return math.Copysign(0, -1)
		}
		return 0
	}
	if x.IsInf() {
		if x.Signbit() {
			return math.Inf(-1)
		}
		return math.Inf(1)
	}
	e := x.MantExp(nil) // |x| in [2^(e-1), 2^e)
	q := max(e-f.p, f.qmin)
	y := new(big.Float).SetMantExp(x, -q) // x / 2^q, exactly
	n, _ := y.Int(nil)                    // truncated toward zero
	frac := new(big.Float).Sub(y, new(big.Float).SetInt(n))
	half := frac.Cmp(big.NewFloat(0.5))
	negHalf := frac.Cmp(big.NewFloat(-0.5))
	one := big.NewInt(1)
	odd := n.Bit(0) == 1
	switch mode {
	case big.ToNearestEven:
		if half > 0 || half == 0 && odd {
			n.Add(n, one)
		} else if negHalf < 0 || negHalf == 0 && odd {
			n.Sub(n, one)
		}
	case big.ToNearestAway:
		if half >= 0 {
			n.Add(n, one)
		} else if negHalf <= 0 {
			n.Sub(n, one)
		}
	case big.ToNegativeInf:
		if frac.Sign() < 0 {
			n.Sub(n, one)
		}
	case big.ToPositiveInf:
		if frac.Sign() > 0 {
			n.Add(n, one)
		}
	}
	r, _ := new(big.Float).SetMantExp(new(big.Float).SetInt(n), q).Float64()
	neg := x.Signbit()
	if math.Abs(r) > f.max {
		switch {
		case mode == big.ToZero || mode == big.ToNegativeInf && !neg || mode == big.ToPositiveInf && neg:
			r = f.max
		default:
			r = math.Inf(1)
		}
		if neg {
			r = -r
		}
	}
	if r == 0 && neg {
		r = math.Copysign(0, -1)
	}
	return r
}

var modes = map[string]big.RoundingMode{"rn": big.ToNearestEven, "rz": big.ToZero, "rm": big.ToNegativeInf, "rp": big.ToPositiveInf}

func bigOf(x float64) *big.Float { return new(big.Float).SetFloat64(x) }

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsInf(x, 0) || x != x {
			return false
		}
	}
	return true
}

// exactOp is the exact (or, for div and sqrt, 600-bit) result of op.
func exactOp(op string, mode big.RoundingMode, a, b, c float64) *big.Float {
	z := new(big.Float).SetPrec(5000).SetMode(mode)
	switch op {
	case "add":
		return z.Add(bigOf(a), bigOf(b))
	case "sub":
		return z.Sub(bigOf(a), bigOf(b))
	case "mul":
		return z.Mul(bigOf(a), bigOf(b))
	case "fma":
		p := new(big.Float).SetPrec(5000).Mul(bigOf(a), bigOf(b))
		return z.Add(p, bigOf(c))
	case "div":
		return z.SetPrec(600).Quo(bigOf(a), bigOf(b))
	case "rcp":
		return z.SetPrec(600).Quo(bigOf(1), bigOf(a))
	case "sqrt":
		return z.SetPrec(600).Sqrt(bigOf(a))
	}
	panic(op)
}

// refFloat is the PTX result of op under mode for f32 (is64 false) or
// f64 operands.
func refFloat(op, mode string, is64 bool, a, b, c float64) float64 {
	var ieee float64 // the IEEE result, right for non-finite cases
	switch op {
	case "add":
		ieee = a + b
	case "sub":
		ieee = a - b
	case "mul":
		ieee = a * b
	case "fma":
		ieee = math.FMA(a, b, c)
	case "div":
		ieee = a / b
	case "rcp":
		ieee = 1 / a
	case "sqrt":
		ieee = math.Sqrt(a)
	}
	special := !finite(a, b, c) || ieee != ieee || op == "div" && b == 0 || op == "rcp" && a == 0 || op == "sqrt" && a < 0
	if special {
		if !is64 {
			return float64(float32(ieee))
		}
		return ieee
	}
	f := format64
	if !is64 {
		f = format32
	}
	// IEEE 754: an exact zero sum of operands of opposite signs is +0,
	// except when rounding down (-0); x + x keeps the sign of x
	// (math/big ignores the rounding mode here).
	x, y := a, b
	switch op {
	case "sub":
		y = -b
	case "fma":
		x, y = 1, c // the product's zeroness and sign, exactly
		if a == 0 || b == 0 {
			x = 0
		}
		if math.Signbit(a) != math.Signbit(b) {
			x = -x
		}
	}
	if (op == "add" || op == "sub" || op == "fma") && x == 0 && y == 0 {
		if math.Signbit(x) == math.Signbit(y) {
			return x
		}
		if mode == "rm" {
			return math.Copysign(0, -1)
		}
		return 0
	}
	return roundOracle(exactOp(op, modes[mode], a, b, c), f, modes[mode])
}

var f32vals = []float32{0, float32(math.Copysign(0, -1)), 1, -1, 0.5, 1.5, 2.5, -2.5, 3, 0.1, -0.3, 7, 1e-40, -1e-40, 0x1p-126,
	-0x1p-126, 0x1p-149, math.MaxFloat32, -math.MaxFloat32, 1e30, 1e-30, 16777216, 16777218, float32(math.Inf(1)),
	float32(math.Inf(-1)), float32(math.NaN()), 123.456, -7.25e-5, 0.99999994, 1.0000001, 3.4e38, 0x1.fffffep-127}

func f32cases() []uint64 {
	out := make([]uint64, len(f32vals))
	for i, v := range f32vals {
		out[i] = fb(v)
	}
	return out
}

var f64vals = []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 3, -7.5, 1e-310, -1e-310, 0x1p-1022, 0x1p-1074, math.MaxFloat64,
	-math.MaxFloat64, 1e300, 1e-300, 9007199254740993, math.Inf(1), math.Inf(-1), math.NaN(), 1 + 0x1p-52, 0.3333333333333333}

func f64cases() []uint64 {
	out := make([]uint64, len(f64vals))
	for i, v := range f64vals {
		out[i] = db(v)
	}
	return out
}

func TestFloatArithmeticRounding(t *testing.T) {
	var tests []opTest
	var fmaCases [][3]uint64
	small := []uint64{fb(1), fb(-1), fb(1.5), fb(0.1), fb(-0.3), fb(1e-40), fb(0x1p-126), fb(3.4e38), fb(16777218), fb(float32(math.Inf(1))), fb(float32(math.NaN())), fb(float32(math.Copysign(0, -1))), fb(7), fb(0.99999994)}
	fmaCases = triples(small)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		g := func() uint64 {
			e := r.IntN(60) - 30
			return fb(float32(math.Ldexp(r.Float64()*2-1, e)))
		}
		fmaCases = append(fmaCases, [3]uint64{g(), g(), g()})
	}
	for _, mode := range []string{"rn", "rz", "rm", "rp"} {
		for _, op := range []string{"add", "sub", "mul", "div"} {
			tests = append(tests, opTest{op + "." + mode + ".f32 D:f, A:f, B:f", pairs(f32cases(), 0), func(a, b, _ uint64) uint64 {
				return canon32(float32(refFloat(op, mode, false, float64(bf(a)), float64(bf(b)), 0)))
			}})
			tests = append(tests, opTest{op + "." + mode + ".f64 D:fd, A:fd, B:fd", pairs(f64cases(), 0), func(a, b, _ uint64) uint64 {
				return canon64(refFloat(op, mode, true, bd(a), bd(b), 0))
			}})
		}
		tests = append(tests,
			opTest{"fma." + mode + ".f32 D:f, A:f, B:f, C:f", fmaCases, func(a, b, c uint64) uint64 {
				return canon32(float32(refFloat("fma", mode, false, float64(bf(a)), float64(bf(b)), float64(bf(c)))))
			}},
			opTest{"fma." + mode + ".f64 D:fd, A:fd, B:fd, C:fd", triples(f64cases()[:14]), func(a, b, c uint64) uint64 {
				return canon64(refFloat("fma", mode, true, bd(a), bd(b), bd(c)))
			}},
			opTest{"sqrt." + mode + ".f32 D:f, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 {
				return canon32(float32(refFloat("sqrt", mode, false, float64(bf(a)), 0, 0)))
			}},
			opTest{"sqrt." + mode + ".f64 D:fd, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 {
				return canon64(refFloat("sqrt", mode, true, bd(a), 0, 0))
			}},
			opTest{"rcp." + mode + ".f32 D:f, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 {
				return canon32(float32(refFloat("rcp", mode, false, float64(bf(a)), 0, 0)))
			}},
			opTest{"rcp." + mode + ".f64 D:fd, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 {
				return canon64(refFloat("rcp", mode, true, bd(a), 0, 0))
			}},
		)
	}
	// Without a rounding modifier add, sub and mul round to nearest; mad.f32 is fma.rn.
	tests = append(tests,
		opTest{"add.f32 D:f, A:f, B:f", pairs(f32cases(), 0), func(a, b, _ uint64) uint64 { return canon32(bf(a) + bf(b)) }},
		opTest{"mul.f32 D:f, A:f, B:f", pairs(f32cases(), 0), func(a, b, _ uint64) uint64 { return canon32(bf(a) * bf(b)) }},
		opTest{"mad.f32 D:f, A:f, B:f, C:f", fmaCases, func(a, b, c uint64) uint64 {
			return canon32(float32(refFloat("fma", "rn", false, float64(bf(a)), float64(bf(b)), float64(bf(c)))))
		}},
		opTest{"mad.rn.f64 D:fd, A:fd, B:fd, C:fd", triples(f64cases()[:10]), func(a, b, c uint64) uint64 { return canon64(math.FMA(bd(a), bd(b), bd(c))) }},
	)
	checkOps(t, tests)
}

// TestFmaDoubleRounding is the case where float32(math.FMA(a, b, c))
// rounds twice and is wrong: a*b = 1 + 2^-24 exactly (a float32 halfway
// point) and c = 2^-80 pushes the exact sum just above it, so the
// correct result is 1 + 2^-23; the float64 fma drops c and the tie then
// rounds to even, 1.
func TestFmaDoubleRounding(t *testing.T) {
	a, b, c := float32(24929.0/32768), float32(673.0/512), float32(0x1p-80)
	if float64(a)*float64(b) != 1+0x1p-24 {
		t.Fatal("bad test constants")
	}
	naive := float32(math.FMA(float64(a), float64(b), float64(c)))
	want := float32(1 + 0x1p-23)
	if naive == want {
		t.Fatal("naive double rounding is right here; the test proves nothing")
	}
	if got := fma32(a, b, c); got != want {
		t.Errorf("fma32 = %v, want %v", got, want)
	}
	cases := [][3]uint64{{fb(a), fb(b), fb(c)}, {fb(-a), fb(b), fb(-c)}, {fb(a), fb(b), fb(-c)}}
	checkOps(t, []opTest{{"fma.rn.f32 D:f, A:f, B:f, C:f", cases, func(a, b, c uint64) uint64 {
		return canon32(float32(refFloat("fma", "rn", false, float64(bf(a)), float64(bf(b)), float64(bf(c)))))
	}}})
	// Random search: the naive method fails somewhere, fma32 nowhere.
	r := rand.New(rand.NewPCG(3, 4))
	naiveWrong := 0
	for i := 0; i < 200000; i++ {
		a := float32(1 + float64(r.IntN(1<<12))*0x1p-12)
		b := float32(1 + float64(r.IntN(1<<12))*0x1p-12)
		c := float32(math.Ldexp(float64(r.IntN(1<<24)), -r.IntN(40)-60))
		if r.IntN(2) == 0 {
			c = -c
		}
		want := float32(refFloat("fma", "rn", false, float64(a), float64(b), float64(c)))
		if fma32(a, b, c) != want {
			t.Fatalf("fma32(%v, %v, %v) = %v, want %v", a, b, c, fma32(a, b, c), want)
		}
		if float32(math.FMA(float64(a), float64(b), float64(c))) != want {
			naiveWrong++
		}
	}
	if naiveWrong == 0 {
		t.Error("the search found no double-rounding case")
	}
	t.Logf("naive float32(math.FMA) was wrong in %d of 200000 cases", naiveWrong)
}

func minRef(a, b float32) uint64 {
	switch {
	case a != a && b != b:
		return 0x7fffffff
	case a != a:
		return fb(b)
	case b != b:
		return fb(a)
	case a == 0 && b == 0:
		if math.Signbit(float64(a)) {
			return fb(a)
		}
		return fb(b)
	case a < b:
		return fb(a)
	}
	return fb(b)
}

func maxRef(a, b float32) uint64 {
	switch {
	case a != a && b != b:
		return 0x7fffffff
	case a != a:
		return fb(b)
	case b != b:
		return fb(a)
	case a == 0 && b == 0:
		if math.Signbit(float64(a)) {
			return fb(b)
		}
		return fb(a)
	case a > b:
		return fb(a)
	}
	return fb(b)
}

func flush32(x float32) float32 {
	if x != 0 && math.Abs(float64(x)) < 0x1p-126 {
		return float32(math.Copysign(0, float64(x)))
	}
	return x
}

func TestFloatMisc(t *testing.T) {
	f := f32cases()
	approx := func(fn func(float64) float64) func(a, _, _ uint64) uint64 {
		return func(a, _, _ uint64) uint64 { return canon32(float32(fn(float64(bf(a))))) }
	}
	approxFtz := func(fn func(float64) float64) func(a, _, _ uint64) uint64 {
		return func(a, _, _ uint64) uint64 { return canon32(flush32(float32(fn(float64(flush32(bf(a))))))) }
	}
	sat := func(x float32) float32 { // NaN and -0 saturate to +0
		switch {
		case x != x || x <= 0:
			return 0
		case x > 1:
			return 1
		}
		return x
	}
	checkOps(t, []opTest{
		{"min.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return minRef(bf(a), bf(b)) }},
		{"max.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return maxRef(bf(a), bf(b)) }},
		{"min.ftz.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return minRef(flush32(bf(a)), flush32(bf(b))) }},
		{"max.NaN.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 {
			if bf(a) != bf(a) || bf(b) != bf(b) {
				return 0x7fffffff
			}
			return maxRef(bf(a), bf(b))
		}},
		{"min.f64 D:fd, A:fd, B:fd", pairs(f64cases(), 0), func(a, b, _ uint64) uint64 {
			x, y := bd(a), bd(b)
			switch {
			case x != x && y != y:
				return 0x7fffffffffffffff
			case x != x:
				return b
			case y != y:
				return a
			case x == y && math.Signbit(x):
				return a
			case x == y:
				return b
			case x < y:
				return a
			}
			return b
		}},
		{"neg.f32 D:f, A:f", singles(f), func(a, _, _ uint64) uint64 { return a ^ 0x80000000 }},
		{"abs.f32 D:f, A:f", singles(f), func(a, _, _ uint64) uint64 { return a &^ 0x80000000 }},
		{"neg.f64 D:fd, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 { return a ^ 1<<63 }},
		{"abs.ftz.f32 D:f, A:f", singles(f), func(a, _, _ uint64) uint64 { return fb(flush32(bf(a))) &^ 0x80000000 }},
		{"copysign.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return b&0x7fffffff | a&0x80000000 }},
		{"copysign.f64 D:fd, A:fd, B:fd", pairs(f64cases(), 0), func(a, b, _ uint64) uint64 { return b&^(1<<63) | a&(1<<63) }},
		{"add.ftz.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return canon32(flush32(flush32(bf(a)) + flush32(bf(b)))) }},
		{"mul.rn.ftz.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return canon32(flush32(flush32(bf(a)) * flush32(bf(b)))) }},
		{"add.sat.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return fb(sat(bf(a) + bf(b))) }},
		{"fma.rn.sat.f32 D:f, A:f, B:f, 0f3F000000", pairs(f, 0), func(a, b, _ uint64) uint64 {
			return fb(sat(float32(refFloat("fma", "rn", false, float64(bf(a)), float64(bf(b)), 0.5))))
		}},
		{"ex2.approx.f32 D:f, A:f", singles(f), approx(math.Exp2)},
		{"ex2.approx.ftz.f32 D:f, A:f", singles(f), approxFtz(math.Exp2)},
		{"lg2.approx.f32 D:f, A:f", singles(f), approx(math.Log2)},
		{"lg2.approx.ftz.f32 D:f, A:f", singles(f), approxFtz(math.Log2)},
		{"rsqrt.approx.f32 D:f, A:f", singles(f), approx(func(x float64) float64 { return 1 / math.Sqrt(x) })},
		{"rsqrt.approx.f64 D:fd, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 { return canon64(1 / math.Sqrt(bd(a))) }},
		{"sqrt.approx.f32 D:f, A:f", singles(f), approx(math.Sqrt)},
		{"rcp.approx.f32 D:f, A:f", singles(f), approx(func(x float64) float64 { return 1 / x })},
		{"rcp.approx.ftz.f64 D:fd, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 {
			x := bd(a)
			if x != 0 && math.Abs(x) < 0x1p-1022 {
				x = math.Copysign(0, x)
			}
			q := 1 / x
			if q != 0 && math.Abs(q) < 0x1p-1022 {
				q = math.Copysign(0, q)
			}
			return canon64(q)
		}},
		{"sin.approx.f32 D:f, A:f", singles(f), approx(math.Sin)},
		{"cos.approx.ftz.f32 D:f, A:f", singles(f), approxFtz(math.Cos)},
		{"tanh.approx.f32 D:f, A:f", singles(f), approx(math.Tanh)},
		{"div.approx.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 { return canon32(float32(float64(bf(a)) / float64(bf(b)))) }},
		{"div.full.ftz.f32 D:f, A:f, B:f", pairs(f, 0), func(a, b, _ uint64) uint64 {
			return canon32(flush32(float32(float64(flush32(bf(a))) / float64(flush32(bf(b))))))
		}},
	})
}

func TestFloatCompare(t *testing.T) {
	cmps := map[string]func(x, y float64) bool{
		"eq":  func(x, y float64) bool { return x == y },
		"ne":  func(x, y float64) bool { return x == x && y == y && x != y },
		"lt":  func(x, y float64) bool { return x < y },
		"le":  func(x, y float64) bool { return x <= y },
		"gt":  func(x, y float64) bool { return x > y },
		"ge":  func(x, y float64) bool { return x >= y },
		"equ": func(x, y float64) bool { return x != x || y != y || x == y },
		"neu": func(x, y float64) bool { return x != y },
		"ltu": func(x, y float64) bool { return !(x >= y) },
		"leu": func(x, y float64) bool { return !(x > y) },
		"gtu": func(x, y float64) bool { return !(x <= y) },
		"geu": func(x, y float64) bool { return !(x < y) },
		"num": func(x, y float64) bool { return x == x && y == y },
		"nan": func(x, y float64) bool { return x != x || y != y },
	}
	var tests []opTest
	for name, fn := range cmps {
		tests = append(tests,
			opTest{"setp." + name + ".f32 D:p, A:f, B:f", pairs(f32cases(), 0), func(a, b, _ uint64) uint64 { return b2(fn(float64(bf(a)), float64(bf(b)))) }},
			opTest{"setp." + name + ".ftz.f32 D:p, A:f, B:f", pairs(f32cases(), 0), func(a, b, _ uint64) uint64 {
				return b2(fn(float64(flush32(bf(a))), float64(flush32(bf(b)))))
			}},
			opTest{"setp." + name + ".f64 D:p, A:fd, B:fd", pairs(f64cases(), 0), func(a, b, _ uint64) uint64 { return b2(fn(bd(a), bd(b))) }},
		)
	}
	tests = append(tests,
		opTest{"testp.finite.f32 D:p, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 { return b2(finite(float64(bf(a)))) }},
		opTest{"testp.infinite.f32 D:p, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 { return b2(math.IsInf(float64(bf(a)), 0)) }},
		opTest{"testp.number.f64 D:p, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 { return b2(bd(a) == bd(a)) }},
		opTest{"testp.notanumber.f32 D:p, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 { return b2(bf(a) != bf(a)) }},
		opTest{"testp.normal.f32 D:p, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 {
			x := math.Abs(float64(bf(a)))
			return b2(finite(x) && x >= 0x1p-126)
		}},
		opTest{"testp.subnormal.f32 D:p, A:f", singles(f32cases()), func(a, _, _ uint64) uint64 {
			x := math.Abs(float64(bf(a)))
			return b2(x != 0 && x < 0x1p-126)
		}},
		opTest{"testp.subnormal.f64 D:p, A:fd", singles(f64cases()), func(a, _, _ uint64) uint64 {
			x := math.Abs(bd(a))
			return b2(x != 0 && x < 0x1p-1022)
		}},
	)
	checkOps(t, tests)
}
