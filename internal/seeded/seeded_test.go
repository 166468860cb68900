package seeded

import (
	"slices"
	"testing"
)

func TestDeterministicAndUniformEnough(t *testing.T) {
	a, b := New(42, 7), New(42, 7)
	counts := make([]int, 6)
	for i := 0; i < 60000; i++ {
		x, y := a.IntN(6), b.IntN(6)
		if x != y {
			t.Fatal("the same seed gave different draws")
		}
		counts[x]++
	}
	for v, c := range counts {
		if c < 9000 || c > 11000 {
			t.Fatalf("value %d drawn %d times of 60000", v, c)
		}
	}
	if New(42, 7).IntN(1<<30) == New(43, 7).IntN(1<<30) && New(42, 8).IntN(1<<30) == New(42, 7).IntN(1<<30) {
		t.Fatal("seed and stream do not change the draws")
	}
}

func TestShuffleIsAPermutation(t *testing.T) {
	xs := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	New(1, 2).Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	if !slices.Equal(sorted, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) || slices.IsSorted(xs) {
		t.Fatalf("shuffle gave %v", xs)
	}
}
