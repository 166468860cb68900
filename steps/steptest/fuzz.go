package steptest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/mlbuild/mlbuild/steps"
)

// Fuzzing a kind's attribute validation: FuzzOverrides maps fuzz bytes to
// values of the kind's attributes, EncodeOverrides maps values back to
// bytes (for seeds from real configs), and CheckValidate runs Validate on
// the engine's defaults overlaid by them:
//
//	func FuzzValidate(f *testing.F) {
//		steptest.AddValidateSeeds(f, Kind{}, map[string]cty.Value{"seed": cty.NumberIntVal(7)})
//		f.Fuzz(func(t *testing.T, data []byte) {
//			steptest.CheckValidate(t, Kind{}, steptest.FuzzOverrides(Kind{}.Schema(), data))
//		})
//	}
//
// The bytes hold, for each non-input attribute in the schema's order, a
// tag byte (tag%4: 0 the default, 1 a null, 2 or 3 a value) and the value:
// a bool is one byte; a string is a length byte and that many bytes (made
// valid UTF-8); a number is a string parsed as a decimal number (one that
// does not parse, or is infinite, is its length as a negative integer, so that short
// inputs still give numbers); a list of strings is a count byte (count%6
// elements), then each element's tag (tag%4 == 1: a null element) and
// string. Bytes run out: the rest keep their defaults. Values of other
// types are left at their defaults.

// fuzzReader reads FuzzOverrides' bytes.
type fuzzReader struct{ b []byte }

func (r *fuzzReader) byte() (byte, bool) {
	if len(r.b) == 0 {
		return 0, false
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c, true
}

func (r *fuzzReader) string() string {
	n, _ := r.byte()
	k := min(int(n), len(r.b))
	s := string(r.b[:k])
	r.b = r.b[k:]
	return strings.ToValidUTF8(s, "\uFFFD")
}

// FuzzOverrides maps fuzz bytes to values of s's non-input attributes of
// types bool, number, string and list(string), as described above.
func FuzzOverrides(s steps.Schema, data []byte) map[string]cty.Value {
	r := &fuzzReader{b: data}
	over := map[string]cty.Value{}
	for _, a := range s.Attributes {
		if a.Input {
			continue
		}
		tag, ok := r.byte()
		if !ok {
			break
		}
		switch tag % 4 {
		case 0:
			continue
		case 1:
			over[a.Name] = cty.NullVal(a.Type)
			continue
		}
		switch {
		case a.Type == cty.Bool:
			b, _ := r.byte()
			over[a.Name] = cty.BoolVal(b&1 != 0)
		case a.Type == cty.String:
			over[a.Name] = cty.StringVal(r.string())
		case a.Type == cty.Number:
			txt := r.string()
			v, err := cty.ParseNumberVal(txt)
			if err != nil || v.AsBigFloat().IsInf() { // HCL has no infinite numbers
				v = cty.NumberIntVal(-int64(len(txt)))
			}
			over[a.Name] = v
		case a.Type.Equals(cty.List(cty.String)):
			n, _ := r.byte()
			var elems []cty.Value
			for range n % 6 {
				et, _ := r.byte()
				if et%4 == 1 {
					elems = append(elems, cty.NullVal(cty.String))
					continue
				}
				elems = append(elems, cty.StringVal(r.string()))
			}
			if len(elems) == 0 {
				over[a.Name] = cty.ListValEmpty(cty.String)
			} else {
				over[a.Name] = cty.ListVal(elems)
			}
		}
	}
	return over
}

// EncodeOverrides is the inverse of FuzzOverrides: the bytes that give
// over (attributes it does not name keep their defaults). Strings longer
// than 255 bytes are cut, and so are lists longer than 5 elements.
func EncodeOverrides(s steps.Schema, over map[string]cty.Value) []byte {
	var b []byte
	str := func(s string) {
		if len(s) > 255 {
			s = s[:255]
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	for _, a := range s.Attributes {
		if a.Input {
			continue
		}
		v, ok := over[a.Name]
		switch {
		case !ok:
			b = append(b, 0)
			continue
		case v.IsNull():
			b = append(b, 1)
			continue
		}
		b = append(b, 2)
		switch {
		case a.Type == cty.Bool:
			if v.True() {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case a.Type == cty.String:
			str(v.AsString())
		case a.Type == cty.Number:
			str(v.AsBigFloat().Text('g', -1))
		case a.Type.Equals(cty.List(cty.String)):
			n := min(v.LengthInt(), 5)
			b = append(b, byte(n))
			for _, e := range v.AsValueSlice()[:n] {
				if e.IsNull() {
					b = append(b, 1)
					continue
				}
				b = append(b, 0)
				str(e.AsString())
			}
		default:
			b[len(b)-1] = 0
		}
	}
	return b
}

// AddValidateSeeds adds seeds for FuzzOverrides to f: the defaults, each
// attribute null, each of the given real configs, and each attribute of
// each config alone. A config naming something other than a non-input
// attribute of the schema fails f.
func AddValidateSeeds(f *testing.F, k steps.Kind, configs ...map[string]cty.Value) {
	s := k.Schema()
	f.Add([]byte{})
	for i, a := range s.Attributes {
		if a.Input {
			continue
		}
		null := EncodeOverrides(s, nil)
		null[nonInputIndex(s, i)] = 1
		f.Add(null)
	}
	for _, c := range configs {
		b := EncodeOverrides(s, c)
		got := FuzzOverrides(s, b)
		for n, v := range c {
			if g, ok := got[n]; !ok || !g.RawEquals(v) && !(g.Type() == cty.Number && g.Equals(v).True()) {
				f.Fatalf("%s: seed attribute %s = %#v encodes to %#v (not a non-input attribute of the schema?)", s.Kind, n, v, g)
			}
		}
		f.Add(b)
		for n, v := range c {
			f.Add(EncodeOverrides(s, map[string]cty.Value{n: v}))
		}
	}
}

func nonInputIndex(s steps.Schema, i int) int {
	n := 0
	for _, a := range s.Attributes[:i] {
		if !a.Input {
			n++
		}
	}
	return n
}

// CheckValidate validates k's config (the engine's defaults overlaid by
// over) as the engine does at load, and fails t unless Validate returns
// nil or a *steps.AttrError (possibly wrapped) that names one of the
// schema's attributes with a message, and returns the same result when
// asked again.
func CheckValidate(t testing.TB, k steps.Kind, over map[string]cty.Value) {
	t.Helper()
	v, ok := k.(steps.Validator)
	if !ok {
		t.Fatalf("%s has no Validate", k.Schema().Kind)
	}
	s := k.Schema()
	inv := func() *steps.Invocation {
		return &steps.Invocation{Step: s.Kind + ".fuzz", Config: Config(k, over)}
	}
	err := v.Validate(inv())
	again := v.Validate(inv())
	if fmt.Sprint(err) != fmt.Sprint(again) {
		t.Fatalf("%v: Validate is not deterministic: %v, then %v", over, err, again)
	}
	if err == nil {
		return
	}
	var ae *steps.AttrError
	if !errors.As(err, &ae) {
		t.Fatalf("%v: Validate returned %T %v, not a *steps.AttrError", over, err, err)
	}
	known := false
	for _, a := range s.Attributes {
		known = known || a.Name == ae.Attr
	}
	if !known || ae.Msg == "" {
		t.Fatalf("%v: Validate's error names attribute %q (message %q), not one of %s's", over, ae.Attr, ae.Msg, s.Kind)
	}
}
