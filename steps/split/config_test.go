package split

import (
	"strings"
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

// TestSameErrorEveryRun: a config with two wrong attributes reports the
// same one on every run. steps.Decode's problems (a fraction where a whole
// number belongs) come before the checks of the values, each in the
// schema's order.
func TestSameErrorEveryRun(t *testing.T) {
	err := steptest.FirstError(t, Kind{}, map[string]cty.Value{"validation": cty.NumberFloatVal(-1), "seed": cty.NumberFloatVal(0.5)}, "seed")
	if !strings.Contains(err, "must be a whole number, got 0.5") {
		t.Fatalf("%v, want seed's whole-number error", err)
	}
}
