package llama

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
)

// TestDecodeMatchesForward: a batch of sequences at different positions
// gets bit for bit the logits each gets from Forward alone.
func TestDecodeMatchesForward(t *testing.T) {
	for _, arch := range []string{"llama", "mistral", "phi3"} {
		t.Run(arch, func(t *testing.T) {
			m := loadTiny(t, defaultTiny(arch))
			prompts := [][]int{{1, 9, 30, 4}, {1, 5}, {1, 7, 7, 7, 7, 7, 2, 11}, {1}}
			next := []int{3, 17, 8, 20}
			for b := 1; b <= MaxDecodeBatch; b++ {
				alone, batched := make([]*Cache, b), make([]*Cache, b)
				var want []float32
				for i := range b {
					for _, cs := range []([]*Cache){alone, batched} {
						c, err := m.NewCache(16)
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(func() { c.Free(m.be) })
						if _, err := m.Forward(c, prompts[i], false); err != nil {
							t.Fatal(err)
						}
						cs[i] = c
					}
					l, err := m.Forward(alone[i], next[i:i+1], false)
					if err != nil {
						t.Fatal(err)
					}
					want = append(want, l...)
				}
				got, err := m.Decode(batched, next[:b])
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("batch of %d: logit %d is %v, alone %v", b, i, got[i], want[i])
					}
				}
				for i, c := range batched {
					if c.Len() != alone[i].Len() {
						t.Fatalf("batch of %d: sequence %d holds %d tokens, alone %d", b, i, c.Len(), alone[i].Len())
					}
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	m := loadTiny(t, defaultTiny("llama"))
	c, err := m.NewCache(2)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Free(m.be)
	full, err := m.NewCache(2)
	if err != nil {
		t.Fatal(err)
	}
	defer full.Free(m.be)
	if _, err := m.Forward(full, []int{1, 5}, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caches []*Cache
		ids    []int
		want   string
	}{
		{nil, nil, "llama: Decode takes 1 to 4 sequences, not 0"},
		{[]*Cache{c, c, c, c, c}, []int{1, 1, 1, 1, 1}, "llama: Decode takes 1 to 4 sequences, not 5"},
		{[]*Cache{c}, []int{1, 2}, "llama: Decode got 1 caches for 2 tokens"},
		{[]*Cache{c, c}, []int{1, 2}, "llama: Decode got sequence 1's cache twice"},
		{[]*Cache{c}, []int{-1}, "llama: token id -1 is outside the vocabulary of 64 tokens"},
		{[]*Cache{full}, []int{1}, "llama: sequence 0 is full (2 tokens)"},
	} {
		if _, err := m.Decode(tc.caches, tc.ids); err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%d caches, %v): %v, want %q", len(tc.caches), tc.ids, err, tc.want)
		}
	}
}

// TestBatcherMatchesGenerate: generations run together, greedy and
// sampled, of different lengths and stopping at different points, give
// exactly the tokens each gives alone.
func TestBatcherMatchesGenerate(t *testing.T) {
	ctx := context.Background()
	m := loadTiny(t, defaultTiny("llama"))
	type job struct {
		prompt []int
		opts   GenOptions
		stopAt int // emit returns ErrStop after this many tokens (0: never)
	}
	var jobs []job
	for i := range 11 {
		p := []int{1}
		for j := range i % 5 {
			p = append(p, 4+(i*7+j*3)%40)
		}
		o := GenOptions{MaxTokens: 3 + i%6}
		if i%3 == 1 {
			o = GenOptions{MaxTokens: 9, Temperature: 1.2, TopK: 20, Seed: uint64(i)}
		}
		jobs = append(jobs, job{p, o, i % 4})
	}
	run := func(gen func(context.Context, []int, GenOptions, func(int) error) ([]int, error), j job) string {
		n := 0
		out, err := gen(ctx, j.prompt, j.opts, func(int) error {
			n++
			if n == j.stopAt {
				return ErrStop
			}
			return nil
		})
		return fmt.Sprint(out, err)
	}
	want := make([]string, len(jobs))
	for i, j := range jobs {
		want[i] = run(m.Generate, j)
	}
	b := NewBatcher(m)
	got := make([]string, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = run(b.Generate, j)
		}()
	}
	wg.Wait()
	for i := range jobs {
		if got[i] != want[i] {
			t.Errorf("generation %d: batched %s, alone %s", i, got[i], want[i])
		}
	}
}
