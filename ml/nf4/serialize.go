package nf4

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// StateTensor is one tensor of bitsandbytes' serialized quant state: a
// safetensors dtype name, a shape and little-endian row-major bytes.
type StateTensor struct {
	Dtype string
	Shape []int
	Data  []byte
}

// StateDict returns the tensors that bitsandbytes' Linear4bit writes for a
// double-quantized NF4 weight (nn.Linear4bit._save_to_state_dict with
// QuantState.as_dict(packed=True)), keyed by the suffix that follows
// "<module>.weight": "" for the packed weight itself (uint8 [(n+1)/2, 1]),
// ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map" and
// ".quant_state.bitsandbytes__nf4" (the JSON of QuantStateJSON as uint8).
// dtype is the torch dtype name of the original weight ("float32",
// "bfloat16", "float16"). The tensor must be double-quantized.
func (t *Tensor) StateDict(dtype string) map[string]StateTensor {
	if t.QAbsmax == nil {
		panic("nf4: StateDict needs a double-quantized tensor")
	}
	js := t.QuantStateJSON(dtype)
	return map[string]StateTensor{
		"":                               {"U8", []int{len(t.Packed), 1}, append([]byte(nil), t.Packed...)},
		".absmax":                        {"U8", []int{len(t.QAbsmax)}, append([]byte(nil), t.QAbsmax...)},
		".quant_map":                     {"F32", []int{16}, f32Bytes(Codes[:])},
		".nested_absmax":                 {"F32", []int{len(t.Absmax2)}, f32Bytes(t.Absmax2)},
		".nested_quant_map":              {"F32", []int{256}, f32Bytes(QuantMap8[:])},
		".quant_state.bitsandbytes__nf4": {"U8", []int{len(js)}, js},
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// QuantStateJSON is the non-tensor part of bitsandbytes' quant state as
// pack_dict_to_tensor stores it: json.dumps of {"quant_type", "blocksize",
// "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"} in
// that order, with Python's separators and float repr, so the bytes equal
// bitsandbytes'.
func (t *Tensor) QuantStateJSON(dtype string) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"quant_type": "nf4", "blocksize": %d, "dtype": %q, "shape": [`, t.BlockSize, dtype)
	for i, d := range t.Shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	sb.WriteString("]")
	if t.QAbsmax != nil {
		fmt.Fprintf(&sb, `, "nested_blocksize": %d, "nested_dtype": "float32", "nested_offset": %s`,
			t.BlockSize2, pyFloatRepr(float64(t.Offset)))
	}
	sb.WriteString("}")
	return []byte(sb.String())
}

// pyFloatRepr formats v as Python's repr(float) (and json.dumps) does: the
// shortest round-tripping digits, fixed notation for decimal exponents in
// [-4, 16) with at least one fractional digit, otherwise d.ddde±XX.
func pyFloatRepr(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	s := strconv.FormatFloat(v, 'e', -1, 64) // e.g. -1.2345e-05
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, expStr, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}
