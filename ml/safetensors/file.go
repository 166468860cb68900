package safetensors

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// File is an open, validated safetensors file whose bytes are memory-mapped.
// Its methods may be called from several goroutines at once, but not
// concurrently with Close. Slices returned by Raw alias the mapping: they
// must not be modified and must not be used after Close.
type File struct {
	path   string
	data   []byte // the whole file image (mapped, or read on systems without mmap)
	unmap  func() error
	hdr    *header
	closed bool
}

// Open memory-maps and validates the safetensors file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only; the mapping outlives the descriptor
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors %s: not a regular file: %w", path, ErrFormat)
	}
	if st.Size() < 8 {
		return nil, formatErr(path, "file is %d bytes, shorter than the 8-byte header length prefix", st.Size())
	}
	if int64(int(st.Size())) != st.Size() {
		return nil, fmt.Errorf("safetensors %s: %d bytes do not fit in this machine's address space", path, st.Size())
	}
	data, unmap, err := mapFile(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: mapping the file: %w", path, err)
	}
	h, err := parseHeader(path, data)
	if err != nil {
		_ = unmap()
		return nil, err
	}
	return &File{path: path, data: data, unmap: unmap, hdr: h}, nil
}

// Parse validates an in-memory safetensors image (the whole file: length
// prefix, header and data) and returns a File whose tensors are views into
// data. name is used in error messages only. data must not be modified while
// the File is in use; Close releases nothing.
func Parse(name string, data []byte) (*File, error) {
	h, err := parseHeader(name, data)
	if err != nil {
		return nil, err
	}
	return &File{path: name, data: data, unmap: func() error { return nil }, hdr: h}, nil
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	out := make([]string, len(f.hdr.tensors))
	for i, t := range f.hdr.tensors {
		out[i] = t.Name
	}
	return out
}

// Tensors returns the descriptions of all tensors, sorted by name.
func (f *File) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(f.hdr.tensors))
	for i, t := range f.hdr.tensors {
		out[i] = t
		out[i].Shape = append([]int(nil), t.Shape...)
	}
	return out
}

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.hdr.index[name]
	if !ok {
		return TensorInfo{}, false
	}
	t := f.hdr.tensors[i]
	t.Shape = append([]int(nil), t.Shape...)
	return t, true
}

// DataOffset returns the file offset at which the data section starts.
func (f *File) DataOffset() int64 { return 8 + f.hdr.size }

// Raw returns the named tensor's bytes as a view into the mapping. The view
// must not be modified and is invalid after Close.
func (f *File) Raw(name string) ([]byte, error) {
	if f.closed {
		return nil, fmt.Errorf("safetensors %s: tensor %q: file is closed", f.path, name)
	}
	i, ok := f.hdr.index[name]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor named %q", f.path, name)
	}
	t := f.hdr.tensors[i]
	base := f.DataOffset()
	return f.data[base+t.Begin : base+t.End : base+t.End], nil
}

// Float32 returns the named tensor converted to a new []float32. It accepts
// F32, F16 and BF16 (converted exactly) and F64 (rounded to nearest even).
func (f *File) Float32(name string) ([]float32, error) {
	raw, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	t := f.hdr.tensors[f.hdr.index[name]]
	out, err := DecodeFloat32(t.DType, raw)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Int64 returns the named tensor of an integer or boolean dtype converted
// to a new []int64; see DecodeInt64.
func (f *File) Int64(name string) ([]int64, error) {
	raw, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	t := f.hdr.tensors[f.hdr.index[name]]
	out, err := DecodeInt64(t.DType, raw)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
	}
	return out, nil
}

// Metadata returns a copy of the header's __metadata__ map (nil when the
// file has none).
func (f *File) Metadata() map[string]string {
	if f.hdr.metadata == nil {
		return nil
	}
	out := make(map[string]string, len(f.hdr.metadata))
	for k, v := range f.hdr.metadata {
		out[k] = v
	}
	return out
}

// Close releases the mapping. Calling it twice is harmless.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.data = nil
	if err := f.unmap(); err != nil {
		return fmt.Errorf("safetensors %s: unmapping: %w", f.path, err)
	}
	return nil
}

// readAll reads size bytes of f into memory: the fallback where a file
// cannot be memory-mapped.
func readAll(f *os.File, size int) ([]byte, func() error, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, int64(size)), data); err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
