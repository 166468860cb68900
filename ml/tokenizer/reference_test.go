package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mlbuild/mlbuild/internal/shareddata"
)

// refCase is one line of testdata/reference_*.jsonl.gz, written by
// refgen/gen.mjs with Hugging Face's tokenizers (npm package `tokenizers`).
type refCase struct {
	Text        string  `json:"text"`
	IDs         []int   `json:"ids"`
	IDsSpecial  []int   `json:"ids_special"`
	Decoded     *string `json:"decoded"`      // decode(ids, false) where it differs from text
	DecodedSkip *string `json:"decoded_skip"` // decode(ids_special, true) where it differs from decoded
}

func readReference(t testing.TB, name string) []refCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "reference_"+name+".jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []refCase
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c refCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s line %d: %v", name, len(out)+1, err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	loadOnce sync.Map // name -> *loaded
)

type loaded struct {
	once sync.Once
	tok  *Tokenizer
	err  error
}

// realTokenizer loads ../shared/data/tokenizers/NAME once per test binary,
// skipping when the shared data is absent.
func realTokenizer(t testing.TB, name string) *Tokenizer {
	t.Helper()
	dir := shareddata.Path(t, "tokenizers/"+name)
	v, _ := loadOnce.LoadOrStore(name, &loaded{})
	l := v.(*loaded)
	l.once.Do(func() { l.tok, l.err = Load(dir) })
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.tok
}

// mistralLossy says whether decode(encode(x)) may differ from x for the
// Mistral tokenizer, and why; these are properties of the reference too.
func mistralLossy(s string) bool {
	// ▁ (U+2581) is the metaspace: it decodes to a space.
	if strings.Contains(s, "\u2581") {
		return true
	}
	// Literal special-token text is cut out before normalization, so the
	// text after it gets its own ▁ prefix, which decodes to an extra space.
	for _, sp := range []string{"<s>", "</s>", "<unk>"} {
		if strings.Contains(s, sp) {
			return true
		}
	}
	return false
}

func TestReferenceAgreement(t *testing.T) {
	for _, name := range []string{"mistral", "llama3"} {
		t.Run(name, func(t *testing.T) {
			tok := realTokenizer(t, name)
			cases := readReference(t, name)
			if len(cases) < 2000 {
				t.Fatalf("only %d reference strings", len(cases))
			}
			checkReference(t, name, tok, cases, true)
		})
	}
}

// TestReferenceAddedTokens checks the added-token rules (lstrip, rstrip,
// single_word, normalized) on the real files with the extra tokens of
// testdata/extra_added_tokens.json, against the reference's ids.
func TestReferenceAddedTokens(t *testing.T) {
	extra, err := os.ReadFile(filepath.Join("testdata", "extra_added_tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mistral", "llama3"} {
		t.Run(name, func(t *testing.T) {
			dir := shareddata.Path(t, "tokenizers/"+name)
			data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]json.RawMessage
			var added, more []map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(doc["added_tokens"], &added); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(extra, &more); err != nil {
				t.Fatal(err)
			}
			for i, m := range more {
				m["id"] = 1_000_000 + i // ignored: ids are assigned as the reference does
			}
			doc["added_tokens"], _ = json.Marshal(append(added, more...))
			data, _ = json.Marshal(doc)
			tok, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			checkReference(t, name+"_added", tok, readReference(t, name+"_added"), false)
		})
	}
}

func checkReference(t *testing.T, name string, tok *Tokenizer, cases []refCase, checkLossless bool) {
	var bad, badSpecial, badDecode, badSkip, lossy int
	for i, c := range cases {
		got := tok.Encode(c.Text, false)
		if !slices.Equal(got, c.IDs) {
			if bad++; bad <= 5 {
				t.Errorf("case %d %q:\n got %v\nwant %v", i, trunc(c.Text), trunc2(got), trunc2(c.IDs))
			}
		}
		got = tok.Encode(c.Text, true)
		if !slices.Equal(got, c.IDsSpecial) {
			if badSpecial++; badSpecial <= 5 {
				t.Errorf("case %d %q with special tokens:\n got %v\nwant %v", i, trunc(c.Text), trunc2(got), trunc2(c.IDsSpecial))
			}
		}
		want := c.Text
		if c.Decoded != nil {
			want = *c.Decoded
			lossy++
			if checkLossless && (name == "llama3" || !mistralLossy(c.Text)) {
				t.Errorf("case %d %q: the reference does not round-trip it, but the tokenizer is meant to be lossless here", i, trunc(c.Text))
			}
		}
		if d := tok.Decode(c.IDs, false); d != want {
			if badDecode++; badDecode <= 5 {
				t.Errorf("case %d: decode:\n got %q\nwant %q", i, trunc(d), trunc(want))
			}
		}
		if c.DecodedSkip != nil {
			want = *c.DecodedSkip
		}
		if d := tok.Decode(c.IDsSpecial, true); d != want {
			if badSkip++; badSkip <= 5 {
				t.Errorf("case %d: decode skipping special tokens:\n got %q\nwant %q", i, trunc(d), trunc(want))
			}
		}
	}
	t.Logf("%s: %d strings; mismatches: ids %d, ids with special tokens %d, decode %d, decode skipping specials %d; %d strings not round-tripped (as in the reference)",
		name, len(cases), bad, badSpecial, badDecode, badSkip, lossy)
}

func trunc(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

func trunc2(ids []int) []int {
	if len(ids) > 40 {
		return ids[:40]
	}
	return ids
}

// TestConcurrentEncode encodes from several goroutines at once (run it
// with -race): the per-word cache is shared.
func TestConcurrentEncode(t *testing.T) {
	for _, name := range []string{"mistral", "llama3"} {
		tok := realTokenizer(t, name)
		cases := readReference(t, name)
		if len(cases) > 400 {
			cases = cases[:400]
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < len(cases); i += 2 {
					if got := tok.Encode(cases[i].Text, false); !slices.Equal(got, cases[i].IDs) {
						t.Errorf("%s case %d differs under concurrency", name, i)
						return
					}
				}
			}(g)
		}
		wg.Wait()
	}
}

// TestReferenceVariants checks components the real files do not use
// (Metaspace, GPT-2's ByteLevel regex, normalizers, Split behaviors) on the
// real vocabularies with the patches of testdata/variants.json.
func TestReferenceVariants(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "variants.json"))
	if err != nil {
		t.Fatal(err)
	}
	var variants []struct {
		Name  string                     `json:"name"`
		Base  string                     `json:"base"`
		Patch map[string]json.RawMessage `json:"patch"`
	}
	if err := json.Unmarshal(data, &variants); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "reference_variants.jsonl.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	byVariant := map[string][]refCase{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c struct {
			Variant string `json:"variant"`
			refCase
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		byVariant[c.Variant] = append(byVariant[c.Variant], c.refCase)
	}
	raw := map[string][]byte{}
	for _, v := range variants {
		t.Run(v.Name, func(t *testing.T) {
			if raw[v.Base] == nil {
				dir := shareddata.Path(t, "tokenizers/"+v.Base)
				if raw[v.Base], err = os.ReadFile(filepath.Join(dir, "tokenizer.json")); err != nil {
					t.Fatal(err)
				}
			}
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(raw[v.Base], &doc); err != nil {
				t.Fatal(err)
			}
			for k, p := range v.Patch {
				doc[k] = p
			}
			patched, _ := json.Marshal(doc)
			tok, err := Parse(patched)
			if err != nil {
				t.Fatal(err)
			}
			cases := byVariant[v.Name]
			if len(cases) == 0 {
				t.Fatalf("no reference cases for %s", v.Name)
			}
			checkReference(t, v.Name, tok, cases, false)
		})
	}
}
