// Package bpetrain trains a SentencePiece-style BPE tokenizer with byte
// fallback, the kind Llama-2, Mistral and Phi-3 ship as tokenizer.json,
// and writes it in Hugging Face's format (tokenizer.json,
// tokenizer_config.json, special_tokens_map.json) so that ml/tokenizer,
// Hugging Face's tokenizers and transformers.js load it.
//
// # The tokenizer
//
// The file has the shape of Mistral-7B's tokenizer.json: the normalizer
// prepends "▁" (U+2581) and replaces every space by "▁"; there is no
// pre-tokenizer; the model is BPE with byte_fallback (a character outside
// the vocabulary is encoded as its UTF-8 bytes <0x00>..<0xFF>), fuse_unk
// and unk_token "<unk>"; the decoder replaces "▁" by a space, turns byte
// tokens back into bytes, fuses and strips the one leading space; the
// post-processor puts "<s>" in front. Special tokens are added tokens
// (special, not normalized), so their text in the input is matched as the
// token, atomically.
//
// The vocabulary is, in id order: "<unk>" = 0, "<s>" = 1, "</s>" = 2; the
// caller's extra special tokens (Options.SpecialTokens, e.g. "<pad>",
// "<|user|>"); the 256 byte tokens "<0x00>".."<0xFF>"; the single
// characters kept by character coverage, most frequent first (ties by code
// point); then the merged pieces in the order they were learned.
//
// # Training
//
// The corpus is cut at special-token text first (those pieces are atomic
// and not trained on); each remaining piece is normalized as the
// tokenizer's normalizer does ("▁" in front, spaces to "▁") and split
// into words, as SentencePiece's split_by_whitespace does: a word starts
// at every "▁" (the "▁" is the word's first character), and a run of line
// breaks ("\n", "\r") is a word of its own, so no piece mixes line breaks
// with other characters. Words are further cut where the character class
// changes, as SentencePiece's split_by_unicode_script and split_digits do:
// letters (and combining marks) form runs, every digit stands alone, and
// runs of other characters (punctuation, symbols) form words of their own;
// and "▁" (a space) is always a token by itself. So `="Paris",` is `="`,
// `Paris`, `",` and never one piece, and "Paris" is the same token after a
// space, after punctuation or inside a call — a small model can copy a
// name from a question into a tool call token for token. Pieces therefore never cross a word boundary, and
// the tokenizer (which has no pre-tokenizer, as Mistral's) encodes text
// exactly as training segmented it.
//
// Characters are counted over the words (weighted by frequency). They are
// taken most frequent first until the share of the corpus' characters they
// cover reaches Options.CharacterCoverage (SentencePiece's rule; "▁" is
// always kept); the rest are left to byte fallback and act as barriers in
// training: no piece contains them.
//
// Then the most frequent adjacent pair of symbols, counted over all words
// weighted by their frequency, is merged, again and again, until the
// vocabulary holds Options.VocabSize entries or no pair occurs at least
// Options.MinFrequency times. Ties are broken deterministically: among
// pairs of equal count the one whose left piece is smallest (comparing the
// UTF-8 bytes) wins, then the one whose right piece is. Within a word
// overlapping occurrences are merged left to right ("aaa" with "a"+"a"
// gives "aa","a"), as the encoder does. A merge whose result is already in
// the vocabulary (the same string reached through another pair) is
// recorded as a merge but adds no entry; a merge whose result would spell
// a byte token or a special token is skipped. Pair counts are kept
// incrementally (pair → count and the positions where it occurs) with a
// lazily updated max-heap, so a merge costs time in proportion to the
// occurrences it touches, not to the corpus.
//
// Everything is deterministic: the same text added in the same order (in
// fact, the same multiset of words) gives byte-identical files.
package bpetrain

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The fixed tokens of every trained tokenizer, ids 0, 1 and 2.
const (
	UnkToken = "<unk>"
	BOSToken = "<s>"
	EOSToken = "</s>"
	// Metaspace is the character that stands for a space (and marks the
	// start of a word).
	Metaspace = "▁"
)

// Defaults of Options.
const (
	DefaultVocabSize         = 4096
	DefaultCharacterCoverage = 0.9995
	DefaultMinFrequency      = 2
	DefaultModelMaxLength    = 2048
)

// DefaultSpecialTokens are the extra special tokens the tokenizer_train
// step adds by default: a pad token distinct from EOS, and the TwainBot
// chat format's tags.
var DefaultSpecialTokens = []string{"<pad>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>"}

// Options configure a training run.
type Options struct {
	// VocabSize is the size of the vocabulary to reach, every entry
	// counted (specials, bytes, characters, pieces). 0 means
	// DefaultVocabSize. Training stops earlier when no pair occurs
	// MinFrequency times; Model.Vocab says how many were reached.
	VocabSize int
	// CharacterCoverage is the share of the corpus' characters (by count)
	// that get a token of their own, in (0, 1]. 0 means
	// DefaultCharacterCoverage.
	CharacterCoverage float64
	// SpecialTokens are extra special tokens, given ids 3, 4, ... in this
	// order, after "<unk>", "<s>" and "</s>". nil means none (not
	// DefaultSpecialTokens).
	SpecialTokens []string
	// MinFrequency is the least count a pair needs to be merged. 0 means
	// DefaultMinFrequency.
	MinFrequency int
	// ModelMaxLength goes into tokenizer_config.json. 0 means
	// DefaultModelMaxLength.
	ModelMaxLength int
	// PadToken names the pad token in tokenizer_config.json; it must be
	// one of the special tokens. "" means "<pad>" when SpecialTokens holds
	// it, else none.
	PadToken string
	// ChatTemplate is the Jinja chat template written into
	// tokenizer_config.json; "" writes none.
	ChatTemplate string
	// Progress, when set, is called now and then with the merges done and
	// the most that can be done.
	Progress func(done, total int)
}

// Number of byte tokens.
const numBytes = 256

// withDefaults fills in defaults and checks the options.
func (o Options) withDefaults() (Options, error) {
	if o.VocabSize == 0 {
		o.VocabSize = DefaultVocabSize
	}
	if o.CharacterCoverage == 0 {
		o.CharacterCoverage = DefaultCharacterCoverage
	}
	if o.MinFrequency == 0 {
		o.MinFrequency = DefaultMinFrequency
	}
	if o.ModelMaxLength == 0 {
		o.ModelMaxLength = DefaultModelMaxLength
	}
	if math.IsNaN(o.CharacterCoverage) || o.CharacterCoverage <= 0 || o.CharacterCoverage > 1 {
		return o, fmt.Errorf("bpetrain: character coverage must be in (0, 1], got %v", o.CharacterCoverage)
	}
	if o.MinFrequency < 1 {
		return o, fmt.Errorf("bpetrain: min frequency must be at least 1, got %d", o.MinFrequency)
	}
	if o.ModelMaxLength < 1 {
		return o, fmt.Errorf("bpetrain: model max length must be positive, got %d", o.ModelMaxLength)
	}
	seen := map[string]bool{UnkToken: true, BOSToken: true, EOSToken: true}
	for _, s := range o.SpecialTokens {
		switch {
		case s == "":
			return o, errors.New("bpetrain: a special token is empty")
		case !utf8.ValidString(s):
			return o, fmt.Errorf("bpetrain: special token %q is not valid UTF-8", s)
		case seen[s]:
			return o, fmt.Errorf("bpetrain: special token %q is given twice (or is one of <unk>, <s>, </s>, which every tokenizer has)", s)
		case isByteToken(s):
			return o, fmt.Errorf("bpetrain: special token %q spells a byte token", s)
		}
		seen[s] = true
	}
	if o.PadToken == "" {
		if seen["<pad>"] {
			o.PadToken = "<pad>"
		}
	} else if !seen[o.PadToken] {
		return o, fmt.Errorf("bpetrain: pad token %q is not one of the special tokens", o.PadToken)
	}
	if min := MinVocabSize(len(o.SpecialTokens)); o.VocabSize < min {
		return o, fmt.Errorf("bpetrain: vocab size %d is too small: %d special tokens and 256 byte tokens leave no room for characters and pieces (want at least %d)",
			o.VocabSize, 3+len(o.SpecialTokens), min)
	}
	return o, nil
}

// MinVocabSize is the least vocabulary size accepted with n extra special
// tokens: the specials, the 256 byte tokens and room for 64 characters or
// pieces.
func MinVocabSize(n int) int { return 3 + n + numBytes + 64 }

func isByteToken(s string) bool {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return false
	}
	for _, c := range s[3:5] {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func byteToken(b int) string { return fmt.Sprintf("<0x%02X>", b) }

// Trainer accumulates a corpus and trains a tokenizer on it. It is not
// safe for concurrent use.
type Trainer struct {
	opts     Options
	specials []string // every special token, id order
	words    map[string]int64
	runes    int64 // characters added (raw, special-token text included)
	bytes    int64
}

// NewTrainer checks opts and returns an empty Trainer.
func NewTrainer(opts Options) (*Trainer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Trainer{opts: o, words: map[string]int64{}}
	t.specials = append([]string{UnkToken, BOSToken, EOSToken}, o.SpecialTokens...)
	return t, nil
}

// Chars is the number of characters (code points) added so far.
func (t *Trainer) Chars() int64 { return t.runes }

// Bytes is the number of bytes added so far.
func (t *Trainer) Bytes() int64 { return t.bytes }

// Add adds one text (a document, a record, a line) to the corpus. Invalid
// UTF-8 is replaced by U+FFFD. Special-token text in it is cut out and not
// trained on.
func (t *Trainer) Add(text string) {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	t.bytes += int64(len(text))
	t.runes += int64(utf8.RuneCountInString(text))
	for _, seg := range splitSpecials(text, t.specials) {
		t.addSegment(seg)
	}
}

// splitSpecials returns the pieces of text between special-token
// occurrences, matched leftmost first, longest first at one position (as
// the reference's added-token matcher does).
func splitSpecials(text string, specials []string) []string {
	var out []string
	// next[i] is the offset of specials[i]'s next occurrence at or after
	// pos (-1: none left), recomputed only once pos passes it, so the
	// text is scanned once per special token.
	next := make([]int, len(specials))
	for i, s := range specials {
		next[i] = strings.Index(text, s)
	}
	pos := 0
	for {
		at, n := -1, 0
		for i, s := range specials {
			if next[i] >= 0 && next[i] < pos {
				if j := strings.Index(text[pos:], s); j >= 0 {
					next[i] = pos + j
				} else {
					next[i] = -1
				}
			}
			if j := next[i]; j >= 0 && (at < 0 || j < at || j == at && len(s) > n) {
				at, n = j, len(s)
			}
		}
		if at < 0 {
			if pos < len(text) {
				out = append(out, text[pos:])
			}
			return out
		}
		if at > pos {
			out = append(out, text[pos:at])
		}
		pos = at + n
	}
}

func isLineBreak(r rune) bool { return r == '\n' || r == '\r' }

// Character classes whose boundaries cut words.
const (
	classLetter = iota
	classDigit
	classOther
)

func charClass(r rune) int {
	switch {
	case unicode.IsLetter(r) || unicode.Is(unicode.M, r):
		return classLetter
	case unicode.IsDigit(r):
		return classDigit
	}
	return classOther
}

// addSegment normalizes a piece of text free of special tokens and counts
// its words.
func (t *Trainer) addSegment(s string) {
	if s == "" {
		return
	}
	norm := Metaspace + strings.ReplaceAll(s, " ", Metaspace)
	start := 0
	inBreaks := false
	prev := classOther
	prevRune := rune(-1)
	for i, r := range norm {
		br := isLineBreak(r)
		c := charClass(r)
		// "▁" is a word of its own: a word reads the same after a space
		// as after punctuation or at a line start, so a model copies a
		// name from a question into a call token for token.
		cut := r == '▁' || prevRune == '▁' || br != inBreaks
		if !cut && !br && prevRune >= 0 {
			cut = c != prev || c == classDigit
		}
		if i > start && cut {
			t.words[norm[start:i]]++
			start = i
		}
		inBreaks, prev, prevRune = br, c, r
	}
	if start < len(norm) {
		t.words[norm[start:]]++
	}
}

// Model is a trained tokenizer.
type Model struct {
	// Vocab holds every token by id.
	Vocab []string
	// Merges are the learned merges in rank order.
	Merges [][2]string
	// Specials is the number of special tokens (ids 0 .. Specials-1).
	Specials int
	// Chars is the number of single-character tokens, CharsDropped the
	// number of distinct characters left to byte fallback.
	Chars, CharsDropped int
	// Coverage is the share of the corpus' characters that have a token.
	Coverage float64
	// Words is the number of distinct words trained on.
	Words int

	opts Options
}

// FirstCharID is the id of the first single-character token.
func (m *Model) FirstCharID() int { return m.Specials + numBytes }

// Train trains on everything added. It returns ctx's error when ctx is
// cancelled, and an error when the corpus is empty or its characters do
// not fit in the vocabulary.
func (t *Trainer) Train(ctx context.Context) (*Model, error) {
	o := t.opts
	m := &Model{opts: o, Specials: len(t.specials)}
	// Words, sorted for a fixed layout.
	words := make([]string, 0, len(t.words))
	for w := range t.words {
		words = append(words, w)
	}
	sort.Strings(words)
	m.Words = len(words)
	if len(words) == 0 {
		return nil, errors.New("bpetrain: the corpus is empty (no text outside special tokens)")
	}

	// Character counts and coverage.
	charCount := map[rune]int64{}
	var total int64
	for _, w := range words {
		f := t.words[w]
		for _, r := range w {
			charCount[r] += f
			total += f
		}
	}
	type rc struct {
		r rune
		n int64
	}
	chars := make([]rc, 0, len(charCount))
	for r, n := range charCount {
		chars = append(chars, rc{r, n})
	}
	sort.Slice(chars, func(i, j int) bool {
		if chars[i].n != chars[j].n {
			return chars[i].n > chars[j].n
		}
		return chars[i].r < chars[j].r
	})
	var kept []rune
	var acc int64
	for _, c := range chars {
		if o.CharacterCoverage < 1 && float64(acc)/float64(total) >= o.CharacterCoverage && c.r != '▁' {
			continue
		}
		acc += c.n
		kept = append(kept, c.r)
	}
	m.Chars, m.CharsDropped = len(kept), len(chars)-len(kept)
	m.Coverage = float64(acc) / float64(total)

	// The base vocabulary.
	vocab := make([]string, 0, o.VocabSize)
	vocab = append(vocab, t.specials...)
	for b := 0; b < numBytes; b++ {
		vocab = append(vocab, byteToken(b))
	}
	ids := make(map[string]int32, o.VocabSize)
	for i, s := range vocab {
		ids[s] = int32(i)
	}
	firstChar := len(vocab)
	for _, r := range kept {
		s := string(r)
		if _, dup := ids[s]; dup { // a one-character special token
			continue
		}
		ids[s] = int32(len(vocab))
		vocab = append(vocab, s)
	}
	m.Chars = len(vocab) - firstChar
	if len(vocab) > o.VocabSize {
		return nil, fmt.Errorf("bpetrain: vocab size %d is too small for the corpus: %d special tokens, 256 byte tokens and the %d characters that cover %.4g of the text need %d entries; raise vocab_size or lower character_coverage",
			o.VocabSize, len(t.specials), m.Chars, o.CharacterCoverage, len(vocab))
	}

	st := newState(vocab, ids)
	st.build(words, t.words, firstChar)
	base := len(st.vocab)
	maxMerges := o.VocabSize - base
	done := 0
	for len(st.vocab) < o.VocabSize {
		if done%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if o.Progress != nil && done%512 == 0 {
				o.Progress(len(st.vocab)-base, maxMerges)
			}
		}
		a, b, ok := st.best(int64(o.MinFrequency))
		if !ok {
			break
		}
		s := st.vocab[a] + st.vocab[b]
		if id, exists := st.ids[s]; exists && int(id) < firstChar {
			st.ban(a, b) // would spell a special or byte token
			continue
		}
		st.merge(a, b, s)
		done++
	}
	if o.Progress != nil {
		o.Progress(len(st.vocab)-base, maxMerges)
	}
	m.Vocab = st.vocab
	m.Merges = st.merges
	return m, nil
}

// state is the incremental pair-count structure of one training run.
type state struct {
	vocab  []string
	ids    map[string]int32
	merges [][2]string

	// Symbols of all words, laid end to end: sym[p] is a token id (-1 once
	// merged into its left neighbour); prev/next link the live symbols of
	// a word (-1 at its ends and at barriers); freq[p] is the frequency of
	// p's word.
	sym, prev, next []int32
	freq            []int64

	pairs  map[uint64]*pairStat
	banned map[uint64]bool
	h      pairHeap
}

// pairStat is one pair's count and the positions of its left symbol
// (possibly stale: checked when used).
type pairStat struct {
	count int64
	pos   []int32
}

func key(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newState(vocab []string, ids map[string]int32) *state {
	return &state{vocab: vocab, ids: ids, pairs: map[uint64]*pairStat{}, banned: map[uint64]bool{}}
}

// build lays out the words and counts the initial pairs.
func (st *state) build(words []string, freq map[string]int64, firstChar int) {
	n := 0
	for _, w := range words {
		n += utf8.RuneCountInString(w)
	}
	st.sym = make([]int32, 0, n)
	st.prev = make([]int32, 0, n)
	st.next = make([]int32, 0, n)
	st.freq = make([]int64, 0, n)
	for _, w := range words {
		f := freq[w]
		last := int32(-1) // previous live position in this word, -1 after a barrier
		for _, r := range w {
			id, ok := st.ids[string(r)]
			if !ok || int(id) < firstChar {
				last = -1 // dropped character: a barrier
				continue
			}
			p := int32(len(st.sym))
			st.sym = append(st.sym, id)
			st.prev = append(st.prev, last)
			st.next = append(st.next, -1)
			st.freq = append(st.freq, f)
			if last >= 0 {
				st.next[last] = p
				st.add(st.sym[last], id, last, f)
			}
			last = p
		}
	}
	st.h = pairHeap{vocab: st.vocab}
	for k, ps := range st.pairs {
		st.h.items = append(st.h.items, heapItem{count: ps.count, a: int32(k >> 32), b: int32(uint32(k))})
	}
	heap.Init(&st.h)
}

// add counts one more occurrence of (a, b) at position p, weighted f.
func (st *state) add(a, b, p int32, f int64) *pairStat {
	k := key(a, b)
	ps := st.pairs[k]
	if ps == nil {
		ps = &pairStat{}
		st.pairs[k] = ps
	}
	ps.count += f
	ps.pos = append(ps.pos, p)
	return ps
}

func (st *state) sub(a, b int32, f int64) {
	if ps := st.pairs[key(a, b)]; ps != nil {
		ps.count -= f
	}
}

// best pops the most frequent pair (ties: smallest left piece, then
// smallest right piece) with at least minCount occurrences.
func (st *state) best(minCount int64) (a, b int32, ok bool) {
	for st.h.Len() > 0 {
		it := heap.Pop(&st.h).(heapItem)
		k := key(it.a, it.b)
		ps := st.pairs[k]
		if ps == nil || ps.count <= 0 || st.banned[k] {
			continue
		}
		if ps.count != it.count {
			// Stale: counts of old pairs only fall, so re-queue at the
			// current count (a fresher, higher entry exists when it rose).
			if ps.count < it.count {
				heap.Push(&st.h, heapItem{count: ps.count, a: it.a, b: it.b})
			}
			continue
		}
		if it.count < minCount {
			return 0, 0, false
		}
		return it.a, it.b, true
	}
	return 0, 0, false
}

func (st *state) ban(a, b int32) { st.banned[key(a, b)] = true }

// merge replaces every occurrence of (a, b) by the token s.
func (st *state) merge(a, b int32, s string) {
	id, exists := st.ids[s]
	if !exists {
		id = int32(len(st.vocab))
		st.ids[s] = id
		st.vocab = append(st.vocab, s)
		st.h.vocab = st.vocab
	}
	st.merges = append(st.merges, [2]string{st.vocab[a], st.vocab[b]})
	k := key(a, b)
	ps := st.pairs[k]
	pos := ps.pos
	if !slices.IsSorted(pos) {
		slices.Sort(pos)
	}
	pos = slices.Compact(pos)
	touched := map[uint64]*pairStat{}
	for _, p := range pos {
		q := st.next[p]
		if st.sym[p] != a || q < 0 || st.sym[q] != b {
			continue // stale
		}
		f := st.freq[p]
		l, r := st.prev[p], st.next[q]
		if l >= 0 {
			st.sub(st.sym[l], a, f)
		}
		if r >= 0 {
			st.sub(b, st.sym[r], f)
		}
		st.sym[p] = id
		st.sym[q] = -1
		st.next[p] = r
		if r >= 0 {
			st.prev[r] = p
		}
		if l >= 0 {
			touched[key(st.sym[l], id)] = st.add(st.sym[l], id, l, f)
		}
		if r >= 0 {
			touched[key(id, st.sym[r])] = st.add(id, st.sym[r], p, f)
		}
	}
	delete(st.pairs, k)
	// Queue the pairs whose counts rose, in a fixed order.
	keys := make([]uint64, 0, len(touched))
	for tk, tp := range touched {
		if tp.count > 0 && st.pairs[tk] == tp {
			keys = append(keys, tk)
		}
	}
	slices.Sort(keys)
	for _, tk := range keys {
		heap.Push(&st.h, heapItem{count: touched[tk].count, a: int32(tk >> 32), b: int32(uint32(tk))})
	}
}

// heapItem is a queued pair with its count when queued.
type heapItem struct {
	count int64
	a, b  int32
}

// pairHeap is a max-heap on count, ties to the smallest left piece, then
// the smallest right piece.
type pairHeap struct {
	items []heapItem
	vocab []string
}

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(i, j int) bool {
	x, y := h.items[i], h.items[j]
	if x.count != y.count {
		return x.count > y.count
	}
	if x.a != y.a {
		return h.vocab[x.a] < h.vocab[y.a]
	}
	return h.vocab[x.b] < h.vocab[y.b]
}
func (h *pairHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *pairHeap) Push(x any)    { h.items = append(h.items, x.(heapItem)) }
func (h *pairHeap) Pop() any {
	n := len(h.items) - 1
	it := h.items[n]
	h.items = h.items[:n]
	return it
}
