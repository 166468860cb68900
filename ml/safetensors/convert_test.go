package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// torchGolden holds float32 bit patterns and what PyTorch 1.13 (Debian's
// python3-torch) produced for them with .to(torch.bfloat16) and
// .to(torch.float16): rounding ties, carries into the exponent, overflow to
// infinity, float16 subnormals and the subnormal/normal boundary, NaN and
// infinities. For NaN inputs the vectorized PyTorch bfloat16 path yields
// 0xFFFF while its scalar path yields 0x7FC0; both are quiet NaNs and only
// NaN-ness is compared for them.
var torchGolden = []struct {
	f32        uint32
	bf16, fp16 uint16
}{
	{0x00000000, 0x0000, 0x0000},
	{0x80000000, 0x8000, 0x8000},
	{0x3F800000, 0x3F80, 0x3C00},
	{0xBF800000, 0xBF80, 0xBC00},
	{0x3F808000, 0x3F80, 0x3C04},
	{0x3F818000, 0x3F82, 0x3C0C},
	{0x3F808001, 0x3F81, 0x3C04},
	{0x3F80FFFF, 0x3F81, 0x3C08},
	{0x7F7FFFFF, 0x7F80, 0x7C00},
	{0x7F7F8000, 0x7F80, 0x7C00},
	{0x7F7F7FFF, 0x7F7F, 0x7C00},
	{0x7F800000, 0x7F80, 0x7C00},
	{0xFF800000, 0xFF80, 0xFC00},
	{0x7FC00000, 0xFFFF, 0x7E00},
	{0xFFC00001, 0xFFFF, 0xFE00},
	{0x7F800001, 0xFFFF, 0x7E00},
	{0x00000001, 0x0000, 0x0000},
	{0x00008000, 0x0000, 0x0000},
	{0x00018000, 0x0002, 0x0000},
	{0x007FFFFF, 0x0080, 0x0000},
	{0x00800000, 0x0080, 0x0000},
	{0x33800000, 0x3380, 0x0001},
	{0x33000000, 0x3300, 0x0000},
	{0x33000001, 0x3300, 0x0001},
	{0x33C00000, 0x33C0, 0x0002},
	{0x387FC000, 0x3880, 0x03FF},
	{0x38800000, 0x3880, 0x0400},
	{0x477FE000, 0x4780, 0x7BFF},
	{0x477FEFFF, 0x4780, 0x7BFF},
	{0x477FF000, 0x4780, 0x7C00},
	{0x47800000, 0x4780, 0x7C00},
	{0x3EAAAAAB, 0x3EAB, 0x3555},
	{0x40490FDB, 0x4049, 0x4248},
	{0xC2F6E979, 0xC2F7, 0xD7B7},
	{0x2F800000, 0x2F80, 0x0000},
	{0x38000000, 0x3800, 0x0200},
	{0x387FE000, 0x3880, 0x0400},
	{0x3C000000, 0x3C00, 0x2000},
	{0x3C001000, 0x3C00, 0x2000},
	{0x3C003000, 0x3C00, 0x2002},
}

func TestConversionMatchesPyTorch(t *testing.T) {
	for _, g := range torchGolden {
		f := math.Float32frombits(g.f32)
		bf := F32ToBF16(f)
		if f != f {
			if bf != 0x7FC0 {
				t.Errorf("F32ToBF16(%#08x) = %#04x, want the canonical NaN 0x7FC0", g.f32, bf)
			}
		} else if bf != g.bf16 {
			t.Errorf("F32ToBF16(%#08x = %g) = %#04x, PyTorch gives %#04x", g.f32, f, bf, g.bf16)
		}
		if h := F32ToF16(f); h != g.fp16 {
			t.Errorf("F32ToF16(%#08x = %g) = %#04x, PyTorch gives %#04x", g.f32, f, h, g.fp16)
		}
	}
}

// Every half and bfloat16 value widens exactly and narrows back to itself.
func TestHalfRoundTripExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if isF16NaN(h) {
			if f == f {
				t.Fatalf("F16ToF32(%#04x) = %g, want NaN", h, f)
			}
			continue
		}
		if want := f16Value(h); float64(f) != want {
			t.Fatalf("F16ToF32(%#04x) = %g, want %g", h, f, want)
		}
		if back := F32ToF16(f); back != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}

		f = BF16ToF32(h)
		if f != f {
			if h&0x7F80 != 0x7F80 || h&0x7F == 0 {
				t.Fatalf("BF16ToF32(%#04x) is NaN", h)
			}
			continue
		}
		if back := F32ToBF16(f); back != h {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

func isF16NaN(h uint16) bool { return h&0x7C00 == 0x7C00 && h&0x3FF != 0 }

// f16Value decodes binary16 bits from the definition, in float64.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1F
	m := float64(h & 0x3FF)
	switch e {
	case 0:
		return sign * m * math.Pow(2, -24)
	case 0x1F:
		return sign * math.Inf(1)
	}
	return sign * (1 + m/1024) * math.Pow(2, float64(e-15))
}

// An independent oracle for float32 -> float16: search the sorted table of
// all finite halves for the nearest one, ties to the even code, overflow to
// infinity past the midpoint between 65504 and 65536.
func TestF32ToF16AgainstNearestSearch(t *testing.T) {
	var vals []float64
	var codes []uint16
	for i := 0; i < 0x7C00; i++ { // non-negative finite halves, ascending
		vals = append(vals, f16Value(uint16(i)))
		codes = append(codes, uint16(i))
	}
	nearest := func(x float64) uint16 {
		neg := math.Signbit(x)
		a := math.Abs(x)
		var c uint16
		if a >= 65520 { // (65504+65536)/2 rounds to even: Inf
			c = 0x7C00
		} else {
			j := sort.SearchFloat64s(vals, a)
			switch {
			case j == len(vals):
				c = codes[len(codes)-1]
			case vals[j] == a || j == 0:
				c = codes[j]
			default:
				lo, hi := vals[j-1], vals[j]
				switch {
				case a-lo < hi-a:
					c = codes[j-1]
				case a-lo > hi-a:
					c = codes[j]
				case codes[j-1]&1 == 0:
					c = codes[j-1]
				default:
					c = codes[j]
				}
			}
		}
		if neg {
			c |= 0x8000
		}
		return c
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var b uint32
		if i%2 == 0 {
			// Concentrate on the float16 range: exponents 2^-26 .. 2^17.
			b = uint32(r.IntN(44)+101)<<23 | r.Uint32()&0x807FFFFF
		} else {
			b = r.Uint32()
		}
		f := math.Float32frombits(b)
		if f != f {
			continue
		}
		if got, want := F32ToF16(f), nearest(float64(f)); got != want {
			t.Fatalf("F32ToF16(%#08x = %g) = %#04x, nearest half is %#04x", b, f, got, want)
		}
	}
}

func TestDecodeFloat32(t *testing.T) {
	vals := []float32{0, 1, -2.5, 65504, float32(math.Inf(-1)), 1e-7}
	f32 := F32Bytes(vals)
	got, err := DecodeFloat32(F32, f32)
	if err != nil {
		t.Fatal(err)
	}
	for i := range vals {
		if got[i] != vals[i] {
			t.Errorf("F32[%d] = %g, want %g", i, got[i], vals[i])
		}
	}
	got, _ = DecodeFloat32(F16, F16Bytes(vals))
	for i, v := range vals {
		if want := F16ToF32(F32ToF16(v)); got[i] != want {
			t.Errorf("F16[%d] = %g, want %g", i, got[i], want)
		}
	}
	got, _ = DecodeFloat32(BF16, BF16Bytes(vals))
	for i, v := range vals {
		if want := BF16ToF32(F32ToBF16(v)); got[i] != want {
			t.Errorf("BF16[%d] = %g, want %g", i, got[i], want)
		}
	}
	f64 := make([]byte, 16)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(0.1))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(-3))
	got, _ = DecodeFloat32(F64, f64)
	if got[0] != float32(0.1) || got[1] != -3 {
		t.Errorf("F64 = %v", got)
	}
	if _, err := DecodeFloat32(U8, []byte{1}); err == nil {
		t.Error("U8 converted to float32 without error")
	}
	if _, err := DecodeFloat32(F16, []byte{1, 2, 3}); err == nil {
		t.Error("3 bytes of F16 accepted")
	}
}

func TestDecodeInt64(t *testing.T) {
	le := func(n int, vals ...uint64) []byte {
		out := make([]byte, n*len(vals))
		for i, v := range vals {
			for j := 0; j < n; j++ {
				out[i*n+j] = byte(v >> (8 * j))
			}
		}
		return out
	}
	cases := []struct {
		d    DType
		raw  []byte
		want []int64
	}{
		{BOOL, []byte{0, 1, 1}, []int64{0, 1, 1}},
		{U8, []byte{0, 200, 255}, []int64{0, 200, 255}},
		{I8, []byte{0, 200, 255}, []int64{0, -56, -1}},
		{U16, le(2, 1, 0xFFFF), []int64{1, 65535}},
		{I16, le(2, 1, 0xFFFF), []int64{1, -1}},
		{U32, le(4, 7, 0xFFFFFFFF), []int64{7, 4294967295}},
		{I32, le(4, 7, 0xFFFFFFFE), []int64{7, -2}},
		{I64, le(8, 1<<40, math.MaxUint64), []int64{1 << 40, -1}},
		{U64, le(8, 1<<62), []int64{1 << 62}},
	}
	for _, c := range cases {
		got, err := DecodeInt64(c.d, c.raw)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, %v; want %v", c.d, got, err, c.want)
		}
	}
	for _, bad := range []struct {
		d   DType
		raw []byte
	}{{BOOL, []byte{2}}, {U64, le(8, 1<<63)}, {I32, []byte{1, 2, 3}}, {F32, le(4, 0)}} {
		if _, err := DecodeInt64(bad.d, bad.raw); err == nil {
			t.Errorf("%s %v accepted", bad.d, bad.raw)
		}
	}
}
