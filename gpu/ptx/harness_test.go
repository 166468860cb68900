package ptx

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// The op harness runs one instruction (or a few) over many operand
// triples in one launch, one thread per triple. Thread i reads in[3i],
// in[3i+1], in[3i+2] as the 64-bit raw bits of operands A, B and C and
// writes destination D, zero-extended to 64 bits, to out[i]. In the
// instruction text, A:r stands for operand A in a .b32 register;
// the classes are r (.b32), rd (.b64), h (.b16), f (.f32), fd (.f64) and
// p (.pred, nonzero raw bits are true; a true D is 1).

var placeholder = regexp.MustCompile(`([DABC]):(rd|r|h|fd|f|p)\b`)

var classReg = map[string]string{"r": "%r", "rd": "%rd", "h": "%h", "f": "%f", "fd": "%fd", "p": "%p"}

var operandIndex = map[string]int{"A": 1, "B": 2, "C": 3, "D": 4}

// opKernel builds the harness kernel "op" around instr.
func opKernel(instr string) string {
	used := map[string]string{} // operand -> class
	body := placeholder.ReplaceAllStringFunc(instr, func(m string) string {
		sub := placeholder.FindStringSubmatch(m)
		used[sub[1]] = sub[2]
		return fmt.Sprintf("%s%d", classReg[sub[2]], operandIndex[sub[1]])
	})
	var b strings.Builder
	b.WriteString(`.version 7.0
.target sm_80
.address_size 64
.visible .entry op(.param .u64 in, .param .u64 out, .param .u32 n)
{
	.reg .pred %p<8>;
	.reg .b16 %h<8>;
	.reg .b32 %r<8>;
	.reg .b64 %rd<8>;
	.reg .f32 %f<8>;
	.reg .f64 %fd<8>;
	.reg .b64 %ra<8>;
	.reg .b32 %ri<4>;
	.reg .pred %pq;
	mov.u32 %ri1, %tid.x;
	mov.u32 %ri2, %ctaid.x;
	mad.lo.s32 %ri1, %ri2, 256, %ri1;
	ld.param.u32 %ri2, [n];
	setp.ge.u32 %pq, %ri1, %ri2;
	@%pq bra $done;
	ld.param.u64 %ra1, [in];
	ld.param.u64 %ra2, [out];
	mul.wide.u32 %ra3, %ri1, 24;
	add.s64 %ra3, %ra1, %ra3;
	ld.global.u64 %ra4, [%ra3];
	ld.global.u64 %ra5, [%ra3+8];
	ld.global.u64 %ra6, [%ra3+16];
`)
	for _, op := range []string{"A", "B", "C"} {
		cls, ok := used[op]
		if !ok {
			continue
		}
		src := fmt.Sprintf("%%ra%d", 3+operandIndex[op])
		reg := fmt.Sprintf("%s%d", classReg[cls], operandIndex[op])
		switch cls {
		case "r":
			fmt.Fprintf(&b, "\tcvt.u32.u64 %s, %s;\n", reg, src)
		case "h":
			fmt.Fprintf(&b, "\tcvt.u16.u64 %s, %s;\n", reg, src)
		case "rd", "fd":
			fmt.Fprintf(&b, "\tmov.b64 %s, %s;\n", reg, src)
		case "f":
			fmt.Fprintf(&b, "\tcvt.u32.u64 %%ri3, %s;\n\tmov.b32 %s, %%ri3;\n", src, reg)
		case "p":
			fmt.Fprintf(&b, "\tsetp.ne.u64 %s, %s, 0;\n", reg, src)
		}
	}
	for _, s := range strings.Split(body, ";") {
		if s = strings.TrimSpace(s); s != "" {
			fmt.Fprintf(&b, "\t%s;\n", s)
		}
	}
	switch used["D"] {
	case "r":
		b.WriteString("\tcvt.u64.u32 %ra0, %r4;\n")
	case "h":
		b.WriteString("\tcvt.u64.u16 %ra0, %h4;\n")
	case "rd":
		b.WriteString("\tmov.b64 %ra0, %rd4;\n")
	case "fd":
		b.WriteString("\tmov.b64 %ra0, %fd4;\n")
	case "f":
		b.WriteString("\tmov.b32 %ri3, %f4;\n\tcvt.u64.u32 %ra0, %ri3;\n")
	case "p":
		b.WriteString("\tselp.u64 %ra0, 1, 0, %p4;\n")
	default:
		b.WriteString("\tmov.u64 %ra0, 0;\n")
	}
	b.WriteString(`	mul.wide.u32 %ra7, %ri1, 8;
	add.s64 %ra7, %ra2, %ra7;
	st.global.u64 [%ra7], %ra0;
$done:
	ret;
}
`)
	return b.String()
}

// runOp runs instr over cases and returns D for each.
func runOp(t *testing.T, c *Context, instr string, cases [][3]uint64) []uint64 {
	t.Helper()
	m, err := c.LoadModule([]byte(opKernel(instr)))
	if err != nil {
		t.Fatalf("%s: %v", instr, err)
	}
	defer func() { _ = c.UnloadModule(m) }()
	f, err := c.Function(m, "op")
	if err != nil {
		t.Fatal(err)
	}
	flat := make([]uint64, 0, 3*len(cases))
	for _, cs := range cases {
		flat = append(flat, cs[0], cs[1], cs[2])
	}
	in := upload(t, c, u64Bytes(flat))
	out, err := c.Alloc(int64(8 * max(len(cases), 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = c.Free(in), c.Free(out) }()
	n := len(cases)
	if err := c.Launch(0, f, cuda.Dim3{X: uint32((n + 255) / 256)}, cuda.Dim3{X: 256}, 0, in, out, uint32(n)); err != nil {
		t.Fatalf("%s: %v", instr, err)
	}
	return bytesU64(download(t, c, out, 8*n))
}

// opTest is one instruction checked against a Go reference.
type opTest struct {
	instr string
	cases [][3]uint64
	want  func(a, b, c uint64) uint64
}

func checkOps(t *testing.T, tests []opTest) {
	t.Helper()
	c := newCtx(t, Options{})
	for _, tc := range tests {
		got := runOp(t, c, tc.instr, tc.cases)
		bad := 0
		for i, cs := range tc.cases {
			if w := tc.want(cs[0], cs[1], cs[2]); got[i] != w {
				if bad++; bad <= 5 {
					t.Errorf("%s with A=%#x B=%#x C=%#x: got %#x, want %#x", tc.instr, cs[0], cs[1], cs[2], got[i], w)
				}
			}
		}
		if bad > 5 {
			t.Errorf("%s: %d of %d cases wrong", tc.instr, bad, len(tc.cases))
		}
	}
}

// pairs is every (a, b) from vals with c fixed.
func pairs(vals []uint64, c uint64) [][3]uint64 {
	var out [][3]uint64
	for _, a := range vals {
		for _, b := range vals {
			out = append(out, [3]uint64{a, b, c})
		}
	}
	return out
}

func triples(vals []uint64) [][3]uint64 {
	var out [][3]uint64
	for _, a := range vals {
		for _, b := range vals {
			for _, c := range vals {
				out = append(out, [3]uint64{a, b, c})
			}
		}
	}
	return out
}

func singles(vals []uint64) [][3]uint64 {
	var out [][3]uint64
	for _, a := range vals {
		out = append(out, [3]uint64{a, 0, 0})
	}
	return out
}

func b2(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func fb(x float32) uint64 { return uint64(math.Float32bits(x)) }
func db(x float64) uint64 { return math.Float64bits(x) }
func bf(v uint64) float32 { return math.Float32frombits(uint32(v)) }
func bd(v uint64) float64 { return math.Float64frombits(v) }
func canon32(x float32) uint64 {
	if x != x {
		return 0x7fffffff
	}
	return fb(x)
}
func canon64(x float64) uint64 {
	if x != x {
		return 0x7fffffffffffffff
	}
	return db(x)
}

func TestHarnessKernelParses(t *testing.T) {
	if _, err := Parse([]byte(opKernel("add.s32 D:r, A:r, B:r"))); err != nil {
		t.Fatal(err)
	}
}
