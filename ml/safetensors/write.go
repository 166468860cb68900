package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Tensor is one tensor to write: Data holds its little-endian row-major bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// Write stores tensors and optional metadata at path atomically (a
// temporary file in the same directory, synced, then renamed over path).
// The output is deterministic and byte-identical to what the reference
// implementation writes for the same input: tensors laid out by descending
// dtype alignment and then by name, header keys in that order after
// "__metadata__", the JSON padded with spaces to a multiple of 8 bytes.
// A nil metadata map writes no "__metadata__" key; a non-nil empty one
// writes an empty object, as the reference does.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	specs := make([]TensorInfo, len(tensors))
	byName := make(map[string][]byte, len(tensors))
	for i, t := range tensors {
		specs[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape}
		byName[t.Name] = t.Data
	}
	w, err := Create(path, specs, metadata)
	if err != nil {
		return err
	}
	for _, t := range w.Order() {
		if err := w.WriteTensor(t.Name, byName[t.Name]); err != nil {
			w.Abort()
			return err
		}
	}
	return w.Close()
}

// Marshal returns the safetensors image of tensors and metadata in memory,
// byte-identical to what Write stores (and to what the reference
// implementation's serialize returns for the same input).
func Marshal(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	specs := make([]TensorInfo, len(tensors))
	byName := make(map[string][]byte, len(tensors))
	for i, t := range tensors {
		specs[i] = TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape}
		byName[t.Name] = t.Data
	}
	layout, hdr, err := buildHeader(specs, metadata)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	var total int64
	if len(layout) > 0 {
		total = layout[len(layout)-1].End
	}
	if total > int64(math.MaxInt-8-len(hdr)) {
		return nil, fmt.Errorf("safetensors: %d bytes of tensor data do not fit in memory", total)
	}
	out := make([]byte, 8, 8+len(hdr)+int(total))
	binary.LittleEndian.PutUint64(out, uint64(len(hdr)))
	out = append(out, hdr...)
	for _, t := range layout {
		data := byName[t.Name]
		if int64(len(data)) != t.End-t.Begin {
			return nil, fmt.Errorf("safetensors: tensor %q: %s %v needs %d bytes, got %d", t.Name, t.DType, t.Shape, t.End-t.Begin, len(data))
		}
		out = append(out, data...)
	}
	return out, nil
}

// Writer writes a safetensors file tensor by tensor, so that a large model
// never has to be held in memory at once. The shapes and dtypes are given
// up front to Create; the data then follows in the order given by Order.
type Writer struct {
	path   string
	tmp    *os.File
	bw     *bufio.Writer
	layout []TensorInfo
	next   int
	err    error
	done   bool
}

// Create validates the tensor descriptions (Begin and End are ignored and
// computed), writes the header to a temporary file next to path and returns
// a Writer expecting the tensors' data in Order.
func Create(path string, specs []TensorInfo, metadata map[string]string) (*Writer, error) {
	layout, hdr, err := buildHeader(specs, metadata)
	if err != nil {
		return nil, fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	w := &Writer{path: path, tmp: tmp, bw: bufio.NewWriterSize(tmp, 1<<20), layout: layout}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
	_, err = w.bw.Write(n[:])
	if err == nil {
		_, err = w.bw.Write(hdr)
	}
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("safetensors: writing %s: %w", path, err)
	}
	return w, nil
}

// Order returns the tensors in the order their data must be written, with
// their computed offsets.
func (w *Writer) Order() []TensorInfo {
	out := make([]TensorInfo, len(w.layout))
	copy(out, w.layout)
	return out
}

// WriteTensor writes the data of the named tensor, which must be the next
// one in Order and have exactly the declared byte size.
func (w *Writer) WriteTensor(name string, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("safetensors: writing %s: tensor %q: writer is closed", w.path, name)
	}
	if w.next >= len(w.layout) {
		return fmt.Errorf("safetensors: writing %s: tensor %q: all %d declared tensors were already written", w.path, name, len(w.layout))
	}
	t := w.layout[w.next]
	if t.Name != name {
		return fmt.Errorf("safetensors: writing %s: got tensor %q but %q comes next (see Writer.Order)", w.path, name, t.Name)
	}
	if int64(len(data)) != t.End-t.Begin {
		return fmt.Errorf("safetensors: writing %s: tensor %q: %s %v needs %d bytes, got %d", w.path, name, t.DType, t.Shape, t.End-t.Begin, len(data))
	}
	if _, err := w.bw.Write(data); err != nil {
		w.err = fmt.Errorf("safetensors: writing %s: %w", w.path, err)
		return w.err
	}
	w.next++
	return nil
}

// Close checks that every tensor was written, syncs the file and renames it
// into place. On any failure the temporary file is removed and path is left
// untouched.
func (w *Writer) Close() error {
	if w.done {
		return w.err
	}
	if w.err == nil && w.next < len(w.layout) {
		w.err = fmt.Errorf("safetensors: writing %s: closed after %d of %d tensors; %q was not written", w.path, w.next, len(w.layout), w.layout[w.next].Name)
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	w.done = true
	err := w.bw.Flush()
	if err == nil {
		err = w.tmp.Sync()
	}
	if cerr := w.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(w.tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(w.tmp.Name(), w.path)
	}
	if err != nil {
		os.Remove(w.tmp.Name())
		w.err = fmt.Errorf("safetensors: writing %s: %w", w.path, err)
		return w.err
	}
	if d, derr := os.Open(filepath.Dir(w.path)); derr == nil {
		_ = d.Sync() // make the rename durable; best effort
		_ = d.Close()
	}
	return nil
}

// Abort discards everything written so far; path is left untouched.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.err == nil {
		w.err = errors.New("safetensors: writer aborted")
	}
	_ = w.tmp.Close() // what was written is being thrown away
	os.Remove(w.tmp.Name())
}

// buildHeader checks the specs, computes the reference layout and encodes
// the padded JSON header.
func buildHeader(specs []TensorInfo, metadata map[string]string) ([]TensorInfo, []byte, error) {
	layout := make([]TensorInfo, len(specs))
	seen := make(map[string]bool, len(specs))
	for i, s := range specs {
		switch {
		case s.Name == metadataKey:
			return nil, nil, fmt.Errorf("tensor name %q is reserved for metadata", s.Name)
		case !utf8.ValidString(s.Name):
			return nil, nil, fmt.Errorf("tensor name %q is not valid UTF-8", s.Name)
		case seen[s.Name]:
			return nil, nil, fmt.Errorf("duplicate tensor name %q", s.Name)
		case !s.DType.Valid():
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", s.Name, s.DType)
		}
		seen[s.Name] = true
		nb, ok := numBytes(s.Shape, s.DType.Size())
		if !ok {
			return nil, nil, fmt.Errorf("tensor %q: invalid shape %v (negative or overflowing dimension)", s.Name, s.Shape)
		}
		layout[i] = TensorInfo{Name: s.Name, DType: s.DType, Shape: append([]int(nil), s.Shape...), End: nb}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("metadata %q: keys and values must be valid UTF-8", k)
		}
	}
	sort.Slice(layout, func(i, j int) bool {
		ri, rj := dtypeInfo[layout[i].DType].rank, dtypeInfo[layout[j].DType].rank
		if ri != rj {
			return ri > rj
		}
		return layout[i].Name < layout[j].Name
	})
	var off int64
	for i := range layout {
		n := layout[i].End
		if n > maxOffset-off {
			return nil, nil, fmt.Errorf("tensor %q: total size overflows", layout[i].Name)
		}
		layout[i].Begin, layout[i].End = off, off+n
		off += n
	}

	var b bytes.Buffer
	b.WriteByte('{')
	if metadata != nil {
		writeJSONString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range sortedKeys(metadata) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
		if len(layout) > 0 {
			b.WriteByte(',')
		}
	}
	for i, t := range layout {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":`)
		writeJSONString(&b, string(t.DType))
		b.WriteString(`,"shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteString(`],"data_offsets":[`)
		b.WriteString(strconv.FormatInt(t.Begin, 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(t.End, 10))
		b.WriteString("]}")
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	if b.Len() > MaxHeaderSize {
		return nil, nil, fmt.Errorf("the JSON header would be %d bytes, over the %d-byte limit readers enforce", b.Len(), MaxHeaderSize)
	}
	return layout, b.Bytes(), nil
}

// writeJSONString writes s as serde_json does: only '"', '\\' and control
// characters are escaped (\b \t \n \f \r short forms, others as \u00xx);
// everything else, non-ASCII included, is written as UTF-8.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
