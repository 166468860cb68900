package eval

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
		map[string]cty.Value{"max_tool_prompts": cty.NumberIntVal(0)})
	schema := (Kind{}).Schema()
	f.Fuzz(func(t *testing.T, data []byte) {
		steptest.CheckValidate(t, Kind{}, steptest.FuzzOverrides(schema, data))
	})
}
