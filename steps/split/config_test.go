package split

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

// TestSameErrorEveryRun: a config with two wrong attributes reports the
// same one on every run. steps.Decode's problems (a fraction where a whole
// number belongs) come before the checks of the values, each in the
// schema's order.
func TestSameErrorEveryRun(t *testing.T) {
	c := map[string]cty.Value{}
	for _, a := range (Kind{}).Schema().Attributes {
		if !a.Input {
			c[a.Name] = a.Default
		}
	}
	c["validation"] = cty.NumberFloatVal(-1)
	c["seed"] = cty.NumberFloatVal(0.5)
	for i := range 50 {
		err := (Kind{}).Validate(&steps.Invocation{Step: "split.x", Config: c})
		var ae *steps.AttrError
		if !errors.As(err, &ae) || ae.Attr != "seed" || ae.Msg != "must be a whole number, got 0.5" {
			t.Fatalf("run %d: %v, want seed's whole-number error", i, err)
		}
	}
}
