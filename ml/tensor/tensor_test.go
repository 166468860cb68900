package tensor

import (
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/ml/safetensors"
)

func TestDType(t *testing.T) {
	for _, c := range []struct {
		dt   DType
		name string
		size int
	}{{F32, "F32", 4}, {BF16, "BF16", 2}, {F16, "F16", 2}} {
		if c.dt.String() != c.name || c.dt.Size() != c.size {
			t.Errorf("%v: String %q Size %d", c.dt, c.dt.String(), c.dt.Size())
		}
	}
	if s := DType(9).String(); s != "DType(9)" {
		t.Errorf("unknown dtype prints %q", s)
	}
}

func TestHalfConversions(t *testing.T) {
	for h := range 1 << 16 {
		u := uint16(h)
		got, want := F16ToFloat32(u), safetensors.F16ToF32(u)
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("F16ToFloat32(%#04x) = %g, want %g", u, got, want)
		}
		if got, want := BF16ToFloat32(u), safetensors.BF16ToF32(u); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("BF16ToFloat32(%#04x) = %g, want %g", u, got, want)
		}
	}
}

func TestTensorViews(t *testing.T) {
	be := NewCPU(0)
	if be.Workers() != runtime.GOMAXPROCS(0) || be.Name() != "cpu" {
		t.Fatalf("NewCPU(0): %d workers, name %q", be.Workers(), be.Name())
	}
	data := make([]float32, 24)
	for i := range data {
		data[i] = float32(i)
	}
	x := be.FromFloat32(data, 4, 3, 2)
	if !slices.Equal(x.Shape(), []int{4, 3, 2}) || x.Dim(0) != 4 || x.Dim(-1) != 2 || x.Len() != 24 ||
		x.DType() != F32 || x.Offset() != 0 || x.String() != "F32[4 3 2]" || x.Backend() != Backend(be) || x.Storage().Backend() != Backend(be) {
		t.Fatalf("bad tensor metadata: %v", x)
	}
	rows := x.Rows(1, 3)
	if rows.Offset() != 6 || !slices.Equal(rows.Shape(), []int{2, 3, 2}) || rows.Storage() != x.Storage() {
		t.Fatalf("Rows(1,3) = %v offset %d", rows, rows.Offset())
	}
	flat := rows.Reshape(-1, 4)
	if !slices.Equal(flat.Shape(), []int{3, 4}) {
		t.Fatalf("Reshape(-1,4) = %v", flat)
	}
	if got := read(be, flat); got[0] != 6 || got[11] != 17 {
		t.Fatalf("view reads %v", got)
	}
	// Writes through a view land in the shared storage.
	be.Write(x.Rows(3, 4), slices.Repeat([]float32{-1}, 6))
	if got := read(be, x); got[17] != 17 || got[18] != -1 {
		t.Fatalf("write through view: %v", got)
	}
	// An operation on a view leaves the rest alone.
	be.Scale(x.Rows(0, 1), x.Rows(0, 1), 2)
	if got := read(be, x); got[5] != 10 || got[6] != 6 {
		t.Fatalf("op on view: %v", got)
	}
	v := NewTensor(x.Storage(), F32, 2, 2, 2)
	if got := read(be, v); !slices.Equal(got, []float32{4, 6, 8, 10}) {
		t.Fatalf("NewTensor view reads %v", got)
	}
	be.Free(x)
	expectPanic(t, "two -1", func() { x.Reshape(-1, -1) })
	expectPanic(t, "cannot reshape", func() { x.Reshape(5, 5) })
	expectPanic(t, "out of range", func() { x.Rows(2, 5) })
}

func TestFromRawCopy(t *testing.T) {
	be := NewCPU(2)
	vals := []float32{1, -2.5, 0.1, 65504, 1e-7, float32(math.Inf(-1))}
	for _, dt := range []DType{F32, BF16, F16} {
		var raw []byte
		var want []float32
		switch dt {
		case F32:
			raw, want = safetensors.F32Bytes(vals), vals
		case BF16:
			raw = safetensors.BF16Bytes(vals)
			for _, v := range vals {
				want = append(want, safetensors.BF16ToF32(safetensors.F32ToBF16(v)))
			}
		case F16:
			raw = safetensors.F16Bytes(vals)
			for _, v := range vals {
				want = append(want, safetensors.F16ToF32(safetensors.F32ToF16(v)))
			}
		}
		x, err := be.FromRaw(dt, raw, 2, 3)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(be, x); !slices.Equal(got, want) {
			t.Fatalf("%s: FromRaw reads %v, want %v", dt, got, want)
		}
		// Copy narrows from F32 and widens to F32; same-type copies are exact.
		y := be.Zeros(dt, 2, 3)
		be.Copy(y, be.FromFloat32(vals, 6))
		if got := read(be, y); !slices.Equal(got, want) {
			t.Fatalf("%s: narrowing Copy reads %v, want %v", dt, got, want)
		}
		z := be.Zeros(dt, 6)
		be.Copy(z, y)
		w := be.Zeros(F32, 3, 2)
		be.Copy(w, z)
		if got := read(be, w); !slices.Equal(got, want) {
			t.Fatalf("%s: Copy reads %v, want %v", dt, got, want)
		}
		if _, err := be.FromRaw(dt, raw[1:], 2, 3); err == nil {
			t.Errorf("%s: short data accepted", dt)
		}
	}
	// BF16 <- F16 goes through float32.
	h := be.Zeros(F16, 2)
	be.Copy(h, be.FromFloat32([]float32{1.5, -3}, 2))
	bf := be.Zeros(BF16, 2)
	be.Copy(bf, h)
	if got := read(be, bf); !slices.Equal(got, []float32{1.5, -3}) {
		t.Fatalf("F16->BF16 copy: %v", got)
	}
	if _, err := be.FromRaw(DType(7), nil, 0); err == nil {
		t.Error("unknown dtype accepted")
	}
	if _, err := be.FromRaw(F32, nil, -1); err == nil {
		t.Error("negative dimension accepted")
	}
}

func expectPanic(t *testing.T, substr string, fn func()) {
	t.Helper()
	defer func() {
		t.Helper()
		e := recover()
		if e == nil {
			t.Fatalf("no panic, want one containing %q", substr)
		}
		if s, _ := e.(string); !strings.Contains(s, substr) {
			t.Fatalf("panic %v, want one containing %q", e, substr)
		}
	}()
	fn()
}

func TestMisusePanics(t *testing.T) {
	be, other := NewCPU(1), NewCPU(1)
	a := be.Zeros(F32, 2, 3)
	b := be.Zeros(F32, 4, 5)
	c := be.Zeros(F32, 2, 5)
	expectPanic(t, "MatMul shape mismatch", func() { be.MatMul(c, a, b, false, false, 1, 0) })
	expectPanic(t, "unsupported ranks", func() { be.MatMul(c, a.Reshape(6), b, false, false, 1, 0) })
	expectPanic(t, "does not belong", func() { other.Add(a, a, a) })
	expectPanic(t, "must be F32", func() { be.Add(be.Zeros(BF16, 2, 3), a, a) })
	expectPanic(t, "size mismatch", func() { be.Add(a, a, c) })
	expectPanic(t, "label 5 out of range", func() { be.CrossEntropy(a, []int{0, 5}) })
	expectPanic(t, "2 labels for 1 rows", func() { be.CrossEntropy(a.Reshape(1, 6), []int{0, 5}) })
	expectPanic(t, "id 4 out of range", func() { be.Embedding(be.Zeros(F32, 1, 3), a, []int{4}) })
	expectPanic(t, "must be even", func() { be.RoPE(a, a, []int{0, 1}, 1, 3, 1e4) })
	expectPanic(t, "invalid attention", func() {
		be.Attention(a, a, a, a, AttnParams{Batch: 1, SeqQ: 2, SeqKV: 2, KVStride: 2, Heads: 3, KVHeads: 2, HeadDim: 1})
	})
	expectPanic(t, "does not have rows of 4", func() { be.RMSNorm(a, a, be.Zeros(F32, 4), 1e-5) })
	expectPanic(t, "1 positions for 3 rows", func() { be.RoPE(a, a.Reshape(3, 2), []int{0}, 1, 2, 1e4) })
	expectPanic(t, "do not match", func() {
		be.Attention(a, a, a, a, AttnParams{Batch: 1, SeqQ: 2, SeqKV: 2, KVStride: 2, Heads: 1, KVHeads: 1, HeadDim: 2})
	})
	expectPanic(t, "must be 2-D", func() { be.Embedding(a, a.Reshape(6), []int{0}) })
	expectPanic(t, "does not hold 1 rows of 3", func() { be.Embedding(a, a, []int{0}) })
	expectPanic(t, "negative dimension", func() { be.Zeros(F32, -1) })
	expectPanic(t, "unknown", func() { be.Zeros(DType(5), 1) })
	expectPanic(t, "3 values", func() { be.FromFloat32([]float32{1, 2, 3}, 2) })
	expectPanic(t, "Read: 1 values", func() { be.Read(a, make([]float32, 1)) })
	expectPanic(t, "Write: 1 values", func() { be.Write(a, make([]float32, 1)) })
}
