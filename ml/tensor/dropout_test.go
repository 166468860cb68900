package tensor

import (
	"math"
	"testing"
)

// TestDropoutKernelBitIdentical checks the eight-lane dropout against the
// portable loop from every start offset, and at element indices that
// cross 2³¹ and wrap at 2³².
func TestDropoutKernelBitIdentical(t *testing.T) {
	if dropout8 == nil {
		t.Skip("no eight-lane dropout kernel on this CPU")
	}
	const n, seed = 1037, 0x1234_5678_9ABC_DEF0
	x := randVec(newRand(33), n)
	thresh, scale := DropoutThreshold(0.3), DropoutScale(0.3)
	saved := dropout8
	defer func() { dropout8 = saved }()
	for lo := range 9 {
		var res [2][]float32
		for k, kern := range []func([]float32, []float32, int, uint64, uint32, float32){saved, nil} {
			dropout8 = kern
			res[k] = make([]float32, n)
			dropoutRange(res[k], x, lo, n, seed, thresh, scale)
		}
		for i := lo; i < n; i++ {
			if math.Float32bits(res[0][i]) != math.Float32bits(res[1][i]) {
				t.Fatalf("from %d: element %d: kernel %g, portable %g", lo, i, res[0][i], res[1][i])
			}
		}
	}
	for _, i0 := range []int{1<<31 - 16, 1<<32 - 16} {
		got := make([]float32, 32)
		saved(got, x[:32], i0, seed, thresh, scale)
		for j, v := range got {
			want := x[j] * scale
			if dropoutBits(seed, i0+j) < thresh {
				want = 0
			}
			if math.Float32bits(v) != math.Float32bits(want) {
				t.Fatalf("index %d: kernel %g, want %g", i0+j, v, want)
			}
		}
	}
}
