package gutenberg

import (
	"errors"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// TestConfigMatchesSchema keeps chunkConfig and the schema from drifting
// apart: every attribute is read by one field of a type that can hold it.
func TestConfigMatchesSchema(t *testing.T) {
	if err := steps.CheckConfig(Kind{}.Schema(), &chunkConfig{}); err != nil {
		t.Fatal(err)
	}
}

// invocation is a Validate invocation with the schema's defaults overridden
// by set.
func invocation(set map[string]cty.Value) *steps.Invocation {
	return &steps.Invocation{Step: "gutenberg_chunk.x", Config: steptest.Config(Kind{}, set)}
}

func TestReadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]cty.Value
		want options
	}{
		{"defaults", nil, options{minWords: 200, maxWords: 500}},
		{"set", map[string]cty.Value{"min_words": cty.NumberIntVal(10), "max_words": cty.NumberIntVal(10), "keep_headings": cty.True},
			options{minWords: 10, maxWords: 10, keepHeadings: true}},
		// null means the default, as before steps.Decode.
		{"null", map[string]cty.Value{"min_words": cty.NullVal(cty.Number), "max_words": cty.NullVal(cty.Number), "keep_headings": cty.NullVal(cty.Bool)},
			options{minWords: 200, maxWords: 500}},
		{"null max", map[string]cty.Value{"min_words": cty.NumberIntVal(50), "max_words": cty.NullVal(cty.Number)},
			options{minWords: 50, maxWords: 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := readOptions(invocation(tc.set))
			if err != nil || o != tc.want {
				t.Errorf("readOptions = %+v, %v; want %+v", o, err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]cty.Value
		attr string
		msg  string
	}{
		{"zero min", map[string]cty.Value{"min_words": cty.NumberIntVal(0)}, "min_words", "must be between 1 and 1073741824, got 0"},
		{"huge max", map[string]cty.Value{"max_words": cty.NumberIntVal(1 << 31)}, "max_words", "must be between 1 and 1073741824, got 2147483648"},
		{"fraction", map[string]cty.Value{"min_words": cty.NumberFloatVal(2.5)}, "min_words", "must be a whole number, got 2.5"},
		{"max below min", map[string]cty.Value{"min_words": cty.NumberIntVal(300), "max_words": cty.NumberIntVal(200)}, "max_words", "must be at least min_words (300), got 200"},
		{"max below default min", map[string]cty.Value{"max_words": cty.NumberIntVal(100)}, "max_words", "must be at least min_words (200), got 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (Kind{}).Validate(invocation(tc.set))
			var ae *steps.AttrError
			if !errors.As(err, &ae) || ae.Attr != tc.attr || ae.Msg != tc.msg {
				t.Errorf("Validate = %v, want attribute %q: %s", err, tc.attr, tc.msg)
			}
		})
	}
}

// TestFirstErrorInSchemaOrder: a config with several wrong attributes
// reports the first of them in the schema's order, on every run.
func TestFirstErrorInSchemaOrder(t *testing.T) {
	for _, tc := range []struct {
		set  map[string]cty.Value
		attr string
	}{
		{map[string]cty.Value{"min_words": cty.NumberIntVal(0), "max_words": cty.NumberIntVal(-1)}, "min_words"},
		{map[string]cty.Value{"min_words": cty.NumberIntVal(-5), "max_words": cty.NumberIntVal(1 << 31)}, "min_words"},
		{map[string]cty.Value{"min_words": cty.NumberIntVal(1 << 31), "max_words": cty.NumberIntVal(0)}, "min_words"},
	} {
		steptest.FirstError(t, Kind{}, tc.set, tc.attr)
	}
}

// TestRunConfigError: Run reports a bad attribute with the step's name and
// keeps the *steps.AttrError for the engine.
func TestRunConfigError(t *testing.T) {
	inv := invocation(map[string]cty.Value{"min_words": cty.NumberIntVal(0)})
	inv.OutDir = t.TempDir()
	err := (Kind{}).Run(t.Context(), inv)
	var ae *steps.AttrError
	if !errors.As(err, &ae) || ae.Attr != "min_words" || !strings.HasPrefix(err.Error(), "gutenberg_chunk.x: attribute \"min_words\": ") {
		t.Errorf("Run = %v", err)
	}
}
