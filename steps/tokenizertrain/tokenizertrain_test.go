package tokenizertrain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/ml/chat"
	"github.com/mlbuild/mlbuild/ml/tokenizer"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/gutenberg"
	"github.com/mlbuild/mlbuild/steps/split"
	"github.com/mlbuild/mlbuild/steps/steptest"
	"github.com/mlbuild/mlbuild/steps/synthtools"
)

// runKind runs k with its defaults overlaid by cfg and returns its output
// folder.
func runKind(t testing.TB, k steps.Kind, step string, inputs map[string][]steps.InputFile, cfg map[string]cty.Value) (string, error) {
	t.Helper()
	inv := steptest.Invocation(t, k, step, inputs, cfg)
	out := inv.OutDir
	if v, ok := k.(steps.Validator); ok {
		if err := v.Validate(inv); err != nil {
			return "", err
		}
	}
	return out, k.Run(context.Background(), inv)
}

func mustRun(t testing.TB, k steps.Kind, step string, inputs map[string][]steps.InputFile, cfg map[string]cty.Value) string {
	t.Helper()
	out, err := runKind(t, k, step, inputs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func input(path, name string) steps.InputFile { return steptest.Input(path, name) }

// demoTrain builds the demo pipeline's dataset (gutenberg_chunk on
// pipelines/data/gutenberg, synth_tools, split) the way twainbot.hcl does,
// and returns split's train.jsonl.
func demoTrain(t testing.TB) steps.InputFile {
	t.Helper()
	books, err := filepath.Glob(filepath.Join("..", "..", "pipelines", "data", "gutenberg", "*.txt"))
	if err != nil || len(books) == 0 {
		t.Fatalf("no demo books: %v", err)
	}
	sort.Strings(books)
	var in []steps.InputFile
	for _, b := range books {
		abs, _ := filepath.Abs(b)
		in = append(in, input(abs, "data/gutenberg/"+filepath.Base(b)))
	}
	chunks := mustRun(t, gutenberg.Kind{}, "gutenberg_chunk.books", map[string][]steps.InputFile{"source": in}, nil)
	convs := mustRun(t, synthtools.Kind{}, "synth_tools.weather", nil, map[string]cty.Value{"count": cty.NumberIntVal(200)})
	sp := mustRun(t, split.Kind{}, "split.dataset", map[string][]steps.InputFile{"inputs": {
		input(filepath.Join(chunks, "chunks.jsonl"), "build/gutenberg_chunk.books/chunks.jsonl"),
		input(filepath.Join(convs, "conversations.jsonl"), "build/synth_tools.weather/conversations.jsonl"),
	}}, nil)
	return input(filepath.Join(sp, "train.jsonl"), "build/split.dataset/train.jsonl")
}

func readReport(t testing.TB, out string) Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, reportFile))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSchema(t *testing.T) {
	k, ok := steps.Default.Lookup("tokenizer_train")
	if !ok {
		t.Fatal("tokenizer_train is not registered")
	}
	s := k.Schema()
	if s.Version != Version || len(s.Outputs) != 2 || s.Outputs[0].Name != "output" || !s.Outputs[0].Dir ||
		s.Outputs[0].Path != "tokenizer" || s.Outputs[1].Path != "report.json" {
		t.Fatalf("schema %+v", s)
	}
	if _, ok := k.(steps.Validator); !ok {
		t.Fatal("not a Validator")
	}
	for _, a := range s.Attributes {
		if a.NotInKey {
			t.Errorf("%s is out of the key", a.Name)
		}
	}
}

// TestDemoPipeline trains on the demo data's train split and checks the
// directory, the report, and the tokenizer's behaviour on the corpus.
func TestDemoPipeline(t *testing.T) {
	train := demoTrain(t)
	cfg := map[string]cty.Value{"vocab_size": cty.NumberIntVal(2048)}
	out := mustRun(t, Kind{}, "tokenizer_train.tok", map[string][]steps.InputFile{"inputs": {train}}, cfg)
	dir := filepath.Join(out, "tokenizer")
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	rep := readReport(t, out)
	t.Logf("report: vocab %d merges %d chars %d records %d chars/token %.2f", rep.Vocab, rep.Merges, rep.CharsRead, rep.Records, rep.CharsPerToken)
	if rep.Vocab != 2048 || rep.Merges < 1500 || rep.Records < 100 || rep.CharsRead < 50000 || rep.CharsPerToken < 2.2 || rep.Tokens == 0 ||
		rep.SpecialTokens != 9 || rep.ChatTemplate != "twainbot" || rep.Truncated || len(rep.Inputs) != 1 || rep.Inputs[0].Format != "jsonl" {
		t.Fatalf("report %+v", rep)
	}
	tk, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tk.BOS() != 1 || tk.EOS() != 2 || tk.Pad() != 3 || tk.VocabSize() != 2048 {
		t.Fatalf("bos %d eos %d pad %d vocab %d", tk.BOS(), tk.EOS(), tk.Pad(), tk.VocabSize())
	}
	// Every record round-trips; conversations keep their tags atomic.
	var texts []string
	if err := steps.ReadJSONL(train.Path, func(_ int, raw []byte) error {
		var r struct{ Text string }
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		texts = append(texts, r.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	user, _ := tk.TokenID("<|user|>")
	convs := 0
	for _, s := range texts {
		ids := tk.Encode(s, false)
		if strings.HasPrefix(s, "<|") {
			convs++
			if !slices.Contains(ids, user) {
				t.Fatalf("no <|user|> token in %v", ids[:10])
			}
			continue // text after a special token gets its own ▁ (decodes with an extra space), as in the reference
		}
		if got := tk.Decode(ids, false); got != s {
			t.Fatalf("round trip:\n%q\n%q", s, got)
		}
	}
	if convs == 0 {
		t.Fatal("no conversations in the train split")
	}
	// The chat template is twainbot's, recognized by ml/chat.
	cfgJSON, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := chat.Detect(cfgJSON); !ok || name != "twainbot" {
		t.Errorf("chat.Detect = %q, %v", name, ok)
	}

	// Determinism: a second run writes identical bytes.
	out2 := mustRun(t, Kind{}, "tokenizer_train.tok", map[string][]steps.InputFile{"inputs": {train}}, cfg)
	for _, f := range []string{"tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json", "report.json"} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(out2, f))
		if !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s differs between runs", f)
		}
	}
}

// TestTextAndMaxChars: .txt inputs are read whole; max_chars caps the
// corpus, cutting the record that crosses it.
func TestTextAndMaxChars(t *testing.T) {
	book, _ := filepath.Abs(filepath.Join("..", "..", "pipelines", "data", "gutenberg", "tom_sawyer_excerpt.txt"))
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "a.jsonl")
	if err := os.WriteFile(jsonl, []byte(`{"text":"héllo wörld"}`+"\n\n"+`{"text":"second line","x":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := []steps.InputFile{input(jsonl, "data/a.jsonl"), input(book, "data/tom.txt")}
	out := mustRun(t, Kind{}, "tokenizer_train.t", map[string][]steps.InputFile{"inputs": in},
		map[string]cty.Value{"vocab_size": cty.NumberIntVal(500), "chat_template": cty.StringVal("")})
	rep := readReport(t, out)
	if rep.Inputs[0].Records != 2 || rep.Inputs[0].Chars != 22 || rep.Inputs[1].Format != "text" || rep.Inputs[1].Records != 1 || rep.Truncated {
		t.Fatalf("report %+v", rep.Inputs)
	}
	cfgJSON, _ := os.ReadFile(filepath.Join(out, "tokenizer", "tokenizer_config.json"))
	if bytes.Contains(cfgJSON, []byte("chat_template")) {
		t.Error("chat_template written although none was asked for")
	}
	out = mustRun(t, Kind{}, "tokenizer_train.t", map[string][]steps.InputFile{"inputs": in},
		map[string]cty.Value{"vocab_size": cty.NumberIntVal(500), "max_chars": cty.NumberIntVal(5000)})
	rep = readReport(t, out)
	if rep.CharsRead != 5000 || !rep.Truncated || rep.Inputs[1].Chars != 5000-22 {
		t.Fatalf("max_chars: %+v", rep)
	}
	out = mustRun(t, Kind{}, "tokenizer_train.t", map[string][]steps.InputFile{"inputs": in},
		map[string]cty.Value{"vocab_size": cty.NumberIntVal(500), "max_chars": cty.NumberIntVal(15)})
	rep = readReport(t, out)
	// "héllo wörld" (11) and the first 4 characters of "second line": the
	// words "héllo", "wörld", "seco" and "▁" (a space is a word).
	if rep.CharsRead != 15 || rep.Inputs[0].Records != 2 || rep.Inputs[0].Chars != 15 || rep.Inputs[1].Records != 0 || rep.Words != 4 {
		t.Fatalf("max_chars 15: %+v", rep)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) steps.InputFile {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return input(p, "data/"+name)
	}
	for _, c := range []struct {
		file steps.InputFile
		want string
	}{
		{write("bad.jsonl", "{\"text\":\"ok\"}\n{\"text\": oops}\n"), "data/bad.jsonl:2: invalid JSON"},
		{write("notext.jsonl", "{\"text\":\"ok\"}\n\n{\"body\":\"x\"}\n"), `data/notext.jsonl:3: record has no "text" field`},
		{write("num.jsonl", "{\"text\":5}\n"), `data/num.jsonl:1: "text" is a number, not a string`},
		{write("arr.jsonl", "[1]\n"), "data/arr.jsonl:1: expected a JSON object"},
		{write("latin1.txt", "caf\xe9"), "data/latin1.txt: the file is not valid UTF-8"},
		{input(filepath.Join(dir, "missing.jsonl"), "data/missing.jsonl"), "data/missing.jsonl: open: no such file"},
		{write("specials.jsonl", "{\"text\":\"<|user|><s>\"}\n"), "corpus is empty"},
	} {
		_, err := runKind(t, Kind{}, "tokenizer_train.t", map[string][]steps.InputFile{"inputs": {c.file}}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), dir) {
			t.Errorf("%s: error %v, want %q without the temp path", c.file.Name, err, c.want)
		}
	}
	if _, err := runKind(t, Kind{}, "tokenizer_train.t", map[string][]steps.InputFile{}, nil); err == nil || !strings.Contains(err.Error(), "inputs is empty") {
		t.Errorf("no inputs: %v", err)
	}
}

func TestValidate(t *testing.T) {
	list := func(ss ...string) cty.Value {
		if len(ss) == 0 {
			return cty.ListValEmpty(cty.String)
		}
		var v []cty.Value
		for _, s := range ss {
			v = append(v, cty.StringVal(s))
		}
		return cty.ListVal(v)
	}
	for _, c := range []struct {
		cfg  map[string]cty.Value
		attr string
		want string
	}{
		{map[string]cty.Value{"vocab_size": cty.NumberIntVal(300)}, "vocab_size", "at least 329"},
		{map[string]cty.Value{"vocab_size": cty.NumberFloatVal(1000.5)}, "vocab_size", "whole number"},
		{map[string]cty.Value{"character_coverage": cty.NumberFloatVal(0)}, "character_coverage", "(0, 1]"},
		{map[string]cty.Value{"character_coverage": cty.NumberFloatVal(1.2)}, "character_coverage", "(0, 1]"},
		{map[string]cty.Value{"special_tokens": list("<pad>", "<pad>")}, "special_tokens", "twice"},
		{map[string]cty.Value{"special_tokens": list("<s>")}, "special_tokens", "twice"},
		{map[string]cty.Value{"special_tokens": list(" ")}, "special_tokens", "blank"},
		{map[string]cty.Value{"special_tokens": list("<pad>")}, "special_tokens", `needs the special tokens "<|system|>"`},
		{map[string]cty.Value{"chat_template": cty.StringVal("nope")}, "chat_template", "unknown chat template"},
		{map[string]cty.Value{"chat_template": cty.StringVal("mistral")}, "chat_template", "cannot be written as Jinja"},
		{map[string]cty.Value{"max_chars": cty.NumberIntVal(-1)}, "max_chars", "0 (no cap)"},
		{map[string]cty.Value{"min_frequency": cty.NumberIntVal(0)}, "min_frequency", "at least 1"},
		{map[string]cty.Value{"special_tokens": list("<0x0A>"), "chat_template": cty.StringVal("")}, "special_tokens", "byte token"},
	} {
		_, err := runKind(t, Kind{}, "tokenizer_train.t", nil, c.cfg)
		var ae *steps.AttrError
		if !errors.As(err, &ae) || ae.Attr != c.attr || !strings.Contains(ae.Msg, c.want) {
			t.Errorf("%v: error %v, want attribute %s: %q", c.cfg, err, c.attr, c.want)
		}
	}
	// Specials without a chat template are fine.
	_, err := runKind(t, Kind{}, "tokenizer_train.t", nil, map[string]cty.Value{"special_tokens": list(), "chat_template": cty.StringVal("")})
	if err == nil || !strings.Contains(err.Error(), "inputs is empty") {
		t.Errorf("no specials: %v", err)
	}
}

func TestCancelled(t *testing.T) {
	p, _ := filepath.Abs(filepath.Join("..", "..", "pipelines", "data", "gutenberg", "huck_finn_excerpt.txt"))
	cfg := map[string]cty.Value{}
	for _, a := range (Kind{}).Schema().Attributes {
		if !a.Input {
			cfg[a.Name] = a.Default
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	inv := &steps.Invocation{Step: "tokenizer_train.t", Config: cfg, Inputs: map[string][]steps.InputFile{"inputs": {input(p, "h.txt")}},
		OutDir: t.TempDir(), TempDir: t.TempDir()}
	if err := (Kind{}).Run(ctx, inv); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}
