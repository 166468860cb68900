package ptx

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// newCtx makes an interpreter context that is closed at the end of the test.
func newCtx(t testing.TB, opts Options) *Context {
	t.Helper()
	c, err := NewDriver(opts).NewContext(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*Context)
}

// kernelOf loads src and returns the function name.
func kernelOf(t testing.TB, c *Context, src, name string) cuda.Function {
	t.Helper()
	m, err := c.LoadModule([]byte(src))
	if err != nil {
		t.Fatalf("LoadModule: %v", err)
	}
	f, err := c.Function(m, name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func upload(t testing.TB, c *Context, b []byte) cuda.DevicePtr {
	t.Helper()
	p, err := c.Alloc(int64(max(len(b), 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CopyHtoD(0, p, b); err != nil {
		t.Fatal(err)
	}
	return p
}

func download(t testing.TB, c *Context, p cuda.DevicePtr, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if err := c.CopyDtoH(0, b, p); err != nil {
		t.Fatal(err)
	}
	return b
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func bytesU32(b []byte) []uint32 {
	v := make([]uint32, len(b)/4)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return v
}

func u64Bytes(v []uint64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
	return b
}

func bytesU64(b []byte) []uint64 {
	v := make([]uint64, len(b)/8)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return v
}

func mustParse(t testing.TB, src string) *Module {
	t.Helper()
	m, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// isCode reports whether err matches the cuda sentinel.
func isCode(err error, code *cuda.Error) bool { return err != nil && errors.Is(err, code) }
