package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// object is a decoded JSON object whose values are still raw. Duplicate keys
// keep the last value, as Python's json module (and so transformers) does.
type object map[string]json.RawMessage

func decodeObject(data []byte) (object, error) {
	var o object
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("got null")
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) != 0 {
		return nil, fmt.Errorf("unexpected data after the JSON object")
	}
	return o, nil
}

func jsonUnmarshal(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }

// has reports whether key is present, even as null.
func (o object) has(key string) bool { _, ok := o[key]; return ok }

// get returns the raw value of key; ok is false when it is absent or null.
func (o object) get(key string) (json.RawMessage, bool) {
	raw, ok := o[key]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, false
	}
	return raw, true
}

func typeErr(key, want string, raw json.RawMessage) error {
	s := string(raw)
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return invalid("%q must be %s, got %s", key, want, s)
}

func (o object) str(key string) (string, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, typeErr(key, "a string", raw)
	}
	return s, true, nil
}

func (o object) strings(key string, dst *[]string) error {
	raw, ok := o.get(key)
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return typeErr(key, "a list of strings", raw)
	}
	return nil
}

func (o object) boolean(key string) (bool, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, false, typeErr(key, "true or false", raw)
	}
	return b, true, nil
}

func (o object) float(key string) (float64, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false, nil
	}
	n, ok := number(raw)
	if !ok {
		return 0, false, typeErr(key, "a number", raw)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false, typeErr(key, "a finite number", raw)
	}
	return f, true, nil
}

// number reads a JSON number (encoding/json would also take a quoted one).
func number(raw json.RawMessage) (json.Number, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == '"' {
		return "", false
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false
	}
	return n, true
}

// integer parses a JSON number that has an integral value (4096 or 4096.0).
func integer(raw json.RawMessage) (int64, bool) {
	n, ok := number(raw)
	if !ok {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// intIn reads an integer in [lo, hi].
func (o object) intIn(key string, lo, hi int) (int, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false, nil
	}
	i, ok := integer(raw)
	if !ok {
		return 0, false, typeErr(key, "an integer", raw)
	}
	if i < int64(lo) || i > int64(hi) {
		return 0, false, invalid("%q is %d, outside [%d, %d]", key, i, lo, hi)
	}
	return int(i), true, nil
}

// ids reads a token id field: an integer or a list of integers.
func (o object) ids(key string) ([]int, bool, error) {
	raw, ok := o.get(key)
	if !ok {
		return nil, false, nil
	}
	if i, ok := integer(raw); ok {
		if i < math.MinInt32 || i > math.MaxInt32 {
			return nil, false, invalid("%q %d is out of range", key, i)
		}
		return []int{int(i)}, true, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false, typeErr(key, "an integer or a list of integers", raw)
	}
	var out []int // nil for [], like an absent list
	for _, r := range list {
		i, ok := integer(r)
		if !ok || i < math.MinInt32 || i > math.MaxInt32 {
			return nil, false, typeErr(key, "an integer or a list of integers", raw)
		}
		out = append(out, int(i))
	}
	return out, true, nil
}
