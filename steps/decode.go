package steps

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// Decode reads a step's config into the struct dst points to, once, so
// that a kind works with typed values instead of reading attributes back by
// name. A field tagged `attr:"NAME"` gets attribute NAME's value (defaults
// applied by the engine); untagged fields are left alone, and embedded
// structs are decoded in place, so kinds can share a set of attributes.
//
//	type config struct {
//		Column   *string  `attr:"column"`    // nil when null (not set)
//		Columns  []string `attr:"columns"`
//		MinWords int      `attr:"min_words"` // whole numbers only
//		Ratio    float64  `attr:"ratio"`
//		DropURLs bool     `attr:"drop_urls"`
//	}
//	var c config
//	if err := inv.Decode(&c); err != nil {
//		return err // an *AttrError naming the attribute
//	}
//
// Field types: string, bool, int, int64, uint64, float64, []string,
// map[string]string, a pointer to one of the scalar types for an attribute
// whose null means "not set", and cty.Value for a value the kind reads
// itself (an object of optional attributes, say). A null value leaves a non-pointer field at its zero value.
// Fields are decoded in declaration order and the first problem is
// returned, so a config with several wrong attributes is reported the same
// way on every run. A tag naming an attribute that is not in the config
// is a programming error, reported as such; CheckConfig finds it (and
// attributes without a field) in a test.
func (inv *Invocation) Decode(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("%s: steps.Decode needs a pointer to a struct, got %T", inv.Step, dst)
	}
	return walkFields(rv.Elem(), func(name string, f reflect.Value) error {
		v, ok := inv.Config[name]
		if !ok {
			return fmt.Errorf("%s: attribute %q is not in the step's config (a field tag names an attribute the kind's schema lacks)", inv.Step, name)
		}
		if err := setField(f, v); err != nil {
			return &AttrError{Attr: name, Msg: err.Error()}
		}
		return nil
	})
}

// CheckConfig reports where a kind's config struct (the type dst points
// to, as Decode reads it) and its schema disagree: a tag naming no
// attribute, an input attribute or one named twice, a field whose type
// cannot hold the attribute's type, and a non-input attribute that no
// field reads. Kinds call it from a test.
func CheckConfig(s Schema, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("steps.CheckConfig needs a pointer to a struct, got %T", dst)
	}
	attrs := map[string]Attribute{}
	for _, a := range s.Attributes {
		attrs[a.Name] = a
	}
	read := map[string]bool{}
	var errs []error
	_ = walkFields(rv.Elem(), func(name string, f reflect.Value) error {
		a, ok := attrs[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: a field reads attribute %q, which the schema does not declare", s.Kind, name))
		case a.Input:
			errs = append(errs, fmt.Errorf("%s: a field reads input attribute %q (inputs are in Invocation.Inputs)", s.Kind, name))
		case read[name]:
			errs = append(errs, fmt.Errorf("%s: two fields read attribute %q", s.Kind, name))
		default:
			if !fits(f.Type(), a.Type) {
				errs = append(errs, fmt.Errorf("%s: attribute %q is %s, which a %s field cannot hold", s.Kind, name, a.Type.FriendlyName(), f.Type()))
			}
		}
		read[name] = true
		return nil
	})
	for _, a := range s.Attributes {
		if !a.Input && !read[a.Name] {
			errs = append(errs, fmt.Errorf("%s: no field reads attribute %q", s.Kind, a.Name))
		}
	}
	return errors.Join(errs...)
}

// walkFields calls fn for every tagged field of v, in declaration order,
// descending into embedded structs, and stops at the first error.
func walkFields(v reflect.Value, fn func(name string, f reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		name, tagged := sf.Tag.Lookup("attr")
		if !tagged {
			if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				if err := walkFields(v.Field(i), fn); err != nil {
					return err
				}
			}
			continue
		}
		if err := fn(name, v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

var (
	stringsType   = reflect.TypeFor[[]string]()
	stringMapType = reflect.TypeFor[map[string]string]()
	ctyValueType  = reflect.TypeFor[cty.Value]()
)

// fits reports whether a field of type ft can hold values of attribute
// type at.
func fits(ft reflect.Type, at cty.Type) bool {
	if ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	switch {
	case ft == ctyValueType:
		return true
	case ft == stringsType:
		return at.IsListType() || at.IsSetType() || at.IsTupleType()
	case ft == stringMapType:
		return at.IsMapType() || at.IsObjectType()
	case ft.Kind() == reflect.String:
		return at == cty.String
	case ft.Kind() == reflect.Bool:
		return at == cty.Bool
	case ft.Kind() == reflect.Int, ft.Kind() == reflect.Int64, ft.Kind() == reflect.Uint64, ft.Kind() == reflect.Float64:
		return at == cty.Number
	}
	return false
}

// setField stores v in f.
func setField(f reflect.Value, v cty.Value) error {
	if f.Type() == ctyValueType {
		f.Set(reflect.ValueOf(v))
		return nil
	}
	if v.IsNull() {
		f.SetZero()
		return nil
	}
	if !v.IsWhollyKnown() {
		return errors.New("has no known value")
	}
	if f.Kind() == reflect.Pointer {
		p := reflect.New(f.Type().Elem())
		if err := setField(p.Elem(), v); err != nil {
			return err
		}
		f.Set(p)
		return nil
	}
	switch {
	case f.Type() == stringsType:
		if !v.CanIterateElements() {
			return fmt.Errorf("is %s, not a list of strings", v.Type().FriendlyName())
		}
		out := make([]string, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				return errors.New("must be a list of strings")
			}
			out = append(out, e.AsString())
		}
		f.Set(reflect.ValueOf(out))
	case f.Type() == stringMapType:
		if !v.Type().IsMapType() && !v.Type().IsObjectType() {
			return fmt.Errorf("is %s, not a map of strings", v.Type().FriendlyName())
		}
		out := make(map[string]string, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.IsNull() || e.Type() != cty.String {
				return fmt.Errorf("must be a map of strings (%q is not a string)", k.AsString())
			}
			out[k.AsString()] = e.AsString()
		}
		f.Set(reflect.ValueOf(out))
	case f.Kind() == reflect.String:
		if v.Type() != cty.String {
			return fmt.Errorf("is %s, not a string", v.Type().FriendlyName())
		}
		f.SetString(v.AsString())
	case f.Kind() == reflect.Bool:
		if v.Type() != cty.Bool {
			return fmt.Errorf("is %s, not a bool", v.Type().FriendlyName())
		}
		f.SetBool(v.True())
	case f.Kind() == reflect.Float64:
		if v.Type() != cty.Number {
			return fmt.Errorf("is %s, not a number", v.Type().FriendlyName())
		}
		x, _ := v.AsBigFloat().Float64()
		f.SetFloat(x)
	case f.Kind() == reflect.Int, f.Kind() == reflect.Int64, f.Kind() == reflect.Uint64:
		if v.Type() != cty.Number {
			return fmt.Errorf("is %s, not a number", v.Type().FriendlyName())
		}
		i, err := wholeNumber(v.AsBigFloat())
		if err != nil {
			return err
		}
		if f.Kind() == reflect.Uint64 {
			if i < 0 {
				return fmt.Errorf("must not be negative, got %d", i)
			}
			f.SetUint(uint64(i))
		} else {
			if f.OverflowInt(i) {
				return fmt.Errorf("is out of range")
			}
			f.SetInt(i)
		}
	default:
		return fmt.Errorf("cannot be decoded into a %s field", f.Type())
	}
	return nil
}

// wholeNumber returns bf as an int64, refusing fractions and values out of
// range.
func wholeNumber(bf *big.Float) (int64, error) {
	i, acc := bf.Int64()
	if acc == big.Exact {
		return i, nil
	}
	f, _ := bf.Float64()
	if math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64 {
		return 0, errors.New("is out of range")
	}
	return 0, fmt.Errorf("must be a whole number, got %v", strings.TrimSuffix(fmt.Sprint(f), ".0"))
}
