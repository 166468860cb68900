package synthtools

import (
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps/steptest"
)

// FuzzValidate validates configs built from fuzzed attribute values on the
// engine's defaults (seeded with pipelines/twainbot.hcl's): Validate
// must not panic and must return nil or a *steps.AttrError naming one of
// the schema's attributes, the same on every call.
func FuzzValidate(f *testing.F) {
	steptest.AddValidateSeeds(f, Kind{},
		map[string]cty.Value{"count": cty.NumberIntVal(2000), "seed": cty.NumberIntVal(42), "answer_fraction": cty.NumberFloatVal(0.2), "system_prompt": cty.StringVal(""), "thought": cty.StringVal("none")},
		map[string]cty.Value{"count": cty.NumberIntVal(1200), "seed": cty.NumberIntVal(1042), "system_prompt": cty.StringVal("")})
	schema := (Kind{}).Schema()
	f.Fuzz(func(t *testing.T, data []byte) {
		steptest.CheckValidate(t, Kind{}, steptest.FuzzOverrides(schema, data))
	})
}
