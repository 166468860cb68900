package synthtools

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

// invocation is a Validate invocation with the schema's defaults (null
// where there is none) overridden by set.
func invocation(set map[string]cty.Value) *steps.Invocation {
	c := map[string]cty.Value{}
	for _, a := range (Kind{}).Schema().Attributes {
		c[a.Name] = a.Default
		if a.Default == cty.NilVal {
			c[a.Name] = cty.NullVal(a.Type)
		}
	}
	for k, v := range set {
		c[k] = v
	}
	return &steps.Invocation{Step: "synth_tools.x", Config: c}
}

// TestFirstErrorInSchemaOrder: a config with several wrong attributes
// reports the first of them in the schema's order, on every run.
func TestFirstErrorInSchemaOrder(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]cty.Value
		attr string
	}{
		{map[string]cty.Value{"thought": cty.StringVal("verbose"), "answer_fraction": cty.NumberFloatVal(2), "count": cty.NumberIntVal(0)}, "count"},
		{map[string]cty.Value{"thought": cty.StringVal("verbose"), "answer_fraction": cty.NumberFloatVal(2)}, "answer_fraction"},
		{map[string]cty.Value{"thought": cty.StringVal("verbose"), "holdout_locations": cty.ListVal([]cty.Value{cty.StringVal("Atlantis")})}, "holdout_locations"},
	} {
		steptest.FirstError(t, Kind{}, tc.set, tc.attr)
	}
}

// TestSystemPromptNull: a null system_prompt is the default one, "" none,
// and anything else is used as given.
func TestSystemPromptNull(t *testing.T) {
	for _, tc := range []struct {
		v    cty.Value
		want *string
	}{
		{cty.NullVal(cty.String), nil},
		{cty.StringVal(""), new("")},
		{cty.StringVal("Be brief."), new("Be brief.")},
	} {
		opts, err := options(invocation(map[string]cty.Value{"system_prompt": tc.v}))
		if err != nil {
			t.Fatal(err)
		}
		if (opts.SystemPrompt == nil) != (tc.want == nil) || (tc.want != nil && *opts.SystemPrompt != *tc.want) {
			t.Errorf("system_prompt %s: got %v", tc.v.GoString(), opts.SystemPrompt)
		}
	}
}
