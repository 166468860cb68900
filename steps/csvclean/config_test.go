package csvclean

import (
	"errors"
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
	"github.com/mlbuild/mlbuild/steps/steptest"
)

// TestConfigMatchesSchema keeps attrConfig and the schema from drifting
// apart: every attribute is read by one field of a type that can hold it.
func TestConfigMatchesSchema(t *testing.T) {
	if err := steps.CheckConfig(Kind{}.Schema(), &attrConfig{}); err != nil {
		t.Fatal(err)
	}
}

// invocation is a Validate invocation with the schema's defaults (null
// where there is none) overridden by set.
func invocation(set map[string]cty.Value) *steps.Invocation {
	cfg := defaultConfig()
	for k, v := range set {
		cfg[k] = v
	}
	return &steps.Invocation{Step: "csv_clean.x", Config: cfg}
}

func strs(ss ...string) cty.Value { return strList(ss) }

func TestParseConfig(t *testing.T) {
	type summary struct {
		Columns                           []string
		MinWords                          int
		MinCapitalized                    float64
		Patterns                          int
		DropURLs, CIDedupe, SkipMalformed bool
	}
	sum := func(c *config) summary {
		return summary{c.columns, c.minWords, c.minCapitalized, len(c.patterns), c.dropURLs, c.ciDedupe, c.skipMalformed}
	}
	for _, tc := range []struct {
		name string
		set  map[string]cty.Value
		want summary
	}{
		{"defaults", nil, summary{[]string{"title"}, 4, 0, 1, true, true, false}},
		{"set", map[string]cty.Value{"columns": strs("a", "b"), "min_words": cty.NumberIntVal(0), "min_capitalized": cty.NumberFloatVal(0.5),
			"drop_urls": cty.False, "drop_patterns": strs("x", "y"), "case_insensitive_dedupe": cty.False, "skip_malformed": cty.True},
			summary{[]string{"a", "b"}, 0, 0.5, 2, false, false, true}},
		{"column", map[string]cty.Value{"column": cty.StringVal("body")}, summary{[]string{"body"}, 4, 0, 1, true, true, false}},
		{"column, columns empty", map[string]cty.Value{"column": cty.StringVal("body"), "columns": strs()}, summary{[]string{"body"}, 4, 0, 1, true, true, false}},
		{"columns empty", map[string]cty.Value{"columns": strs()}, summary{[]string{"title"}, 4, 0, 1, true, true, false}},
		// A null means what it meant before steps.Decode: the bools that
		// default to true stay true, the rest take the zero value.
		{"null", map[string]cty.Value{"columns": cty.NullVal(cty.List(cty.String)), "min_words": cty.NullVal(cty.Number),
			"min_capitalized": cty.NullVal(cty.Number), "drop_urls": cty.NullVal(cty.Bool), "drop_patterns": cty.NullVal(cty.List(cty.String)),
			"case_insensitive_dedupe": cty.NullVal(cty.Bool), "skip_malformed": cty.NullVal(cty.Bool)},
			summary{[]string{"title"}, 0, 0, 0, true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(invocation(tc.set))
			if err != nil {
				t.Fatal(err)
			}
			if got := sum(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config %+v, want %+v", got, tc.want)
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
		{"empty column name", map[string]cty.Value{"columns": strs("title", " ")}, "columns", "a column name is empty"},
		{"duplicate column", map[string]cty.Value{"columns": strs("title", "title")}, "columns", `column "title" is listed twice`},
		{"column and columns", map[string]cty.Value{"column": cty.StringVal("body"), "columns": strs("a")}, "column", "set column or columns, not both"},
		{"empty column", map[string]cty.Value{"column": cty.StringVal("")}, "column", "a column name is empty"},
		{"negative min_words", map[string]cty.Value{"min_words": cty.NumberIntVal(-1)}, "min_words", "must be between 0 and 1048576, got -1"},
		{"fractional min_words", map[string]cty.Value{"min_words": cty.NumberFloatVal(2.5)}, "min_words", "must be a whole number, got 2.5"},
		{"min_capitalized", map[string]cty.Value{"min_capitalized": cty.NumberFloatVal(1.5)}, "min_capitalized", "must be between 0 and 1, got 1.5"},
		{"drop_patterns", map[string]cty.Value{"drop_patterns": strs("ok", "a(")}, "drop_patterns",
			"element 1 (\"a(\"): error parsing regexp: missing closing ): `a(`"},
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
		{map[string]cty.Value{"drop_patterns": strs("("), "min_capitalized": cty.NumberIntVal(2), "min_words": cty.NumberIntVal(-1)}, "min_words"},
		{map[string]cty.Value{"drop_patterns": strs("("), "min_capitalized": cty.NumberIntVal(2)}, "min_capitalized"},
		{map[string]cty.Value{"drop_patterns": strs("("), "column": cty.StringVal(" ")}, "column"},
		{map[string]cty.Value{"column": cty.StringVal("x"), "columns": strs("a", "a")}, "columns"},
		{map[string]cty.Value{"drop_patterns": strs("(", "["), "columns": strs("")}, "columns"},
	} {
		steptest.FirstError(t, Kind{}, tc.set, tc.attr)
	}
}
