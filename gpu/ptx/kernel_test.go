package ptx

import (
	"encoding/binary"
	"math"
	"strings"
	"testing"

	"github.com/mlbuild/mlbuild/gpu/cuda"
)

const header = ".version 7.0\n.target sm_80\n.address_size 64\n"

// TestLoadStoreTypes loads and stores every width, with sign and zero
// extension into wider registers, vectors, offsets and generic
// addressing.
func TestLoadStoreTypes(t *testing.T) {
	src := header + `
.visible .entry ldst(.param .u64 in, .param .u64 out)
{
	.reg .b16 %rs<4>;
	.reg .b32 %r<12>;
	.reg .f32 %f<6>;
	.reg .b64 %rd<8>;
	ld.param.u64 %rd1, [in];
	ld.param.u64 %rd2, [out];
	cvta.to.global.u64 %rd1, %rd1;
	cvta.to.global.u64 %rd2, %rd2;
	ld.global.s8 %r1, [%rd1];          // 0xf0 -> 0xfffffff0
	ld.global.u8 %r2, [%rd1];          // 0xf0
	ld.global.s16 %r3, [%rd1+2];       // 0x8001 -> 0xffff8001
	ld.global.u16 %rs1, [%rd1+2];
	cvt.u32.u16 %r4, %rs1;             // 0x8001
	ld.global.s8 %rs2, [%rd1+1];       // 0x81 -> 0xff81 in a 16-bit register
	cvt.u32.u16 %r5, %rs2;
	ld.global.nc.v4.u32 {%r6, %r7, %r8, %r9}, [%rd1+16];
	ld.global.b64 %rd3, [%rd1+8];
	st.global.v4.u32 [%rd2], {%r1, %r2, %r3, %r4};
	st.global.v2.u32 [%rd2+16], {%r5, %r9};
	st.global.u64 [%rd2+24], %rd3;
	add.s64 %rd4, %rd2, 40;
	st.global.u8 [%rd4+-8], %r3;       // truncated to 0x01
	st.global.b16 [%rd4+-6], %r1;      // 0xfff0
	st.global.u32 [%rd2+36], %rd3;     // the low half of a 64-bit register
	mov.u32 %r10, 0x11223344;
	st.u32 [%rd2+40], %r10;            // generic store to global memory
	ld.u32 %r11, [%rd2+40];
	add.u32 %r11, %r11, 1;
	st.global.u32 [%rd2+44], %r11;
	ld.global.v2.f32 {%f1, %f2}, [%rd1+16];
	add.f32 %f3, %f1, %f2;
	st.global.v4.f32 [%rd2+48], {%f3, %f1, %f2, 0f3F800000};
	ret;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "ldst")
	in := make([]byte, 32)
	in[0], in[1], in[2], in[3] = 0xf0, 0x81, 0x01, 0x80
	binary.LittleEndian.PutUint64(in[8:], 0x0102030405060708)
	binary.LittleEndian.PutUint32(in[16:], math.Float32bits(1.5))
	binary.LittleEndian.PutUint32(in[20:], math.Float32bits(2.25))
	binary.LittleEndian.PutUint32(in[24:], 7)
	binary.LittleEndian.PutUint32(in[28:], 9)
	pin := upload(t, c, in)
	pout := upload(t, c, make([]byte, 64))
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, pin, pout); err != nil {
		t.Fatal(err)
	}
	out := download(t, c, pout, 64)
	u := bytesU32(out)
	want := []uint32{0xfffffff0, 0xf0, 0xffff8001, 0x8001, 0xff81, 9, 0x05060708, 0x01020304, 0xfff00001, 0x05060708, 0x11223344, 0x11223345,
		math.Float32bits(3.75), math.Float32bits(1.5), math.Float32bits(2.25), math.Float32bits(1)}
	for i, w := range want {
		if u[i] != w {
			t.Errorf("word %d = %#x, want %#x", i, u[i], w)
		}
	}
}

// reducePTX sums tid over a block in shared memory with a tree
// reduction; every step depends on bar.sync (replaced to prove it).
const reducePTX = header + `
.visible .entry reduce(.param .u64 out)
{
	.reg .pred %p<3>;
	.reg .b32 %r<10>;
	.reg .b64 %rd<8>;
	.shared .align 4 .b8 buf[4096];
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, %ntid.x;
	mov.u64 %rd1, buf;
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.shared.u32 [%rd3], %r1;
	BARRIER;
	shr.u32 %r3, %r2, 1;
$loop:
	setp.eq.u32 %p1, %r3, 0;
	@%p1 bra $done;
	setp.ge.u32 %p2, %r1, %r3;
	@%p2 bra $skip;
	mul.wide.u32 %rd4, %r3, 4;
	add.s64 %rd5, %rd3, %rd4;
	ld.shared.u32 %r4, [%rd5];
	ld.shared.u32 %r5, [%rd3];
	add.u32 %r5, %r5, %r4;
	st.shared.u32 [%rd3], %r5;
$skip:
	BARRIER;
	shr.u32 %r3, %r3, 1;
	bra.uni $loop;
$done:
	setp.ne.u32 %p1, %r1, 0;
	@%p1 ret;
	ld.shared.u32 %r6, [buf];
	ld.param.u64 %rd6, [out];
	mov.u32 %r7, %ctaid.x;
	mul.wide.u32 %rd7, %r7, 4;
	add.s64 %rd6, %rd6, %rd7;
	st.global.u32 [%rd6], %r6;
}`

func TestBarrierReduction(t *testing.T) {
	for _, tc := range []struct {
		barrier string
		works   bool
	}{{"bar.sync 0", true}, {"barrier.sync.aligned 0", true}, {"bar.sync 0, 256", true}, {"membar.cta", false}} {
		c := newCtx(t, Options{})
		f := kernelOf(t, c, strings.ReplaceAll(reducePTX, "BARRIER", tc.barrier), "reduce")
		out := upload(t, c, make([]byte, 4*8))
		if err := c.Launch(0, f, cuda.Dim3{X: 8}, cuda.Dim3{X: 256}, 0, out); err != nil {
			t.Fatalf("%s: %v", tc.barrier, err)
		}
		for b, v := range bytesU32(download(t, c, out, 4*8)) {
			if (v == 255*256/2) != tc.works {
				t.Errorf("%s: block %d sum = %d, want 32640: %v", tc.barrier, b, v, tc.works)
			}
		}
	}
}

func TestDynamicSharedMemory(t *testing.T) {
	src := header + `
.extern .shared .align 16 .b8 dyn[];
.visible .entry rev(.param .u64 out, .param .u32 n)
{
	.reg .pred %p<2>;
	.reg .b32 %r<10>;
	.reg .b64 %rd<10>;
	.shared .align 4 .b8 flag[4];
	mov.u32 %r1, %tid.x;
	ld.param.u32 %r2, [n];
	st.shared.u32 [flag], 0x5a5a5a5a;
	mov.u64 %rd1, dyn;
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd3, %rd1, %rd2;
	st.shared.u32 [%rd3], %r1;
	bar.sync 0;
	sub.u32 %r3, %r2, 1;
	sub.u32 %r3, %r3, %r1;
	mul.wide.u32 %rd4, %r3, 4;
	cvta.shared.u64 %rd5, dyn;         // read back through a generic address
	add.s64 %rd5, %rd5, %rd4;
	ld.u32 %r4, [%rd5];
	cvta.to.shared.u64 %rd9, %rd5;
	ld.shared.u32 %r5, [%rd9];
	add.u32 %r4, %r4, %r5;
	ld.param.u64 %rd6, [out];
	add.s64 %rd7, %rd6, %rd2;
	st.global.u32 [%rd7+8], %r4;
	setp.ne.u32 %p1, %r1, 0;
	@%p1 ret;
	st.global.u32 [%rd6], %rd1;        // where dyn starts
	ld.shared.u32 %r6, [flag];
	st.global.u32 [%rd6+4], %r6;
	ret;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "rev")
	const n = 64
	out := upload(t, c, make([]byte, 8+4*n))
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: n}, 4*n, out, uint32(n)); err != nil {
		t.Fatal(err)
	}
	v := bytesU32(download(t, c, out, 8+4*n))
	if v[0] != 16 || v[1] != 0x5a5a5a5a {
		t.Errorf("dynamic shared memory at %d (want 16, after the 4-byte static variable), flag %#x", v[0], v[1])
	}
	for i := 0; i < n; i++ {
		if v[2+i] != 2*uint32(n-1-i) {
			t.Fatalf("out[%d] = %d, want %d", i, v[2+i], 2*(n-1-i))
		}
	}
	// Too little dynamic shared memory is an illegal address.
	err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: n}, 4*n-4, out, uint32(n))
	if !isCode(err, cuda.ErrIllegalAddress) || !strings.Contains(err.Error(), "out of bounds of the block's shared memory (268 bytes)") {
		t.Errorf("short dynamic shared memory: %v", err)
	}
	if info, _ := mustParse(t, src).Kernel("rev"); info.SharedBytes != 4 || info.DynamicSharedOffset != 16 {
		t.Errorf("kernel info %+v", info)
	}
}

func TestGridAndBlockIndices(t *testing.T) {
	src := header + `
.visible .entry ids(.param .u64 out)
{
	.reg .b32 %r<24>;
	.reg .b64 %rd<4>;
	mov.u32 %r1, %tid.x;
	mov.u32 %r2, %tid.y;
	mov.u32 %r3, %tid.z;
	mov.u32 %r4, %ntid.x;
	mov.u32 %r5, %ntid.y;
	mov.u32 %r6, %ntid.z;
	mov.u32 %r7, %ctaid.x;
	mov.u32 %r8, %ctaid.y;
	mov.u32 %r9, %ctaid.z;
	mov.u32 %r10, %nctaid.x;
	mov.u32 %r11, %nctaid.y;
	mov.u32 %r12, %nctaid.z;
	// linear block id and thread id
	mad.lo.s32 %r13, %r9, %r11, %r8;
	mad.lo.s32 %r13, %r13, %r10, %r7;
	mad.lo.s32 %r14, %r3, %r5, %r2;
	mad.lo.s32 %r14, %r14, %r4, %r1;
	mul.lo.s32 %r15, %r4, %r5;
	mul.lo.s32 %r15, %r15, %r6;
	mad.lo.s32 %r16, %r13, %r15, %r14;
	ld.param.u64 %rd1, [out];
	mul.wide.u32 %rd2, %r16, 16;
	add.s64 %rd1, %rd1, %rd2;
	// x | y<<8 | z<<16 for tid and ctaid, laneid | warpid<<8
	shl.b32 %r2, %r2, 8;
	shl.b32 %r3, %r3, 16;
	or.b32 %r1, %r1, %r2;
	or.b32 %r1, %r1, %r3;
	shl.b32 %r8, %r8, 8;
	shl.b32 %r9, %r9, 16;
	or.b32 %r7, %r7, %r8;
	or.b32 %r7, %r7, %r9;
	mov.u32 %r17, %laneid;
	mov.u32 %r18, %warpid;
	shl.b32 %r18, %r18, 8;
	or.b32 %r17, %r17, %r18;
	mov.u32 %r19, %nwarpid;
	st.global.v4.u32 [%rd1], {%r1, %r7, %r17, %r19};
	ret;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "ids")
	grid, block := cuda.Dim3{X: 3, Y: 2, Z: 2}, cuda.Dim3{X: 8, Y: 5, Z: 3}
	nb, nt := 12, 120
	out := upload(t, c, make([]byte, 16*nb*nt))
	if err := c.Launch(0, f, grid, block, 0, out); err != nil {
		t.Fatal(err)
	}
	v := bytesU32(download(t, c, out, 16*nb*nt))
	for bz := 0; bz < 2; bz++ {
		for by := 0; by < 2; by++ {
			for bx := 0; bx < 3; bx++ {
				for tz := 0; tz < 3; tz++ {
					for ty := 0; ty < 5; ty++ {
						for tx := 0; tx < 8; tx++ {
							b := (bz*2+by)*3 + bx
							th := (tz*5+ty)*8 + tx
							w := v[4*(b*nt+th):]
							want := []uint32{uint32(tx | ty<<8 | tz<<16), uint32(bx | by<<8 | bz<<16), uint32(th%32 | th/32<<8), 4}
							for i := range want {
								if w[i] != want[i] {
									t.Fatalf("block (%d,%d,%d) thread (%d,%d,%d) word %d = %#x, want %#x", bx, by, bz, tx, ty, tz, i, w[i], want[i])
								}
							}
						}
					}
				}
			}
		}
	}
}

func TestBarrierReductions(t *testing.T) {
	src := header + `
.visible .entry red(.param .u64 out)
{
	.reg .pred %p<4>;
	.reg .b32 %r<8>;
	.reg .b64 %rd<2>;
	mov.u32 %r1, %tid.x;
	and.b32 %r2, %r1, 3;
	setp.eq.u32 %p1, %r2, 0;
	bar.red.popc.u32 %r3, 0, %p1;
	setp.lt.u32 %p1, %r1, 1000;
	bar.red.and.pred %p2, 0, %p1;
	setp.eq.u32 %p1, %r1, 77;
	bar.red.or.pred %p3, 0, %p1;
	selp.u32 %r4, 1, 0, %p2;
	selp.u32 %r5, 1, 0, %p3;
	bar.red.and.pred %p2, 0, !%p1;
	selp.u32 %r6, 1, 0, %p2;
	setp.ne.u32 %p1, %r1, 100;
	@%p1 ret;
	ld.param.u64 %rd1, [out];
	st.global.v4.u32 [%rd1], {%r3, %r4, %r5, %r6};
	ret;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "red")
	out := upload(t, c, make([]byte, 16))
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 200}, 0, out); err != nil {
		t.Fatal(err)
	}
	if v := bytesU32(download(t, c, out, 16)); v[0] != 50 || v[1] != 1 || v[2] != 1 || v[3] != 0 {
		t.Errorf("bar.red results %v, want [50 1 1 0]", v)
	}
}

func TestEarlyExitAndBarrier(t *testing.T) {
	// Threads that returned do not hold up a barrier.
	src := header + `
.visible .entry k(.param .u64 out)
{
	.reg .pred %p<2>;
	.reg .b32 %r<4>;
	.reg .b64 %rd<4>;
	.shared .align 4 .b8 s[4];
	mov.u32 %r1, %tid.x;
	setp.ge.u32 %p1, %r1, 10;
	@%p1 exit;
	setp.eq.u32 %p1, %r1, 3;
	@%p1 st.shared.u32 [s], 42;
	bar.sync 0;
	ld.shared.u32 %r2, [s];
	ld.param.u64 %rd1, [out];
	mul.wide.u32 %rd2, %r1, 4;
	add.s64 %rd1, %rd1, %rd2;
	st.global.u32 [%rd1], %r2;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "k")
	out := upload(t, c, make([]byte, 4*10))
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 64}, 0, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range bytesU32(download(t, c, out, 40)) {
		if v != 42 {
			t.Errorf("thread %d read %d", i, v)
		}
	}
}

func TestLocalMemory(t *testing.T) {
	// Each thread's .local array survives a barrier, during which the
	// other threads write theirs.
	src := header + `
.visible .entry k(.param .u64 out)
{
	.local .align 4 .b8 depot[64];
	.reg .b32 %r<6>;
	.reg .b64 %rd<8>;
	.reg .b64 %SPL;
	mov.u64 %SPL, depot;
	mov.u32 %r1, %tid.x;
	st.local.u32 [%SPL+12], %r1;
	mul.lo.s32 %r2, %r1, 3;
	cvta.local.u64 %rd1, %SPL;
	st.u32 [%rd1+60], %r2;
	bar.sync 0;
	ld.local.u32 %r3, [depot+12];
	ld.local.u32 %r4, [%SPL+60];
	add.u32 %r3, %r3, %r4;
	ld.param.u64 %rd2, [out];
	mul.wide.u32 %rd3, %r1, 4;
	add.s64 %rd2, %rd2, %rd3;
	st.global.u32 [%rd2], %r3;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "k")
	out := upload(t, c, make([]byte, 4*32))
	if err := c.Launch(0, f, cuda.Dim3{X: 2}, cuda.Dim3{X: 32}, 0, out); err != nil {
		t.Fatal(err)
	}
	for i, v := range bytesU32(download(t, c, out, 4*32)) {
		if v != uint32(4*i) {
			t.Errorf("thread %d: %d, want %d", i, v, 4*i)
		}
	}
}

func TestGlobalAndConstVariables(t *testing.T) {
	src := header + `
.visible .global .align 4 .b8 table[16] = {0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64};
.visible .const .align 4 .u32 ctab[3] = {7, 8, 9};
.visible .global .align 8 .u64 counter;
.visible .global .align 4 .f32 scales[] = {0f3F000000, 0f40000000};
.visible .shared .align 4 .b8 common[64];

.visible .entry look(.param .u64 out)
{
	.reg .b32 %r<8>;
	.reg .f32 %f<4>;
	.reg .b64 %rd<8>;
	mov.u32 %r1, %tid.x;
	and.b32 %r2, %r1, 3;
	mul.wide.u32 %rd1, %r2, 4;
	mov.u64 %rd2, table;
	add.s64 %rd2, %rd2, %rd1;
	ld.global.f32 %f1, [%rd2];
	ld.f32 %f2, [scales+4];            // generic access to a .global variable
	mul.f32 %f1, %f1, %f2;
	rem.u32 %r3, %r1, 3;
	mul.wide.u32 %rd3, %r3, 4;
	mov.u64 %rd4, ctab;
	add.s64 %rd4, %rd4, %rd3;
	ld.const.u32 %r4, [%rd4];
	cvt.rn.f32.u32 %f3, %r4;
	add.f32 %f1, %f1, %f3;
	st.shared.f32 [common+8], %f1;
	ld.param.u64 %rd5, [out];
	mul.wide.u32 %rd6, %r1, 4;
	add.s64 %rd5, %rd5, %rd6;
	st.global.f32 [%rd5], %f1;
	st.global.u64 [counter], %rd5;
	ret;
}

.visible .entry other()
{
	.reg .b32 %r<2>;
	ld.shared.u32 %r1, [common];
	ret;
}`
	c := newCtx(t, Options{})
	f := kernelOf(t, c, src, "look")
	out := upload(t, c, make([]byte, 4*8))
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 8}, 0, out); err != nil {
		t.Fatal(err)
	}
	tab := []float32{1, 2, 3, 4}
	ct := []float32{7, 8, 9}
	for i, v := range bytesF32(download(t, c, out, 32)) {
		if want := tab[i&3]*2 + ct[i%3]; v != want {
			t.Errorf("thread %d: %v, want %v", i, v, want)
		}
	}
	m := mustParse(t, src)
	if k, _ := m.Kernel("other"); k.SharedBytes != 64 {
		t.Errorf("other uses %d bytes of shared memory, want 64", k.SharedBytes)
	}
	if k, _ := m.Kernel("look"); len(k.Params) != 1 || k.Params[0].Name != "out" {
		t.Errorf("look: %+v", k)
	}
	// Global variables count as device memory and are freed with the module.
	before := c.used
	mod, err := c.LoadModule([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if c.used != before+16+12+8+8 {
		t.Errorf("module variables use %d bytes", c.used-before)
	}
	if err := c.UnloadModule(mod); err != nil || c.used != before {
		t.Errorf("UnloadModule: %v; %d bytes left", err, c.used-before)
	}
}

func TestParallelBlocksAgree(t *testing.T) {
	// Many blocks on several workers give the same result as one worker.
	run := func(workers int) []float32 {
		c := newCtx(t, Options{Workers: workers})
		f := kernelOf(t, c, loopPTX, "loop")
		out := upload(t, c, make([]byte, 4*64*32))
		if err := c.Launch(0, f, cuda.Dim3{X: 64}, cuda.Dim3{X: 32}, 0, out, uint32(10)); err != nil {
			t.Fatal(err)
		}
		st := c.Stats()
		if st.Launches != 1 || st.Blocks != 64 || st.Threads != 64*32 || st.Instructions < 64*32*40 {
			t.Errorf("stats %+v", st)
		}
		return bytesF32(download(t, c, out, 4*64*32))
	}
	a, b := run(1), run(4)
	for i := range a {
		if a[i] != b[i] || a[i] != float32(i)*0.5*10 {
			t.Fatalf("out[%d]: %v with 1 worker, %v with 4, want %v", i, a[i], b[i], float32(i)*5)
		}
	}
}

func TestPoison(t *testing.T) {
	src := header + `
.visible .entry k(.param .u64 out)
{
	.reg .b32 %r<2>;
	.reg .b64 %rd<2>;
	.shared .align 4 .b8 s[4];
	ld.shared.u32 %r1, [s];
	ld.param.u64 %rd1, [out];
	st.global.u32 [%rd1], %r1;
}`
	c := newCtx(t, Options{Poison: true})
	f := kernelOf(t, c, src, "k")
	out, err := c.Alloc(8)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(0, f, cuda.Dim3{X: 1}, cuda.Dim3{X: 1}, 0, out); err != nil {
		t.Fatal(err)
	}
	if v := bytesU32(download(t, c, out, 8)); v[0] != 0xffffffff || v[1] != 0xffffffff {
		t.Errorf("poisoned memory reads %#x", v)
	}
}
