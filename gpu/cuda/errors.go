package cuda

import (
	"errors"
	"fmt"
)

// Result is a CUresult, the status every driver API call returns.
type Result int32

// Success is CUDA_SUCCESS.
const Success Result = 0

// resultNames are the names and descriptions of the CUresult values the
// binding has sentinels or messages for, as cuda.h spells them. The live
// driver's cuGetErrorName/cuGetErrorString are preferred when loaded; the
// table names results when they are not (and in tests).
var resultNames = map[Result][2]string{
	0:   {"CUDA_SUCCESS", "no error"},
	1:   {"CUDA_ERROR_INVALID_VALUE", "invalid argument"},
	2:   {"CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
	3:   {"CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
	4:   {"CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
	34:  {"CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"},
	46:  {"CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"},
	100: {"CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
	101: {"CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
	200: {"CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
	201: {"CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
	209: {"CUDA_ERROR_NO_BINARY_FOR_GPU", "no kernel image is available for execution on the device"},
	218: {"CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
	222: {"CUDA_ERROR_UNSUPPORTED_PTX_VERSION", "the provided PTX was compiled with an unsupported toolchain."},
	400: {"CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
	500: {"CUDA_ERROR_NOT_FOUND", "named symbol not found"},
	600: {"CUDA_ERROR_NOT_READY", "device not ready"},
	700: {"CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
	701: {"CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
	702: {"CUDA_ERROR_LAUNCH_TIMEOUT", "the launch timed out and was terminated"},
	719: {"CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
	803: {"CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "system has unsupported display driver / cuda driver combination"},
	999: {"CUDA_ERROR_UNKNOWN", "unknown error"},
}

// Name returns cuda.h's name of r ("CUDA_ERROR_OUT_OF_MEMORY"), or
// "CUresult(N)" for a value the binding does not know.
func (r Result) Name() string {
	if n, ok := resultNames[r]; ok {
		return n[0]
	}
	return fmt.Sprintf("CUresult(%d)", int32(r))
}

// Error is a failed driver API call: the call's name, CUDA's result and
// its name and description.
type Error struct {
	// Call is the driver function, e.g. "cuMemAlloc".
	Call string
	Code Result
	// Name is CUDA's name of Code ("CUDA_ERROR_OUT_OF_MEMORY").
	Name string
	// Message is CUDA's description ("out of memory"); may be empty.
	Message string
}

// Error implements error: "cuda: cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
func (e *Error) Error() string {
	s := "cuda: "
	if e.Call != "" {
		s += e.Call + ": "
	}
	s += e.Name
	if e.Message != "" {
		s += " (" + e.Message + ")"
	}
	return s
}

// Is reports whether target is an *Error with the same result code (the
// sentinels below carry no call), so errors.Is(err, ErrOutOfMemory) holds
// for any call that ran out of memory.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Call == "" || t.Call == e.Call)
}

func sentinel(r Result) *Error {
	return &Error{Code: r, Name: r.Name(), Message: resultNames[r][1]}
}

// Sentinels for the results callers act on; match them with errors.Is.
var (
	ErrInvalidValue         = sentinel(1)
	ErrOutOfMemory          = sentinel(2)
	ErrNotInitialized       = sentinel(3)
	ErrStubLibrary          = sentinel(34)
	ErrNoDevice             = sentinel(100)
	ErrInvalidDevice        = sentinel(101)
	ErrInvalidContext       = sentinel(201)
	ErrNoBinaryForGPU       = sentinel(209)
	ErrInvalidPTX           = sentinel(218)
	ErrUnsupportedPTX       = sentinel(222)
	ErrInvalidHandle        = sentinel(400)
	ErrNotFound             = sentinel(500)
	ErrIllegalAddress       = sentinel(700)
	ErrLaunchOutOfResources = sentinel(701)
	ErrLaunchFailed         = sentinel(719)
)

// ErrNoDriver is matched (errors.Is) by the error of Load when no CUDA
// driver library can be loaded on this machine.
var ErrNoDriver = errors.New("cuda: no NVIDIA driver")

// LoadError is a library that could not be loaded or is not what it
// should be.
type LoadError struct {
	// Library is the file name or path given to dlopen.
	Library string
	// Reason is one line: "not found: no NVIDIA driver on this machine".
	Reason string
	// Err is the dynamic loader's error, when there is one.
	Err error
	// missing is set when the library is absent (ErrNoDriver for libcuda).
	missing error
}

// Error implements error: "cuda: libcuda.so.1 not found: no NVIDIA driver on this machine".
func (e *LoadError) Error() string { return "cuda: " + e.Library + " " + e.Reason }

// Unwrap returns the loader's error and, for a missing driver, ErrNoDriver.
func (e *LoadError) Unwrap() []error {
	var errs []error
	if e.missing != nil {
		errs = append(errs, e.missing)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// BLASStatus is a cublasStatus_t.
type BLASStatus int32

var blasNames = map[BLASStatus]string{
	0:  "CUBLAS_STATUS_SUCCESS",
	1:  "CUBLAS_STATUS_NOT_INITIALIZED",
	3:  "CUBLAS_STATUS_ALLOC_FAILED",
	7:  "CUBLAS_STATUS_INVALID_VALUE",
	8:  "CUBLAS_STATUS_ARCH_MISMATCH",
	11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED",
	16: "CUBLAS_STATUS_LICENSE_ERROR",
}

// Name returns cublas_api.h's name of s, or "cublasStatus_t(N)".
func (s BLASStatus) Name() string {
	if n, ok := blasNames[s]; ok {
		return n
	}
	return fmt.Sprintf("cublasStatus_t(%d)", int32(s))
}

// BLASError is a failed cuBLASLt call.
type BLASError struct {
	Call   string
	Status BLASStatus
	Name   string
}

// Error implements error: "cuda: cublasLtMatmul: CUBLAS_STATUS_NOT_SUPPORTED".
func (e *BLASError) Error() string {
	if e.Call == "" {
		return "cuda: " + e.Name
	}
	return "cuda: " + e.Call + ": " + e.Name
}

// Is matches BLAS sentinels by status.
func (e *BLASError) Is(target error) bool {
	t, ok := target.(*BLASError)
	return ok && t.Status == e.Status && (t.Call == "" || t.Call == e.Call)
}

// BLAS sentinels.
var (
	ErrBLASNotSupported = &BLASError{Status: 15, Name: BLASStatus(15).Name()}
	ErrBLASAllocFailed  = &BLASError{Status: 3, Name: BLASStatus(3).Name()}
	ErrBLASInvalidValue = &BLASError{Status: 7, Name: BLASStatus(7).Name()}
)

// ErrUnsupportedArg is returned by Launch for a kernel argument of a type
// the binding cannot pass.
var ErrUnsupportedArg = errors.New("cuda: unsupported kernel argument type")
