package nf4

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func up(x float32) float32   { return math.Nextafter32(x, float32(math.Inf(1))) }
func down(x float32) float32 { return math.Nextafter32(x, float32(math.Inf(-1))) }

// The thresholds are bitsandbytes' float literals, read as C++ reads a
// float literal: the decimal rounded directly to float32. Each literal, read
// as a float64, is exactly the midpoint of its two codes; as float32 it is
// the midpoint rounded to float32, except where the midpoint lies exactly
// halfway between two float32 values, where the decimal (the shortest
// float64 repr) falls on one side and picks that neighbour.
func TestThresholdsAreMidpoints(t *testing.T) {
	ties := 0
	for k := range Thresholds {
		mid := (float64(Codes[k]) + float64(Codes[k+1])) / 2 // exact
		if !(Codes[k] < Thresholds[k] && Thresholds[k] < Codes[k+1]) {
			t.Errorf("threshold %d = %v not between codes %v and %v", k, Thresholds[k], Codes[k], Codes[k+1])
		}
		c := float32(mid)
		other := math.Nextafter32(c, float32(math.Copysign(math.Inf(1), mid-float64(c))))
		tie := float64(c) != mid && math.Abs(float64(c)-mid) == math.Abs(float64(other)-mid)
		switch {
		case Thresholds[k] == c:
		case tie && Thresholds[k] == other:
			ties++ // the other float32 neighbour of a midpoint that is a float32 tie
		default:
			t.Errorf("threshold %d = %v, float32 midpoint of codes %v", k, Thresholds[k], c)
		}
	}
	// Thresholds 0, 8, 12 and 14 are such ties.
	if ties != 4 {
		t.Errorf("%d thresholds differ from float32(midpoint), want 4", ties)
	}
	if Codes[0] != -1 || Codes[7] != 0 || Codes[15] != 1 {
		t.Errorf("code ends %v %v %v", Codes[0], Codes[7], Codes[15])
	}
}

// argminNibble is bitsandbytes' CPU rule written the slow way: clamp, then
// the first of the 16 codes at the least float32 distance (NaN gives 0).
func argminNibble(x float32) uint8 {
	if x != x {
		return 0
	}
	x = min(max(x, -1), 1)
	best, bestD := uint8(0), float32(math.Inf(1))
	for k, c := range Codes {
		if d := float32(math.Abs(float64(x - c))); d < bestD {
			best, bestD = uint8(k), d
		}
	}
	return best
}

// exactNearest is the code nearest to x in exact arithmetic, the lower one
// on a tie (x and the codes are float32, so float64 differences are exact).
func exactNearest(x float32) uint8 {
	best, bestD := uint8(0), math.Inf(1)
	for k, c := range Codes {
		if d := math.Abs(float64(x) - float64(c)); d < bestD {
			best, bestD = uint8(k), d
		}
	}
	return best
}

func TestQuantizeValue(t *testing.T) {
	for k := range Codes {
		if q := QuantizeValue(Codes[k]); int(q) != k {
			t.Errorf("QuantizeValue(code %d = %v) = %d", k, Codes[k], q)
		}
	}
	// On and around each threshold: the argmin rule, which here is the
	// exactly nearest code; the CUDA tree puts a value equal to a threshold
	// on the lower side, which for thresholds 1, 3, 4 and 8 (the midpoint
	// rounded up to float32) is the farther code.
	var treeDiffers []int
	for k, th := range Thresholds {
		for _, x := range []float32{down(th), th, up(th)} {
			q := QuantizeValue(x)
			if q != argminNibble(x) || q != exactNearest(x) {
				t.Errorf("QuantizeValue(%v, at threshold %d) = %d, argmin %d, nearest %d", x, k, q, argminNibble(x), exactNearest(x))
			}
			if treeNibble(x) != q {
				treeDiffers = append(treeDiffers, k)
			}
		}
		if treeNibble(th) != uint8(k) || treeNibble(up(th)) != uint8(k+1) {
			t.Errorf("treeNibble around threshold %d", k)
		}
	}
	if !slices.Equal(treeDiffers, []int{1, 3, 4, 8}) {
		t.Errorf("the decision tree differs from the argmin at thresholds %v, want [1 3 4 8]", treeDiffers)
	}
	nan := float32(math.NaN())
	cases := []struct {
		x    float32
		want uint8
	}{
		{nan, 0}, {-2, 0}, {2, 15}, {float32(math.Inf(1)), 15}, {float32(math.Inf(-1)), 0},
		{0, 7}, {float32(math.Copysign(0, -1)), 7}, {0.5, 12}, {-0.5, 2}, {0.95, 15}, {-0.75, 1},
	}
	for _, c := range cases {
		if q := QuantizeValue(c.x); q != c.want {
			t.Errorf("QuantizeValue(%v) = %d, want %d", c.x, q, c.want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		x := float32(r.Float64()*2.2 - 1.1)
		if q := QuantizeValue(x); q != argminNibble(x) {
			t.Fatalf("QuantizeValue(%v) = %d, argmin %d", x, q, argminNibble(x))
		}
	}
}

// A block whose absmax is 2, so that normalization (x * 0.5) is exact and
// the expected nibbles can be written down from the code table.
func handBlock() []float32 {
	x := make([]float32, 0, 64)
	for k := range 16 { // exact codes: nibbles 0..15
		x = append(x, Codes[k]*2)
	}
	for k := range 15 { // exactly on thresholds: the nearer code
		x = append(x, Thresholds[k]*2)
	}
	x = append(x, 0)
	for k := range 15 { // one ulp above thresholds: the upper code
		x = append(x, up(Thresholds[k])*2)
	}
	x = append(x, float32(math.Copysign(0, -1)))
	// normalized: 0.5 -0.5 0.05 -0.05 0.035 0.95 -0.95 0.75 0.25 -0.15 0.15 -0.6 0.35 -0.3 -0.75 0.55
	x = append(x, 1.0, -1.0, 0.1, -0.1, 0.07, 1.9, -1.9, 1.5, 0.5, -0.3, 0.3, -1.2, 0.7, -0.6, -1.5, 1.1)
	return x
}

var handPacked = []byte{
	0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, // codes
	0x02, 0x24, 0x55, 0x67, 0x99, 0xAB, 0xCD, 0xE7, // thresholds -> the nearer code (upper for 1, 3, 4, 8), then 0
	0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF7, // above ties -> upper, then -0
	0xC2, 0x86, 0x7F, 0x0E, 0xA5, 0x92, 0xB4, 0x1D, // hand values
}

func TestHandBlock(t *testing.T) {
	x := handBlock()
	packed, absmax := QuantizeNF4Blocks(x, 64)
	if !bytes.Equal(packed, handPacked) {
		t.Errorf("packed\n got % x\nwant % x", packed, handPacked)
	}
	if len(absmax) != 1 || absmax[0] != 2 {
		t.Errorf("absmax %v, want [2]", absmax)
	}
	// Scaled by a non-power-of-two absmax the exact codes still map to themselves.
	y := make([]float32, 16)
	for k := range y {
		y[k] = Codes[k] * 3
	}
	p, _ := QuantizeNF4Blocks(y, 64)
	if want := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}; !bytes.Equal(p, want) {
		t.Errorf("codes*3 packed % x, want % x", p, want)
	}
}

func TestNibbleOrder(t *testing.T) {
	for _, c := range []struct {
		x    []float32
		want []byte
	}{
		{[]float32{1, 0}, []byte{0xF7}},
		{[]float32{0, 1}, []byte{0x7F}},
		{[]float32{-1, 1}, []byte{0x0F}},
		{[]float32{1, -1, 0.5}, []byte{0xF0, 0xC7}}, // odd: padding zero in the low nibble
	} {
		p, _ := QuantizeNF4Blocks(c.x, 64)
		if !bytes.Equal(p, c.want) {
			t.Errorf("%v: packed % x, want % x", c.x, p, c.want)
		}
	}
}

func TestZeroBlocks(t *testing.T) {
	// An all-zero block: absmax 0, 1/0 = Inf, 0*Inf = NaN -> code 0 (as on the GPU).
	x := make([]float32, 64+64+3)
	x[64] = -4 // second block: absmax from a negative value
	x[65] = 1
	x[66] = 0
	p, am := QuantizeNF4Blocks(x, 64)
	if !slices.Equal(am, []float32{0, 4, 0}) {
		t.Errorf("absmax %v", am)
	}
	for i := range 32 {
		if p[i] != 0 {
			t.Fatalf("zero block byte %d = %#x, want 0", i, p[i])
		}
	}
	// -4/4 = -1 -> 0; 0.25 -> 10; zeros -> 7.
	if p[32] != 0x0A || p[33] != 0x77 || p[63] != 0x77 {
		t.Errorf("second block bytes % x", p[32:34])
	}
	// Short all-zero last block of 3: the padding zero is NaN too.
	if !bytes.Equal(p[64:], []byte{0x00, 0x00}) {
		t.Errorf("short zero block % x, want 00 00", p[64:])
	}
	tq := QuantizeNoDoubleQuant(x)
	d := make([]float32, len(x))
	tq.Dequantize(d)
	for i, v := range d {
		want := float32(0)
		switch i {
		case 64:
			want = -4
		case 65:
			want = Codes[10] * 4
		}
		if v != want {
			t.Errorf("dequant[%d] = %v, want %v", i, v, want)
		}
	}
	// With double quantization the zero block's absmax comes back as
	// code·absmax2 + offset, which need not be exactly 0, and its elements
	// (code 0, i.e. -1.0) as minus that: bitsandbytes behaves the same.
	tq = Quantize(x)
	tq.Dequantize(d)
	am = tq.Absmax()
	for i := range 64 {
		if d[i] != -am[0] {
			t.Fatalf("zero block dequantized to %v at %d, want %v", d[i], i, -am[0])
		}
	}
	if math.Abs(float64(am[0])) > 0.01*4 {
		t.Errorf("zero block absmax dequantized to %v", am[0])
	}
}

func TestSubnormalsFlushed(t *testing.T) {
	// A block whose largest magnitude is subnormal behaves like a zero block
	// (the kernel's fabsf/fmaxf are .ftz).
	x := []float32{1e-40, -1e-39, 0, 5e-41}
	p, am := QuantizeNF4Blocks(x, 64)
	if am[0] != 0 || !bytes.Equal(p, []byte{0, 0}) {
		t.Errorf("subnormal block: absmax %v packed % x", am, p)
	}
	// A subnormal next to the smallest normal absmax is read as zero.
	y := []float32{0x1p-126, 0x1p-127}
	p, _ = QuantizeNF4Blocks(y, 64)
	if !bytes.Equal(p, []byte{0xF7}) {
		t.Errorf("packed % x, want f7", p)
	}
}

func TestShortLastBlock(t *testing.T) {
	x := make([]float32, 64+5)
	for i := range 64 {
		x[i] = float32(i%7) - 3
	}
	copy(x[64:], []float32{1, -1, 0.5, 0, 0.25})
	tq := QuantizeNoDoubleQuant(x)
	if len(tq.Packed) != 35 {
		t.Fatalf("len(Packed) = %d, want 35", len(tq.Packed))
	}
	if want := []byte{0xF0, 0xC7, 0xA7}; !bytes.Equal(tq.Packed[32:], want) {
		t.Errorf("last block % x, want % x", tq.Packed[32:], want)
	}
	if !slices.Equal(tq.RawAbsmax, []float32{3, 1}) {
		t.Errorf("absmax %v", tq.RawAbsmax)
	}
	d := make([]float32, len(x))
	tq.Dequantize(d)
	if want := []float32{1, -1, Codes[12], 0, Codes[10]}; !slices.Equal(d[64:], want) {
		t.Errorf("last block dequantized %v, want %v", d[64:], want)
	}
}

// randomWeights returns n values with a different scale per 64-block and a
// few exact zeros and outliers.
func randomWeights(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	scale := 0.02
	for i := range x {
		if i%64 == 0 {
			scale = math.Exp(r.Float64()*6 - 6)
		}
		switch r.IntN(50) {
		case 0:
			x[i] = 0
		case 1:
			x[i] = float32(r.NormFloat64() * scale * 8)
		default:
			x[i] = float32(r.NormFloat64() * scale)
		}
	}
	return x
}

// maxHalfGap is half the largest gap between neighbouring codes (between
// -1 and -0.696).
var maxHalfGap = func() float64 {
	g := 0.0
	for k := 1; k < 16; k++ {
		g = max(g, float64(Codes[k])-float64(Codes[k-1]))
	}
	return g / 2
}()

func TestDequantizeErrorBound(t *testing.T) {
	x := randomWeights(3, 64*300+17)
	plain := QuantizeNoDoubleQuant(x)
	dq := Quantize(x)
	d1 := make([]float32, len(x))
	d2 := make([]float32, len(x))
	plain.Dequantize(d1)
	dq.Dequantize(d2)
	am := plain.RawAbsmax
	amDQ := dq.Absmax()
	for i, v := range x {
		a := float64(am[i/64])
		bound := maxHalfGap*a + 1e-6*a
		if e := math.Abs(float64(v) - float64(d1[i])); e > bound {
			t.Fatalf("element %d: |%v - %v| = %v > %v", i, v, d1[i], e, bound)
		}
		// The nearest code: no other code scaled by absmax is closer.
		q := plain.Packed[i/2] >> 4
		if i%2 == 1 {
			q = plain.Packed[i/2] & 15
		}
		xn := float64(v) / a
		for k := range Codes {
			if math.Abs(xn-float64(Codes[k])) < math.Abs(xn-float64(Codes[q]))-1e-6 {
				t.Fatalf("element %d (normalized %v): code %d chosen, %d is nearer", i, xn, q, k)
			}
		}
		// With double quantization the absmax error adds (|code| <= 1).
		bound2 := bound + math.Abs(float64(amDQ[i/64])-a) + 1e-6*a
		if e := math.Abs(float64(v) - float64(d2[i])); e > bound2 {
			t.Fatalf("element %d (dq): |%v - %v| = %v > %v", i, v, d2[i], e, bound2)
		}
	}
	if !bytes.Equal(plain.Packed, dq.Packed) {
		t.Error("double quantization changed the packed codes")
	}
}

func TestDoubleQuantAbsmax(t *testing.T) {
	x := randomWeights(5, 64*600+3) // 601 blocks: 3 second-level blocks
	plain := QuantizeNoDoubleQuant(x)
	dq := Quantize(x)
	if len(dq.QAbsmax) != 601 || len(dq.Absmax2) != 3 {
		t.Fatalf("len(QAbsmax) %d, len(Absmax2) %d", len(dq.QAbsmax), len(dq.Absmax2))
	}
	if dq.Offset != Mean(plain.RawAbsmax) {
		t.Errorf("offset %v, mean %v", dq.Offset, Mean(plain.RawAbsmax))
	}
	// The largest gap of the dynamic map is 0.9/64 (the top decade).
	maxGap := 0.0
	for k := 1; k < 256; k++ {
		maxGap = max(maxGap, float64(DynamicMap[k]-DynamicMap[k-1]))
	}
	if math.Abs(maxGap-0.9/64) > 1e-6 {
		t.Errorf("largest dynamic-map gap %v, want ~%v", maxGap, 0.9/64)
	}
	got := dq.Absmax()
	for b, a := range plain.RawAbsmax {
		a2 := float64(dq.Absmax2[b/256])
		c := float64(a) - float64(dq.Offset)
		if math.Abs(c) > a2*(1+1e-6) {
			t.Fatalf("block %d: |absmax-offset| %v > absmax2 %v", b, c, a2)
		}
		if e := math.Abs(float64(got[b]) - float64(a)); e > (maxGap/2)*a2*(1+1e-5)+1e-6*float64(a) {
			t.Fatalf("block %d: dequantized absmax %v, true %v (absmax2 %v)", b, got[b], a, a2)
		}
		// q is the nearest entry of the map to the normalized value.
		xn := float64(float32(a-dq.Offset) / dq.Absmax2[b/256])
		q := dq.QAbsmax[b]
		for k := range QuantMap8 {
			if math.Abs(xn-float64(QuantMap8[k])) < math.Abs(xn-float64(QuantMap8[q]))-1e-9 {
				t.Fatalf("block %d: normalized %v coded %d (%v), %d (%v) is nearer", b, xn, q, QuantMap8[q], k, QuantMap8[k])
			}
		}
		// Dequantization is two separate float32 operations.
		want := float32(float32(QuantMap8[q]*dq.Absmax2[b/256]) + dq.Offset)
		if got[b] != want {
			t.Fatalf("block %d: Absmax %v, code*absmax2+offset %v", b, got[b], want)
		}
	}
	// Each Absmax2 is the absmax of its group of centered values.
	for g, a2 := range dq.Absmax2 {
		var m float32
		for b := g * 256; b < min((g+1)*256, len(plain.RawAbsmax)); b++ {
			m = max(m, float32(math.Abs(float64(plain.RawAbsmax[b]-dq.Offset))))
		}
		if m != a2 {
			t.Errorf("Absmax2[%d] = %v, max |absmax-offset| = %v", g, a2, m)
		}
	}
}

func TestQuantizeWithOffset(t *testing.T) {
	x := randomWeights(9, 64*50)
	a := Quantize(x)
	b := QuantizeWithOffset(x, a.Offset)
	if !bytes.Equal(a.QAbsmax, b.QAbsmax) || !slices.Equal(a.Absmax2, b.Absmax2) || a.Offset != b.Offset {
		t.Error("QuantizeWithOffset(Mean) differs from Quantize")
	}
	c := QuantizeWithOffset(x, a.Offset*1.01)
	if c.Offset != a.Offset*1.01 {
		t.Errorf("offset %v not kept", c.Offset)
	}
}

func TestDequantizeRowsEqualsDequantize(t *testing.T) {
	shapes := [][]int{{7, 13}, {5, 64}, {33, 100}, {3, 3, 5}, {1, 1}, {129, 65}, {10}, {2, 4097}}
	for si, sh := range shapes {
		n := 1
		for _, d := range sh {
			n *= d
		}
		x := randomWeights(uint64(20+si), n)
		tq := Quantize(x, sh...)
		full := make([]float32, n)
		tq.Dequantize(full)
		rows := sh[0]
		rowLen := n / rows
		for lo := 0; lo <= rows; lo++ {
			for hi := lo; hi <= rows; hi++ {
				if rows > 12 && hi-lo > 3 && hi != rows && lo != 0 {
					continue // keep the big shapes quick
				}
				dst := make([]float32, (hi-lo)*rowLen+1)
				dst[len(dst)-1] = 42
				tq.DequantizeRows(dst, lo, hi)
				if !slices.Equal(dst[:len(dst)-1], full[lo*rowLen:hi*rowLen]) {
					t.Fatalf("shape %v rows [%d,%d): DequantizeRows differs from Dequantize", sh, lo, hi)
				}
				if dst[len(dst)-1] != 42 {
					t.Fatalf("shape %v rows [%d,%d): wrote past the rows", sh, lo, hi)
				}
			}
		}
		// Dequantize equals the per-element definition.
		am := tq.Absmax()
		for i := range n {
			q := tq.Packed[i/2] >> 4
			if i%2 == 1 {
				q = tq.Packed[i/2] & 15
			}
			if want := float32(Codes[q] * am[i/64]); full[i] != want {
				t.Fatalf("shape %v element %d: %v, want %v", sh, i, full[i], want)
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	x := randomWeights(11, 64*257+31)
	a := Quantize(x, 64*257+31)
	b := Quantize(slices.Clone(x), 64*257+31)
	if !bytes.Equal(a.Packed, b.Packed) || !bytes.Equal(a.QAbsmax, b.QAbsmax) ||
		!slices.Equal(a.Absmax2, b.Absmax2) || a.Offset != b.Offset {
		t.Error("two quantizations of the same data differ")
	}
	d1 := make([]float32, len(x))
	d2 := make([]float32, len(x))
	a.Dequantize(d1)
	b.Dequantize(d2)
	if !slices.Equal(d1, d2) {
		t.Error("dequantizations differ")
	}
}

func TestBytesPerParam(t *testing.T) {
	x := randomWeights(13, 1024*1024)
	tq := Quantize(x, 1024, 1024)
	want := 1024*1024/2 + 1024*1024/64 + 4*(1024*1024/64/256) + 4
	if tq.Bytes() != want {
		t.Errorf("Bytes() = %d, want %d", tq.Bytes(), want)
	}
	if bpp := float64(tq.Bytes()) / float64(len(x)); bpp < 0.5 || bpp > 0.52 {
		t.Errorf("bytes/param %v", bpp)
	}
	plain := QuantizeNoDoubleQuant(x, 1024, 1024)
	if plain.Bytes() != 1024*1024/2+4*1024*1024/64 {
		t.Errorf("plain Bytes() = %d", plain.Bytes())
	}
}

func TestShapePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a shape that does not match the data")
		}
	}()
	Quantize(make([]float32, 10), 3, 4)
}

func TestEmpty(t *testing.T) {
	tq := Quantize(nil)
	if len(tq.Packed) != 0 || len(tq.QAbsmax) != 0 || tq.Offset != 0 {
		t.Errorf("empty tensor %+v", tq)
	}
	tq.Dequantize(nil)
}

func TestQuantStateJSON(t *testing.T) {
	tq := &Tensor{Shape: []int{3, 5}, QAbsmax: []uint8{1}, Offset: 0.3, BlockSize: 64, BlockSize2: 256}
	want := `{"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": [3, 5], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.30000001192092896}`
	if got := string(tq.QuantStateJSON("float32")); got != want {
		t.Errorf("QuantStateJSON\n got %s\nwant %s", got, want)
	}
	// Expected strings from CPython's repr.
	for v, want := range map[float64]string{
		0.1: "0.1", 1e-05: "1e-05", 12345.0: "12345.0", 1e16: "1e+16", 0.0001: "0.0001",
		123.456: "123.456", 1.5e-07: "1.5e-07", 0: "0.0", 2.5: "2.5",
		1234567890123456.0: "1234567890123456.0", 0.00012345: "0.00012345",
		-3.0517578125e-05: "-3.0517578125e-05", 1e22: "1e+22",
	} {
		if got := pyFloatRepr(v); got != want {
			t.Errorf("pyFloatRepr(%v) = %q, want %q", v, got, want)
		}
	}
	if got := pyFloatRepr(math.Copysign(0, -1)); got != "-0.0" {
		t.Errorf("pyFloatRepr(-0) = %q", got)
	}
	sd := Quantize(randomWeights(1, 300), 300).StateDict("bfloat16")
	if w := sd[""]; w.Dtype != "U8" || !slices.Equal(w.Shape, []int{150, 1}) {
		t.Errorf("weight entry %v %v", w.Dtype, w.Shape)
	}
	if len(sd[".nested_quant_map"].Data) != 1024 || len(sd[".quant_map"].Data) != 64 {
		t.Error("quant map sizes")
	}
}

// Mean divides like torch's CPU mean, sum / N, not like its CUDA MeanOps
// (sum * float32(1/N)): for {1, 2, 4}, 7/3 rounds to 2.3333333 while
// 7 * 0.33333334f rounds to 2.3333335.
func TestMean(t *testing.T) {
	if m := Mean([]float32{1, 2, 4}); m != 2.3333332538604736 {
		t.Errorf("Mean(1,2,4) = %v (%08x), want 2.3333333", m, math.Float32bits(m))
	}
	if m := Mean([]float32{1, 2, 3, 4}); m != 2.5 {
		t.Errorf("Mean(1..4) = %v", m)
	}
	if m := Mean(nil); m != 0 {
		t.Errorf("Mean(nil) = %v", m)
	}
}

// Large tensors are quantized by several goroutines; the result must be the
// sequential one.
func TestParallelQuantizeMatchesSequential(t *testing.T) {
	x := randomWeights(12, 64*2048*3+101)
	p, a := QuantizeNF4Blocks(x, 64)
	nb := (len(x) + 63) / 64
	sp := make([]byte, (len(x)+1)/2)
	sa := make([]float32, nb)
	quantizeNF4Range(x, 64, sp, sa, 0, nb)
	if !bytes.Equal(p, sp) || !slices.Equal(a, sa) {
		t.Error("parallel quantization differs from sequential")
	}
}

// TestSumMatchesTorch checks Sum and Mean against torch 2.5.1's CPU
// x.sum() and x.mean() (one thread, AVX2 kernels) of
// x[i] = float32(((i·7919) mod 1009)/997 + 0.001), recorded with
// ml/interop's pinned environment. For two of the lengths the float64
// sum rounded once differs from torch's: the order matters.
func TestSumMatchesTorch(t *testing.T) {
	cases := []struct {
		n         int
		sum, mean float64
	}{
		{5, 0x1.425f8cp+1, 0x1.01e60ap-1},
		{8, 0x1.e758d4p+1, 0x1.e758d4p-2},
		{37, 0x1.346d70p+4, 0x1.0abf84p-1},
		{1000, 0x1.fb3254p+8, 0x1.03af46p-1},
		{13824, 0x1.b5a2acp+12, 0x1.0356eap-1},
		{50000, 0x1.8bb9b0p+14, 0x1.0357b2p-1},
	}
	orderMatters := 0
	for _, c := range cases {
		x := make([]float32, c.n)
		var s64 float64
		for i := range x {
			x[i] = float32(float64((i*7919)%1009)/997 + 0.001)
			s64 += float64(x[i])
		}
		if got := Sum(x); got != float32(c.sum) {
			t.Errorf("n=%d: Sum %x, torch %x", c.n, got, float32(c.sum))
		}
		if got := Mean(x); got != float32(c.mean) {
			t.Errorf("n=%d: Mean %x, torch %x", c.n, got, float32(c.mean))
		}
		if float32(s64) != float32(c.sum) {
			orderMatters++
		}
	}
	t.Logf("%d of %d sums differ from the float64 sum rounded once", orderMatters, len(cases))
}
