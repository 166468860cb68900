package steps

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

type shared struct {
	Seed uint64 `attr:"seed"`
}

type testConfig struct {
	shared
	Name    string   `attr:"name"`
	Count   int      `attr:"count"`
	Ratio   float64  `attr:"ratio"`
	On      bool     `attr:"on"`
	Tags    []string `attr:"tags"`
	Column  *string  `attr:"column"`
	Limit   *int     `attr:"limit"`
	derived int
}

var testSchema = Schema{Kind: "test", Attributes: []Attribute{
	{Name: "inputs", Type: cty.List(cty.String), Input: true},
	{Name: "seed", Type: cty.Number}, {Name: "name", Type: cty.String}, {Name: "count", Type: cty.Number},
	{Name: "ratio", Type: cty.Number}, {Name: "on", Type: cty.Bool}, {Name: "tags", Type: cty.List(cty.String)},
	{Name: "column", Type: cty.String}, {Name: "limit", Type: cty.Number},
}}

func testInvocation(over map[string]cty.Value) *Invocation {
	cfg := map[string]cty.Value{
		"seed": cty.NumberIntVal(7), "name": cty.StringVal("x"), "count": cty.NumberIntVal(3),
		"ratio": cty.NumberFloatVal(0.5), "on": cty.True, "tags": cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"column": cty.NullVal(cty.String), "limit": cty.NumberIntVal(9),
	}
	for k, v := range over {
		cfg[k] = v
	}
	return &Invocation{Step: "test.t", Config: cfg}
}

func TestDecode(t *testing.T) {
	c := testConfig{derived: 5} // untagged fields are left alone
	if err := testInvocation(nil).Decode(&c); err != nil {
		t.Fatal(err)
	}
	nine := 9
	want := testConfig{shared: shared{Seed: 7}, Name: "x", Count: 3, Ratio: 0.5, On: true, Tags: []string{"a", "b"}, Limit: &nine, derived: 5}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := testInvocation(map[string]cty.Value{"column": cty.StringVal("title"), "limit": cty.NullVal(cty.Number)}).Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Column == nil || *c.Column != "title" || c.Limit != nil {
		t.Fatalf("pointers: %v %v", c.Column, c.Limit)
	}
}

func TestDecodeErrorsInFieldOrder(t *testing.T) {
	for _, tc := range []struct {
		over       map[string]cty.Value
		attr, want string
	}{
		{map[string]cty.Value{"count": cty.NumberFloatVal(2.5)}, "count", "whole number, got 2.5"},
		{map[string]cty.Value{"seed": cty.NumberIntVal(-1)}, "seed", "must not be negative"},
		{map[string]cty.Value{"on": cty.StringVal("yes")}, "on", "not a bool"},
		{map[string]cty.Value{"tags": cty.StringVal("a")}, "tags", "not a list"},
		{map[string]cty.Value{"name": cty.NumberIntVal(1)}, "name", "not a string"},
		{map[string]cty.Value{"count": cty.NumberFloatVal(1e300)}, "count", "out of range"},
		// Two wrong attributes: the first field's error, every time.
		{map[string]cty.Value{"ratio": cty.True, "name": cty.True, "tags": cty.True}, "name", "not a string"},
	} {
		for range 5 {
			var c testConfig
			err := testInvocation(tc.over).Decode(&c)
			var ae *AttrError
			if !errors.As(err, &ae) || ae.Attr != tc.attr || !strings.Contains(ae.Msg, tc.want) {
				t.Fatalf("%v: got %v, want an error on %q containing %q", tc.over, err, tc.attr, tc.want)
			}
		}
	}
	var c testConfig
	inv := testInvocation(nil)
	delete(inv.Config, "ratio")
	if err := inv.Decode(&c); err == nil || !strings.Contains(err.Error(), `"ratio" is not in the step's config`) {
		t.Fatalf("a tag naming an unknown attribute: %v", err)
	}
	if err := inv.Decode(c); err == nil {
		t.Fatal("Decode accepted a non-pointer")
	}
}

func TestCheckConfig(t *testing.T) {
	if err := CheckConfig(testSchema, &testConfig{}); err != nil {
		t.Fatal(err)
	}
	bad := testSchema
	bad.Attributes = append([]Attribute{{Name: "extra", Type: cty.Number}}, bad.Attributes[1:]...)
	bad.Attributes[2] = Attribute{Name: "name", Type: cty.Number}
	err := CheckConfig(bad, &testConfig{})
	for _, want := range []string{`no field reads attribute "extra"`, `attribute "name" is number, which a string field cannot hold`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckConfig: %v, want %q", err, want)
		}
	}
	type twice struct {
		A string `attr:"name"`
		B string `attr:"name"`
	}
	if err := CheckConfig(Schema{Kind: "k", Attributes: []Attribute{{Name: "name", Type: cty.String}}}, &twice{}); err == nil || !strings.Contains(err.Error(), "two fields") {
		t.Errorf("two fields: %v", err)
	}
	type input struct {
		In []string `attr:"inputs"`
	}
	if err := CheckConfig(testSchema, &input{}); err == nil || !strings.Contains(err.Error(), "input attribute") {
		t.Errorf("input: %v", err)
	}
}

func TestDecodeMapsAndRawValues(t *testing.T) {
	var c struct {
		Env  map[string]string `attr:"env"`
		Raw  cty.Value         `attr:"raw"`
		None map[string]string `attr:"none"`
	}
	raw := cty.ObjectVal(map[string]cty.Value{"cpus": cty.NumberIntVal(2)})
	inv := &Invocation{Step: "test.t", Config: map[string]cty.Value{
		"env":  cty.MapVal(map[string]cty.Value{"LC_ALL": cty.StringVal("C"), "TZ": cty.StringVal("UTC")}),
		"raw":  raw,
		"none": cty.NullVal(cty.Map(cty.String)),
	}}
	if err := inv.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Env, map[string]string{"LC_ALL": "C", "TZ": "UTC"}) || c.None != nil || !c.Raw.RawEquals(raw) {
		t.Fatalf("decoded %+v", c)
	}
	inv.Config["env"] = cty.ObjectVal(map[string]cty.Value{"N": cty.NumberIntVal(1)})
	var ae *AttrError
	if err := inv.Decode(&c); !errors.As(err, &ae) || ae.Attr != "env" {
		t.Fatalf("a map with a number: %v", err)
	}
}
