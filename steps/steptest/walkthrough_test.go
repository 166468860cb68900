package steptest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// lineCount is docs/kinds.md's line_count kind (keep the two alike).
type lineCount struct{}

func (lineCount) Schema() steps.Schema {
	return steps.Schema{
		Kind: "line_count", Version: "1", Doc: "Counts the lines of its input files.",
		Attributes: []steps.Attribute{
			{Name: "inputs", Type: cty.List(cty.String), Input: true, Required: true},
			{Name: "min_length", Type: cty.Number, Default: cty.NumberIntVal(1)},
			{Name: "label", Type: cty.String},
		},
		Outputs: []steps.Output{{Name: "report", Path: "counts.json"}},
	}
}

type lineCountConfig struct {
	MinLength int     `attr:"min_length"`
	Label     *string `attr:"label"`
}

func readLineCount(inv *steps.Invocation) (*lineCountConfig, error) {
	c := &lineCountConfig{}
	if err := inv.Decode(c); err != nil {
		return nil, err
	}
	if c.MinLength < 0 {
		return nil, &steps.AttrError{Attr: "min_length", Msg: fmt.Sprintf("must be 0 or more, got %d", c.MinLength)}
	}
	return c, nil
}

func (lineCount) Validate(inv *steps.Invocation) error {
	_, err := readLineCount(inv)
	return err
}

func (lineCount) Run(ctx context.Context, inv *steps.Invocation) error {
	c, err := readLineCount(inv)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, in := range inv.Inputs["inputs"] {
		f, err := os.Open(in.Path)
		if err != nil {
			return fmt.Errorf("%s: %w", in.Name, err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if len(sc.Text()) >= c.MinLength {
				counts[in.Name]++
			}
		}
		_ = f.Close() // read-only
		if err := sc.Err(); err != nil {
			return fmt.Errorf("%s: %w", in.Name, err)
		}
	}
	report := map[string]any{"lines": counts}
	if c.Label != nil {
		report["label"] = *c.Label
	}
	return steps.WriteJSON(filepath.Join(inv.OutDir, "counts.json"), report)
}

// TestWalkthrough is docs/kinds.md's test of line_count: built, then
// cached, then a bad attribute refused.
func TestWalkthrough(t *testing.T) {
	if err := steps.CheckConfig(lineCount{}.Schema(), &lineCountConfig{}); err != nil {
		t.Fatal(err)
	}
	ws := steptest.New(t)
	ws.Write("data/a.txt", "one\n\nthree\n")
	s := steptest.Step{Inputs: map[string][]string{"inputs": {"data/a.txt"}}, Config: map[string]cty.Value{"label": cty.StringVal("demo")}}
	res := ws.Run(lineCount{}, s)
	var rep struct {
		Lines map[string]int
		Label string
	}
	res.JSON("report", &rep)
	if res.Status != engine.StatusRan || rep.Lines["data/a.txt"] != 2 || rep.Label != "demo" {
		t.Fatalf("%s %v %+v", res.Step, res.Status, rep)
	}
	if again := ws.Run(lineCount{}, s); again.Status != engine.StatusCached {
		t.Fatalf("rerun: %s", again.Status)
	}
	s.Config["min_length"] = cty.NumberIntVal(-1)
	var ae *steps.AttrError
	if _, err := ws.Try(lineCount{}, s); !errors.As(err, &ae) || ae.Attr != "min_length" {
		t.Fatalf("a negative min_length: %v", err)
	}
}
