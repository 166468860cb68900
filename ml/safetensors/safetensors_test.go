package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// image builds a file image from a header string and data bytes, with the
// length prefix set to the header's length.
func image(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// The serialization vectors of the reference implementation's own tests
// (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization,
// test_empty, test_serialization_forced_alignement).
func TestReferenceSerializationVectors(t *testing.T) {
	f32 := F32Bytes([]float32{0, 1, 2, 3, 4, 5})
	cases := []struct {
		name     string
		tensors  []Tensor
		metadata map[string]string
		want     []byte
	}{
		{"test_serialization", []Tensor{{"attn.0", F32, []int{1, 2, 3}, f32}}, nil, []byte{
			64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
			116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
			58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
			101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
			0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64}},
		{"test_empty", nil, nil, []byte{8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}},
		{"test_empty_metadata", nil, map[string]string{"framework": "pt"}, []byte{
			40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
			95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
			116, 34, 125, 125, 32, 32, 32, 32, 32}},
		{"test_serialization_forced_alignement", []Tensor{{"attn0", F32, []int{1, 1, 2, 3}, f32}}, nil, []byte{
			72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
			121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
			91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
			115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
			32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
			160, 64}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Marshal(c.tensors, c.metadata)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("Marshal:\n got %q\nwant %q", got, c.want)
			}
			path := filepath.Join(t.TempDir(), "x.safetensors")
			if err := Write(path, c.tensors, c.metadata); err != nil {
				t.Fatal(err)
			}
			disk, _ := os.ReadFile(path)
			if !bytes.Equal(disk, c.want) {
				t.Fatalf("Write:\n got %q\nwant %q", disk, c.want)
			}
			if _, err := Parse("vector", got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The file Python's safetensors writes for
//
//	save_file({"weight": torch.tensor([[1., 2.], [3., 4.]]),
//	           "bias": torch.tensor([0.5, -1.], dtype=torch.bfloat16),
//	           "tok_ids": torch.tensor([7, 8, 255], dtype=torch.uint8)},
//	          "model.safetensors", metadata={"format": "pt"})
//
// built by hand from the format's rules: compact JSON (serde_json) with
// "__metadata__" first, then the tensors in data order (descending dtype
// alignment: F32, BF16, U8, then by name), spaces up to a multiple of 8
// bytes, and the tensors' little-endian bytes back to back.
func TestHandBuiltPythonFile(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},` +
		`"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"bias":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},` +
		`"tok_ids":{"dtype":"U8","shape":[3],"data_offsets":[20,23]}}` +
		"    " // 212 bytes of JSON, padded to 216
	want := []byte{0xD8, 0, 0, 0, 0, 0, 0, 0} // 216
	want = append(want, header...)
	want = append(want,
		0x00, 0x00, 0x80, 0x3F, // 1.0
		0x00, 0x00, 0x00, 0x40, // 2.0
		0x00, 0x00, 0x40, 0x40, // 3.0
		0x00, 0x00, 0x80, 0x40, // 4.0
		0x00, 0x3F, // bf16 0.5
		0x80, 0xBF, // bf16 -1.0
		7, 8, 255)

	tensors := []Tensor{ // deliberately not in layout order
		{"tok_ids", U8, []int{3}, []byte{7, 8, 255}},
		{"bias", BF16, []int{2}, BF16Bytes([]float32{0.5, -1})},
		{"weight", F32, []int{2, 2}, F32Bytes([]float32{1, 2, 3, 4})},
	}
	got, err := Marshal(tensors, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal:\n got %q\nwant %q", got, want)
	}

	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := strings.Join(f.Names(), ","); got != "bias,tok_ids,weight" {
		t.Errorf("Names = %s", got)
	}
	if md := f.Metadata(); len(md) != 1 || md["format"] != "pt" {
		t.Errorf("Metadata = %v", md)
	}
	w, err := f.Float32("weight")
	if err != nil || fmt.Sprint(w) != "[1 2 3 4]" {
		t.Errorf("weight = %v, %v", w, err)
	}
	b, err := f.Float32("bias")
	if err != nil || fmt.Sprint(b) != "[0.5 -1]" {
		t.Errorf("bias = %v, %v", b, err)
	}
	raw, err := f.Raw("tok_ids")
	if err != nil || !bytes.Equal(raw, []byte{7, 8, 255}) {
		t.Errorf("tok_ids = %v, %v", raw, err)
	}
	info, ok := f.Info("bias")
	if !ok || info.DType != BF16 || fmt.Sprint(info.Shape) != "[2]" || info.Begin != 16 || info.End != 20 {
		t.Errorf("Info(bias) = %+v, %v", info, ok)
	}
	if f.DataOffset() != 8+216 {
		t.Errorf("DataOffset = %d", f.DataOffset())
	}
	if _, err := f.Float32("tok_ids"); err == nil || !strings.Contains(err.Error(), "U8") {
		t.Errorf("Float32 of a U8 tensor: %v", err)
	}
	if _, err := f.Raw("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Raw of a missing tensor: %v", err)
	}
}

// JSON strings are escaped as serde_json does: only quote, backslash and
// control characters; everything else is raw UTF-8.
func TestHeaderEscaping(t *testing.T) {
	name := "a\"b\\c\n\x01é→\x7f"
	got, err := Marshal([]Tensor{{name, U8, []int{1}, []byte{9}}}, map[string]string{"k\t": "v\u2028"})
	if err != nil {
		t.Fatal(err)
	}
	hdr := string(got[8 : 8+binary.LittleEndian.Uint64(got)])
	want := `{"__metadata__":{"k\t":"v` + "\u2028" + `"},"a\"b\\c\n\u0001é→` + "\x7f" + `":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
	if strings.TrimRight(hdr, " ") != want {
		t.Fatalf("header\n got %s\nwant %s", hdr, want)
	}
	f, err := Parse("esc", got)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Info(name); !ok {
		t.Errorf("name %q lost in the round trip: %q", name, f.Names())
	}
	if f.Metadata()["k\t"] != "v\u2028" {
		t.Errorf("metadata = %q", f.Metadata())
	}
}

func TestRoundTripAllDTypes(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var tensors []Tensor
	for i, d := range []DType{F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, U64, U32, U16, F8E4M3, F8E5M2, C64} {
		shape := []int{1 + r.IntN(4), 1 + r.IntN(5)}
		if i%5 == 0 {
			shape = []int{} // scalar
		}
		if i == 3 {
			shape = []int{3, 0} // empty
		}
		n := 1
		for _, s := range shape {
			n *= s
		}
		data := make([]byte, n*d.Size())
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		tensors = append(tensors, Tensor{fmt.Sprintf("t%02d.%s", i, d), d, shape, data})
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "all.safetensors")
	md := map[string]string{"b": "2", "a": "1", "": "empty key"}
	if err := Write(path, tensors, md); err != nil {
		t.Fatal(err)
	}
	// Determinism: the same set in another order gives the same bytes.
	shuffled := append([]Tensor(nil), tensors...)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	mem, err := Marshal(shuffled, md)
	if err != nil {
		t.Fatal(err)
	}
	disk, _ := os.ReadFile(path)
	if !bytes.Equal(mem, disk) {
		t.Fatal("Marshal of a shuffled input differs from Write")
	}
	if (binary.LittleEndian.Uint64(disk)+8)%8 != 0 {
		t.Fatal("data section is not 8-byte aligned")
	}

	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Names()) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Names()), len(tensors))
	}
	for _, want := range tensors {
		info, ok := f.Info(want.Name)
		if !ok {
			t.Fatalf("missing %s", want.Name)
		}
		if info.DType != want.DType || fmt.Sprint(info.Shape) != fmt.Sprint(want.Shape) {
			t.Errorf("%s: %s %v, want %s %v", want.Name, info.DType, info.Shape, want.DType, want.Shape)
		}
		raw, err := f.Raw(want.Name)
		if err != nil || !bytes.Equal(raw, want.Data) {
			t.Errorf("%s: data differs (%v)", want.Name, err)
		}
		// Each tensor's data is aligned to its element size in the file.
		if (f.DataOffset()+info.Begin)%int64(max(1, info.DType.Size())) != 0 {
			t.Errorf("%s at file offset %d is misaligned", want.Name, f.DataOffset()+info.Begin)
		}
	}
	if got := f.Metadata(); len(got) != 3 || got["a"] != "1" || got[""] != "empty key" {
		t.Errorf("metadata = %v", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := f.Raw(tensors[0].Name); err == nil {
		t.Fatal("Raw after Close succeeded")
	}
}

func TestFloat32RoundTrip(t *testing.T) {
	negZero := float32(math.Copysign(0, -1)) // the literal -0.0 is plain zero in Go
	vals := []float32{0, negZero, 1.5, -3.25, 1e-3, 65504, float32(math.Inf(1))}
	path := filepath.Join(t.TempDir(), "f.safetensors")
	err := Write(path, []Tensor{
		{"a", F32, []int{len(vals)}, F32Bytes(vals)},
		{"b", BF16, []int{len(vals)}, BF16Bytes(vals)},
		{"c", F16, []int{1, len(vals)}, F16Bytes(vals)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata() != nil {
		t.Errorf("metadata = %v, want nil", f.Metadata())
	}
	for _, name := range []string{"a", "b", "c"} {
		got, err := f.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			tol := float64(0)
			if name != "a" {
				tol = math.Abs(float64(v)) / 256
			}
			if d := math.Abs(float64(got[i] - v)); !(d <= tol) && !(math.IsInf(float64(v), 0) && got[i] == v) {
				t.Errorf("%s[%d] = %g, want %g", name, i, got[i], v)
			}
			if math.Signbit(float64(got[i])) != math.Signbit(float64(v)) {
				t.Errorf("%s[%d] = %g, want %g (sign bit)", name, i, got[i], v)
			}
		}
	}
}

// Each malformed file is refused with an error that wraps ErrFormat, names
// the file, and says what is wrong.
func TestMalformed(t *testing.T) {
	zeros := func(n int) []byte { return make([]byte, n) }
	t16 := `{"t":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 100_000_001)
	lenOnly := make([]byte, 8)
	binary.LittleEndian.PutUint64(lenOnly, 60)
	var attack strings.Builder // the reference's test_json_attack
	attack.WriteString("{")
	for i := 0; i < 10; i++ {
		if i > 0 {
			attack.WriteString(",")
		}
		fmt.Fprintf(&attack, `"weight_%d":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`, i)
	}
	attack.WriteString("}")

	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "shorter than the 8-byte"},
		{"short file", []byte{1, 2, 3}, "shorter than the 8-byte"},
		{"header length past the end", lenOnly, "runs past the end"},
		{"header length past the end with data", append(append([]byte{200, 0, 0, 0, 0, 0, 0, 0}, t16...), zeros(16)...), "runs past the end"},
		{"absurd header length", append(huge, "{}"...), "exceeds the 100000000-byte limit"},
		{"header length 2^64-1", append([]byte{255, 255, 255, 255, 255, 255, 255, 255}, "{}"...), "exceeds"},
		{"not UTF-8", image("{\"\xff\":1}", nil), "not valid UTF-8"},
		{"not JSON", image("{", nil), "header JSON"},
		{"JSON array", image("[]", nil), "want a JSON object"},
		{"empty header", image("", nil), "header JSON"},
		{"garbage after JSON", image("{}x", nil), "after the JSON object"},
		{"two objects", image("{} {}", nil), "after the JSON object"},
		{"duplicate tensor names", image(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, zeros(2)), `duplicate key "t"`},
		{"duplicate field", image(`{"t":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `duplicate key "dtype"`},
		{"unknown dtype", image(`{"t":{"dtype":"F99","shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `unknown dtype "F99"`},
		{"sub-byte dtype", image(`{"t":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, zeros(1)), `"F4" packs several elements`},
		{"dtype not a string", image(`{"t":{"dtype":4,"shape":[1],"data_offsets":[0,1]}}`, zeros(1)), "dtype must be a string"},
		{"missing dtype", image(`{"t":{"shape":[1],"data_offsets":[0,1]}}`, zeros(1)), `missing field "dtype"`},
		{"missing shape", image(`{"t":{"dtype":"U8","data_offsets":[0,1]}}`, zeros(1)), `missing field "shape"`},
		{"missing offsets", image(`{"t":{"dtype":"U8","shape":[1]}}`, zeros(1)), `missing field "data_offsets"`},
		{"tensor entry not an object", image(`{"t":[1,2]}`, nil), `tensor "t"`},
		{"tensor entry null", image(`{"t":null}`, nil), `tensor "t"`},
		{"negative dim", image(`{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, zeros(1)), "non-negative integer"},
		{"fractional dim", image(`{"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, zeros(1)), "non-negative integer"},
		{"shape not an array", image(`{"t":{"dtype":"U8","shape":3,"data_offsets":[0,1]}}`, zeros(1)), "shape"},
		{"three offsets", image(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, zeros(2)), "data_offsets must be [begin, end]"},
		{"offsets end before begin", image(`{"t":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, zeros(4)), "end before they begin"},
		{"shape/offset mismatch", image(`{"t":{"dtype":"I32","shape":[2,2],"data_offsets":[0, 4]}}`, zeros(4)), "needs 16 bytes but data_offsets [0, 4] span 4"},
		{"shape overflow (reference vector 1)", image(`{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}`, zeros(16)), "too large"},
		{"shape overflow (reference vector 2)", image(`{"test":{"dtype":"I32","shape":[2,9223372036854775807],"data_offsets":[0,16]}}`, zeros(16)), "too large"},
		{"shape product overflow", image(`{"t":{"dtype":"F64","shape":[4611686018427387903,4611686018427387903],"data_offsets":[0,16]}}`, zeros(16)), "overflows"},
		{"offset beyond 2^62", image(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[4611686018427387904,4611686018427387905]}}`, zeros(1)), "too large"},
		{"overlap", image(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, zeros(6)), `"b": data_offsets [2, 6] overlap tensor "a"`},
		{"identical offsets (reference test_json_attack)", image(attack.String(), zeros(16)), "overlap"},
		{"hole at start", image(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}`, zeros(8)), "hole at the start"},
		{"hole between", image(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}`, zeros(12)), `4-byte hole after tensor "a"`},
		{"out of range", image(`{"a":{"dtype":"U8","shape":[40],"data_offsets":[0,40]}}`, zeros(16)), "run past the end of the 16-byte data section"},
		{"truncated data (reference)", image(t16, zeros(14)), "run past the end"},
		{"trailing bytes (reference polyglot)", image(t16, append(zeros(16), "extra_bogus_data_for_polyglot_file"...)), "34 trailing bytes"},
		{"trailing bytes with no tensors", image(`{}`, zeros(3)), "3 trailing bytes"},
		{"metadata not an object", image(`{"__metadata__":"x"}`, nil), "__metadata__"},
		{"metadata value not a string", image(`{"__metadata__":{"a":1}}`, nil), `key "a": value must be a string`},
		{"metadata duplicate key", image(`{"__metadata__":{"a":"1","a":"2"}}`, nil), `duplicate key "a"`},
		{"duplicate metadata", image(`{"__metadata__":{},"__metadata__":{}}`, nil), "duplicate key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(path, c.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error does not wrap ErrFormat: %v", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if _, err := Parse("mem", c.file); err == nil {
				t.Error("Parse accepted what Open refused")
			}
		})
	}
}

// Files the reference implementation accepts that a stricter reader might
// wrongly refuse.
func TestAcceptedEdgeCases(t *testing.T) {
	cases := []struct {
		name string
		file []byte
		n    int
	}{
		{"reference test_deserialization", image(`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`, make([]byte, 16)), 1},
		{"trailing whitespace padding", image("{}\r \t\n", nil), 0},
		{"leading whitespace padding", image("\t\n{}\r ", nil), 0},
		{"zero-sized tensor", image(`{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0, 0]}}`, nil), 1},
		{"scalar", image(`{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`, make([]byte, 4)), 1},
		{"null metadata", image(`{"__metadata__":null}`, nil), 0},
		{"unknown fields ignored", image(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":[1]}}`, []byte{1}), 1},
		{"offsets not in name order", image(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1, 2}), 2},
		{"empty tensors between", image(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"f":{"dtype":"F32","shape":[0,3],"data_offsets":[1,1]},"z":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), 4},
		{"every dtype name", image(`{"a":{"dtype":"F8_E8M0","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F8_E4M3FNUZ","shape":[1],"data_offsets":[1,2]},"c":{"dtype":"C64","shape":[1],"data_offsets":[2,10]}}`, make([]byte, 10)), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ok.safetensors")
			writeFile(t, path, c.file)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(f.Names()) != c.n {
				t.Fatalf("%d tensors, want %d", len(f.Names()), c.n)
			}
			for _, info := range f.Tensors() {
				raw, err := f.Raw(info.Name)
				if err != nil || int64(len(raw)) != info.NumElements()*int64(info.DType.Size()) {
					t.Errorf("%s: %d bytes, %v", info.Name, len(raw), err)
				}
			}
		})
	}
	f, _ := Parse("x", image(`{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{10, 20}))
	if a, _ := f.Raw("a"); a[0] != 10 {
		t.Error("tensor a read from the wrong offset")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.safetensors")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func TestWriterValidation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	bad := []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{{"a", U8, []int{1}, []byte{1}}, {"a", U8, []int{1}, []byte{1}}}, `duplicate tensor name "a"`},
		{"reserved name", []Tensor{{"__metadata__", U8, []int{1}, []byte{1}}}, "reserved"},
		{"unknown dtype", []Tensor{{"a", "F7", []int{1}, []byte{1}}}, "unknown dtype"},
		{"negative dim", []Tensor{{"a", U8, []int{-1}, nil}}, "invalid shape"},
		{"wrong size", []Tensor{{"a", F32, []int{2}, []byte{1, 2, 3}}}, "needs 8 bytes, got 3"},
		{"invalid UTF-8 name", []Tensor{{"\xff", U8, []int{1}, []byte{1}}}, "UTF-8"},
	}
	for _, c := range bad {
		if err := Write(path, c.tensors, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		if _, err := Marshal(c.tensors, nil); err == nil {
			t.Errorf("%s: Marshal accepted it", c.name)
		}
	}
	if err := Write(path, nil, map[string]string{"k": strings.Repeat("a", MaxHeaderSize)}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("huge metadata: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed Write left a file behind")
	}
	assertNoTemps(t, dir)
}

// Writing is atomic: a failed or aborted write leaves the previous file
// untouched and no temporary file behind.
func TestWriterAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := []Tensor{{"old", U8, []int{2}, []byte{1, 2}}}
	if err := Write(path, old, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	specs := []TensorInfo{{Name: "b", DType: F32, Shape: []int{2}}, {Name: "a", DType: U8, Shape: []int{3}}}
	w, err := Create(path, specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	order := w.Order()
	if order[0].Name != "b" || order[1].Name != "a" || order[1].Begin != 8 {
		t.Fatalf("Order = %+v", order)
	}
	if err := w.WriteTensor("a", []byte{1, 2, 3}); err == nil || !strings.Contains(err.Error(), `"b" comes next`) {
		t.Errorf("out-of-order write: %v", err)
	}
	if err := w.WriteTensor("b", []byte{1}); err == nil || !strings.Contains(err.Error(), "needs 8 bytes") {
		t.Errorf("short write: %v", err)
	}
	if err := w.WriteTensor("b", F32Bytes([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), `"a" was not written`) {
		t.Errorf("Close with a tensor missing: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed write changed the existing file")
	}
	assertNoTemps(t, dir)

	if w, err = Create(path, specs, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", F32Bytes([]float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if err := w.WriteTensor("a", []byte{1, 2, 3}); err == nil {
		t.Error("write after Abort succeeded")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("an aborted write changed the existing file")
	}
	assertNoTemps(t, dir)

	// A reader holding the old file mapped keeps seeing the old bytes after
	// a new file is renamed over it.
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(path, []Tensor{{"new", U8, []int{1}, []byte{9}}}, nil); err != nil {
		t.Fatal(err)
	}
	if raw, err := f.Raw("old"); err != nil || !bytes.Equal(raw, []byte{1, 2}) {
		t.Errorf("mapped old file changed under the reader: %v %v", raw, err)
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Names()[0] != "new" {
		t.Errorf("new file holds %v", g.Names())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// writeFile writes b to path, failing the test if that fails.
func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeShard writes tensors named names, each a U8 vector [len(name)].
func writeShard(t *testing.T, path string, names ...string) {
	t.Helper()
	var ts []Tensor
	for _, n := range names {
		ts = append(ts, Tensor{n, U8, []int{len(n)}, []byte(n)})
	}
	if err := Write(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

func TestShardedModel(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), "model.embed_tokens.weight", "model.layers.0.a")
	writeShard(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), "model.layers.0.b", "lm_head.weight")
	index := `{
  "metadata": {"total_size": 58, "format": "pt"},
  "weight_map": {
    "lm_head.weight": "model-00002-of-00002.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
    "model.layers.0.a": "model-00001-of-00002.safetensors",
    "model.layers.0.b": "model-00002-of-00002.safetensors"
  }
}`
	writeFile(t, filepath.Join(dir, IndexFileName), []byte(index))
	m, err := OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := strings.Join(m.Names(), ","); got != "lm_head.weight,model.embed_tokens.weight,model.layers.0.a,model.layers.0.b" {
		t.Errorf("Names = %s", got)
	}
	if got := strings.Join(m.Files(), ","); got != "model-00001-of-00002.safetensors,model-00002-of-00002.safetensors" {
		t.Errorf("Files = %s", got)
	}
	for _, n := range m.Names() {
		raw, err := m.Raw(n)
		if err != nil || string(raw) != n {
			t.Errorf("%s = %q, %v", n, raw, err)
		}
		if info, ok := m.Info(n); !ok || info.Shape[0] != len(n) {
			t.Errorf("Info(%s) = %+v", n, info)
		}
	}
	if md := m.Metadata(); md["total_size"] != "58" || md["format"] != "pt" {
		t.Errorf("Metadata = %v", md)
	}
	if _, err := m.Raw("nope"); err == nil {
		t.Error("Raw of a missing tensor succeeded")
	}

	// A single file wins over an index, as in transformers.
	writeShard(t, filepath.Join(dir, SingleFileName), "only")
	m2, err := OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if got := m2.Names(); len(got) != 1 || got[0] != "only" {
		t.Errorf("with model.safetensors present, Names = %v", got)
	}
	if m2.Metadata()["format"] != "pt" {
		t.Errorf("single-file Metadata = %v", m2.Metadata())
	}
	// A path to a file opens that file.
	m3, err := OpenModel(filepath.Join(dir, "model-00002-of-00002.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	if len(m3.Names()) != 2 {
		t.Errorf("file path: Names = %v", m3.Names())
	}
}

func TestShardedModelErrors(t *testing.T) {
	cases := []struct {
		name  string
		index string
		want  string
	}{
		{"invalid JSON", `{"weight_map":`, "invalid JSON"},
		{"no weight_map", `{"metadata":{}}`, "weight_map is missing or empty"},
		{"weight_map not an object", `{"weight_map":[]}`, "weight_map"},
		{"shard not a string", `{"weight_map":{"a":1}}`, `weight_map["a"]: want a shard file name`},
		{"shard escapes the directory", `{"weight_map":{"a":"../x.safetensors"}}`, "inside the model directory"},
		{"absolute shard path", `{"weight_map":{"a":"/etc/passwd"}}`, "inside the model directory"},
		{"missing shard", `{"weight_map":{"a":"gone.safetensors"}}`, "shard gone.safetensors"},
		{"tensor not in its shard", `{"weight_map":{"a":"s1.safetensors","zz":"s1.safetensors"}}`, `maps tensor "zz" to s1.safetensors, which has no such tensor`},
		{"duplicate tensor", `{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}`, `duplicate key "a"`},
		{"damaged shard", `{"weight_map":{"a":"bad.safetensors"}}`, "bad.safetensors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeShard(t, filepath.Join(dir, "s1.safetensors"), "a", "b")
			writeShard(t, filepath.Join(dir, "s2.safetensors"), "c")
			writeFile(t, filepath.Join(dir, "bad.safetensors"), []byte("not a safetensors file"))
			writeFile(t, filepath.Join(dir, IndexFileName), []byte(c.index))
			m, err := OpenModel(dir)
			if err == nil {
				m.Close()
				t.Fatalf("accepted; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
	dir := t.TempDir()
	if _, err := OpenModel(dir); err == nil || !strings.Contains(err.Error(), "holds neither") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := OpenModel(filepath.Join(dir, "nope")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}

// FuzzParse: arbitrary bytes never panic the parser, and whatever it accepts
// can be read back tensor by tensor and re-serialized.
func FuzzParse(f *testing.F) {
	seed, _ := Marshal([]Tensor{
		{"w", F32, []int{2, 2}, F32Bytes([]float32{1, 2, 3, 4})},
		{"b", BF16, []int{2}, BF16Bytes([]float32{1, 2})},
		{"h", F16, []int{1}, F16Bytes([]float32{1})},
		{"q", U8, []int{3}, []byte{1, 2, 3}},
		{"e", F64, []int{0}, nil},
	}, map[string]string{"format": "pt"})
	f.Add(seed)
	f.Add(image(`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`, make([]byte, 16)))
	f.Add(image(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, make([]byte, 6)))
	f.Add(image(`{"__metadata__":{"a":"b"}}`, nil))
	f.Add([]byte{})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error does not wrap ErrFormat: %v", err)
			}
			return
		}
		var again []Tensor
		for _, info := range file.Tensors() {
			raw, err := file.Raw(info.Name)
			if err != nil {
				t.Fatalf("Raw(%q): %v", info.Name, err)
			}
			if int64(len(raw)) != info.NumElements()*int64(info.DType.Size()) {
				t.Fatalf("%q: %d bytes for %s %v", info.Name, len(raw), info.DType, info.Shape)
			}
			switch info.DType {
			case F32, F16, BF16, F64:
				v, err := file.Float32(info.Name)
				if err != nil || int64(len(v)) != info.NumElements() {
					t.Fatalf("Float32(%q): %d values, %v", info.Name, len(v), err)
				}
			case U8, I8, U16, I16, U32, I32, I64:
				v, err := file.Int64(info.Name)
				if err != nil || int64(len(v)) != info.NumElements() {
					t.Fatalf("Int64(%q): %d values, %v", info.Name, len(v), err)
				}
			case BOOL, U64: // may hold values Int64 refuses, but never panics
				_, _ = file.Int64(info.Name)
			}
			again = append(again, Tensor{info.Name, info.DType, info.Shape, raw})
		}
		out, err := Marshal(again, file.Metadata())
		if err != nil {
			t.Fatalf("re-serializing an accepted file: %v", err)
		}
		back, err := Parse("again", out)
		if err != nil {
			t.Fatalf("re-serialized file refused: %v", err)
		}
		if len(back.Names()) != len(file.Names()) {
			t.Fatalf("%d tensors after the round trip, want %d", len(back.Names()), len(file.Names()))
		}
	})
}

// The read fallback (systems or file systems without mmap) gives the same
// image as the mapping.
func TestReadFallback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.safetensors")
	writeShard(t, path, "abc", "de")
	want, _ := os.ReadFile(path)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fh.Close() }() // read-only
	got, release, err := readAll(fh, len(want))
	if err != nil || !bytes.Equal(got, want) || release() != nil {
		t.Fatalf("readAll: %v", err)
	}
	if _, _, err := readAll(fh, len(want)+1); err == nil {
		t.Fatal("readAll past the end succeeded")
	}
}
