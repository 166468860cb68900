package ptx

import (
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

// loopPTX is a loop-heavy kernel: each thread runs n iterations of an
// fma, an integer add, a compare and a branch, then stores its sum.
const loopPTX = `
.version 7.0
.target sm_80
.address_size 64
.visible .entry loop(.param .u64 out, .param .u32 n)
{
	.reg .pred %p<2>;
	.reg .b32 %r<6>;
	.reg .f32 %f<4>;
	.reg .b64 %rd<4>;
	ld.param.u64 %rd1, [out];
	ld.param.u32 %r1, [n];
	mov.u32 %r2, %tid.x;
	mov.u32 %r3, %ctaid.x;
	mov.u32 %r4, %ntid.x;
	mad.lo.s32 %r2, %r3, %r4, %r2;
	cvt.rn.f32.u32 %f1, %r2;
	mov.f32 %f2, 0f00000000;
	mov.u32 %r5, 0;
$loop:
	fma.rn.f32 %f2, %f1, 0f3F000000, %f2;
	add.s32 %r5, %r5, 1;
	setp.lt.u32 %p1, %r5, %r1;
	@%p1 bra $loop;
	cvta.to.global.u64 %rd2, %rd1;
	mul.wide.u32 %rd3, %r2, 4;
	add.s64 %rd2, %rd2, %rd3;
	st.global.f32 [%rd2], %f2;
	ret;
}
`

// BenchmarkLoop measures interpreter speed on one worker; it reports
// instructions per second.
func BenchmarkLoop(b *testing.B) {
	for _, workers := range []int{1, 0} {
		name := "1worker"
		if workers == 0 {
			name = "allworkers"
		}
		b.Run(name, func(b *testing.B) {
			c := newCtx(b, Options{Workers: workers})
			f := kernelOf(b, c, loopPTX, "loop")
			out, err := c.Alloc(4 * 64 * 256)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.Launch(0, f, cuda.Dim3{X: 64}, cuda.Dim3{X: 256}, 0, out, uint32(100)); err != nil {
					b.Fatal(err)
				}
			}
			st := c.Stats()
			b.ReportMetric(float64(st.Instructions)/st.Time.Seconds()/1e6, "Minstr/s")
		})
	}
}

// BenchmarkReduce is a shared-memory tree reduction: loads, stores,
// barriers and divergent branches.
func BenchmarkReduce(b *testing.B) {
	c := newCtx(b, Options{Workers: 1})
	f := kernelOf(b, c, strings.ReplaceAll(reducePTX, "BARRIER", "bar.sync 0"), "reduce")
	out, err := c.Alloc(4 * 64)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.Launch(0, f, cuda.Dim3{X: 64}, cuda.Dim3{X: 256}, 0, out); err != nil {
			b.Fatal(err)
		}
	}
	st := c.Stats()
	b.ReportMetric(float64(st.Instructions)/st.Time.Seconds()/1e6, "Minstr/s")
}
