package nf4

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// runReference runs scripts/nf4_reference.py (a pure-Python transcription
// of bitsandbytes' kernels) on data and decodes its JSON answer into out.
func runReference(t *testing.T, mode string, data []float32, out any) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: skipping the comparison with scripts/nf4_reference.py")
	}
	script := filepath.Join("scripts", "nf4_reference.py")
	// Read the script here too, so that go test's cache notices edits to it.
	if _, err := os.ReadFile(script); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.f32")
	res := filepath.Join(dir, "out.json")
	args := []string{script, mode}
	if data != nil {
		buf := make([]byte, 4*len(data))
		for i, v := range data {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if err := os.WriteFile(in, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, in)
	}
	args = append(args, res)
	cmd := exec.Command(py, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", py, args, err, b)
	}
	b, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func parseBits(t *testing.T, s []string) []float32 {
	t.Helper()
	out := make([]float32, len(s))
	for i, h := range s {
		u, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = math.Float32frombits(uint32(u))
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// referenceInput is deterministic pseudo-random data with the cases that
// matter for byte equality: exact ties with the thresholds (power-of-two
// absmax, and arbitrary absmax where x·(1/absmax) lands exactly on a
// threshold), both float32 neighbours of the four thresholds whose midpoint
// is a float32 tie, exact codes, zeros, an all-zero block, subnormals,
// negative maxima and a short odd last block. More than 256 blocks, so the
// second-level quantization has several blocks.
func referenceInput() []float32 {
	r := rand.New(rand.NewPCG(2024, 11))
	var x []float32
	block := func(v []float32) {
		for len(v) < 64 {
			v = append(v, float32(r.NormFloat64()*0.3))
		}
		x = append(x, v[:64]...)
	}
	for range 200 { // plain random blocks, scales over 6 decades
		s := math.Exp(r.Float64()*14 - 12)
		v := make([]float32, 64)
		for i := range v {
			v[i] = float32(r.NormFloat64() * s)
			if r.IntN(40) == 0 {
				v[i] = 0
			}
		}
		block(v)
	}
	for e := -3; e <= 3; e++ { // power-of-two absmax: exact ties and codes
		a := float32(math.Ldexp(1, e))
		v := []float32{a}
		for _, th := range Thresholds {
			v = append(v, th*a, -th*a, up(th)*a, math.Nextafter32(th, -2)*a)
		}
		for _, c := range Codes {
			v = append(v, c*a)
		}
		block(v)
	}
	for range 40 { // arbitrary absmax, values landing exactly on thresholds
		a := float32(math.Exp(r.Float64()*8 - 6))
		rc := 1 / a
		v := []float32{-a}
		for _, th := range Thresholds {
			y := th * a
			for range 8 {
				p := y * rc
				if p == th {
					v = append(v, y)
					break
				}
				if p < th {
					y = math.Nextafter32(y, 10)
				} else {
					y = math.Nextafter32(y, -10)
				}
			}
		}
		block(v)
	}
	for range 60 { // random values near thresholds
		a := float32(math.Exp(r.Float64()*4 - 3))
		v := []float32{a}
		for len(v) < 64 {
			th := Thresholds[r.IntN(15)]
			y := th * a
			for range r.IntN(5) {
				y = math.Nextafter32(y, float32(r.NormFloat64()))
			}
			v = append(v, y)
		}
		block(v)
	}
	x = append(x, make([]float32, 64)...) // all-zero block
	sub := make([]float32, 64)            // subnormals only: flushed, a zero block
	copy(sub, []float32{1e-40, -3e-39, 0, 5e-41, -1e-39})
	x = append(x, sub...)
	sub = make([]float32, 64) // smallest normal absmax next to subnormals
	copy(sub, []float32{0x1p-126, 0x1p-127, -0x1p-127, 1e-40, 0x1.8p-126})
	x = append(x, sub...)
	block([]float32{-7, 3, 0, float32(math.Copysign(0, -1)), 6.99, -6.99})
	x = append(x, 0.25, -1, 0.125, 0.5, 0, 0.3, -0.7) // short odd last block
	return x
}

func TestReferenceNF4(t *testing.T) {
	x := referenceInput()
	var ref struct {
		Packed  string   `json:"packed"`
		Absmax  []string `json:"absmax"`
		QAbsmax string   `json:"qabsmax"`
		Absmax2 []string `json:"absmax2"`
		Offset  string   `json:"offset"`
	}
	runReference(t, "nf4", x, &ref)
	tq := Quantize(x)
	plain := QuantizeNoDoubleQuant(x)
	// The input must exercise the ties: normalized values exactly on a
	// threshold, and on the float32 neighbour above a threshold.
	ties, above := 0, 0
	for i, v := range x {
		p := ftz(v) * reciprocal(plain.RawAbsmax[i/64])
		for _, th := range Thresholds {
			if p == th {
				ties++
			}
			if p == up(th) {
				above++
			}
		}
	}
	if ties < 500 || above < 100 {
		t.Fatalf("input has %d exact ties and %d values just above a threshold", ties, above)
	}
	if len(tq.Absmax2) < 2 {
		t.Fatalf("test input has %d second-level blocks, want several", len(tq.Absmax2))
	}
	if p := mustHex(t, ref.Packed); !bytes.Equal(tq.Packed, p) {
		for i := range p {
			if i < len(tq.Packed) && tq.Packed[i] != p[i] {
				t.Errorf("packed byte %d (elements %d,%d = %v,%v, block absmax %v): got %02x, reference %02x",
					i, 2*i, 2*i+1, x[2*i], x[min(2*i+1, len(x)-1)], plain.RawAbsmax[2*i/64], tq.Packed[i], p[i])
			}
		}
		t.Fatalf("packed differs (len %d vs %d)", len(tq.Packed), len(p))
	}
	if a := parseBits(t, ref.Absmax); !sameBits(plain.RawAbsmax, a) {
		t.Fatal("absmax differs")
	}
	if o := parseBits(t, []string{ref.Offset})[0]; math.Float32bits(o) != math.Float32bits(tq.Offset) {
		t.Fatalf("offset %v, reference %v", tq.Offset, o)
	}
	if q := mustHex(t, ref.QAbsmax); !bytes.Equal(tq.QAbsmax, q) {
		t.Fatalf("qabsmax differs:\n got % x\nwant % x", tq.QAbsmax, q)
	}
	if a2 := parseBits(t, ref.Absmax2); !sameBits(tq.Absmax2, a2) {
		t.Fatalf("absmax2 %v, reference %v", tq.Absmax2, a2)
	}
	t.Logf("%d values (%d exact ties), %d blocks, %d second-level blocks: byte-identical",
		len(x), ties, len(plain.RawAbsmax), len(tq.Absmax2))
}

func TestReferenceBlockwise8(t *testing.T) {
	// Blocks of 256 whose absmax is exactly 1, holding float32 midpoints
	// (a+b)*0.5 of neighbouring map entries and their neighbours, then random
	// blocks and a zero block.
	var x []float32
	cur := []float32{1}
	flush := func() {
		for len(cur) < 256 {
			cur = append(cur, 0)
		}
		x = append(x, cur...)
		cur = []float32{-1}
	}
	for k := 0; k+1 < 256; k++ {
		a, b := DynamicMap[k], DynamicMap[k+1]
		m := float32(float32(a+b) * 0.5)
		for _, v := range []float32{m, math.Nextafter32(m, -2), math.Nextafter32(m, 2), a} {
			if len(cur) == 256 {
				flush()
			}
			cur = append(cur, v)
		}
	}
	flush()
	r := rand.New(rand.NewPCG(5, 6))
	for range 4 * 256 {
		x = append(x, float32(r.NormFloat64()*math.Exp(r.Float64()*6-4)))
	}
	x = append(x, make([]float32, 256)...)
	x = append(x, 0.5, -0.25, 0.001) // short last block
	var ref struct {
		Q      string   `json:"q"`
		Absmax []string `json:"absmax"`
	}
	runReference(t, "q8", x, &ref)
	q, am := QuantizeBlockwise8(x, &DynamicMap, 256)
	want := mustHex(t, ref.Q)
	if !bytes.Equal(q, want) {
		for i := range q {
			if q[i] != want[i] {
				t.Errorf("value %d (%v): got %d, reference %d", i, x[i], q[i], want[i])
			}
		}
		t.FailNow()
	}
	if a := parseBits(t, ref.Absmax); !sameBits(am, a) {
		t.Fatal("absmax differs")
	}
}

func TestReferenceDynamicMap(t *testing.T) {
	var ref []string
	runReference(t, "map", nil, &ref)
	if m := parseBits(t, ref); !sameBits(m, DynamicMap[:]) {
		t.Fatalf("dynamic map differs from the Python port:\n got %v\nwant %v", DynamicMap, m)
	}
}
