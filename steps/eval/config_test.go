package eval

import (
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
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
		steptest.FirstError(t, Kind{}, tc.set, tc.attr)
	}
}
