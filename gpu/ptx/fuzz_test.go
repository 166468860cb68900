package ptx

import (
	"os"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// FuzzLoadModule feeds arbitrary text to the parser and, when it loads,
// launches every kernel on zeroed arguments with a small instruction
// budget: neither may panic, whatever the input.
func FuzzLoadModule(f *testing.F) {
	scale, _ := os.ReadFile("../cuda/testdata/scale.ptx")
	f.Add(scale)
	f.Add([]byte(loopPTX))
	f.Add([]byte(reducePTX))
	f.Add([]byte(opKernel("setp.lt.and.s32 %p5|D:p, A:r, B:r, !C:p")))
	f.Add([]byte(opKernel("mov.b32 {%h5, %h6}, A:r; cvt.rn.f16x2.f32 D:r, %f1, %f2")))
	f.Add([]byte(opKernel("bfe.s64 D:rd, A:rd, B:r, C:r; cvt.rzi.s16.f64 %h5, %fd1")))
	f.Add([]byte(header + ".extern .shared .align 16 .b8 dyn[];\n.global .align 4 .u32 t[2] = {1, 2};\n" +
		".visible .entry k()\n{\n\t.reg .b32 %r<3>;\n\tld.shared.u32 %r1, [dyn];\n\tld.global.u32 %r2, [t+4];\n\tbar.sync 0;\n}\n"))
	f.Add([]byte("/* */ .version 7.0 .target sm_80 .address_size 64 .visible .entry x() { { { } } }"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !isCode(err, cuda.ErrInvalidPTX) && !isCode(err, cuda.ErrUnsupportedPTX) {
				t.Fatalf("parse error %v matches neither ErrInvalidPTX nor ErrUnsupportedPTX", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		c := newCtx(t, Options{Memory: 1 << 20, MaxInstructions: 10000, Workers: 2})
		mod, err := c.LoadModule(data)
		if err != nil {
			return // out of memory for big .global variables
		}
		for _, k := range m.Kernels() {
			fn, err := c.Function(mod, k.Name)
			if err != nil {
				t.Fatal(err)
			}
			var args []any
			for _, p := range k.Params {
				switch {
				case p.Type == ".f32" && p.Size == 4:
					args = append(args, float32(0))
				case p.Type == ".f64" && p.Size == 8:
					args = append(args, float64(0))
				case p.Size == 4:
					args = append(args, uint32(0))
				default:
					args = append(args, uint64(0))
				}
			}
			_ = c.Launch(0, fn, cuda.Dim3{X: 2}, cuda.Dim3{X: 3}, 64, args...)
		}
	})
}
