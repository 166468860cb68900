package nf4

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

const bnbFixture = "testdata/bnb_fixture.json"

// ulps is the distance between two float32 values in units in the last place.
func ulps(a, b float32) int64 {
	m := func(x float32) int64 {
		u := int64(int32(math.Float32bits(x)))
		if u < 0 {
			u = -(u & 0x7fffffff)
		}
		return u
	}
	d := m(a) - m(b)
	if d < 0 {
		d = -d
	}
	return d
}

// rcpNeighbours are the float32 neighbours of the IEEE reciprocal 1/a: the
// values the GPU's rcp.approx (<= 1 ulp error) may return instead. For a
// power-of-two a the reciprocal is exact on the GPU too, and none are
// returned.
func rcpNeighbours(a float32) []float32 {
	if a == 0 || math.IsInf(float64(a), 0) || math.IsNaN(float64(a)) {
		return nil
	}
	if _, e := math.Frexp(float64(a)); math.Ldexp(0.5, e) == math.Abs(float64(a)) {
		return nil
	}
	r := reciprocal(a)
	return []float32{math.Nextafter32(r, 0), math.Nextafter32(r, float32(math.Inf(1)))}
}

// TestBitsandbytesFixture checks the Go package against outputs of real
// bitsandbytes on CUDA, recorded by scripts/compare_bitsandbytes.py. The
// package follows bitsandbytes' CPU backend, which ml/interop checks in CI;
// the CUDA kernels round by other rules: the decision tree for the nibble
// (treeNibble), dQuantize<0> for the 8-bit codes (cudaQuantize8, on x·(1/g)
// instead of x/g), DynamicMap itself instead of QuantMap8, and the GPU's
// rcp.approx reciprocal. The tolerated differences are exactly a code that
// those rules give, with the IEEE reciprocal or a neighbour of it; blocks of
// 8-bit code 0 are not compared after dequantization.
func TestBitsandbytesFixture(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(bnbFixture))
	if os.IsNotExist(err) {
		t.Skipf("%s absent; run scripts/compare_bitsandbytes.py on a machine with a CUDA GPU, torch and bitsandbytes", bnbFixture)
	}
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Torch, Bitsandbytes, Device string
		Cases                       []struct {
			Name        string   `json:"name"`
			Shape       []int    `json:"shape"`
			Input       string   `json:"input"`
			Packed      string   `json:"packed"`
			Absmax      []string `json:"absmax"`
			QAbsmax     string   `json:"qabsmax"`
			Absmax2     []string `json:"absmax2"`
			Offset      string   `json:"offset"`
			Code2       []string `json:"code2"`
			Dequantized string   `json:"dequantized"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	t.Logf("fixture from torch %s, bitsandbytes %s on %s", fx.Torch, fx.Bitsandbytes, fx.Device)
	hexF32 := func(s string) []float32 {
		out := make([]string, len(s)/8)
		for i := range out {
			out[i] = s[8*i : 8*i+8]
		}
		return parseBits(t, out)
	}
	for _, c := range fx.Cases {
		x := hexF32(c.Input)
		if code2 := parseBits(t, c.Code2); !sameBits(code2, DynamicMap[:]) {
			t.Errorf("%s: bitsandbytes' dynamic map differs from DynamicMap (torch linspace without FMA?)", c.Name)
		}
		plain := QuantizeNoDoubleQuant(x, c.Shape...)
		if am := parseBits(t, c.Absmax); !sameBits(am, plain.RawAbsmax) {
			t.Errorf("%s: absmax differs", c.Name)
		}
		packed := mustHex(t, c.Packed)
		near, other := 0, 0
		for i := range packed {
			if packed[i] == plain.Packed[i] {
				continue
			}
			for _, j := range []int{2 * i, 2*i + 1} {
				if j >= len(x) {
					continue
				}
				shift := uint(4 * (1 - j%2))
				bn, ours := packed[i]>>shift&15, plain.Packed[i]>>shift&15
				if bn == ours {
					continue
				}
				ok := false
				for _, r := range append(rcpNeighbours(plain.RawAbsmax[j/64]), reciprocal(plain.RawAbsmax[j/64])) {
					ok = ok || treeNibble(ftz(x[j])*r) == bn
				}
				if ok {
					near++
				} else {
					other++
					t.Errorf("%s: element %d (x=%v, absmax %v, normalized %v): bnb nibble %x, ours %x",
						c.Name, j, x[j], plain.RawAbsmax[j/64], ftz(x[j])*reciprocal(plain.RawAbsmax[j/64]), bn, ours)
				}
			}
		}
		off := parseBits(t, []string{c.Offset})[0]
		t.Logf("%s: %d values; %d nibble differences explained by the CUDA rules; offset bnb %v, Mean %v (%d ulp)",
			c.Name, len(x), near, off, Mean(plain.RawAbsmax), ulps(off, Mean(plain.RawAbsmax)))
		dq := QuantizeWithOffset(x, off, c.Shape...)
		if a2 := parseBits(t, c.Absmax2); !sameBits(a2, dq.Absmax2) {
			t.Errorf("%s: absmax2 %v, bnb %v", c.Name, dq.Absmax2, a2)
		}
		qa := mustHex(t, c.QAbsmax)
		for k := range qa {
			if qa[k] != dq.QAbsmax[k] {
				ok := false
				for _, r := range append(rcpNeighbours(dq.Absmax2[k/256]), reciprocal(dq.Absmax2[k/256])) {
					ok = ok || cudaQuantize8(&DynamicMap, ftz(ftz(plain.RawAbsmax[k]-off)*r)) == qa[k]
				}
				if !ok {
					t.Errorf("%s: qabsmax[%d] = %d, bnb %d", c.Name, k, dq.QAbsmax[k], qa[k])
				}
			}
		}
		// Dequantize bnb's own quantized data and compare with its output.
		bt := &Tensor{Shape: c.Shape, Packed: packed, QAbsmax: qa, Absmax2: parseBits(t, c.Absmax2),
			Offset: off, BlockSize: BlockSize, BlockSize2: BlockSize2}
		got := make([]float32, len(x))
		bt.Dequantize(got)
		if want := hexF32(c.Dequantized); !sameBits(got, want) {
			n := 0
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && qa[i/64] != 0 {
					n++
				}
			}
			if n > 0 {
				t.Errorf("%s: Dequantize differs from bnb dequantize_4bit in %d values", c.Name, n)
			}
		}
	}
}

// cudaQuantize8 is bitsandbytes' CUDA dQuantize<0> (csrc/kernels.cu): a 7-step
// binary search over the 256-entry ascending code starting at pivot 127,
// then rounding to the nearer neighbour with the kernel's tie rule — the
// midpoint (a+b)·0.5f of the last probed value and its neighbour goes to
// the last probed pivot. NaN maps to 0.
func cudaQuantize8(code *[256]float32, x float32) uint8 {
	pivot, upperPivot, lowerPivot := 127, 255, 0
	lower, upper := float32(-1), float32(1)
	val := code[pivot]
	for i := 64; i > 0; i >>= 1 {
		if x > val {
			lowerPivot = pivot
			lower = val
			pivot += i
		} else {
			upperPivot = pivot
			upper = val
			pivot -= i
		}
		val = code[pivot]
	}
	if upperPivot == 255 {
		upper = code[upperPivot]
	}
	if lowerPivot == 0 {
		lower = code[lowerPivot]
	}
	if x > val {
		midpoint := float32(float32(upper+val) * 0.5)
		if x > midpoint {
			return uint8(upperPivot)
		}
		return uint8(pivot)
	}
	midpoint := float32(float32(lower+val) * 0.5)
	if x < midpoint {
		return uint8(lowerPivot)
	}
	return uint8(pivot)
}
