package tokenizer

import (
	"hash/maphash"
	"math/bits"
)

// Open-addressing hash tables for the two lookups on the encoding hot path.
// Both are built once and only read afterwards, and keep each probe within
// one small slot, which makes them several times cheaper than Go maps on
// vocabularies of 100k+ entries (fewer cache misses per lookup).

// mergeTable maps a pair of symbol ids to its merge.
type mergeTable struct {
	slots []mergeSlot
	shift uint
}

type mergeSlot struct {
	key uint64 // emptyPair when unused
	m   merge
}

// emptyPair cannot be a real pair: ids are below 2^31.
const emptyPair = ^uint64(0)

func newMergeTable(n int) *mergeTable {
	size := 1 << bits.Len(uint(2*n+1))
	t := &mergeTable{slots: make([]mergeSlot, size), shift: uint(64 - bits.TrailingZeros(uint(size)))}
	for i := range t.slots {
		t.slots[i].key = emptyPair
	}
	return t
}

// set adds or replaces the merge of a pair; the table must have been made
// for at least as many pairs as are set.
func (t *mergeTable) set(a, b int32, m merge) {
	k := pairKey(a, b)
	i := t.index(k)
	for t.slots[i].key != emptyPair && t.slots[i].key != k {
		i = (i + 1) & (len(t.slots) - 1)
	}
	t.slots[i] = mergeSlot{k, m}
}

func (t *mergeTable) index(k uint64) int {
	return int((k * 0x9E3779B97F4A7C15) >> t.shift)
}

func (t *mergeTable) get(a, b int32) (merge, bool) {
	k := pairKey(a, b)
	mask := len(t.slots) - 1
	for i := t.index(k); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == k {
			return s.m, true
		}
		if s.key == emptyPair {
			return merge{}, false
		}
	}
}

// strTable maps strings to ids.
type strTable struct {
	slots []strSlot
	arena string // all keys, back to back
	mask  uint64
	seed  maphash.Seed
	empty int32 // id of "", or -1
	build []byte
}

type strSlot struct {
	tag uint32 // high bits of the hash
	off uint32
	n   uint32 // key length; 0 marks an unused slot
	id  int32
}

func newStrTable(m map[string]int) *strTable {
	t := newStrTableSize(len(m))
	for k, id := range m {
		t.add(k, id)
	}
	t.finish()
	return t
}

// newStrTableSize starts a table for n keys; add them (each once), then
// call finish.
func newStrTableSize(n int) *strTable {
	size := 1 << bits.Len(uint(2*n+1))
	return &strTable{slots: make([]strSlot, size), mask: uint64(size - 1), seed: maphash.MakeSeed(), empty: -1}
}

func (t *strTable) add(k string, id int) {
	if k == "" {
		t.empty = int32(id)
		return
	}
	h := maphash.String(t.seed, k)
	i := h & t.mask
	for t.slots[i].n != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = strSlot{tag: uint32(h >> 32), off: uint32(len(t.build)), n: uint32(len(k)), id: int32(id)}
	t.build = append(t.build, k...)
}

func (t *strTable) finish() {
	t.arena = string(t.build)
	t.build = nil
}

// getBytes is get for a byte slice (maphash gives equal hashes for equal
// contents), without converting it to a string.
func (t *strTable) getBytes(b []byte) (int, bool) {
	if len(b) == 0 {
		return int(t.empty), t.empty >= 0
	}
	h := maphash.Bytes(t.seed, b)
	tag := uint32(h >> 32)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		if sl.n == 0 {
			return 0, false
		}
		if sl.tag == tag && int(sl.n) == len(b) && t.arena[sl.off:sl.off+sl.n] == string(b) {
			return int(sl.id), true
		}
	}
}

func (t *strTable) get(s string) (int, bool) {
	if s == "" {
		return int(t.empty), t.empty >= 0
	}
	h := maphash.String(t.seed, s)
	tag := uint32(h >> 32)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		if sl.n == 0 {
			return 0, false
		}
		if sl.tag == tag && int(sl.n) == len(s) && t.arena[sl.off:sl.off+sl.n] == s {
			return int(sl.id), true
		}
	}
}
