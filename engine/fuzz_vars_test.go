package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

// fuzzVarTypes are the variable types FuzzVar sets values of, as a
// pipeline declares them.
var fuzzVarTypes = []struct {
	decl, def string
	typ       cty.Type
}{
	{"string", `""`, cty.String},
	{"number", "0", cty.Number},
	{"bool", "false", cty.Bool},
	{"any", "null", cty.DynamicPseudoType},
	{"list(number)", "[]", cty.List(cty.Number)},
	{"list(string)", "[]", cty.List(cty.String)},
	{"set(string)", "[]", cty.Set(cty.String)},
	{"map(number)", "{}", cty.Map(cty.Number)},
	{"object({a = number, b = list(string)})", `{a = 1, b = []}`, cty.Object(map[string]cty.Type{"a": cty.Number, "b": cty.List(cty.String)})},
	{"tuple([string, bool])", `["", false]`, cty.Tuple([]cty.Type{cty.String, cty.Bool})},
}

// hclLiteral writes v as an HCL expression that evaluates to it (numbers
// in their shortest exact form, so that huge exponents stay short).
func hclLiteral(v cty.Value) string {
	switch {
	case v.IsNull():
		return "null"
	case v.Type() == cty.Number:
		return v.AsBigFloat().Text('g', -1)
	case v.Type() == cty.String || v.Type() == cty.Bool:
		return string(hclwrite.TokensForValue(v).Bytes())
	case v.Type().IsListType() || v.Type().IsSetType() || v.Type().IsTupleType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			parts = append(parts, hclLiteral(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default: // map or object
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			parts = append(parts, hclLiteral(k)+" = "+hclLiteral(e))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
}

// FuzzVar sets a variable of each type from an arbitrary -var value, as
// `-var NAME=VALUE` does. It must not panic; an error is an "Invalid
// variable value" diagnostic naming the -var; a value it accepts is wholly
// known, of the declared type (a string variable takes the text
// literally), and written back as an HCL literal it sets the same value
// again. The same value through Load's -var handling either loads the
// pipeline or fails with diagnostics.
func FuzzVar(f *testing.F) {
	for _, s := range []string{
		"7", "-1.5e3", "0x10", "1e999999", "true", "false", "null", `"quoted"`, "plain text",
		"../../shared/data", "/models/Mistral-7B-v0.1", `["a", "b"]`, "[1, 2, 3]", "[1, \"a\"]",
		`{a = 1, b = ["x"]}`, `{"k" = 2}`, `["s", true]`, "upper(\"a\")", "var.x", "${x}", `"${1+1}"`,
		"[for x in [1] : x]", "1 +", "", "=", "a=b", "\xff\xfe", `"\u00e9\U0001F600"`, "1 ? 2 : 3", "{}", "[]",
	} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
		f.Add(uint8(4), s)
	}
	dir := f.TempDir()
	var src strings.Builder
	for i, vt := range fuzzVarTypes {
		src.WriteString("variable \"v" + string(rune('0'+i)) + "\" {\n  type = " + vt.decl + "\n  default = " + vt.def + "\n}\n")
	}
	src.WriteString("step \"concat\" \"a\" {\n  sources = [\"a.txt\"]\n}\n")
	pipe := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipe, []byte(src.String()), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	reg := steps.NewRegistry()
	var n atomic.Int64
	reg.Register(concatKind{&n})
	f.Fuzz(func(t *testing.T, which uint8, raw string) {
		i := int(which) % len(fuzzVarTypes)
		vt := fuzzVarTypes[i]
		d := &varDecl{name: "x", typ: vt.typ}
		diags := d.setRaw(raw, "-var x")
		if diags.HasErrors() {
			for _, dg := range diags {
				if dg.Severity != hcl.DiagError || dg.Summary != "Invalid variable value" || !strings.Contains(dg.Detail, "-var x") {
					t.Fatalf("unexpected diagnostic for %s %q: %v", vt.decl, raw, dg)
				}
			}
			if d.value != cty.NilVal {
				t.Fatalf("a rejected value set the variable to %#v", d.value)
			}
		} else {
			v := d.value
			if v == cty.NilVal || !v.IsWhollyKnown() {
				t.Fatalf("%s %q set the value %#v", vt.decl, raw, v)
			}
			if vt.typ != cty.DynamicPseudoType && !v.Type().Equals(vt.typ) {
				t.Fatalf("%s %q set a %s", vt.decl, raw, v.Type().FriendlyName())
			}
			if vt.typ == cty.String && !v.RawEquals(cty.StringVal(raw)) {
				t.Fatalf("string %q set %#v", raw, v)
			}
			if vt.typ != cty.String && !v.IsNull() {
				lit := hclLiteral(v)
				d2 := &varDecl{name: "x", typ: vt.typ}
				if diags := d2.setRaw(lit, "-var x"); diags.HasErrors() {
					t.Fatalf("%s %q set %#v, whose literal %q is rejected: %v", vt.decl, raw, v, lit, diags)
				}
				if !d2.value.Type().Equals(v.Type()) || !d2.value.Equals(v).True() {
					t.Fatalf("%s %q set %#v; its literal %q sets %#v", vt.decl, raw, v, lit, d2.value)
				}
			}
		}
		if which&4 == 0 {
			return
		}
		pl, err := Load(pipe, LoadOptions{Registry: reg, Environ: []string{}, Vars: []string{"v" + string(rune('0'+i)) + "=" + raw}})
		if err != nil {
			var de *DiagError
			if !errors.As(err, &de) {
				t.Fatalf("non-diagnostic error: %v", err)
			}
			_ = de.Error()
			return
		}
		if n.Load() != 0 || pl == nil {
			t.Fatal("loading ran a step or returned no pipeline")
		}
	})
}
