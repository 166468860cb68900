package cuda

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

// TestLoadWithoutDriver runs where no NVIDIA driver is installed (CI and
// the development machines): Load fails in one line that says why, and
// the error matches ErrNoDriver.
func TestLoadWithoutDriver(t *testing.T) {
	_, err := Load()
	if err == nil {
		t.Skip("a CUDA driver loads here; the device tests cover it")
	}
	if !errors.Is(err, ErrNoDriver) {
		t.Errorf("error %v does not match ErrNoDriver", err)
	}
	want := "cuda: libcuda.so.1 not found: no NVIDIA driver on this machine"
	if runtime.GOOS != "linux" {
		want = "cuda: libcuda.so.1 cannot be loaded: mlbuild's CUDA binding supports Linux only, not " + runtime.GOOS
	}
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// TestLoadFromMissingPath: a named library that does not exist.
func TestLoadFromMissingPath(t *testing.T) {
	_, err := LoadFrom("/nonexistent/libcuda-test.so")
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("error %v does not match ErrNoDriver", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// TestLoadFromNotADriver loads a real library that is not a CUDA driver
// (the C library): the symbol lookup fails with the missing function's name.
func TestLoadFromNotADriver(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the binding loads libraries on Linux only")
	}
	_, err := LoadFrom("libc.so.6")
	if err == nil {
		t.Fatal("libc.so.6 loaded as a CUDA driver")
	}
	var le *LoadError
	if !errors.As(err, &le) || errors.Is(err, ErrNoDriver) {
		t.Fatalf("error %v (%T): want a *LoadError that is not ErrNoDriver", err, err)
	}
	if want := "cuda: libc.so.6 is not a usable CUDA driver: it has no cuInit"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestErrorMapping(t *testing.T) {
	e := &Error{Call: "cuMemAlloc", Code: 2, Name: Result(2).Name(), Message: resultNames[2][1]}
	if got, want := e.Error(), "cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := errors.Join(errors.New("context"), e)
	if !errors.Is(wrapped, ErrOutOfMemory) {
		t.Error("an out-of-memory error does not match ErrOutOfMemory")
	}
	if errors.Is(wrapped, ErrInvalidValue) {
		t.Error("an out-of-memory error matches ErrInvalidValue")
	}
	if !errors.Is(e, &Error{Call: "cuMemAlloc", Code: 2}) || errors.Is(e, &Error{Call: "cuMemFree", Code: 2}) {
		t.Error("a target with a call matches only that call")
	}
	if got := Result(12345).Name(); got != "CUresult(12345)" {
		t.Errorf("unknown result named %q", got)
	}
	for r, n := range resultNames {
		if !strings.HasPrefix(n[0], "CUDA_") || n[1] == "" {
			t.Errorf("result %d: bad entry %q", r, n)
		}
	}
	for _, s := range []*Error{ErrInvalidValue, ErrOutOfMemory, ErrNoDevice, ErrInvalidPTX, ErrLaunchFailed} {
		if !strings.HasPrefix(s.Error(), "cuda: CUDA_ERROR_") {
			t.Errorf("sentinel %q lacks the package prefix", s)
		}
	}
	b := &BLASError{Call: "cublasLtMatmul", Status: 15, Name: BLASStatus(15).Name()}
	if got, want := b.Error(), "cuda: cublasLtMatmul: CUBLAS_STATUS_NOT_SUPPORTED"; got != want {
		t.Errorf("BLASError = %q, want %q", got, want)
	}
	if !errors.Is(b, ErrBLASNotSupported) || errors.Is(b, ErrBLASInvalidValue) {
		t.Error("BLAS sentinels do not match by status")
	}
}

func TestPackParams(t *testing.T) {
	p, err := PackParams(DevicePtr(0x1122334455667788), int32(-2), float32(1.5), uint64(7), uint32(9), float64(-0.25), int64(-3))
	if err != nil {
		t.Fatal(err)
	}
	wantOff := []int{0, 8, 12, 16, 24, 32, 40}
	wantSize := []int{8, 4, 4, 8, 4, 8, 8}
	for i := range wantOff {
		if p.Offsets[i] != wantOff[i] || p.Sizes[i] != wantSize[i] {
			t.Fatalf("arg %d at %d size %d, want %d size %d", i, p.Offsets[i], p.Sizes[i], wantOff[i], wantSize[i])
		}
	}
	le := binary.LittleEndian
	if le.Uint64(p.Buf[0:]) != 0x1122334455667788 || int32(le.Uint32(p.Buf[8:])) != -2 ||
		math.Float32frombits(le.Uint32(p.Buf[12:])) != 1.5 || le.Uint64(p.Buf[16:]) != 7 ||
		le.Uint32(p.Buf[24:]) != 9 || math.Float64frombits(le.Uint64(p.Buf[32:])) != -0.25 || int64(le.Uint64(p.Buf[40:])) != -3 {
		t.Errorf("values not packed little-endian at their offsets: % x", p.Buf)
	}
	if len(p.Buf) != 48 {
		t.Errorf("buffer is %d bytes, want 48", len(p.Buf))
	}
	// A 4-byte argument followed by an 8-byte one is padded to 8.
	p, _ = PackParams(int32(1), DevicePtr(2))
	if p.Offsets[1] != 8 {
		t.Errorf("pointer after int32 at %d, want 8", p.Offsets[1])
	}
	if _, err := PackParams(1); !errors.Is(err, ErrUnsupportedArg) || !strings.Contains(err.Error(), "argument 0 is int") {
		t.Errorf("int argument: %v", err)
	}
}

func TestDeviceInfo(t *testing.T) {
	d := DeviceInfo{Ordinal: 1, Name: "NVIDIA H100 80GB HBM3", TotalMem: 80 << 30, Major: 9, Minor: 0}
	if got, want := d.String(), "cuda:1 NVIDIA H100 80GB HBM3 (sm_90, 80.0 GiB)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if (Dim3{}).Norm() != (Dim3{1, 1, 1}) {
		t.Error("a zero Dim3 is not 1×1×1")
	}
}
