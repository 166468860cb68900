package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// tinySP is a small SentencePiece-style tokenizer.json (Mistral's layout)
// for tests that need no shared data.
const tinySP = `{
  "version": "1.0",
  "added_tokens": [
    {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
    {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
  "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
  "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null,
    "fuse_unk": true, "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "<0xC3>": 4, "<0xA9>": 5, "<0xF0>": 6, "<0x9F>": 7, "<0x91>": 8, "<0x8D>": 9,
      "▁": 10, "a": 11, "b": 12, "c": 13, "▁a": 14, "ab": 15, "▁ab": 16, "abc": 17},
    "merges": ["▁ a", "a b", "▁a b", "ab c"]}
}`

func mustParse(t testing.TB, s string) *Tokenizer {
	t.Helper()
	tok, err := Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTinySentencePiece(t *testing.T) {
	tok := mustParse(t, tinySP)
	check := func(text string, want []int) {
		t.Helper()
		if got := tok.Encode(text, false); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", text, got, want)
		}
	}
	check("", []int{})
	check("ab", []int{16})
	check("abc", []int{16, 13})
	check("cabc", []int{10, 13, 17})
	check("a\nb", []int{14, 3, 12})
	check("é", []int{10, 4, 5})
	check("x", []int{10, 0})
	check("xyz", []int{10, 0})
	check("<s>ab</s>", []int{1, 16, 2})
	check("a b", []int{14, 10, 12})
	if got := tok.Encode("ab", true); !slices.Equal(got, []int{1, 16}) {
		t.Errorf("Encode with special tokens = %v", got)
	}
	if got := tok.Decode([]int{1, 16, 13, 3, 4, 5}, false); got != "<s> abc\né" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Decode([]int{1, 16, 13, 2}, true); got != "abc" {
		t.Errorf("Decode skipping specials = %q", got)
	}
	// A lone byte token that is not valid UTF-8 decodes to U+FFFD per byte.
	if got := tok.Decode([]int{16, 4, 6, 7}, false); got != "ab\uFFFD\uFFFD\uFFFD" {
		t.Errorf("Decode of broken bytes = %q", got)
	}
	if id, ok := tok.TokenID("▁ab"); !ok || id != 16 {
		t.Errorf("TokenID(▁ab) = %d, %v", id, ok)
	}
	if s, ok := tok.IDToken(16); !ok || s != "▁ab" {
		t.Errorf("IDToken(16) = %q, %v", s, ok)
	}
	if tok.VocabSize() != 18 || tok.BOS() != 1 || tok.EOS() != 2 || tok.Pad() != -1 {
		t.Errorf("VocabSize %d BOS %d EOS %d Pad %d", tok.VocabSize(), tok.BOS(), tok.EOS(), tok.Pad())
	}
	if !tok.IsSpecial(2) || tok.IsSpecial(16) {
		t.Error("IsSpecial")
	}
}

func TestStreamDecoderByteFallback(t *testing.T) {
	tok := mustParse(t, tinySP)
	// ab, then 👍 as four byte tokens (F0 9F 91 8D), then é, then abc.
	ids := []int{16, 6, 7, 8, 9, 4, 5, 16, 13}
	d := tok.NewStreamDecoder(false)
	var got []string
	for _, id := range ids {
		s, err := d.Next(id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(s, utf8.RuneError) {
			t.Fatalf("emitted an incomplete character: %q", s)
		}
		got = append(got, s)
	}
	want := []string{"ab", "", "", "", "👍", "", "é", " ab", "c"}
	if !slices.Equal(got, want) {
		t.Errorf("stream = %q, want %q", got, want)
	}
	if strings.Join(got, "") != tok.Decode(ids, false) {
		t.Errorf("stream %q differs from Decode %q", strings.Join(got, ""), tok.Decode(ids, false))
	}
	// A character cut short comes out of Flush as U+FFFD.
	d = tok.NewStreamDecoder(false)
	for _, id := range []int{16, 6, 7} {
		if _, err := d.Next(id); err != nil {
			t.Fatal(err)
		}
	}
	if s := d.Flush(); s != "\uFFFD\uFFFD" {
		t.Errorf("Flush = %q", s)
	}
}

func TestStreamDecoderReal(t *testing.T) {
	for _, name := range []string{"mistral", "llama3"} {
		tok := realTokenizer(t, name)
		text := "Hello  world!\nÜnïcödé 日本語 👨‍👩‍👧‍👦 emoji, tabs\t and <0x0A> 123456."
		ids := tok.Encode(text, true)
		for _, skip := range []bool{false, true} {
			d := tok.NewStreamDecoder(skip)
			var sb strings.Builder
			for _, id := range ids {
				s, err := d.Next(id)
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsRune(s, utf8.RuneError) {
					t.Fatalf("%s: emitted an incomplete character: %q", name, s)
				}
				sb.WriteString(s)
			}
			sb.WriteString(d.Flush())
			if want := tok.Decode(ids, skip); sb.String() != want {
				t.Errorf("%s skip=%v: stream %q, Decode %q", name, skip, sb.String(), want)
			}
		}
	}
}

func TestLlama3Split(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"  hi", []string{" ", " hi"}},
		{"a\n\n b", []string{"a", "\n\n", " b"}},
		{"x  \n", []string{"x", "  \n"}},
		{"a   ", []string{"a", "   "}},
		{"a   b", []string{"a", "  ", " b"}},
		{"a \t1", []string{"a", " ", "\t", "1"}},
		{"I'M don't WE'LL 'ſ", []string{"I", "'M", " don", "'t", " WE", "'LL", " '", "ſ"}},
		{"x'ſ'S", []string{"x", "'ſ", "'S"}},
		{"1234567", []string{"123", "456", "7"}},
		{"(hello) ...\n\nok", []string{"(hello", ")", " ...\n\n", "ok"}},
		{"\t\tfoo", []string{"\t", "\tfoo"}},
		{"日本語テキスト", []string{"日本語テキスト"}},
		{"e\u0301t\u00e9", []string{"e", "\u0301t\u00e9"}},
		{"\xff\xfeab", []string{"\xff\xfe", "ab"}},
	} {
		var got []string
		llama3Split(c.in, func(a, b int) { got = append(got, c.in[a:b]) })
		if !slices.Equal(got, c.want) {
			t.Errorf("llama3Split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestGPT2Split(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"I'm   fine!!", []string{"I", "'m", "  ", " fine", "!!"}},
		{"a 123 b", []string{"a", " 123", " b"}},
		{"x\n\ny", []string{"x", "\n", "\n", "y"}},
		{"DON'T", []string{"DON", "'", "T"}},
		{"end  ", []string{"end", "  "}},
	} {
		var got []string
		gpt2Split(c.in, func(a, b int) { got = append(got, c.in[a:b]) })
		if !slices.Equal(got, c.want) {
			t.Errorf("gpt2Split(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAppendLossy(t *testing.T) {
	// Rust's String::from_utf8_lossy: one U+FFFD per maximal invalid subpart.
	for in, want := range map[string]string{
		"abc":              "abc",
		"\xe2\x82A":        "\uFFFDA",
		"\xff\xff":         "\uFFFD\uFFFD",
		"\xf0\x90\x80":     "\uFFFD",
		"\xf0\x90\x80\xf0": "\uFFFD\uFFFD",
		"\xed\xa0\x80":     "\uFFFD\uFFFD\uFFFD",
		"\xc3":             "\uFFFD",
		"\xc3\xa9\xc3":     "é\uFFFD",
		"\xe0\x80\x80":     "\uFFFD\uFFFD\uFFFD",
		"\xf4\x90\x80\x80": "\uFFFD\uFFFD\uFFFD\uFFFD",
		"\uFFFD":           "\uFFFD",
	} {
		if got := string(appendLossy(nil, []byte(in))); got != want {
			t.Errorf("appendLossy(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnsupportedComponents(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		edit, want string
	}{
		{`"normalizer": {"type": "BertNormalizer"}`, `normalizer: type "BertNormalizer" is not supported`},
		{`"normalizer": {"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": ""}]}`, `normalizer.normalizers[0]: type "Precompiled" is not supported`},
		{`"pre_tokenizer": {"type": "Whitespace"}`, `pre_tokenizer: type "Whitespace" is not supported`},
		{`"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(?=x)"}, "behavior": "Isolated", "invert": false}`, `cannot be compiled`},
		{`"decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}`, `decoder: type "WordPiece" is not supported`},
		{`"post_processor": {"type": "Unknown"}`, `post_processor: type "Unknown" is not supported`},
		{`"model": {"type": "Unigram", "vocab": []}`, `model: type "Unigram" is not supported`},
		{`"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}`, `merges[0]`},
		{`"version": "2.0"`, `unknown tokenizer.json version`},
	} {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tinySP), &doc); err != nil {
			t.Fatal(err)
		}
		var edit map[string]json.RawMessage
		if err := json.Unmarshal([]byte("{"+c.edit+"}"), &edit); err != nil {
			t.Fatal(err)
		}
		for k, v := range edit {
			doc[k] = v
		}
		data, _ := json.Marshal(doc)
		path := filepath.Join(dir, "tokenizer.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming %q and the file", c.edit, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("Load of a missing path succeeded")
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("Load of a directory without tokenizer.json: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tinySP), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `{"bos_token": {"__type": "AddedToken", "content": "</s>"}, "eos_token": "<s>", "pad_token": "<unk>"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 2 || tok.EOS() != 1 || tok.Pad() != 0 {
		t.Errorf("BOS %d EOS %d Pad %d", tok.BOS(), tok.EOS(), tok.Pad())
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"eos_token": "<nope>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("a config naming a missing token: %v", err)
	}
}

func TestRealConfig(t *testing.T) {
	m := realTokenizer(t, "mistral")
	if m.BOS() != 1 || m.EOS() != 2 || m.VocabSize() != 32000 {
		t.Errorf("mistral: BOS %d EOS %d VocabSize %d", m.BOS(), m.EOS(), m.VocabSize())
	}
	if got := m.Encode("Hello world", true); !slices.Equal(got, []int{1, 22557, 1526}) {
		t.Errorf("mistral Hello world = %v", got)
	}
	l := realTokenizer(t, "llama3")
	eot, _ := l.TokenID("<|eot_id|>")
	if l.BOS() != 128000 || l.EOS() != 128001 || l.VocabSize() != 128256 || eot != 128009 || !l.IsSpecial(eot) {
		t.Errorf("llama3: BOS %d EOS %d VocabSize %d eot %d", l.BOS(), l.EOS(), l.VocabSize(), eot)
	}
	if got := l.Encode("Hello world", true); !slices.Equal(got, []int{9906, 1917}) {
		t.Errorf("llama3 Hello world = %v", got)
	}
}

func TestEncodeJSONL(t *testing.T) {
	tok := mustParse(t, tinySP)
	in := "{\"text\": \"ab\", \"other\": 1}\n\n{\"text\": \"<s>a & b\"}\n"
	var out bytes.Buffer
	if err := tok.EncodeJSONL(strings.NewReader(in), &out, true); err != nil {
		t.Fatal(err)
	}
	want := "{\"text\":\"ab\",\"ids\":[1,16]}\n{\"text\":\"<s>a & b\",\"ids\":[1,1,14,10,0,10,12]}\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	err := tok.EncodeJSONL(strings.NewReader("{\"text\": \"ab\"}\nnope\n"), &out, false)
	if err == nil || !strings.Contains(err.Error(), "line 2") || out.String() != "{\"text\":\"ab\",\"ids\":[16]}\n" {
		t.Errorf("a bad second line: error %v, output %q (want the first line written)", err, out.String())
	}
	for in, want := range map[string]string{
		"{\"text\": \"a\"}\n{\"text\": 5}\n":  "line 2: \"text\" is 5, not a string",
		"{\"text\": \"a\"}\n[1]\n":            "line 2: not a JSON object",
		"\n\n{\"txt\": \"a\"}":                "line 3: the object has no \"text\" field",
		"{\"text\": \"a\"}\n{\"text\": \"b\"": "line 2: not a JSON object",
	} {
		err := tok.EncodeJSONL(strings.NewReader(in), &bytes.Buffer{}, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
}
