package ptx

import (
	"fmt"
	"strings"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// Error is a failed call of the interpreter: the driver call it stands in
// for, where in the PTX it failed (line, instruction, kernel, block and
// thread, as far as they apply), what went wrong, and CUDA's result code.
// It unwraps to a *cuda.Error carrying the call's name, so errors.Is
// matches it against the cuda sentinels (cuda.ErrIllegalAddress,
// cuda.ErrInvalidPTX, ...), and errors.As gives the details:
//
//	ptx: cuLaunchKernel scale_f32: block (1,0,0) thread (5,0,0): line 27: ld.global.f32 %f2, [%rd2]: 4-byte access at 0x10000000fa0 is past the end of allocation 0x10000000000 (4000 bytes) (CUDA_ERROR_ILLEGAL_ADDRESS)
type Error struct {
	// Call is the driver function the failing method stands in for
	// ("cuModuleLoadData", "cuLaunchKernel", "cuMemAlloc", ...); empty
	// for Parse.
	Call string
	// Kernel is the entry's name, when the error is about one.
	Kernel string
	// InThread is set when the error happened while a thread ran; Block
	// and Thread are then its %ctaid and %tid.
	InThread      bool
	Block, Thread cuda.Dim3
	// Line is the 1-based line of the PTX source (0 when the error is not
	// about a line) and Instr the statement there, whitespace collapsed.
	Line  int
	Instr string
	// Msg says what went wrong.
	Msg string
	// Err is the CUDA result, with Call filled in.
	Err *cuda.Error
	// cause is a further error matched by errors.Is (cuda.ErrUnsupportedArg).
	cause error
}

// Error implements error, in one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ptx: ")
	head := strings.TrimSpace(e.Call + " " + e.Kernel)
	if head != "" {
		b.WriteString(head)
		b.WriteString(": ")
	}
	if e.InThread {
		fmt.Fprintf(&b, "block (%d,%d,%d) thread (%d,%d,%d): ", e.Block.X, e.Block.Y, e.Block.Z, e.Thread.X, e.Thread.Y, e.Thread.Z)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
		if e.Instr != "" {
			b.WriteString(e.Instr)
			b.WriteString(": ")
		}
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(" (")
		b.WriteString(e.Err.Name)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the *cuda.Error (and, for an argument of a type
// cuda.PackParams rejects, cuda.ErrUnsupportedArg).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// ErrLaunchTimeout is matched (errors.Is) by the error of a launch that
// ran more instructions than Options.MaxInstructions allows: most likely
// a kernel that loops forever. It is CUDA_ERROR_LAUNCH_TIMEOUT, which the
// cuda package has no sentinel for.
var ErrLaunchTimeout = &cuda.Error{Code: 702, Name: cuda.Result(702).Name(), Message: "the launch timed out and was terminated"}

// newError makes an *Error for call with code (one of the cuda sentinels).
func newError(code *cuda.Error, call, format string, args ...any) *Error {
	return &Error{Call: call, Msg: fmt.Sprintf(format, args...), Err: withCall(code, call)}
}

func withCall(code *cuda.Error, call string) *cuda.Error {
	return &cuda.Error{Call: call, Code: code.Code, Name: code.Name, Message: code.Message}
}
