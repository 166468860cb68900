package train

import (
	"reflect"
	"testing"

	"github.com/mlbuild/mlbuild/internal/seeded"
)

// TestGroupByLength: grouped batches hold every example once per epoch,
// pad far less than random batches, come in a seeded order that changes
// between epochs, and are reproducible.
func TestGroupByLength(t *testing.T) {
	rng := seeded.New(3, 1)
	var ex []Example
	for i := 0; i < 1000; i++ {
		n := 5 + rng.IntN(300)
		ids := make([]int, n)
		for j := range ids {
			ids[j] = i // marks the example
		}
		ex = append(ex, Example{IDs: ids, Labels: ids})
	}
	padding := func(group bool, epoch int) (int, [][]int) {
		opts := Options{BatchSize: 4, SeqLen: 512, Seed: 9, GroupByLength: group, PadID: -1}
		b := newBatcher(ex, &opts)
		seen := make([]int, len(ex))
		pad := 0
		var order [][]int
		for i := 0; i < b.perEpoch; i++ {
			bt := b.get(epoch*b.perEpoch + i)
			var rows []int
			for r := 0; r < bt.Rows; r++ {
				rows = append(rows, bt.IDs[r*bt.Len])
				seen[bt.IDs[r*bt.Len]]++
			}
			order = append(order, rows)
			pad += bt.Rows*bt.Len - bt.Real
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("group %v epoch %d: example %d in %d batches", group, epoch, i, n)
			}
		}
		return pad, order
	}
	random, _ := padding(false, 0)
	grouped, order0 := padding(true, 0)
	_, again := padding(true, 0)
	_, order1 := padding(true, 1)
	t.Logf("padding: %d tokens random, %d grouped", random, grouped)
	if grouped*10 > random {
		t.Errorf("grouped batches pad %d tokens, random ones %d", grouped, random)
	}
	if !reflect.DeepEqual(order0, again) {
		t.Error("grouped batches are not reproducible")
	}
	if reflect.DeepEqual(order0, order1) {
		t.Error("epochs 0 and 1 have the same batches")
	}
	// Not sorted overall: the batches' lengths go up and down.
	ups, downs := 0, 0
	for i := 1; i < len(order0); i++ {
		a, b := len(ex[order0[i-1][0]].IDs), len(ex[order0[i][0]].IDs)
		if b > a {
			ups++
		} else if b < a {
			downs++
		}
	}
	if ups < len(order0)/4 || downs < len(order0)/4 {
		t.Errorf("batch lengths rise %d and fall %d times: not shuffled", ups, downs)
	}
}
