package bpetrain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/internal/shareddata"
	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
)

var update = flag.Bool("update", false, "rewrite testdata/tokenizer*.json from testdata/corpus.txt")

// train trains on texts with opts.
func train(t testing.TB, opts Options, texts ...string) *Model {
	t.Helper()
	tr, err := NewTrainer(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range texts {
		tr.Add(s)
	}
	m, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// load writes m to a temp dir and loads it with ml/tokenizer.
func load(t testing.TB, m *Model) *tokenizer.Tokenizer {
	t.Helper()
	dir := t.TempDir()
	if err := m.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func mergeStrings(m *Model) []string {
	var out []string
	for _, mg := range m.Merges {
		out = append(out, mg[0]+" "+mg[1])
	}
	return out
}

// TestHandMerges checks merges worked out by hand.
func TestHandMerges(t *testing.T) {
	// "aab aab ab": words ▁ ×3 (a word of its own), aab ×2, ab ×1.
	// Characters a:5, b:3, ▁:3 (b before ▁ by code point). Pairs aa:2,
	// ab:3: a+b. Then a+ab:2: a+ab; nothing else pairs up.
	m := train(t, Options{VocabSize: 400, CharacterCoverage: 1}, "aab aab ab")
	if got, want := mergeStrings(m), []string{"a b", "a ab"}; !reflect.DeepEqual(got, want) {
		t.Errorf("merges %q, want %q", got, want)
	}
	want := []string{"a", "b", "▁", "ab", "aab"}
	if got := m.Vocab[3+256:]; !reflect.DeepEqual(got, want) {
		t.Errorf("vocab after bytes %q, want %q", got, want)
	}
	if m.Vocab[0] != "<unk>" || m.Vocab[1] != "<s>" || m.Vocab[2] != "</s>" || m.Vocab[3] != "<0x00>" || m.Vocab[258] != "<0xFF>" {
		t.Errorf("fixed ids: %q", m.Vocab[:4])
	}

	// Overlaps merge left to right: "aaa aaa" has a+a 4 times; after it
	// the words are aa a, so the next pair is aa+a (2).
	m = train(t, Options{VocabSize: 400, CharacterCoverage: 1}, "aaa aaa")
	if got, want := mergeStrings(m), []string{"a a", "aa a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("overlap merges %q, want %q", got, want)
	}

	// Pieces never cross a word boundary: "ab ab" never gives "b▁" nor
	// "▁ab".
	m = train(t, Options{VocabSize: 400, CharacterCoverage: 1}, "ab ab ab")
	if got, want := mergeStrings(m), []string{"a b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("merges %q, want %q", got, want)
	}

	// Line breaks are words of their own: "x\n\nx\n\n" gives "\n\n" but
	// never "x\n" or "\nx".
	m = train(t, Options{VocabSize: 400, CharacterCoverage: 1}, "x\n\nx\n\n", "x\n\nx\n\n")
	for _, mg := range mergeStrings(m) {
		if strings.Contains(mg, "x \n") || strings.Contains(mg, "\n x") {
			t.Errorf("merge %q mixes a line break with text", mg)
		}
	}
	if !slices.Contains(mergeStrings(m), "\n \n") {
		t.Errorf("merges %q lack \\n+\\n", mergeStrings(m))
	}
}

// naiveTrain is a slow, obviously correct trainer: it recounts every pair
// after every merge.
func naiveTrain(t *testing.T, m *Model, texts []string) [][2]string {
	opts := m.opts
	tr, err := NewTrainer(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range texts {
		tr.Add(s)
	}
	inVocab := map[string]bool{}
	for _, s := range m.Vocab[:m.FirstCharID()+m.Chars] {
		inVocab[s] = true
	}
	type word struct {
		syms []string // "" = barrier
		f    int64
	}
	var words []word
	for w, f := range tr.words {
		var syms []string
		for _, r := range w {
			s := string(r)
			if !inVocab[s] {
				s = ""
			}
			syms = append(syms, s)
		}
		words = append(words, word{syms, f})
	}
	vocab := map[string]bool{}
	for s := range inVocab {
		vocab[s] = true
	}
	n := m.FirstCharID() + m.Chars
	var merges [][2]string
	banned := map[[2]string]bool{}
	for n < opts.VocabSize {
		counts := map[[2]string]int64{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				if w.syms[i] != "" && w.syms[i+1] != "" {
					counts[[2]string{w.syms[i], w.syms[i+1]}] += w.f
				}
			}
		}
		var best [2]string
		var bc int64
		for p, c := range counts {
			if banned[p] {
				continue
			}
			if c > bc || c == bc && (p[0] < best[0] || p[0] == best[0] && p[1] < best[1]) {
				best, bc = p, c
			}
		}
		if bc < int64(opts.MinFrequency) {
			break
		}
		s := best[0] + best[1]
		if isByteToken(s) || slices.Contains(m.Vocab[:m.Specials], s) {
			banned[best] = true
			continue
		}
		merges = append(merges, best)
		if !vocab[s] {
			vocab[s] = true
			n++
		}
		for wi := range words {
			syms := words[wi].syms
			var out []string
			for i := 0; i < len(syms); i++ {
				if i+1 < len(syms) && syms[i] == best[0] && syms[i+1] == best[1] {
					out = append(out, s)
					i++
				} else {
					out = append(out, syms[i])
				}
			}
			words[wi].syms = out
		}
	}
	return merges
}

// TestIncrementalMatchesNaive: the heap-and-positions trainer learns the
// same merges as recounting everything after every merge.
func TestIncrementalMatchesNaive(t *testing.T) {
	corpus := readCorpus(t)
	texts := strings.SplitAfter(corpus, "\n\n")
	for _, opts := range []Options{
		{VocabSize: 600, SpecialTokens: DefaultSpecialTokens},
		{VocabSize: 700, CharacterCoverage: 0.98, MinFrequency: 3},
	} {
		m := train(t, opts, texts...)
		naive := naiveTrain(t, m, texts)
		if !reflect.DeepEqual(m.Merges, naive) {
			for i := range min(len(naive), len(m.Merges)) {
				if m.Merges[i] != naive[i] {
					t.Fatalf("%+v: merge %d: %q, naive %q (%d vs %d merges)", opts, i, m.Merges[i], naive[i], len(m.Merges), len(naive))
				}
			}
			t.Fatalf("%+v: %d merges, naive %d", opts, len(m.Merges), len(naive))
		}
		if len(m.Merges) < 100 {
			t.Fatalf("only %d merges", len(m.Merges))
		}
	}
}

func readCorpus(t testing.TB) string {
	b, err := os.ReadFile(filepath.Join("testdata", "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goldenOptions train testdata/tokenizer.json.
var goldenOptions = Options{
	VocabSize:     600,
	SpecialTokens: DefaultSpecialTokens,
	// The chat template tokenizer_train writes for "twainbot".
	ChatTemplate: "{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + '\\n' }}" +
		"{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\\n' + message['content'] + '\\n' }}" +
		"{% elif message['role'] == 'tool' %}{{ '<|tool|>\\n' + message['content'] + '\\n' }}" +
		"{% else %}{{ '<|user|>\\n' + message['content'] + '\\n' }}{% endif %}{% endfor %}" +
		"{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ '<|end|>' }}{% endif %}",
}

// TestGoldenTokenizer: training on testdata/corpus.txt gives the committed
// files byte for byte (-update rewrites them; then rerun
// ml/tokenizer/refgen/bpetrain_ref.mjs).
func TestGoldenTokenizer(t *testing.T) {
	m := train(t, goldenOptions, readCorpus(t))
	files := map[string][]byte{
		TokenizerFile:        m.TokenizerJSON(),
		TokenizerConfigFile:  m.TokenizerConfigJSON(),
		SpecialTokensMapFile: m.SpecialTokensMapJSON(),
	}
	for name, got := range files {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the trained file (run go test -run TestGoldenTokenizer -update, then node ml/tokenizer/refgen/bpetrain_ref.mjs)", name)
		}
		if !json.Valid(got) {
			t.Errorf("%s is not valid JSON", name)
		}
	}
	if len(m.Vocab) != 600 {
		t.Errorf("vocab %d, want 600", len(m.Vocab))
	}
}

// TestReference compares our encoder on the committed tokenizer with the
// ids Hugging Face's Rust tokenizers and tokenizers.js (transformers.js)
// gave (testdata/reference.jsonl, written by
// ml/tokenizer/refgen/bpetrain_ref.mjs).
func TestReference(t *testing.T) {
	tk, err := tokenizer.Load(filepath.Join("testdata", TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "reference.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	n, bad := 0, 0
	for line := 1; sc.Scan(); line++ {
		var rec struct {
			Text         string `json:"text"`
			IDs          []int  `json:"ids"`
			IDsSpecial   []int  `json:"ids_special"`
			Decoded      *string
			IDsJS        []int `json:"ids_js"`
			IDsSpecialJS []int `json:"ids_special_js"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("reference.jsonl:%d: %v", line, err)
		}
		n++
		if rec.IDsJS != nil || rec.IDsSpecialJS != nil {
			t.Errorf("reference.jsonl:%d: tokenizers.js disagreed with the Rust encoder on %q", line, clip(rec.Text))
		}
		got := tk.Encode(rec.Text, false)
		if !slices.Equal(got, rec.IDs) && bad < 10 {
			bad++
			t.Errorf("reference.jsonl:%d: Encode(%q) = %v, reference %v", line, clip(rec.Text), clipIDs(got), clipIDs(rec.IDs))
		}
		if got := tk.Encode(rec.Text, true); !slices.Equal(got, rec.IDsSpecial) && bad < 10 {
			bad++
			t.Errorf("reference.jsonl:%d: Encode(%q, special) = %v, reference %v", line, clip(rec.Text), clipIDs(got), clipIDs(rec.IDsSpecial))
		}
		want := rec.Text
		if rec.Decoded != nil {
			want = *rec.Decoded
		}
		if got := tk.Decode(rec.IDs, false); got != want && bad < 10 {
			bad++
			t.Errorf("reference.jsonl:%d: Decode = %q, reference %q", line, clip(got), clip(want))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 300 {
		t.Fatalf("only %d reference strings", n)
	}
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func clipIDs(ids []int) string {
	if len(ids) > 20 {
		return fmt.Sprint(ids[:20]) + fmt.Sprintf("…(%d)", len(ids))
	}
	return fmt.Sprint(ids)
}

// TestLoadAndSpecials: the trained files load, the special tokens have
// their ids, are atomic in text and BOS/EOS/pad come from the config.
func TestLoadAndSpecials(t *testing.T) {
	corpus := readCorpus(t)
	m := train(t, goldenOptions, corpus)
	tk := load(t, m)
	if tk.VocabSize() != len(m.Vocab) || tk.BOS() != 1 || tk.EOS() != 2 || tk.Pad() != 3 {
		t.Fatalf("vocab %d bos %d eos %d pad %d", tk.VocabSize(), tk.BOS(), tk.EOS(), tk.Pad())
	}
	want := append([]string{"<unk>", "<s>", "</s>"}, DefaultSpecialTokens...)
	for id, s := range want {
		if got, ok := tk.TokenID(s); !ok || got != id || !tk.IsSpecial(id) {
			t.Errorf("TokenID(%q) = %d, %v; want %d, special", s, got, ok, id)
		}
	}
	user, _ := tk.TokenID("<|user|>")
	end, _ := tk.TokenID("<|end|>")
	ids := tk.Encode("<|user|>\nhello<|end|>", false)
	if ids[0] != user || ids[len(ids)-1] != end {
		t.Fatalf("specials not atomic: %v", ids)
	}
	if ids := tk.Encode("hi", true); ids[0] != 1 {
		t.Fatalf("no BOS: %v", ids)
	}
	// The corpus holds the chat tags many times, yet no piece was learned
	// from their text.
	for _, v := range m.Vocab[m.Specials:] {
		if strings.Contains(v, "|>") || strings.Contains(v, "<|") {
			t.Errorf("piece %q was learned from special-token text", v)
		}
	}
	// Special-token text dominating a corpus is not trained on at all.
	m2 := train(t, Options{VocabSize: 400, SpecialTokens: []string{"<|user|>"}}, strings.Repeat("<|user|> zz ", 500))
	for _, v := range m2.Vocab[m2.FirstCharID():] {
		if strings.ContainsAny(v, "<|>ur") {
			t.Errorf("piece %q comes from special-token text", v)
		}
	}
}

// TestByteFallback: characters the corpus never had (CJK, emoji) and
// characters cut by coverage go through byte tokens and decode back.
func TestByteFallback(t *testing.T) {
	m := train(t, goldenOptions, readCorpus(t))
	tk := load(t, m)
	for _, s := range []string{"日本語", "emoji 🎉👍🏽", "Привет", "mixed 中文 text", "\x00\x01", "é"} {
		ids := tk.Encode(s, false)
		if got := tk.Decode(ids, false); got != s {
			t.Errorf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
	}
	ids := tk.Encode("日", false) // ▁ then E6 97 A5
	want := []int{mustID(t, tk, "▁"), mustID(t, tk, "<0xE6>"), mustID(t, tk, "<0x97>"), mustID(t, tk, "<0xA5>")}
	if !slices.Equal(ids, want) {
		t.Errorf("Encode(日) = %v, want %v", ids, want)
	}
	// Coverage: with 0.9 coverage on a text of 95 a's and 5 b's... "b"
	// gets no token and falls back to its byte.
	m2 := train(t, Options{VocabSize: 400, CharacterCoverage: 0.9}, strings.Repeat("aaaaaaaaaaaaaaaaaab ", 20))
	tk2 := load(t, m2)
	if _, ok := tk2.TokenID("b"); ok || m2.CharsDropped != 1 {
		t.Errorf("b kept despite coverage 0.9 (dropped %d)", m2.CharsDropped)
	}
	if got := tk2.Encode("ab", false); !slices.Contains(got, mustID(t, tk2, "<0x62>")) {
		t.Errorf("b not byte-encoded: %v", got)
	}
	if got := tk2.Decode(tk2.Encode("aab b", false), false); got != "aab b" {
		t.Errorf("round trip %q", got)
	}
}

func mustID(t *testing.T, tk *tokenizer.Tokenizer, s string) int {
	t.Helper()
	id, ok := tk.TokenID(s)
	if !ok {
		t.Fatalf("no token %q", s)
	}
	return id
}

// TestMergesRespected: encoding a training word applies the merges in
// rank order, as a hand-rolled BPE over the merge list does.
func TestMergesRespected(t *testing.T) {
	corpus := readCorpus(t)
	m := train(t, goldenOptions, corpus)
	tk := load(t, m)
	rank := map[[2]string]int{}
	for i, mg := range m.Merges {
		rank[mg] = i
	}
	bpe := func(word string) []string {
		var syms []string
		for _, r := range word {
			syms = append(syms, string(r))
		}
		for {
			best, at := len(m.Merges), -1
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := rank[[2]string{syms[i], syms[i+1]}]; ok && r < best {
					best, at = r, i
				}
			}
			if at < 0 {
				return syms
			}
			syms = append(syms[:at], append([]string{syms[at] + syms[at+1]}, syms[at+2:]...)...)
		}
	}
	checked := 0
	for _, w := range strings.Fields(corpus) {
		if strings.ContainsAny(w, "<|>") {
			continue
		}
		var want []int
		for _, s := range bpe("▁" + w) {
			id, ok := tk.TokenID(s)
			if !ok {
				for _, b := range []byte(s) {
					id = mustID(t, tk, fmt.Sprintf("<0x%02X>", b))
					want = append(want, id)
				}
				continue
			}
			want = append(want, id)
		}
		if got := tk.Encode(w, false); !slices.Equal(got, want) {
			t.Fatalf("Encode(%q) = %v, merges give %v", w, got, want)
		}
		checked++
	}
	if checked < 1000 {
		t.Fatalf("checked %d words", checked)
	}
	// Frequent words of the corpus became single tokens.
	for _, w := range []string{"the", "Tom", "and"} {
		if _, ok := tk.TokenID(w); !ok {
			t.Errorf("%q is not a token", w)
		}
	}
}

// TestDeterminism: the same corpus gives byte-identical files, whatever
// the order in which the texts are added.
func TestDeterminism(t *testing.T) {
	texts := strings.SplitAfter(readCorpus(t), "\n")
	a := train(t, goldenOptions, texts...)
	rev := slices.Clone(texts)
	slices.Reverse(rev)
	for i := 0; i < 3; i++ {
		b := train(t, goldenOptions, rev...)
		if !bytes.Equal(a.TokenizerJSON(), b.TokenizerJSON()) || !bytes.Equal(a.TokenizerConfigJSON(), b.TokenizerConfigJSON()) ||
			!bytes.Equal(a.SpecialTokensMapJSON(), b.SpecialTokensMapJSON()) {
			t.Fatal("two trainings on the same corpus differ")
		}
	}
}

// TestFilesShape checks the JSON against Mistral's layout.
func TestFilesShape(t *testing.T) {
	m := train(t, goldenOptions, readCorpus(t))
	var tj map[string]any
	if err := json.Unmarshal(m.TokenizerJSON(), &tj); err != nil {
		t.Fatal(err)
	}
	model := tj["model"].(map[string]any)
	if model["type"] != "BPE" || model["byte_fallback"] != true || model["fuse_unk"] != true || model["unk_token"] != "<unk>" {
		t.Errorf("model %v", model["type"])
	}
	if n := len(model["merges"].([]any)); n != len(m.Merges) {
		t.Errorf("merges %d", n)
	}
	if n := len(tj["added_tokens"].([]any)); n != 9 {
		t.Errorf("added tokens %d", n)
	}
	var cfg map[string]any
	if err := json.Unmarshal(m.TokenizerConfigJSON(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["bos_token"] != "<s>" || cfg["eos_token"] != "</s>" || cfg["pad_token"] != "<pad>" || cfg["add_bos_token"] != true ||
		cfg["add_eos_token"] != false || cfg["chat_template"] != goldenOptions.ChatTemplate || cfg["model_max_length"] != float64(DefaultModelMaxLength) {
		t.Errorf("config %v", cfg)
	}
	dec := cfg["added_tokens_decoder"].(map[string]any)
	if len(dec) != 9 || dec["3"].(map[string]any)["content"] != "<pad>" {
		t.Errorf("added_tokens_decoder %v", dec)
	}
	var stm map[string]any
	if err := json.Unmarshal(m.SpecialTokensMapJSON(), &stm); err != nil {
		t.Fatal(err)
	}
	if add := stm["additional_special_tokens"].([]any); len(add) != 5 || add[0] != "<|system|>" {
		t.Errorf("additional_special_tokens %v", add)
	}
}

func TestOptionsErrors(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{VocabSize: 300}, "too small"},
		{Options{CharacterCoverage: 1.5}, "coverage"},
		{Options{CharacterCoverage: -1}, "coverage"},
		{Options{SpecialTokens: []string{"<pad>", "<pad>"}}, "twice"},
		{Options{SpecialTokens: []string{"<s>"}}, "twice"},
		{Options{SpecialTokens: []string{""}}, "empty"},
		{Options{SpecialTokens: []string{"<0x0A>"}}, "byte token"},
		{Options{PadToken: "<pad>"}, "pad token"},
	} {
		if _, err := NewTrainer(c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
	}
	tr, _ := NewTrainer(Options{})
	tr.Add("<s></s>")
	if _, err := tr.Train(context.Background()); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty corpus: %v", err)
	}
	// Too many characters for the vocabulary.
	var b strings.Builder
	for r := rune(0x4e00); r < 0x4e00+200; r++ {
		b.WriteString(strings.Repeat(string(r), 3))
	}
	tr, _ = NewTrainer(Options{VocabSize: 400, CharacterCoverage: 1})
	tr.Add(b.String())
	if _, err := tr.Train(context.Background()); err == nil || !strings.Contains(err.Error(), "raise vocab_size") {
		t.Errorf("too many chars: %v", err)
	}
}

func TestCancel(t *testing.T) {
	tr, _ := NewTrainer(Options{VocabSize: 2000})
	tr.Add(readCorpus(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Train(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// sharedTexts returns the real corpora: the Gutenberg books and the Onion
// titles.
func sharedTexts(t *testing.T) (books []string, titles []string) {
	dir := shareddata.Path(t, "gutenberg")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".txt") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		books = append(books, string(b))
	}
	f, err := os.Open(shareddata.Path(t, "onion/TheOnion_181217_184244.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "title")
	if col < 0 {
		t.Fatalf("no title column in %q", recs[0])
	}
	for _, rec := range recs[1:] {
		if col < len(rec) {
			titles = append(titles, rec[col])
		}
	}
	return books, titles
}

// TestRealCorpora trains a 4096 vocabulary on the real books and titles
// (about 2 MB), checks the speed, and round-trips every book, paragraph
// and title through the trained tokenizer.
func TestRealCorpora(t *testing.T) {
	books, titles := sharedTexts(t)
	tr, err := NewTrainer(Options{SpecialTokens: DefaultSpecialTokens})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range books {
		tr.Add(b)
	}
	for _, s := range titles {
		tr.Add(s)
	}
	start := time.Now()
	m, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("trained %d tokens (%d merges, %d chars, coverage %.5f) on %d bytes in %v", len(m.Vocab), len(m.Merges), m.Chars, m.Coverage, tr.Bytes(), el)
	if el > 5*time.Second {
		t.Errorf("training took %v", el)
	}
	if len(m.Vocab) != DefaultVocabSize {
		t.Errorf("vocab %d", len(m.Vocab))
	}
	tk := load(t, m)
	var texts []string
	texts = append(texts, books...)
	for _, b := range books {
		texts = append(texts, strings.Split(strings.ReplaceAll(b, "\r\n", "\n"), "\n\n")...)
	}
	texts = append(texts, titles...)
	var chars, toks int
	for _, s := range texts {
		if strings.Contains(s, "▁") || !utf8.ValidString(s) {
			continue // ▁ decodes to a space, by design (as in the reference)
		}
		ids := tk.Encode(s, false)
		if got := tk.Decode(ids, false); got != s {
			t.Fatalf("round trip of %q gave %q", clip(s), clip(got))
		}
		chars += utf8.RuneCountInString(s)
		toks += len(ids)
	}
	t.Logf("%d texts round-trip; %.2f characters per token", len(texts), float64(chars)/float64(toks))
}

// TestChatReference: transformers.js' apply_chat_template, run on the
// committed tokenizer (its tokenizer_config.json chat template, the one
// tokenizer_train writes for "twainbot"), gives the text of ml/chat's
// twainbot Render and the ids of our encoder (testdata/chat_reference.json,
// written by ml/tokenizer/refgen/bpetrain_ref.mjs).
func TestChatReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "chat_reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Chats []struct {
			Messages []chat.Message `json:"messages"`
			Gen      bool           `json:"add_generation_prompt"`
			Text     string         `json:"text"`
			IDs      []int          `json:"ids"`
		} `json:"chats"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Chats) < 4 {
		t.Fatalf("%d chats", len(ref.Chats))
	}
	tpl, err := chat.Lookup("twainbot")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tokenizer.Load(filepath.Join("testdata", TokenizerFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range ref.Chats {
		if got := tpl.Render(c.Messages, c.Gen); got != c.Text {
			t.Errorf("chat %d: Render %q, transformers.js %q", i, got, c.Text)
		}
		if got := tk.Encode(c.Text, false); !slices.Equal(got, c.IDs) {
			t.Errorf("chat %d: Encode %v, transformers.js %v", i, got, c.IDs)
		}
	}
}

func TestSplitSpecials(t *testing.T) {
	sp := []string{"<s>", "</s>", "<|a|>", "<|a|>x"}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"plain", []string{"plain"}},
		{"<s>", nil},
		{"a<s>b</s>c", []string{"a", "b", "c"}},
		{"<s><s>x<s>", []string{"x"}},
		{"1<|a|>x2<|a|>3", []string{"1", "2", "3"}}, // longest match at a position
		{"<|a|<s>", []string{"<|a|"}},
	} {
		if got := splitSpecials(c.in, sp); !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitSpecials(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Linear in the text: a long text with many special tokens.
	long := strings.Repeat("word <s> more words </s> ", 200000)
	start := time.Now()
	if got := len(splitSpecials(long, append(sp, DefaultSpecialTokens...))); got != 400001 {
		t.Fatalf("%d pieces", got)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("splitting 5 MB took %v", el)
	}
}

// BenchmarkTrain trains a 4096 vocabulary on the first 1 MB of the real
// Gutenberg books, paragraph by paragraph.
func BenchmarkTrain(b *testing.B) {
	dir := shareddata.Path(b, "gutenberg")
	names, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	sort.Strings(names)
	var corpus strings.Builder
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			b.Fatal(err)
		}
		corpus.Write(data)
	}
	text := corpus.String()[:1<<20]
	paras := strings.SplitAfter(text, "\n\n")
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tr, _ := NewTrainer(Options{SpecialTokens: DefaultSpecialTokens})
		for _, p := range paras {
			tr.Add(p)
		}
		if _, err := tr.Train(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRandomMatchesNaive compares the incremental trainer with the naive
// one on many small random corpora over tiny alphabets, where overlapping
// pairs ("aaa") and stale positions are common. (It also counts merges
// whose result was already a piece, reached through another pair; the
// trainer records those as merges without a new entry, as Hugging Face's
// does, but no corpus tried so far produces one.)
func TestRandomMatchesNaive(t *testing.T) {
	dups := 0
	for seed := uint32(1); seed <= 300; seed++ {
		x := seed
		rnd := func(n int) int {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			return int(x % uint32(n))
		}
		var b strings.Builder
		alpha := []string{"aab\n", "a", "ab", "aaab"}[seed%4]
		for w := 0; w < 40; w++ {
			for range 1 + rnd(4+int(seed%20)) {
				b.WriteByte(alpha[rnd(len(alpha))])
			}
			b.WriteString(" ")
		}
		text := b.String()
		opts := Options{VocabSize: 3 + 256 + 64 + rnd(80), CharacterCoverage: 1, MinFrequency: 1 + rnd(2)}
		m := train(t, opts, text)
		if naive := naiveTrain(t, m, []string{text}); !reflect.DeepEqual(m.Merges, naive) {
			t.Fatalf("seed %d: merges\n%q\nnaive\n%q", seed, m.Merges, naive)
		}
		dups += len(m.Merges) - (len(m.Vocab) - m.FirstCharID() - m.Chars)
	}
	t.Logf("%d duplicate-string merges", dups)
}

// TestPiecesKeepToOneCharacterClass: however often a string repeats, no
// piece mixes letters with digits or punctuation, and digits stand alone,
// so a name inside a call is the same token as after other punctuation.
func TestPiecesKeepToOneCharacterClass(t *testing.T) {
	var texts []string
	for i := 0; i < 50; i++ {
		texts = append(texts, `<tool_call>get_weather(location="Paris, France", date="today")</tool_call> 64°F`)
	}
	m := train(t, Options{VocabSize: MinVocabSize(0) + 200}, texts...)
	for _, p := range m.Vocab[m.FirstCharID():] {
		body := strings.TrimPrefix(p, "▁")
		classes := map[int]bool{}
		for _, r := range body {
			classes[charClass(r)] = true
		}
		if len(classes) > 1 || (classes[classDigit] && utf8.RuneCountInString(body) > 1) {
			t.Errorf("piece %q mixes character classes", p)
		}
	}
	for _, want := range []string{"Paris", "weather", "location", "tool"} {
		if !slices.Contains(m.Vocab, want) {
			t.Errorf("no piece %q in %v", want, m.Vocab[m.FirstCharID():])
		}
	}
}
