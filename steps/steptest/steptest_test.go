package steptest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/engine"
	"github.com/mlbuild/mlbuild/steps"
)

// upper writes its input in upper case, repeated times times, with the
// prefix attribute in front.
type upper struct{}

type upperConfig struct {
	Times  int     `attr:"times"`
	Prefix *string `attr:"prefix"`
}

func (upper) Schema() steps.Schema {
	return steps.Schema{Kind: "upper", Version: "1", Attributes: []steps.Attribute{
		{Name: "input", Type: cty.String, Input: true, Required: true},
		{Name: "times", Type: cty.Number, Default: cty.NumberIntVal(1)},
		{Name: "prefix", Type: cty.String},
	}, Outputs: []steps.Output{{Name: "output", Path: "out.txt"}}}
}

func (upper) Run(ctx context.Context, inv *steps.Invocation) error {
	var c upperConfig
	if err := inv.Decode(&c); err != nil {
		return err
	}
	if c.Times < 1 {
		return &steps.AttrError{Attr: "times", Msg: "must be at least 1"}
	}
	b, err := os.ReadFile(inv.Inputs["input"][0].Path)
	if err != nil {
		return err
	}
	out := strings.Repeat(strings.ToUpper(string(b)), c.Times)
	if c.Prefix != nil {
		out = *c.Prefix + out
	}
	return os.WriteFile(filepath.Join(inv.OutDir, "out.txt"), []byte(out), 0o644)
}

func TestWorkspaceRun(t *testing.T) {
	if err := steps.CheckConfig(upper{}.Schema(), &upperConfig{}); err != nil {
		t.Fatal(err)
	}
	ws := New(t)
	ws.Write("data/in.txt", "ab\n")
	s := Step{Inputs: map[string][]string{"input": {"data/in.txt"}}, Config: map[string]cty.Value{"times": cty.NumberIntVal(2), "prefix": cty.StringVal(`"${x}" `)}}
	res := ws.Run(upper{}, s)
	if res.Status != engine.StatusRan || res.Step != "upper.test" || len(res.Key) != 64 {
		t.Fatalf("first run: %+v", res)
	}
	if got := string(res.Read("output")); got != "\"${x}\" AB\nAB\n" {
		t.Fatalf("output %q", got)
	}
	if got := res.Lines("output"); len(got) != 2 {
		t.Fatalf("lines %q", got)
	}
	again := ws.Run(upper{}, s)
	if again.Status != engine.StatusCached || again.Key != res.Key {
		t.Fatalf("second run: %+v, first key %s", again, res.Key)
	}
	s.Config["times"] = cty.NumberIntVal(0)
	_, err := ws.Try(upper{}, s)
	var ae *steps.AttrError
	if !errors.As(err, &ae) || ae.Attr != "times" || !strings.Contains(err.Error(), "pipeline.hcl:") {
		t.Fatalf("a run-time attribute error: %v", err)
	}
	delete(s.Config, "times")
	s.Config["prefix"] = cty.NumberIntVal(3) // converted to "3", as in a pipeline
	if got := string(ws.Run(upper{}, s).Read("output")); got != "3AB\n" {
		t.Fatalf("output %q", got)
	}
	s.Inputs["input"] = []string{"data/missing.txt"}
	var de *engine.DiagError
	if _, err := ws.Try(upper{}, s); !errors.As(err, &de) || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("a missing input: %v", err)
	}
}

func TestInvocation(t *testing.T) {
	inv := Invocation(t, upper{}, "upper.x", map[string][]steps.InputFile{"input": {Input(filepath.Join(t.TempDir(), "none"), "none")}},
		map[string]cty.Value{"prefix": cty.StringVal("p")})
	if len(inv.Config) != 2 || !inv.Config["times"].RawEquals(cty.NumberIntVal(1)) || inv.Config["prefix"].AsString() != "p" {
		t.Fatalf("config %#v", inv.Config)
	}
	if !Config(upper{}, nil)["prefix"].IsNull() {
		t.Fatal("an attribute without a default is not null")
	}
	if inv.OutDir == "" || inv.TempDir == "" || inv.StateDir == "" {
		t.Fatal("folders not set")
	}
}
