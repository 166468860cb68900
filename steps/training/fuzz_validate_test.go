package training

import (
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps/steptest"
)

// FuzzValidatePretrain validates configs built from fuzzed attribute values on the
// engine's defaults (seeded with pipelines/twainbot.hcl's): Validate
// must not panic and must return nil or a *steps.AttrError naming one of
// the schema's attributes, the same on every call.
func FuzzValidatePretrain(f *testing.F) {
	steptest.AddValidateSeeds(f, Pretrain{},
		map[string]cty.Value{"conversations": cty.StringVal("prompts"), "seed": cty.NumberIntVal(42), "epochs": cty.NumberIntVal(8), "packing": cty.False, "batch_size": cty.NumberIntVal(4), "learning_rate": cty.NumberFloatVal(4e-3), "hidden_size": cty.NumberIntVal(128), "intermediate_size": cty.NumberIntVal(352), "num_layers": cty.NumberIntVal(4)})
	schema := (Pretrain{}).Schema()
	f.Fuzz(func(t *testing.T, data []byte) {
		steptest.CheckValidate(t, Pretrain{}, steptest.FuzzOverrides(schema, data))
	})
}

// FuzzValidateQLoRA validates configs built from fuzzed attribute values on the
// engine's defaults (seeded with pipelines/twainbot.hcl's): Validate
// must not panic and must return nil or a *steps.AttrError naming one of
// the schema's attributes, the same on every call.
func FuzzValidateQLoRA(f *testing.F) {
	steptest.AddValidateSeeds(f, QLoRA{},
		map[string]cty.Value{"seed": cty.NumberIntVal(42), "learning_rate": cty.NumberFloatVal(3e-3), "epochs": cty.NumberIntVal(5), "batch_size": cty.NumberIntVal(4), "grad_accum": cty.NumberIntVal(1), "eval_every": cty.NumberIntVal(100), "patience": cty.NumberIntVal(4), "modules_to_save": cty.ListVal([]cty.Value{cty.StringVal("embed_tokens")})})
	schema := (QLoRA{}).Schema()
	f.Fuzz(func(t *testing.T, data []byte) {
		steptest.CheckValidate(t, QLoRA{}, steptest.FuzzOverrides(schema, data))
	})
}
