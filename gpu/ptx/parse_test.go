package ptx

import (
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

func TestParseSyntax(t *testing.T) {
	src := `// a comment
/* a block
   comment */
.version 7.8
.target sm_80, texmode_independent
.address_size 64
.file 1 "k.cu"
.extern .func (.param .b32 ret) vprintf (.param .b64 a, .param .b64 b);
.func helper(.param .b32 x)
{
	ret;
}

	// .globl	k
.visible .entry k(
	.param .u32 k_param_0,
	.param .u64 .ptr .global .align 8 k_param_1,
	.param .align 8 .b8 k_param_2[12],
	.param .f64 k_param_3
) .maxntid 256, 1, 1 .minnctapersm 2
{
	.reg .pred 	%p<3>;
	.reg .b32 	%r<10>, %extra;
	.reg .b64 	%rd<5>;
	.loc 1 5 3
	.pragma "nounroll";
	ld.param.u32 	%r1, [k_param_0];   // trailing comment
	ld.param.u64 	%rd1, [k_param_1];
	ld.param.u32 	%r2, [k_param_2+8];
	mov.u64 %rd3, k_param_2;
	ld.param.u32 %r3, [%rd3+4];
	{
		.reg .b32 %r1;               // shadows the outer %r1
		mov.u32 %r1, 0x10;
		add.s32 %r2, %r2, %r1;
		{ .reg .b16 tmp; mov.b32 {tmp, _}, %r2; }
	}
	add.s32 %r2, %r2, %r1;
	add.s32 %r2, %r2, %r3;
	mov.u32 %extra, 1U;
	add.u32 %r2, %r2, %extra;
	st.global.u32 [%rd1], %r2;
L_end:
	ret;
}
`
	m := mustParse(t, src)
	if m.Version != "7.8" || m.Target != "sm_80" {
		t.Errorf("version %q target %q", m.Version, m.Target)
	}
	k, ok := m.Kernel("k")
	if !ok {
		t.Fatal("no kernel k")
	}
	wantParams := []Param{
		{Name: "k_param_0", Type: ".u32", Size: 4, Align: 4, Offset: 0},
		{Name: "k_param_1", Type: ".u64", Size: 8, Align: 8, Offset: 8},
		{Name: "k_param_2", Type: ".b8", Size: 12, Align: 8, Offset: 16},
		{Name: "k_param_3", Type: ".f64", Size: 8, Align: 8, Offset: 32},
	}
	for i, w := range wantParams {
		p := k.Params[i]
		p.kind = 0
		if p != w {
			t.Errorf("param %d = %+v, want %+v", i, p, w)
		}
	}
	if len(m.Kernels()) != 1 || k.Line != 15 {
		t.Errorf("kernels %+v", m.Kernels())
	}
	// Run it: the byte-array parameter cannot come from cuda.PackParams,
	// so check the shadowing with a variant of plain parameters.
	run := `.version 7.0
.target sm_80
.address_size 64
.visible .entry k(.param .u32 a, .param .u64 out)
{
	.reg .b32 %r<4>;
	.reg .b64 %rd<2>;
	ld.param.u32 %r1, [a];
	mov.u32 %r2, 0;
	{
		.reg .b32 %r1;
		mov.u32 %r1, 0x10;
		add.s32 %r2, %r2, %r1;
	}
	add.s32 %r2, %r2, %r1;
	ld.param.u64 %rd1, [out];
	st.global.u32 [%rd1], %r2;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, run, "k")
	out, _ := c.Alloc(4)
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, uint32(5), out); err != nil {
		t.Fatal(err)
	}
	if v := bytesU32(download(t, c, out, 4)); v[0] != 0x15 {
		t.Errorf("got %#x, want 0x15", v[0])
	}
	// The byte-array parameter is checked against the arguments too.
	f = kernelOf(t, c, src, "k")
	err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, uint32(1), out, uint64(0), float64(0))
	if !isCode(err, cuda.ErrInvalidValue) {
		t.Errorf("launch with a byte-array parameter: %v", err)
	}
}

func TestParseLiterals(t *testing.T) {
	for _, tc := range []struct {
		s    string
		neg  bool
		kind uint8
		u    uint64
	}{
		{"0", false, litInt, 0}, {"42", false, litInt, 42}, {"42U", false, litInt, 42}, {"0x1F", false, litInt, 31},
		{"0b101", false, litInt, 5}, {"017", false, litInt, 15}, {"1", true, litInt, 1<<64 - 1},
		{"18446744073709551615", false, litInt, 1<<64 - 1}, {"0f3F800000", false, litF32, 0x3f800000},
		{"0f3F800000", true, litF32, 0xbf800000}, {"0d3FF0000000000000", false, litF64, 0x3ff0000000000000},
		{"1.5", false, litDec, 0x3ff8000000000000}, {"2e3", false, litDec, 0x409f400000000000},
	} {
		l, ok := parseLit(tc.s, tc.neg)
		if !ok || l.kind != tc.kind || l.u != tc.u {
			t.Errorf("parseLit(%q, %v) = %+v, %v", tc.s, tc.neg, l, ok)
		}
	}
	for _, s := range []string{"0f3F80", "0xZZ", "99999999999999999999", "0d12"} {
		if _, ok := parseLit(s, false); ok {
			t.Errorf("parseLit(%q) accepted", s)
		}
	}
}
