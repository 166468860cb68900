package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/eval"
)

// The eval kind's headline reads its own report.json: the rates as
// percentages and the losses, base beside fine-tuned, "-" for a null.
func TestEvalHeadline(t *testing.T) {
	var h *steps.Headline
	for _, o := range (eval.Kind{}).Schema().Outputs {
		if o.Headline != nil {
			h = o.Headline
		}
	}
	if h == nil || h.File != "report.json" {
		t.Fatalf("eval declares no headline on report.json: %+v", h)
	}
	f := func(x float64) *float64 { return &x }
	var r eval.Report
	r.Models.Base = eval.ModelReport{ToolCallRate: f(0.0125), NoToolCallRate: f(0), ExactArgsRate: f(0), ValidCallRate: f(0.0125), PersonaLoss: f(5.8976), ValLoss: f(4.1)}
	r.Models.Finetuned = eval.ModelReport{ToolCallRate: f(1), NoToolCallRate: f(1), ExactArgsRate: f(0.93125), ValidCallRate: f(1), AnswerUsesToolRate: f(0.01), PersonaLoss: f(3.8512), ValLoss: f(2.2)}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeHeadline(&b, h, bytes.NewReader(data), "  "); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"                             base   fine-tuned",
		"  tool called when needed      1%         100%",
		"  tool called without need     0%         100%",
		"  exact tool arguments         0%          93%",
		"  valid tool calls             1%         100%",
		"  answers using the tool        -           1%",
		"  persona loss               5.90         3.85",
		"  validation loss            4.10         2.20",
	}
	if got := strings.TrimRight(b.String(), "\n"); got != strings.Join(want, "\n") {
		t.Errorf("headline:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// Without columns the paths start at the top; what is not a number is
// printed as it is, what is missing as "-".
func TestHeadlineOneColumn(t *testing.T) {
	h := &steps.Headline{Metrics: []steps.HeadlineMetric{{Name: "rows", Path: "rows_out"}, {Name: "kept", Path: "stats.kept", Percent: true}, {Name: "gone", Path: "nope.x"}, {Name: "mode", Path: "mode"}}}
	var b bytes.Buffer
	if err := writeHeadline(&b, h, strings.NewReader(`{"rows_out": 1234, "stats": {"kept": 0.5}, "mode": "fast"}`), ""); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "rows   1234\nkept    50%\ngone      -\nmode   fast\n"; got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
	if err := writeHeadline(&b, h, strings.NewReader(`{`), ""); err == nil {
		t.Error("bad JSON: no error")
	}
}

// An optional metric that no column has is left out.
func TestHeadlineOptional(t *testing.T) {
	h := &steps.Headline{Metrics: []steps.HeadlineMetric{{Name: "rows", Path: "rows_out"}, {Name: "slice", Path: "slices.x", Optional: true}, {Name: "gone", Path: "nope"}}}
	var b bytes.Buffer
	if err := writeHeadline(&b, h, strings.NewReader(`{"rows_out": 7}`), ""); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "rows   7\ngone   -\n"; got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
}

// A headline reads the members its paths name and stops there: a report
// whose summary comes first is not read to its end (a no-op prints the
// headline of a report of megabytes), while a member that is missing or a
// document that is not an object still fails or prints "-".
func TestHeadlineReadsOnlyWhatItNeeds(t *testing.T) {
	h := &steps.Headline{Metrics: []steps.HeadlineMetric{{Name: "rate", Path: "models.tuned.rate", Percent: true}}}
	var b strings.Builder
	// Everything after "models" is not even valid JSON: it is never read.
	if err := writeHeadline(&b, h, strings.NewReader(`{"models": {"tuned": {"rate": 0.5}}, "conversations": [1, 2, @@@`), ""); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(b.String()); got != "rate   50%" {
		t.Errorf("headline %q", got)
	}
	b.Reset()
	if err := writeHeadline(&b, h, strings.NewReader(`{"other": [1, {"models": 2}], "x": "y"}`), ""); err != nil || !strings.Contains(b.String(), "-") {
		t.Errorf("a report without the member: %q, %v", b.String(), err)
	}
	for _, bad := range []string{`[1]`, `{"other": [1,`, ``} {
		if err := writeHeadline(&b, h, strings.NewReader(bad), ""); err == nil {
			t.Errorf("writeHeadline(%q) succeeded", bad)
		}
	}
}
