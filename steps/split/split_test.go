package split

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

type result struct {
	train, val []string
	rep        Report
	trainRaw   []byte
	valRaw     []byte
}

// writeInputs writes each content as a file in a temp dir and returns the
// resolved inputs.
func writeInputs(t *testing.T, contents ...string) []steps.InputFile {
	t.Helper()
	dir := t.TempDir()
	var files []steps.InputFile
	for i, c := range contents {
		name := fmt.Sprintf("data/in%d.jsonl", i+1)
		path := filepath.Join(dir, fmt.Sprintf("in%d.jsonl", i+1))
		if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, steps.InputFile{Path: path, Name: name, Digest: fmt.Sprintf("%064d", i)})
	}
	return files
}

func runSplit(t *testing.T, files []steps.InputFile, config map[string]cty.Value) (*result, error) {
	t.Helper()
	inv := steptest.Invocation(t, Kind{}, "split.dataset", map[string][]steps.InputFile{"inputs": files}, config)
	out := inv.OutDir
	if err := (Kind{}).Run(context.Background(), inv); err != nil {
		return nil, err
	}
	res := &result{}
	var err error
	if res.trainRaw, err = os.ReadFile(filepath.Join(out, "train.jsonl")); err != nil {
		t.Fatal(err)
	}
	if res.valRaw, err = os.ReadFile(filepath.Join(out, "validation.jsonl")); err != nil {
		t.Fatal(err)
	}
	res.train, res.val = lines(res.trainRaw), lines(res.valRaw)
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res.rep); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func mustSplit(t *testing.T, files []steps.InputFile, config map[string]cty.Value) *result {
	t.Helper()
	res, err := runSplit(t, files, config)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func lines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// dataset returns n records {"text":"<prefix> i","i":i} as JSONL.
func dataset(prefix string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"text":"%s %d","i":%d}`+"\n", prefix, i, i)
	}
	return b.String()
}

func texts(t *testing.T, ls []string) []string {
	t.Helper()
	var out []string
	for _, l := range ls {
		var r struct{ Text string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Text)
	}
	return out
}

func TestRegistered(t *testing.T) {
	k, ok := steps.Default.Lookup("split")
	if !ok {
		t.Fatal("split is not registered")
	}
	s := k.Schema()
	var outs []string
	for _, o := range s.Outputs {
		outs = append(outs, o.Name+"="+o.Path)
	}
	if s.Version != Version || strings.Join(outs, ",") != "train=train.jsonl,validation=validation.jsonl,report=report.json" {
		t.Fatalf("schema %+v", s)
	}
}

func TestFractionAndCount(t *testing.T) {
	files := writeInputs(t, dataset("a", 1000))
	res := mustSplit(t, files, nil) // default 0.05
	if len(res.val) != 50 || len(res.train) != 950 || res.rep.Mode != "fraction" || res.rep.ValidationTarget != 50 {
		t.Fatalf("default fraction: %d/%d %+v", len(res.train), len(res.val), res.rep)
	}
	all := append(texts(t, res.train), texts(t, res.val)...)
	sort.Strings(all)
	want := texts(t, lines([]byte(dataset("a", 1000))))
	sort.Strings(want)
	if !reflect.DeepEqual(all, want) {
		t.Fatal("train + validation is not the input")
	}
	// The output is shuffled, not in input order.
	if reflect.DeepEqual(res.train[:10], lines([]byte(dataset("a", 10)))) {
		t.Fatal("train is not shuffled")
	}
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberFloatVal(0.2)})
	if len(res.val) != 200 {
		t.Fatalf("0.2: %d validation", len(res.val))
	}
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberIntVal(37)})
	if len(res.val) != 37 || res.rep.Mode != "count" || res.rep.Totals.Train != 963 {
		t.Fatalf("count 37: %d validation, %+v", len(res.val), res.rep)
	}
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberIntVal(1)})
	if len(res.val) != 1 {
		t.Fatalf("count 1: %d", len(res.val))
	}
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberIntVal(0)})
	if len(res.val) != 0 || len(res.train) != 1000 || len(res.valRaw) != 0 {
		t.Fatalf("0: %d/%d", len(res.train), len(res.val))
	}
	// A tiny fraction of a small set still yields one validation record.
	small := writeInputs(t, dataset("s", 3))
	res = mustSplit(t, small, map[string]cty.Value{"validation": cty.NumberFloatVal(0.01)})
	if len(res.val) != 1 || len(res.train) != 2 {
		t.Fatalf("small: %d/%d", len(res.train), len(res.val))
	}
	for _, tc := range []struct {
		v    cty.Value
		want string
	}{
		{cty.NumberIntVal(1000), "validation = 1000, but only 1000 records remain"},
		{cty.NumberFloatVal(2.5), "must be a whole number"},
		{cty.NumberFloatVal(-0.1), "must be a fraction"},
	} {
		if _, err := runSplit(t, files, map[string]cty.Value{"validation": tc.v}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validation %s: error %v, want %q", tc.v.GoString(), err, tc.want)
		}
	}
}

func TestDedupeAcrossFiles(t *testing.T) {
	files := writeInputs(t,
		`{"text":"The river was high."}
{"text":"Hello  World","k":1}
{"text":"The river was high."}
`,
		`{"text":"hello world"}
{"text":"The river was high.","other":true}
{"text":"  HELLO\tWORLD "}
{"text":"Something new"}
{"text":"Cafe\u0301 society"}
{"text":"café SOCIETY"}
`)
	res := mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberFloatVal(0)})
	got := texts(t, res.train)
	sort.Strings(got)
	want := []string{"Cafe\u0301 society", "Hello  World", "Something new", "The river was high."}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %q, want %q", got, want)
	}
	in1, in2 := res.rep.Inputs[0], res.rep.Inputs[1]
	if in1.Records != 3 || in1.DuplicatesExact != 1 || in1.DuplicatesNormalized != 0 || in1.Kept != 2 {
		t.Errorf("input 1: %+v", in1)
	}
	if in2.Records != 6 || in2.DuplicatesExact != 1 || in2.DuplicatesNormalized != 3 || in2.Kept != 2 {
		t.Errorf("input 2: %+v", in2)
	}
	if in2.Name != "data/in2.jsonl" || len(in2.DuplicateExamples) != 4 ||
		in2.DuplicateExamples[0] != (DuplicateExample{Line: 1, Kind: "normalized", Of: "data/in1.jsonl:2"}) ||
		in2.DuplicateExamples[1] != (DuplicateExample{Line: 2, Kind: "exact", Of: "data/in1.jsonl:1"}) {
		t.Errorf("examples: %+v", in2.DuplicateExamples)
	}
	tot := res.rep.Totals
	if tot.Records != 9 || tot.DuplicatesExact != 2 || tot.DuplicatesNormalized != 3 || tot.Kept != 4 || tot.Train != 4 || tot.Validation != 0 {
		t.Errorf("totals: %+v", tot)
	}
	// The first occurrence is the one kept, with its own fields.
	if !strings.Contains(string(res.trainRaw), `{"text":"Hello  World","k":1}`) {
		t.Errorf("first occurrence not kept:\n%s", res.trainRaw)
	}
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberFloatVal(0), "dedupe": cty.False})
	if len(res.train) != 9 || res.rep.Totals.DuplicatesExact != 0 {
		t.Fatalf("dedupe = false kept %d", len(res.train))
	}
}

func TestDeterministicBySeed(t *testing.T) {
	files := writeInputs(t, dataset("a", 300), dataset("b", 100))
	a := mustSplit(t, files, nil)
	b := mustSplit(t, files, nil)
	if !bytes.Equal(a.trainRaw, b.trainRaw) || !bytes.Equal(a.valRaw, b.valRaw) {
		t.Fatal("same seed, different output")
	}
	c := mustSplit(t, files, map[string]cty.Value{"seed": cty.NumberIntVal(43)})
	if bytes.Equal(a.trainRaw, c.trainRaw) || bytes.Equal(a.valRaw, c.valRaw) {
		t.Fatal("different seeds, same output")
	}
	// Pinned: the shuffle must not change with the Go release.
	if got := texts(t, a.val[:3]); !reflect.DeepEqual(got, []string{"a 297", "a 2", "b 21"}) {
		t.Fatalf("validation starts %q", got)
	}
}

func TestStratify(t *testing.T) {
	files := writeInputs(t, dataset("big", 900), dataset("mid", 95), dataset("tiny", 5))
	res := mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberFloatVal(0.1)})
	got := []int{res.rep.Inputs[0].Validation, res.rep.Inputs[1].Validation, res.rep.Inputs[2].Validation}
	// 100 = 90 + 9.5 + 0.5: the remainders go to mid (0.5, earlier), and tiny
	// then takes one from big so that every input is represented.
	if !reflect.DeepEqual(got, []int{89, 10, 1}) || len(res.val) != 100 {
		t.Fatalf("stratified validation per input %v (%d)", got, len(res.val))
	}
	for i, ir := range res.rep.Inputs {
		if ir.Train+ir.Validation != ir.Kept {
			t.Errorf("input %d: %+v", i, ir)
		}
	}
	// Validation records of each source really come from it, interleaved.
	var prefixes []string
	for _, tx := range texts(t, res.val) {
		prefixes = append(prefixes, strings.Fields(tx)[0])
	}
	if strings.Join(prefixes[:89], ",") == strings.Repeat("big,", 88)+"big" {
		t.Fatal("validation not interleaved")
	}

	// Counts are stratified too.
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberIntVal(20)})
	got = []int{res.rep.Inputs[0].Validation, res.rep.Inputs[1].Validation, res.rep.Inputs[2].Validation}
	if !reflect.DeepEqual(got, []int{17, 2, 1}) {
		t.Fatalf("count 20 per input %v", got)
	}
	// Without stratification the validation set is drawn from the pool.
	res = mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberFloatVal(0.1), "stratify": cty.False})
	if len(res.val) != 100 || res.rep.Totals.Validation != 100 {
		t.Fatalf("unstratified %d", len(res.val))
	}

	for _, tc := range []struct {
		target int
		sizes  []int
		want   []int
	}{
		{0, []int{5, 5}, []int{0, 0}},
		{1, []int{5, 5}, []int{1, 0}},
		{2, []int{5, 5}, []int{1, 1}},
		{3, []int{1, 1, 10}, []int{0, 0, 3}},
		{4, []int{2, 2, 2, 100}, []int{1, 1, 1, 1}},
		{2, []int{2, 2, 2, 100}, []int{1, 0, 0, 1}},
		{9, []int{10}, []int{9}},
	} {
		if got := allocate(tc.target, tc.sizes); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("allocate(%d, %v) = %v, want %v", tc.target, tc.sizes, got, tc.want)
		}
	}
}

func TestVerbatimRecords(t *testing.T) {
	in := `{"text": "hi <b> & \u00e9",  "messages": [{"role": "user", "content": "x"}], "call": {"location": "Paris, France"}, "n": 1.50}
{"z":1,"text":"second"}
`
	files := writeInputs(t, "\ufeff  "+in+"\r\n\n")
	res := mustSplit(t, files, map[string]cty.Value{"validation": cty.NumberFloatVal(0)})
	got := append([]string(nil), res.train...)
	sort.Strings(got)
	want := lines([]byte(in))
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records not verbatim:\n%q\nwant\n%q", got, want)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		content, want string
	}{
		{"{\"text\":\"ok\"}\n{\"text\": \"broken\"\n", `split.dataset: data/in2.jsonl:2: invalid JSON`},
		{"{\"text\":\"ok\"}\n\n{\"title\":\"x\"}\n", `data/in2.jsonl:3: record has no "text" field`},
		{"{\"text\":42}\n", `data/in2.jsonl:1: "text" is a number, not a string`},
		{"{\"text\":null}\n", `data/in2.jsonl:1: "text" is null, not a string`},
		{"{\"text\":\"  \"}\n", `data/in2.jsonl:1: "text" is empty`},
		{"[1,2]\n", `data/in2.jsonl:1: expected a JSON object`},
		{"{\"text\":\"a\"} {\"text\":\"b\"}\n", `data/in2.jsonl:1: invalid JSON at column`},
		{"{\"text\":\"\xff\"}\n", `data/in2.jsonl:1: line is not valid UTF-8`},
	}
	for _, tc := range cases {
		files := writeInputs(t, dataset("a", 3), tc.content)
		_, err := runSplit(t, files, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.content, err, tc.want)
		}
	}
	files := writeInputs(t, dataset("a", 3))
	files = append(files, steps.InputFile{Path: filepath.Join(t.TempDir(), "missing.jsonl"), Name: "data/missing.jsonl"})
	if _, err := runSplit(t, files, nil); err == nil || !strings.Contains(err.Error(), "split.dataset: data/missing.jsonl: open: no such file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := runSplit(t, writeInputs(t, "\n\n"), nil); err == nil || !strings.Contains(err.Error(), "no records") {
		t.Errorf("empty input: %v", err)
	}
	if _, err := runSplit(t, nil, nil); err == nil || !strings.Contains(err.Error(), "inputs is empty") {
		t.Errorf("no inputs: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cfg := func(name string, v cty.Value) *steps.Invocation {
		c := map[string]cty.Value{}
		for _, a := range (Kind{}).Schema().Attributes {
			if !a.Input {
				c[a.Name] = a.Default
			}
		}
		c[name] = v
		return &steps.Invocation{Step: "split.x", Config: c}
	}
	if err := (Kind{}).Validate(cfg("validation", cty.NumberIntVal(10))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		attr string
		v    cty.Value
	}{
		{"validation", cty.NumberFloatVal(1.5)},
		{"validation", cty.NumberFloatVal(-1)},
		{"seed", cty.NumberFloatVal(0.5)},
	} {
		var ae *steps.AttrError
		if err := (Kind{}).Validate(cfg(tc.attr, tc.v)); !errors.As(err, &ae) || ae.Attr != tc.attr {
			t.Errorf("%s = %s: %v", tc.attr, tc.v.GoString(), err)
		}
	}
}
