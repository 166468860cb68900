// Package gguf reads GGUF files, the single-file model format of llama.cpp
// (versions 2 and 3): the header, the metadata key/values of every type, the
// tensor infos and the aligned tensor data. It dequantizes the tensor types
// small llama-family models use (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q4_K, Q5_K, Q6_K) to float32, and converts a llama-architecture file
// into mlbuild's model config, tensor names and tokenizer (see Convert).
//
// The parser trusts nothing in the file: every count and size is checked
// against the bytes that remain before anything is allocated, and every
// error names the byte offset and what is wrong.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
)

// Magic is the first four bytes of a GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the alignment of the tensor data when the file has no
// general.alignment.
const DefaultAlignment = 32

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed GGUF file")

// ValueType is the type of a metadata value.
type ValueType uint32

// The metadata value types of the GGUF specification.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = map[ValueType]string{
	TypeUint8: "uint8", TypeInt8: "int8", TypeUint16: "uint16", TypeInt16: "int16",
	TypeUint32: "uint32", TypeInt32: "int32", TypeFloat32: "float32", TypeBool: "bool",
	TypeString: "string", TypeArray: "array", TypeUint64: "uint64", TypeInt64: "int64",
	TypeFloat64: "float64",
}

func (t ValueType) String() string {
	if s, ok := valueTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// scalarSize is the encoded size of a fixed-size value type (0 for string
// and array).
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is a metadata value. Scalars hold the widened Go value of their
// type in Uint, Int, Float, Bool or Str. An array (Type TypeArray) has
// ElemType set and its elements in one compact slice: Strs for strings,
// Ints for integers and bools (unsigned ones converted), Floats for
// floats, Array for nested arrays.
type Value struct {
	Type     ValueType
	ElemType ValueType // for arrays
	Uint     uint64
	Int      int64
	Float    float64
	Bool     bool
	Str      string

	Strs   []string
	Ints   []int64
	Floats []float64
	Array  []Value
}

// Len is the number of elements of an array value.
func (v Value) Len() int {
	return len(v.Strs) + len(v.Ints) + len(v.Floats) + len(v.Array)
}

// AsInt returns an integer value (of any integer type) as an int.
func (v Value) AsInt() (int, bool) {
	switch v.Type {
	case TypeUint8, TypeUint16, TypeUint32, TypeUint64:
		if v.Uint > math.MaxInt32 {
			return 0, false
		}
		return int(v.Uint), true
	case TypeInt8, TypeInt16, TypeInt32, TypeInt64:
		if v.Int > math.MaxInt32 || v.Int < math.MinInt32 {
			return 0, false
		}
		return int(v.Int), true
	}
	return 0, false
}

// AsFloat returns a numeric value as a float64.
func (v Value) AsFloat() (float64, bool) {
	switch v.Type {
	case TypeFloat32, TypeFloat64:
		return v.Float, true
	}
	if i, ok := v.AsInt(); ok {
		return float64(i), true
	}
	return 0, false
}

// TensorInfo describes one tensor. Dims are in GGML order: Dims[0] is the
// fastest-varying (a row's length), so a [out, in] PyTorch weight has Dims
// [in, out].
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64 // from the start of the data section
	Size   uint64 // bytes
}

// Elements is the number of elements.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Shape returns the dims in PyTorch order (slowest first).
func (t TensorInfo) Shape() []int {
	out := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		out[len(t.Dims)-1-i] = int(d)
	}
	return out
}

// File is a parsed GGUF image.
type File struct {
	Name      string // for messages
	Version   uint32
	Alignment int
	KV        map[string]Value
	Keys      []string // metadata keys in file order
	Tensors   []TensorInfo
	DataStart int64 // offset of the data section

	data   []byte
	byName map[string]int
}

// Open reads and parses the GGUF file at path.
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a GGUF image held in memory. name appears in errors. The
// File keeps data: it must not be modified while the File is used.
func Parse(name string, data []byte) (*File, error) {
	r := &reader{name: name, buf: data}
	f := &File{Name: name, KV: map[string]Value{}, data: data, byName: map[string]int{}}
	magic, err := r.bytes(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, r.errAt(0, "magic is %q, want %q (not a GGUF file)", magic, Magic)
	}
	if f.Version, err = r.u32("version"); err != nil {
		return nil, err
	}
	if f.Version != 2 && f.Version != 3 {
		return nil, r.errAt(4, "version %d is not supported (want 2 or 3)", f.Version)
	}
	nTensors, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nKV, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// A key/value takes at least 8+1+4+1 bytes, a tensor info at least 8+1+4+8+4+8.
	if err := r.checkCount(nKV, 14, "metadata count"); err != nil {
		return nil, err
	}
	if err := r.checkCount(nTensors, 33, "tensor count"); err != nil {
		return nil, err
	}
	for i := uint64(0); i < nKV; i++ {
		at := r.off
		key, err := r.str("metadata key")
		if err != nil {
			return nil, err
		}
		if _, dup := f.KV[key]; dup {
			return nil, r.errAt(at, "metadata key %q appears twice", key)
		}
		t, err := r.u32("type of " + key)
		if err != nil {
			return nil, err
		}
		v, err := r.value(ValueType(t), key, 0)
		if err != nil {
			return nil, err
		}
		f.KV[key] = v
		f.Keys = append(f.Keys, key)
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.KV["general.alignment"]; ok {
		a, ok := v.AsInt()
		if !ok || a <= 0 || a&(a-1) != 0 || a > 1<<16 {
			return nil, r.errAt(0, "general.alignment %v is not a power of two up to 65536", v)
		}
		f.Alignment = a
	}
	for i := uint64(0); i < nTensors; i++ {
		at := r.off
		var t TensorInfo
		if t.Name, err = r.str("tensor name"); err != nil {
			return nil, err
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, r.errAt(at, "tensor %q appears twice", t.Name)
		}
		nd, err := r.u32("dimension count of " + t.Name)
		if err != nil {
			return nil, err
		}
		if nd == 0 || nd > 4 {
			return nil, r.errAt(r.off-4, "tensor %q has %d dimensions, want 1 to 4", t.Name, nd)
		}
		elems := uint64(1)
		for d := uint32(0); d < nd; d++ {
			n, err := r.u64("dimension of " + t.Name)
			if err != nil {
				return nil, err
			}
			if n == 0 || n > uint64(len(data))*2 || elems*n/n != elems || elems*n > uint64(len(data))*2 {
				return nil, r.errAt(r.off-8, "tensor %q dimension %d is %d, more elements than the file can hold", t.Name, d, n)
			}
			elems *= n
			t.Dims = append(t.Dims, n)
		}
		typ, err := r.u32("type of " + t.Name)
		if err != nil {
			return nil, err
		}
		t.Type = TensorType(typ)
		bs, ts, ok := t.Type.blockSize()
		if !ok {
			return nil, r.errAt(r.off-4, "tensor %q has tensor type %s, which mlbuild does not read", t.Name, t.Type)
		}
		if t.Dims[0]%uint64(bs) != 0 {
			return nil, r.errAt(r.off-4, "tensor %q: row length %d is not a multiple of the %s block size %d", t.Name, t.Dims[0], t.Type, bs)
		}
		t.Size = elems / uint64(bs) * uint64(ts)
		if t.Offset, err = r.u64("offset of " + t.Name); err != nil {
			return nil, err
		}
		if t.Offset%uint64(f.Alignment) != 0 {
			return nil, r.errAt(r.off-8, "tensor %q offset %d is not aligned to %d", t.Name, t.Offset, f.Alignment)
		}
		f.byName[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	a := int64(f.Alignment)
	f.DataStart = (int64(r.off) + a - 1) / a * a
	dataLen := uint64(int64(len(data)) - min(f.DataStart, int64(len(data))))
	// Tensors must lie inside the data section and not overlap.
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return f.Tensors[order[i]].Offset < f.Tensors[order[j]].Offset })
	var end uint64
	for k, i := range order {
		t := f.Tensors[i]
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return nil, r.errAt(int(f.DataStart), "tensor %q (%d bytes at data offset %d) runs past the end of the file (data section of %d bytes at offset %d)", t.Name, t.Size, t.Offset, dataLen, f.DataStart)
		}
		if k > 0 && t.Offset < end {
			return nil, r.errAt(int(f.DataStart+int64(t.Offset)), "tensor %q overlaps %q", t.Name, f.Tensors[order[k-1]].Name)
		}
		end = t.Offset + t.Size
	}
	return f, nil
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Raw returns the stored bytes of the named tensor (a view of the file).
func (f *File) Raw(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", f.Name, name)
	}
	start := f.DataStart + int64(t.Offset)
	return f.data[start : start+int64(t.Size)], nil
}

// Float32 returns the named tensor dequantized to float32, in row-major
// order (Dims[0] fastest).
func (f *File) Float32(name string) ([]float32, error) {
	raw, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	t, _ := f.Tensor(name)
	out := make([]float32, t.Elements())
	if err := Dequantize(t.Type, raw, out); err != nil {
		return nil, fmt.Errorf("gguf %s: tensor %q: %w", f.Name, name, err)
	}
	return out, nil
}

// reader decodes little-endian values, checking every length against what
// remains.
type reader struct {
	name string
	buf  []byte
	off  int
}

func (r *reader) errAt(off int, format string, args ...any) error {
	return fmt.Errorf("gguf %s: at offset %d: %s: %w", r.name, off, fmt.Sprintf(format, args...), ErrFormat)
}

func (r *reader) bytes(n int, what string) ([]byte, error) {
	if n < 0 || n > len(r.buf)-r.off {
		return nil, r.errAt(r.off, "%s needs %d bytes, only %d remain", what, n, len(r.buf)-r.off)
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *reader) u32(what string) (uint32, error) {
	b, err := r.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *reader) u64(what string) (uint64, error) {
	b, err := r.bytes(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// checkCount refuses a count of items of at least minSize bytes each that
// the rest of the file cannot hold.
func (r *reader) checkCount(n uint64, minSize int, what string) error {
	if rest := uint64(len(r.buf) - r.off); n > rest/uint64(minSize) {
		return r.errAt(r.off, "%s %d is more than the %d remaining bytes can hold", what, n, rest)
	}
	return nil
}

func (r *reader) str(what string) (string, error) {
	at := r.off
	n, err := r.u64("length of " + what)
	if err != nil {
		return "", err
	}
	if n > uint64(len(r.buf)-r.off) {
		return "", r.errAt(at, "%s length %d is more than the %d remaining bytes", what, n, len(r.buf)-r.off)
	}
	b, _ := r.bytes(int(n), what)
	return string(b), nil
}

// maxDepth bounds nested arrays.
const maxDepth = 4

func (r *reader) value(t ValueType, key string, depth int) (Value, error) {
	v := Value{Type: t}
	at := r.off
	if sz := t.scalarSize(); sz > 0 {
		b, err := r.bytes(sz, "value of "+key)
		if err != nil {
			return v, err
		}
		switch t {
		case TypeUint8:
			v.Uint = uint64(b[0])
		case TypeInt8:
			v.Int = int64(int8(b[0]))
		case TypeBool:
			if b[0] > 1 {
				return v, r.errAt(at, "bool value of %s is %d, want 0 or 1", key, b[0])
			}
			v.Bool = b[0] == 1
		case TypeUint16:
			v.Uint = uint64(binary.LittleEndian.Uint16(b))
		case TypeInt16:
			v.Int = int64(int16(binary.LittleEndian.Uint16(b)))
		case TypeUint32:
			v.Uint = uint64(binary.LittleEndian.Uint32(b))
		case TypeInt32:
			v.Int = int64(int32(binary.LittleEndian.Uint32(b)))
		case TypeFloat32:
			v.Float = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case TypeUint64:
			v.Uint = binary.LittleEndian.Uint64(b)
		case TypeInt64:
			v.Int = int64(binary.LittleEndian.Uint64(b))
		case TypeFloat64:
			v.Float = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		return v, nil
	}
	switch t {
	case TypeString:
		s, err := r.str("value of " + key)
		v.Str = s
		return v, err
	case TypeArray:
		if depth >= maxDepth {
			return v, r.errAt(at, "arrays in %s nest deeper than %d", key, maxDepth)
		}
		et, err := r.u32("element type of " + key)
		if err != nil {
			return v, err
		}
		v.ElemType = ValueType(et)
		n, err := r.u64("length of " + key)
		if err != nil {
			return v, err
		}
		minSize := v.ElemType.scalarSize()
		switch v.ElemType {
		case TypeString:
			minSize = 8
		case TypeArray:
			minSize = 12
		}
		if minSize == 0 {
			return v, r.errAt(at, "array %s has unknown element type %d", key, et)
		}
		if err := r.checkCount(n, minSize, "length of array "+key); err != nil {
			return v, err
		}
		for i := uint64(0); i < n; i++ {
			e, err := r.value(v.ElemType, key, depth+1)
			if err != nil {
				return v, err
			}
			switch v.ElemType {
			case TypeString:
				v.Strs = append(v.Strs, e.Str)
			case TypeArray:
				v.Array = append(v.Array, e)
			case TypeFloat32, TypeFloat64:
				v.Floats = append(v.Floats, e.Float)
			case TypeBool:
				b := int64(0)
				if e.Bool {
					b = 1
				}
				v.Ints = append(v.Ints, b)
			case TypeUint8, TypeUint16, TypeUint32, TypeUint64:
				v.Ints = append(v.Ints, int64(e.Uint))
			default:
				v.Ints = append(v.Ints, e.Int)
			}
		}
		return v, nil
	}
	return v, r.errAt(at-4, "metadata %s has unknown value type %d", key, uint32(t))
}
