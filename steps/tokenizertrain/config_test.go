package tokenizertrain

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
		{map[string]cty.Value{"vocab_size": cty.NumberIntVal(300), "character_coverage": cty.NumberFloatVal(0), "min_frequency": cty.NumberIntVal(0)}, "vocab_size"},
		{map[string]cty.Value{"character_coverage": cty.NumberFloatVal(0), "special_tokens": cty.ListVal([]cty.Value{cty.StringVal(" ")})}, "character_coverage"},
		{map[string]cty.Value{"model_max_length": cty.NumberIntVal(0), "conversations": cty.StringVal("some"), "max_chars": cty.NumberIntVal(-1)}, "max_chars"},
		{map[string]cty.Value{"model_max_length": cty.NumberIntVal(0), "conversations": cty.StringVal("some")}, "conversations"},
		{map[string]cty.Value{"chat_template": cty.StringVal("nope"), "max_chars": cty.NumberIntVal(-1)}, "chat_template"},
	} {
		steptest.FirstError(t, Kind{}, tc.set, tc.attr)
	}
}
