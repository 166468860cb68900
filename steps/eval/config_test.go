package eval

import (
	"errors"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

// TestConfigMatchesSchema keeps config and the schema from drifting apart:
// every attribute is read by one field of a type that can hold it.
func TestConfigMatchesSchema(t *testing.T) {
	if err := steps.CheckConfig(Kind{}.Schema(), &config{}); err != nil {
		t.Fatal(err)
	}
}

// TestFirstErrorInSchemaOrder: a config with several wrong attributes
// reports the first of them in the schema's order, on every run.
func TestFirstErrorInSchemaOrder(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]cty.Value
		attr string
	}{
		{map[string]cty.Value{"threads": cty.NumberIntVal(-1), "max_tool_prompts": cty.NumberIntVal(-1), "max_new_tokens": cty.NumberIntVal(0)}, "max_new_tokens"},
		{map[string]cty.Value{"threads": cty.NumberIntVal(-1), "prompts": cty.ListVal([]cty.Value{cty.StringVal("")})}, "prompts"},
	} {
		config := map[string]cty.Value{}
		for _, a := range (Kind{}).Schema().Attributes {
			if !a.Input {
				config[a.Name] = a.Default
			}
		}
		for k, v := range tc.set {
			config[k] = v
		}
		var first string
		for i := range 50 {
			err := (Kind{}).Validate(&steps.Invocation{Step: "eval.x", Config: config})
			var ae *steps.AttrError
			if !errors.As(err, &ae) || ae.Attr != tc.attr {
				t.Fatalf("%v, run %d: %v, want an error about %s", tc.set, i, err, tc.attr)
			}
			if i == 0 {
				first = err.Error()
			} else if err.Error() != first {
				t.Fatalf("%v: run %d reported %q, the first run %q", tc.set, i, err, first)
			}
		}
	}
}
