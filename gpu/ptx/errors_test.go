package ptx

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

func scaleKernel(t *testing.T, c *Context) cuda.Function {
	t.Helper()
	src, err := os.ReadFile("../cuda/testdata/scale.ptx")
	if err != nil {
		t.Fatal(err)
	}
	return kernelOf(t, c, string(src), "scale_f32")
}

func TestOutOfBoundsError(t *testing.T) {
	c := newCtx(t, Options{})
	f := scaleKernel(t, c)
	p, err := c.Alloc(4000)
	if err != nil {
		t.Fatal(err)
	}
	// n = 1024 elements over a 1000-element allocation: thread 232 of
	// block 3 (element 1000) is the first to read past the end.
	err = c.Launch(0, f, cuda.Dim3{X: 4}, cuda.Dim3{X: 256}, 0, p, uint32(1024), float32(2))
	want := "ptx: cuLaunchKernel scale_f32: block (3,0,0) thread (232,0,0): line 33: ld.global.f32 %f2, [%rd2]: " +
		"4-byte access at 0x10000000fa0 is out of bounds of allocation at 0x10000000000 (4000 bytes) (CUDA_ERROR_ILLEGAL_ADDRESS)"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n%v\nwant\n%s", err, want)
	}
	if !errors.Is(err, cuda.ErrIllegalAddress) || !errors.Is(err, &cuda.Error{Call: "cuLaunchKernel", Code: 700}) || errors.Is(err, cuda.ErrInvalidValue) {
		t.Error("the error does not match ErrIllegalAddress (for cuLaunchKernel) only")
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Kernel != "scale_f32" || pe.Block != (cuda.Dim3{X: 3}) || pe.Thread != (cuda.Dim3{X: 232}) || pe.Line != 33 {
		t.Errorf("details %+v", pe)
	}
	// Errors are not sticky: the context still works.
	if err := c.Launch(0, f, cuda.Dim3{X: 4}, cuda.Dim3{X: 256}, 0, p, uint32(1000), float32(2)); err != nil {
		t.Errorf("launch after a failed one: %v", err)
	}
}

// accessPTX loads an f32 from param + off in the given state space.
func accessKernel(t *testing.T, c *Context, body string) cuda.Function {
	t.Helper()
	return kernelOf(t, c, header+`
.visible .entry k(.param .u64 p)
{
	.reg .f32 %f<2>;
	.reg .b64 %rd<4>;
	.shared .align 4 .b8 s[16];
	ld.param.u64 %rd1, [p];
	`+body+`
	ret;
}`, "k")
}

func TestIllegalAddresses(t *testing.T) {
	c := newCtx(t, Options{})
	p, err := c.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	freed, err := c.Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Free(freed); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body string
		arg  cuda.DevicePtr
		want string
	}{
		{"ld.global.f32 %f1, [%rd1+2];", p, "4-byte access at 0x10000000002 is misaligned"},
		{"ld.global.v4.f32 {%f1, %f1, %f1, %f1}, [%rd1+8];", p, "16-byte access at 0x10000000008 is misaligned"},
		{"st.global.f32 [%rd1+64], %f1;", p, "4-byte access at 0x10000000040 is out of bounds of allocation at 0x10000000000 (64 bytes)"},
		{"ld.global.f32 %f1, [%rd1];", freed, "4-byte access at 0x10100000000: allocation 0x10100000000 was freed"},
		{"ld.global.f32 %f1, [%rd1+16];", 0, "4-byte access at 0x10: not a device address (a null pointer?)"},
		{"ld.f32 %f1, [%rd1+16];", 0, "4-byte access at 0x10: not a device address (a null pointer?)"},
		{"ld.global.f32 %f1, [%rd1];", p + 1<<36, "4-byte access at 0x11000000000: not in any allocation"},
		{"ld.shared.f32 %f1, [s+16];", p, "4-byte access at 0x10 is out of bounds of the block's shared memory (16 bytes)"},
		{"cvta.shared.u64 %rd2, s; ld.f32 %f1, [%rd2+-4];", p, "4-byte access at 0xffffffffc: not a device address"},
		{"ld.param.f32 %f1, [p+8];", p, "4-byte access at 0x8 is out of bounds of the kernel's parameters (8 bytes)"},
	} {
		f := accessKernel(t, c, tc.body)
		err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, tc.arg)
		if !isCode(err, cuda.ErrIllegalAddress) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.body, err, tc.want)
		}
	}
}

func TestParameterMismatch(t *testing.T) {
	c := newCtx(t, Options{})
	f := scaleKernel(t, c)
	p, _ := c.Alloc(16)
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{p, uint32(1)}, "the kernel takes 3 parameters (scale_f32_x .u64, scale_f32_n .u32, scale_f32_s .f32), got 2 arguments"},
		{[]any{p, uint32(1), float32(1), 4}, "takes 3 parameters"},
		{[]any{p, int64(1), float32(1)}, "argument 1 (int64, 8 bytes) does not match parameter 1 scale_f32_n (.u32, 4 bytes)"},
		{[]any{p, uint32(1), uint32(1)}, "argument 2 (uint32, 4 bytes) does not match parameter 2 scale_f32_s (.f32, 4 bytes)"},
		{[]any{p, float32(1), float32(1)}, "argument 1 (float32, 4 bytes) does not match parameter 1 scale_f32_n (.u32, 4 bytes)"},
		{[]any{uint32(0), uint32(1), float32(1)}, "argument 0 (uint32, 4 bytes) does not match parameter 0 scale_f32_x (.u64, 8 bytes)"},
		{[]any{p, 1, float32(1)}, "argument 1 is int (want DevicePtr, int32, uint32, int64, uint64, float32 or float64)"},
	} {
		err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, tc.args...)
		if !isCode(err, cuda.ErrInvalidValue) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ptx: cuLaunchKernel scale_f32: ") {
			t.Errorf("%v: %v\nwant %q", tc.args, err, tc.want)
		}
	}
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, p, 1, float32(1)); !errors.Is(err, cuda.ErrUnsupportedArg) {
		t.Errorf("an int argument: %v does not match cuda.ErrUnsupportedArg", err)
	}
	// int32 and uint32 both pass for .u32 (clang declares int as .u32).
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, p, int32(1), float32(1)); err != nil {
		t.Error(err)
	}
}

func TestLoadErrors(t *testing.T) {
	body := func(s string) string {
		return header + ".visible .entry k(.param .u64 p)\n{\n\t.reg .b32 %r<4>;\n\t.reg .b64 %rd<4>;\n\t.reg .pred %p<2>;\n" + s + "\n\tret;\n}\n"
	}
	for _, tc := range []struct {
		src  string
		code *cuda.Error
		want string
	}{
		{body("\tadd.s32 %r1, %r2, %r3;\n\tfoo.bar %r1;"), cuda.ErrInvalidPTX, "line 10: foo.bar %r1: unknown instruction foo"},
		{body("\tatom.global.add.u32 %r1, [%rd1], 1;"), cuda.ErrUnsupportedPTX, "line 9: atom.global.add.u32 %r1, [%rd1], 1: atomics are not supported"},
		{body("\tshfl.sync.bfly.b32 %r1, %r2, 1, 31, -1;"), cuda.ErrUnsupportedPTX, "warp shuffles are not supported"},
		{body("\tcall foo, (%r1);"), cuda.ErrUnsupportedPTX, "device function calls are not supported"},
		{body("\tadd.s32 %r1, %r2, %r9;"), cuda.ErrInvalidPTX, "line 9: add.s32 %r1, %r2, %r9: undeclared register or variable %r9"},
		{body("\tadd.s64 %rd1, %r2, %rd1;"), cuda.ErrInvalidPTX, "%r2 is a 32-bit register, too narrow for .s64"},
		{body("\tbra $nowhere;"), cuda.ErrInvalidPTX, "undefined label $nowhere"},
		{body("\tadd.s32 %r1, %r2"), cuda.ErrInvalidPTX, "line 10: expected \";\" after add.s32"},
		{body("\tadd.f16 %r1, %r2, %r3;"), cuda.ErrUnsupportedPTX, ".f16 arithmetic is not supported"},
		{body("\tld.global.v8.f32 {%r1}, [%rd1];"), cuda.ErrUnsupportedPTX, ".v8 accesses are not supported"},
		{body("\tmov.u32 %r1, %clock;"), cuda.ErrUnsupportedPTX, "special register %clock is not supported"},
		{body("\tcvt.s32.f32 %r1, %r2;"), cuda.ErrInvalidPTX, "needs an integer rounding modifier"},
		{body("\tld.global.u32 %r1, [%rd1] ;\n\tadd.s32.foo %r1, %r1, 1;"), cuda.ErrUnsupportedPTX, "modifier .foo of add is not supported"},
		{body("\tmov.u32 %tid.x, 1;"), cuda.ErrInvalidPTX, "special register %tid.x is read-only"},
		{body("/* unterminated"), cuda.ErrInvalidPTX, "unterminated /* comment"},
		{".version 9.0\n.target sm_80\n.address_size 64\n", cuda.ErrUnsupportedPTX, "line 1: PTX ISA version 9.0 is newer"},
		{".version 7.0\n.target sm_90\n.address_size 64\n", cuda.ErrInvalidPTX, "line 2: target sm_90 is newer than the interpreter's device (sm_80)"},
		{".version 7.0\n.target sm_80\n.address_size 32\n", cuda.ErrUnsupportedPTX, "only 64-bit addressing"},
		{".target sm_80\n", cuda.ErrInvalidPTX, "missing .version"},
		{header + ".visible .entry k()\n{\n\tret;\n", cuda.ErrInvalidPTX, "missing } at the end of .entry k"},
		{header + ".global .u64 p = generic(x);\n", cuda.ErrUnsupportedPTX, "addresses in initializers are not supported"},
		{header + ".visible .entry k()\n{\n\tret;\n}\n.visible .entry k()\n{\n\tret;\n}\n", cuda.ErrInvalidPTX, "line 8: k is declared twice"},
		{header + "\x01", cuda.ErrInvalidPTX, "line 4: unexpected character '\\x01'"},
	} {
		c := newCtx(t, Options{})
		_, err := c.LoadModule([]byte(tc.src))
		if !isCode(err, tc.code) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ptx: cuModuleLoadData") {
			t.Errorf("%q:\n%v\nwant %s %q", tc.src, err, tc.code.Name, tc.want)
		}
		if _, err := Parse([]byte(tc.src)); !isCode(err, tc.code) {
			t.Errorf("Parse: %v", err)
		}
	}
}

func TestLaunchLimits(t *testing.T) {
	src := header + `
.visible .entry big()
{
	.shared .align 4 .b8 s[40960];
	ret;
}
.visible .entry req() .reqntid 64, 1, 1
{
	ret;
}
.visible .entry maxn() .maxntid 128
{
	ret;
}`
	c := newCtx(t, Options{})
	m, err := c.LoadModule([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	fn := func(name string) cuda.Function {
		f, err := c.Function(m, name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for _, tc := range []struct {
		f             string
		grid, block   cuda.Dim3
		shared        uint32
		code          *cuda.Error
		want          string
		okWithOptions bool
	}{
		{"big", cuda.Dim3{X: 1}, cuda.Dim3{X: 1025}, 0, cuda.ErrLaunchOutOfResources, "block (1025,1,1) has 1025 threads; the limit is 1024", false},
		{"big", cuda.Dim3{X: 1}, cuda.Dim3{X: 32, Y: 32, Z: 2}, 0, cuda.ErrLaunchOutOfResources, "has 2048 threads", false},
		{"big", cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 8196, cuda.ErrLaunchOutOfResources, "40960 bytes of static and 8196 of dynamic shared memory exceed the 49152-byte limit", true},
		{"big", cuda.Dim3{X: 1, Y: 70000}, cuda.Dim3{X: 1}, 0, cuda.ErrInvalidValue, "grid (1,70000,1) is too large", false},
		{"req", cuda.Dim3{X: 1}, cuda.Dim3{X: 32}, 0, cuda.ErrInvalidValue, "block (32,1,1) is not the kernel's .reqntid 64, 1, 1", false},
		{"maxn", cuda.Dim3{X: 1}, cuda.Dim3{X: 256}, 0, cuda.ErrInvalidValue, "more threads than the kernel's .maxntid 128, 1, 1", false},
	} {
		err := c.Launch(0, fn(tc.f), tc.grid, tc.block, tc.shared)
		if !isCode(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: %v\nwant %q", tc.f, tc.block, err, tc.want)
		}
	}
	if err := c.Launch(0, fn("req"), cuda.Dim3{X: 2}, cuda.Dim3{X: 64}, 0); err != nil {
		t.Error(err)
	}
	c2 := newCtx(t, Options{SharedMemPerBlock: 100 << 10})
	f := kernelOf(t, c2, src, "big")
	if err := c2.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 8192); err != nil {
		t.Errorf("with a larger shared memory limit: %v", err)
	}
}

func TestRuntimeFailures(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		opts       Options
		block      uint32
		code       *cuda.Error
		want       string
	}{
		{"infinite loop", "$l:\n\tbra $l;", Options{MaxInstructions: 100000}, 4, ErrLaunchTimeout,
			"line 9: bra $l: the launch ran more than 100000 instructions (Options.MaxInstructions): does the kernel loop forever?"},
		{"trap", "mov.u32 %r1, %tid.x;\n\tsetp.eq.u32 %p1, %r1, 3;\n\t@%p1 trap;", Options{}, 8, cuda.ErrLaunchFailed,
			"block (0,0,0) thread (3,0,0): line 10: @%p1 trap: trap"},
		{"deadlock", "mov.u32 %r1, %tid.x;\n\tsetp.eq.u32 %p1, %r1, 0;\n\t@%p1 bar.sync 1;\n\t@!%p1 bar.sync 0;", Options{}, 4, cuda.ErrLaunchFailed,
			"thread (1,0,0): line 11: @!%p1 bar.sync 0: deadlock: this thread waits at barrier 0 while thread (0,0,0) waits at barrier 1 (line 10)"},
	} {
		c := newCtx(t, tc.opts)
		f := kernelOf(t, c, header+".visible .entry k()\n{\n\t.reg .b32 %r<4>;\n\t.reg .pred %p<2>;\n\t"+tc.body+"\n\tret;\n}\n", "k")
		err := c.Launch(0, f, cuda.Dim3{X: 2}, cuda.Dim3{X: tc.block}, 0)
		if !isCode(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.name, err, tc.want)
		}
	}
	// With no limit, the budget never runs out.
	c := newCtx(t, Options{MaxInstructions: -1})
	f := kernelOf(t, c, loopPTX, "loop")
	out, _ := c.Alloc(4 * 64)
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 64}, 0, out, uint32(1000)); err != nil {
		t.Error(err)
	}
}
