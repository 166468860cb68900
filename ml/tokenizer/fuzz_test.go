package tokenizer

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/mlbuild/mlbuild/internal/shareddata"
)

// tinyByteLevel builds a small Llama-3-style tokenizer.json: every byte's
// stand-in character plus a few merges, the Llama-3 split pattern, ByteLevel
// without regex, ignore_merges, and two special tokens.
func tinyByteLevel() string {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[byteCharStr[b]] = b
	}
	merges := [][2]string{{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"i", "n"}, {"Ġ", "Ġ"}, {"Ċ", "Ċ"}}
	for _, m := range merges {
		if _, ok := vocab[m[0]+m[1]]; !ok {
			vocab[m[0]+m[1]] = len(vocab)
		}
	}
	vocab["Ġthere"] = len(vocab) // only reachable through ignore_merges
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 1000, "content": "<|begin_of_text|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
			{"id": 1001, "content": "<|eot_id|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
		},
		"normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": llama3Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
			map[string]any{"type": "TemplateProcessing",
				"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
				"pair":           []any{},
				"special_tokens": map[string]any{"<|begin_of_text|>": map[string]any{"id": "<|begin_of_text|>", "ids": []int{1000}, "tokens": []string{"<|begin_of_text|>"}}}},
		}},
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": true, "vocab": vocab, "merges": merges},
	}
	data, _ := json.Marshal(doc)
	return string(data)
}

func TestTinyByteLevel(t *testing.T) {
	tok := mustParse(t, tinyByteLevel())
	// Added tokens take the ids after the vocabulary, as in the reference:
	// the ids written in the file are ignored, but the template's are not.
	bot, _ := tok.TokenID("<|begin_of_text|>")
	eot, _ := tok.TokenID("<|eot_id|>")
	he, _ := tok.TokenID("he")
	th, _ := tok.TokenID("Ġthe")
	there, _ := tok.TokenID("Ġthere")
	nn, _ := tok.TokenID("ĊĊ")
	if bot != 263 || eot != 264 {
		t.Errorf("added token ids %d, %d; want 263, 264", bot, eot)
	}
	ids := tok.Encode("the there<|eot_id|>\n\n", true)
	want := []int{1000, int('t'), he, there, eot, nn}
	if !equalInts(ids, want) {
		t.Errorf("Encode = %v, want %v", ids, want)
	}
	if got := tok.Decode(append(ids, bot), false); got != "the there<|eot_id|>\n\n<|begin_of_text|>" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Decode(ids, true); got != "the there\n\n" {
		t.Errorf("Decode skipping specials = %q", got)
	}
	if got := tok.Encode(" the", false); !equalInts(got, []int{th}) {
		t.Errorf("Encode(\" the\") = %v, want [%d]", got, th)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var fuzzSeeds = []string{
	"", " ", "\n\n", "Hello world", "DON'T WE'LL", "  \t\n x", "1234567890", "日本語", "👨‍👩‍👧‍👦", "e\u0301",
	"<s>", "</s>a", "<|eot_id|>", "<|begin_of_text|>hi", "\u2581", "a\u00a0b", "\xff\xfe", "\xe2\x82", "'ſt",
	strings.Repeat("ab", 300),
}

// FuzzLoad: no tokenizer.json, however broken, makes Parse, Encode or
// Decode panic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(tinySP))
	f.Add([]byte(tinyByteLevel()))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]},
		"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
		"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": true, "strip_right": true}]},
		"decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"},
		"added_tokens": [{"id": 5, "content": "ab", "single_word": true, "lstrip": true, "rstrip": true, "normalized": true, "special": false}]}`))
	f.Add([]byte(`{"model": {"vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"String": "a"}, "behavior": "MergedWithNext", "invert": true},
		"post_processor": {"type": "BertProcessing", "sep": ["a", 0], "cls": ["a", 0]}}`))
	f.Add([]byte(`{"model": {"vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Contiguous", "invert": false}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		for _, s := range fuzzSeeds {
			for _, special := range []bool{false, true} {
				ids := tok.Encode(s, special)
				tok.Decode(ids, false)
				tok.Decode(ids, true)
				d := tok.NewStreamDecoder(false)
				for _, id := range ids {
					// A fuzzed decoder chain may rewrite text already
					// emitted, which Next reports; only a panic is a bug.
					_, _ = d.Next(id)
				}
				d.Flush()
			}
		}
		tok.Decode([]int{-1, 0, 1, 2, 3, 1 << 40}, false)
	})
}

var fuzzTokenizers struct {
	once           sync.Once
	tiny           *Tokenizer
	mistral, llama *Tokenizer
}

// FuzzEncodeDecode: no string makes encoding or decoding panic, and
// byte-level tokenizers give the text back exactly (Mistral too, outside
// the cases mistralLossy lists). The real tokenizers take part when the
// shared data is present.
func FuzzEncodeDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	fz := &fuzzTokenizers
	fz.once.Do(func() {
		fz.tiny, _ = Parse([]byte(tinyByteLevel()))
		if root := shareddata.Root(); root != "" {
			fz.mistral, _ = Load(filepath.Join(root, "tokenizers", "mistral"))
			fz.llama, _ = Load(filepath.Join(root, "tokenizers", "llama3"))
		}
	})
	sp := mustParse(f, tinySP)
	f.Fuzz(func(t *testing.T, s string) {
		valid := utf8.ValidString(s)
		for _, tok := range []*Tokenizer{fz.tiny, fz.llama} {
			if tok == nil {
				continue
			}
			ids := tok.Encode(s, true)
			if got := tok.Decode(tok.Encode(s, false), false); valid && got != s {
				t.Fatalf("byte-level round trip of %q gave %q", s, got)
			}
			d := tok.NewStreamDecoder(true)
			var sb strings.Builder
			for _, id := range ids {
				out, err := d.Next(id)
				if err != nil && valid {
					t.Fatal(err)
				}
				sb.WriteString(out)
			}
			sb.WriteString(d.Flush())
			if want := tok.Decode(ids, true); valid && sb.String() != want {
				t.Fatalf("stream decode of %q gave %q, Decode %q", s, sb.String(), want)
			}
		}
		sp.Decode(sp.Encode(s, true), false)
		if fz.mistral != nil {
			got := fz.mistral.Decode(fz.mistral.Encode(s, false), false)
			if valid && !mistralLossy(s) && got != s {
				t.Fatalf("mistral round trip of %q gave %q", s, got)
			}
		}
	})
}
