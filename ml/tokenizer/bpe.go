package tokenizer

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"
)

// bpe is a byte-pair-encoding model as Hugging Face's tokenizers runs it:
// a word starts as one symbol per character (or per byte token with
// byte_fallback), and the adjacent pair with the lowest merge rank is merged
// until no pair has a rank, ties going to the leftmost pair.
type bpe struct {
	vocab        map[string]int
	idToTok      []string
	merges       *mergeTable
	byteFallback bool
	byteIDs      [256]int32 // <0xNN> token ids, -1 when absent
	unkID        int        // -1 when none
	fuseUnk      bool
	ignoreMerges bool

	// In raw mode the byte-level pre-tokenizer hands over words as raw
	// bytes rather than GPT-2 stand-in characters: words is then keyed
	// by the bytes the tokens stand for, and rawCharIDs holds the id of
	// each byte's stand-in character. Encoding is identical and
	// needs no per-word string building.
	raw        bool
	rawCharIDs [256]int32

	// words finds a whole word (ignore_merges): keyed by raw bytes in raw
	// mode, else by the vocabulary's strings. charIDs holds the ids of the
	// ASCII characters for the non-raw mode, -1 when absent.
	words   *strTable
	charIDs [128]int32

	// metaSplit: no token holds a non-▁ character followed by ▁, so a
	// word can be cut before every such ▁ without changing the result (no
	// merge can cross the cut). SentencePiece-style models hand the whole
	// text to BPE as one word; the cut makes the pieces short and cacheable.
	metaSplit bool

	mu    sync.Mutex
	cache map[string][]int32
}

type merge struct {
	rank  int32
	newID int32
}

// The per-word cache holds the BPE result of words up to cacheMaxWordLen
// bytes; when it reaches cacheMaxEntries it is emptied and refills.
const (
	cacheMaxEntries = 1 << 16
	cacheMaxWordLen = 256
	metaspace       = "\u2581"
)

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newBPE(m *modelJSON) (*bpe, error) {
	if m.Type != "" && m.Type != "BPE" {
		return nil, unsupported("model", m.Type, "BPE")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return nil, fmt.Errorf("dropout %v is not supported (it makes encoding random); set it to null", *m.Dropout)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return nil, fmt.Errorf("continuing_subword_prefix %q is not supported", *m.ContinuingSubwordPrefix)
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, fmt.Errorf("end_of_word_suffix %q is not supported", *m.EndOfWordSuffix)
	}
	if len(m.Vocab) == 0 {
		return nil, fmt.Errorf("vocab is empty")
	}
	b := &bpe{
		vocab:        m.Vocab,
		byteFallback: m.ByteFallback,
		unkID:        -1,
		fuseUnk:      m.FuseUnk,
		ignoreMerges: m.IgnoreMerges,
		cache:        map[string][]int32{},
	}
	maxID := -1
	for tok, id := range m.Vocab {
		if id < 0 || id > math.MaxInt32 {
			return nil, fmt.Errorf("vocab: token %q has id %d out of range", tok, id)
		}
		if id > maxID {
			maxID = id
		}
	}
	if maxID >= 4*len(m.Vocab)+1024 {
		return nil, fmt.Errorf("vocab: ids are too sparse (max id %d for %d tokens)", maxID, len(m.Vocab))
	}
	b.idToTok = make([]string, maxID+1)
	have := make([]bool, maxID+1)
	for tok, id := range m.Vocab {
		// Two tokens with one id: keep the smaller, so the choice does not
		// depend on map order.
		if !have[id] || tok < b.idToTok[id] {
			b.idToTok[id] = tok
			have[id] = true
		}
	}
	for i := range b.byteIDs {
		b.byteIDs[i] = -1
		if id, ok := m.Vocab[fmt.Sprintf("<0x%02X>", i)]; ok {
			b.byteIDs[i] = int32(id)
		}
	}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return nil, fmt.Errorf("unk_token %q is not in the vocab", *m.UnkToken)
		}
		b.unkID = id
	}
	b.words = newStrTable(m.Vocab)
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	b.merges = newMergeTable(len(merges))
	var buf []byte
	for i, mg := range merges {
		a, ok1 := b.words.get(mg[0])
		c, ok2 := b.words.get(mg[1])
		buf = append(append(buf[:0], mg[0]...), mg[1]...)
		n, ok3 := b.words.getBytes(buf)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("merges[%d] (%q %q): a part or the merged token is missing from the vocab", i, mg[0], mg[1])
		}
		// A repeated pair takes its last rank, as the reference's map does.
		b.merges.set(int32(a), int32(c), merge{rank: int32(i), newID: int32(n)})
	}
	for c := range b.charIDs {
		b.charIDs[c] = -1
		if id, ok := m.Vocab[string(rune(c))]; ok {
			b.charIDs[c] = int32(id)
		}
	}
	if _, ok := m.Vocab[metaspace]; ok {
		b.metaSplit = true
		for tok := range m.Vocab {
			if strings.Contains(strings.TrimLeft(tok, metaspace), metaspace) {
				b.metaSplit = false
				break
			}
		}
	}
	return b, nil
}

// setRaw switches the model to raw-byte words (see bpe.raw).
func (b *bpe) setRaw() {
	b.raw = true
	b.metaSplit = false
	b.words = newStrTableSize(len(b.vocab))
	var buf []byte
	for tok, id := range b.vocab {
		var ok bool
		// Distinct tokens of the byte alphabet stand for distinct bytes.
		if buf, ok = byteLevelDecodeToken(buf[:0], tok); ok && len(buf) > 0 {
			b.words.add(string(buf), id)
		}
	}
	b.words.finish()
	for i := range b.rawCharIDs {
		b.rawCharIDs[i] = -1
		if id, ok := b.vocab[byteCharStr[i]]; ok {
			b.rawCharIDs[i] = int32(id)
		}
	}
}

// parseMerges reads the merges in either encoding: ["a b", ...] (lines of
// the legacy merges.txt, "#version" lines skipped as the reference does)
// or [["a", "b"], ...].
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var pairs [][2]string
	var lines []string
	if err := json.Unmarshal(raw, &lines); err == nil {
		pairs = make([][2]string, 0, len(lines))
		for i, s := range lines {
			if strings.HasPrefix(s, "#version") {
				continue
			}
			left, right, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(right, " ") {
				return nil, fmt.Errorf("merges[%d]: want exactly two space-separated parts, got %q", i, s)
			}
			pairs = append(pairs, [2]string{left, right})
		}
		return pairs, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("merges: want a list, got %s", truncate(string(raw), 40))
	}
	pairs = make([][2]string, 0, len(list))
	for i, r := range list {
		var pair []string
		if err := json.Unmarshal(r, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("merges[%d]: want \"left right\" or [left, right], got %s", i, truncate(string(r), 40))
		}
		pairs = append(pairs, [2]string{pair[0], pair[1]})
	}
	return pairs, nil
}

// tokenize appends the ids of word to dst.
func (b *bpe) tokenize(dst []int, word string) []int {
	if !b.metaSplit {
		return b.tokenizeWord(dst, word)
	}
	start := 0
	for i := 1; i < len(word); {
		j := strings.Index(word[i:], metaspace)
		if j < 0 {
			break
		}
		j += i
		if !strings.HasSuffix(word[:j], metaspace) {
			dst = b.tokenizeWord(dst, word[start:j])
			start = j
		}
		i = j + len(metaspace)
	}
	return b.tokenizeWord(dst, word[start:])
}

func (b *bpe) tokenizeWord(dst []int, word string) []int {
	if word == "" {
		return dst
	}
	if b.ignoreMerges {
		if id, ok := b.words.get(word); ok {
			return append(dst, id)
		}
	}
	cacheable := len(word) <= cacheMaxWordLen
	if cacheable {
		b.mu.Lock()
		ids, ok := b.cache[word]
		b.mu.Unlock()
		if ok {
			for _, id := range ids {
				dst = append(dst, int(id))
			}
			return dst
		}
	}
	sc := scratchPool.Get().(*mergeScratch)
	syms := b.mergeWord(sc, word)
	n := len(dst)
	for i := range syms {
		if !syms[i].removed {
			dst = append(dst, int(syms[i].id))
		}
	}
	if cap(sc.syms) <= maxPooledSymbols {
		scratchPool.Put(sc)
	} // else: a huge word's scratch goes to the garbage collector
	if cacheable {
		ids := make([]int32, len(dst)-n)
		for i, id := range dst[n:] {
			ids[i] = int32(id)
		}
		b.mu.Lock()
		if len(b.cache) >= cacheMaxEntries {
			clear(b.cache)
		}
		b.cache[strings.Clone(word)] = ids
		b.mu.Unlock()
	}
	return dst
}

type symbol struct {
	id         int32
	prev, next int32 // indices into the symbol slice, -1 at the ends
	removed    bool
}

type queued struct {
	rank, pos, newID int32
}

// mergeQueue is a binary min-heap ordered by (rank, pos).
type mergeQueue []queued

func (q mergeQueue) less(i, j int) bool {
	if q[i].rank != q[j].rank {
		return q[i].rank < q[j].rank
	}
	return q[i].pos < q[j].pos
}

func (q *mergeQueue) push(x queued) {
	*q = append(*q, x)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *mergeQueue) pop() queued {
	h := *q
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

type mergeScratch struct {
	syms []symbol
	q    mergeQueue
}

var scratchPool = sync.Pool{New: func() any { return new(mergeScratch) }}

// maxPooledSymbols bounds the scratch kept for reuse: that of a word of
// millions of bytes (a text without spaces) is not kept alive for the
// short words that follow.
const maxPooledSymbols = 1 << 16

// mergeWord splits word into initial symbols and applies merges with a
// priority queue, O(n log n) in the word's length, exactly as the
// reference's Word::merge_all does (including its stale-entry check). The
// returned symbols live in sc; removed ones are flagged.
func (b *bpe) mergeWord(sc *mergeScratch, word string) []symbol {
	// A word has at most one symbol per byte (and a queue entry per
	// pair): sized once, the slices do not grow by doubling, which for a
	// word of millions of bytes would hold the old and the new arrays.
	if cap(sc.syms) < len(word) {
		sc.syms = make([]symbol, 0, len(word))
	}
	if cap(sc.q) < len(word) {
		sc.q = make(mergeQueue, 0, len(word))
	}
	syms := sc.syms[:0]
	add := func(id int32) {
		syms = append(syms, symbol{id: id, prev: int32(len(syms)) - 1, next: int32(len(syms)) + 1})
	}
	unkPending := false
	unknown := func(ch string) {
		if b.byteFallback {
			all := true
			for j := 0; j < len(ch); j++ {
				if b.byteIDs[ch[j]] < 0 {
					all = false
					break
				}
			}
			if all {
				// Like the reference, a pending unk is not flushed here.
				for j := 0; j < len(ch); j++ {
					add(b.byteIDs[ch[j]])
				}
				return
			}
		}
		if b.unkID >= 0 {
			if unkPending && !b.fuseUnk {
				add(int32(b.unkID))
			}
			unkPending = true
		}
		// Without an unk token the character is dropped.
	}
	known := func(id int32) {
		if unkPending {
			add(int32(b.unkID))
			unkPending = false
		}
		add(id)
	}
	if b.raw {
		for i := 0; i < len(word); i++ {
			if id := b.rawCharIDs[word[i]]; id >= 0 {
				known(id)
			} else {
				unknown(byteCharStr[word[i]])
			}
		}
	} else {
		for i := 0; i < len(word); {
			if c := word[i]; c < utf8.RuneSelf {
				if id := b.charIDs[c]; id >= 0 {
					known(id)
				} else {
					unknown(word[i : i+1])
				}
				i++
				continue
			}
			_, size := utf8.DecodeRuneInString(word[i:])
			ch := word[i : i+size]
			i += size
			if id, ok := b.words.get(ch); ok {
				known(int32(id))
			} else {
				unknown(ch)
			}
		}
	}
	if unkPending {
		add(int32(b.unkID))
	}
	sc.syms = syms
	if len(syms) == 0 {
		return syms
	}
	syms[len(syms)-1].next = -1

	q := sc.q[:0]
	for i := 0; i+1 < len(syms); i++ {
		if m, ok := b.merges.get(syms[i].id, syms[i+1].id); ok {
			q.push(queued{rank: m.rank, pos: int32(i), newID: m.newID})
		}
	}
	for len(q) > 0 {
		top := q.pop()
		cur := &syms[top.pos]
		if cur.removed || cur.next < 0 {
			continue
		}
		nextPos := cur.next
		right := syms[nextPos]
		m, ok := b.merges.get(cur.id, right.id)
		if !ok || m.newID != top.newID {
			continue // stale entry
		}
		cur.id = top.newID
		cur.next = right.next
		syms[nextPos].removed = true
		if right.next >= 0 {
			syms[right.next].prev = top.pos
		}
		if cur.prev >= 0 {
			if m, ok := b.merges.get(syms[cur.prev].id, cur.id); ok {
				q.push(queued{rank: m.rank, pos: cur.prev, newID: m.newID})
			}
		}
		if cur.next >= 0 {
			if m, ok := b.merges.get(cur.id, syms[cur.next].id); ok {
				q.push(queued{rank: m.rank, pos: top.pos, newID: m.newID})
			}
		}
	}
	sc.q = q
	return syms
}
