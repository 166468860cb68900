// Package safetensors reads and writes the Hugging Face safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON describing every tensor, then the tensors' raw
// little-endian row-major bytes.
//
// Reading memory-maps the file (or reads it where mapping is unavailable)
// and validates the header with the same rules
// as the reference Rust implementation: the header is at most 100 MB of UTF-8
// JSON, every tensor's byte size equals its element count times the size of
// its dtype, and the tensors' data_offsets tile the data section exactly, with
// no gap, no overlap and nothing left over. Anything else is refused with an
// error that names the file and the tensor; a malformed file never causes a
// panic or an allocation sized by untrusted header fields.
//
// Writing is deterministic and byte-identical to the reference writer for the
// same tensors and metadata: tensors are laid out by descending dtype
// alignment, then by name, the JSON is compact with "__metadata__" first and
// the tensors in data order, and it is padded with spaces to a multiple of 8
// bytes so that every tensor's data is aligned. (The reference writes the
// keys of a metadata map with several entries in hash order, which varies
// from run to run; this package sorts them.) Files are written to a
// temporary file and renamed into place, so a reader never sees half a file
// and a crash never leaves one.
package safetensors

import (
	"errors"
	"fmt"
)

// ErrFormat is wrapped by every error that reports a malformed safetensors
// file or index, so that callers can tell bad input from I/O failures with
// errors.Is.
var ErrFormat = errors.New("invalid safetensors data")

// DType is a safetensors element type, spelled as in the file header.
type DType string

// The element types this package reads and writes. The first ten are the
// agreed set; the others occur in published checkpoints and are accepted so
// that such files open (Raw works on them, Float32 does not).
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	BOOL DType = "BOOL"

	U64     DType = "U64"
	U32     DType = "U32"
	U16     DType = "U16"
	F8E5M2  DType = "F8_E5M2"
	F8E4M3  DType = "F8_E4M3"
	F8E8M0  DType = "F8_E8M0"
	C64     DType = "C64"
	F8E4M3U DType = "F8_E4M3FNUZ"
	F8E5M2U DType = "F8_E5M2FNUZ"
)

// dtypeInfo gives each dtype's element size in bytes and its rank in the
// reference implementation's Dtype enum, which is ordered by increasing
// alignment; the reference writer lays tensors out by descending rank.
var dtypeInfo = map[DType]struct{ size, rank int }{
	BOOL:    {1, 0},
	U8:      {1, 4},
	I8:      {1, 5},
	F8E5M2:  {1, 6},
	F8E4M3:  {1, 7},
	F8E8M0:  {1, 8},
	F8E4M3U: {1, 9},
	F8E5M2U: {1, 10},
	I16:     {2, 11},
	U16:     {2, 12},
	F16:     {2, 13},
	BF16:    {2, 14},
	I32:     {4, 15},
	U32:     {4, 16},
	F32:     {4, 17},
	C64:     {8, 18},
	F64:     {8, 19},
	I64:     {8, 20},
	U64:     {8, 21},
}

// Size returns the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeInfo[d].size }

// Valid reports whether d is a dtype this package knows.
func (d DType) Valid() bool { _, ok := dtypeInfo[d]; return ok }

// ParseDType checks a dtype string from a header.
func ParseDType(s string) (DType, error) {
	d := DType(s)
	if d.Valid() {
		return d, nil
	}
	switch s {
	case "F4", "F6_E2M3", "F6_E3M2":
		return "", fmt.Errorf("dtype %q packs several elements per byte and is not supported", s)
	}
	return "", fmt.Errorf("unknown dtype %q (known: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, U64, U32, U16, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, C64)", s)
}

// TensorInfo describes one tensor of a file. Begin and End are byte offsets
// relative to the start of the data section (the byte after the header).
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	Begin int64
	End   int64
}

// NumElements returns the product of the shape (1 for a scalar).
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// numElements multiplies dims with overflow checking; ok is false when a dim
// is negative or the product (times elemSize) does not fit in an int64.
func numBytes(shape []int, elemSize int) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > (1<<62)/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	if n > (1<<62)/int64(elemSize) {
		return 0, false
	}
	return n * int64(elemSize), true
}
