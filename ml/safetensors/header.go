package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference
// implementation (100,000,000 bytes).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key for free-form string metadata.
const metadataKey = "__metadata__"

// header is a parsed and validated safetensors header.
type header struct {
	size     int64 // N, the JSON length
	tensors  []TensorInfo
	index    map[string]int
	metadata map[string]string
}

// formatErr builds an error wrapping ErrFormat.
func formatErr(file, format string, args ...any) error {
	return fmt.Errorf("safetensors %s: %s: %w", file, fmt.Sprintf(format, args...), ErrFormat)
}

// parseHeader validates the whole file image buf (header and data) and
// returns its tensor table. file is used in error messages only.
func parseHeader(file string, buf []byte) (*header, error) {
	if len(buf) < 8 {
		return nil, formatErr(file, "file is %d bytes, shorter than the 8-byte header length prefix", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf[:8])
	if n > MaxHeaderSize {
		return nil, formatErr(file, "header length %d exceeds the %d-byte limit (not a safetensors file?)", n, MaxHeaderSize)
	}
	if n > uint64(len(buf)-8) {
		return nil, formatErr(file, "header length %d runs past the end of the %d-byte file (truncated?)", n, len(buf))
	}
	js := buf[8 : 8+n]
	if !utf8.Valid(js) {
		return nil, formatErr(file, "header is not valid UTF-8")
	}
	entries, err := decodeObject(js)
	if err != nil {
		return nil, formatErr(file, "header JSON: %v", err)
	}
	h := &header{size: int64(n), index: make(map[string]int, len(entries))}
	for _, e := range entries {
		if e.key == metadataKey {
			md, err := decodeStringMap(e.value)
			if err != nil {
				return nil, formatErr(file, "%s: %v", metadataKey, err)
			}
			h.metadata = md
			continue
		}
		ti, err := decodeTensorInfo(e.key, e.value)
		if err != nil {
			return nil, formatErr(file, "tensor %q: %v", e.key, err)
		}
		h.tensors = append(h.tensors, ti)
	}
	dataLen := int64(len(buf)) - 8 - int64(n)
	if err := validateLayout(file, h.tensors, dataLen); err != nil {
		return nil, err
	}
	sort.Slice(h.tensors, func(i, j int) bool { return h.tensors[i].Name < h.tensors[j].Name })
	for i, t := range h.tensors {
		h.index[t.Name] = i
	}
	return h, nil
}

// validateLayout checks that the tensors tile [0, dataLen) exactly, as the
// reference implementation requires: sorted by offsets, each begins where
// the previous ended, and the last ends at the end of the file.
func validateLayout(file string, tensors []TensorInfo, dataLen int64) error {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ta, tb := tensors[order[a]], tensors[order[b]]
		if ta.Begin != tb.Begin {
			return ta.Begin < tb.Begin
		}
		return ta.End < tb.End
	})
	var pos int64
	var prev string
	for _, i := range order {
		t := tensors[i]
		switch {
		case t.Begin < pos:
			return formatErr(file, "tensor %q: data_offsets [%d, %d] overlap tensor %q, which ends at %d", t.Name, t.Begin, t.End, prev, pos)
		case t.Begin > pos:
			if prev == "" {
				return formatErr(file, "tensor %q: data_offsets [%d, %d] leave a %d-byte hole at the start of the data section", t.Name, t.Begin, t.End, t.Begin-pos)
			}
			return formatErr(file, "tensor %q: data_offsets [%d, %d] leave a %d-byte hole after tensor %q, which ends at %d", t.Name, t.Begin, t.End, t.Begin-pos, prev, pos)
		}
		if t.End > dataLen {
			return formatErr(file, "tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data section (truncated file?)", t.Name, t.Begin, t.End, dataLen)
		}
		pos, prev = t.End, t.Name
	}
	if pos != dataLen {
		return formatErr(file, "the tensors cover %d bytes but the data section holds %d: %d trailing bytes belong to no tensor", pos, dataLen, dataLen-pos)
	}
	return nil
}

// decodeTensorInfo checks one tensor entry of the header.
func decodeTensorInfo(name string, raw json.RawMessage) (TensorInfo, error) {
	fields, err := decodeObject(raw)
	if err != nil {
		return TensorInfo{}, err
	}
	var (
		dtype          DType
		shape, offsets []int64
		seen           = map[string]bool{}
	)
	for _, f := range fields {
		switch f.key {
		case "dtype":
			var s string
			if err := json.Unmarshal(f.value, &s); err != nil {
				return TensorInfo{}, fmt.Errorf("dtype must be a string, got %s", clip(f.value))
			}
			if dtype, err = ParseDType(s); err != nil {
				return TensorInfo{}, err
			}
		case "shape":
			if shape, err = decodeUints(f.value); err != nil {
				return TensorInfo{}, fmt.Errorf("shape: %v", err)
			}
		case "data_offsets":
			if offsets, err = decodeUints(f.value); err != nil {
				return TensorInfo{}, fmt.Errorf("data_offsets: %v", err)
			}
			if len(offsets) != 2 {
				return TensorInfo{}, fmt.Errorf("data_offsets must be [begin, end], got %d numbers", len(offsets))
			}
		default:
			continue // unknown fields are ignored, as by the reference
		}
		seen[f.key] = true
	}
	for _, k := range []string{"dtype", "shape", "data_offsets"} {
		if !seen[k] {
			return TensorInfo{}, fmt.Errorf("missing field %q", k)
		}
	}
	begin, end := offsets[0], offsets[1]
	if end < begin {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d, %d] end before they begin", begin, end)
	}
	dims := make([]int, len(shape))
	for i, d := range shape {
		if d > math.MaxInt {
			return TensorInfo{}, fmt.Errorf("shape %v of %s overflows", shape, dtype)
		}
		dims[i] = int(d)
	}
	nb, ok := numBytes(dims, dtype.Size())
	if !ok {
		return TensorInfo{}, fmt.Errorf("shape %v of %s overflows", shape, dtype)
	}
	if nb != end-begin {
		return TensorInfo{}, fmt.Errorf("shape %v of %s needs %d bytes but data_offsets [%d, %d] span %d", shape, dtype, nb, begin, end, end-begin)
	}
	return TensorInfo{Name: name, DType: dtype, Shape: dims, Begin: begin, End: end}, nil
}

// maxOffset bounds offsets and dims so that sums and products stay in int64.
const maxOffset = 1 << 62

// decodeUints parses a JSON array of non-negative integers below 2^62.
func decodeUints(raw json.RawMessage) ([]int64, error) {
	var nums []json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&nums); err != nil || nums == nil {
		return nil, fmt.Errorf("want an array of non-negative integers, got %s", clip(raw))
	}
	out := make([]int64, len(nums))
	for i, n := range nums {
		v, err := strconv.ParseUint(string(n), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d is %s, want a non-negative integer", i, n)
		}
		if v >= maxOffset {
			return nil, fmt.Errorf("element %d is %d, too large", i, v)
		}
		out[i] = int64(v)
	}
	return out, nil
}

// decodeStringMap parses a JSON object whose values are all strings; null
// gives a nil map.
func decodeStringMap(raw json.RawMessage) (map[string]string, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	entries, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		var s string
		if err := json.Unmarshal(e.value, &s); err != nil {
			return nil, fmt.Errorf("key %q: value must be a string, got %s", e.key, clip(e.value))
		}
		out[e.key] = s
	}
	return out, nil
}

type entry struct {
	key   string
	value json.RawMessage
}

// decodeObject parses one JSON object (and nothing but whitespace after it)
// into its entries in order, refusing duplicate keys.
func decodeObject(raw []byte) ([]entry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, got %s", clip(raw))
	}
	var out []entry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key is not a string")
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %q: %v", key, err)
		}
		out = append(out, entry{key, v})
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, err
	}
	if rest := raw[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, fmt.Errorf("unexpected data after the JSON object: %s", clip(rest))
	}
	return out, nil
}

// clip shortens raw JSON for an error message.
func clip(b []byte) string {
	const max = 60
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return string(b)
}
