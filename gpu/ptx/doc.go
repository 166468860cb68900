// Package ptx is a PTX interpreter in pure Go: it implements cuda.Driver
// and cuda.Context (package gpu/cuda) on the CPU, so that tests run
// mlbuild's real CUDA kernels, the PTX that clang emits for
// gpu/kernels/*.cu, on machines without a GPU. It is test
// infrastructure: small, exact where PTX is exact, and loud about
// everything it does not do.
//
// # Usage
//
//	drv := ptx.NewDriver(ptx.Options{}) // one device, "mlbuild PTX interpreter", sm_80
//	ctx, err := drv.NewContext(0)
//	if err != nil {
//		return err
//	}
//	defer ctx.Close()
//	p, err := ctx.Alloc(4 * n)
//	err = ctx.CopyHtoD(0, p, data)
//	mod, err := ctx.LoadModule(ptxText) // parses and decodes; errors name the line
//	fn, err := ctx.Function(mod, "scale_f32")
//	err = ctx.Launch(0, fn, cuda.Dim3{X: blocks}, cuda.Dim3{X: 256}, 0, p, int32(n), float32(2))
//	// Launch has run the kernel: an illegal access is its error, e.g.
//	// ptx: cuLaunchKernel scale_f32: block (3,0,0) thread (17,0,0): line 30:
//	// ld.global.f32 %f2, [%rd2]: 4-byte access at 0x10000000fa0 is out of bounds
//	// of allocation at 0x10000000000 (4000 bytes) (CUDA_ERROR_ILLEGAL_ADDRESS)
//
// Parse checks PTX without a context (Module.Kernels lists the entries
// and their parameters). Errors are *Error values with the call, kernel,
// block, thread, line and instruction; they unwrap to a *cuda.Error, so
// errors.Is(err, cuda.ErrIllegalAddress) and the other sentinels work:
// cuda.ErrInvalidPTX for malformed PTX, cuda.ErrUnsupportedPTX for valid
// PTX outside the subset below, cuda.ErrIllegalAddress for out-of-bounds,
// misaligned, freed or null accesses, cuda.ErrLaunchOutOfResources for
// blocks over 1024 threads or 48 KiB of shared memory,
// cuda.ErrOutOfMemory past Options.Memory, cuda.ErrInvalidValue for
// arguments that do not match the kernel's .param list, ErrLaunchTimeout
// for a launch over Options.MaxInstructions, cuda.ErrInvalidHandle,
// cuda.ErrNotFound, cuda.ErrLaunchFailed (trap, barrier deadlock).
//
// # Supported PTX
//
// Module directives: .version (up to 8.x), .target (up to sm_80),
// .address_size 64, .visible/.weak/.extern linkage, .entry with .param
// lists (scalars, .align'ed byte arrays, .ptr attributes) and
// .maxntid/.reqntid (enforced at launch), .shared variables at module
// scope or inside an entry ("demoted"), .extern .shared name[] (dynamic
// shared memory), .global and .const variables with initializers (placed
// in device memory by LoadModule), .local arrays inside an entry,
// .reg declarations (%r<N> ranges and single names, in nested { }
// scopes), labels, // and /* */ comments, .pragma, .loc and .file
// (ignored), .func bodies (skipped; calling them is an error).
// Statements take @%p / @!%p guards; operands are registers, special
// registers, immediates (decimal, 0x hex, 0b, octal, negative,
// 0fXXXXXXXX and 0dXXXXXXXXXXXXXXXX floats, decimal floats), addresses
// [%rd], [%rd+16], [name], [name+8], [0x...], vectors {%f1, %f2}, and
// variable names (their address).
//
//	family            instructions
//	data movement     mov (registers, immediates, %tid %ntid %ctaid %nctaid .x/.y/.z,
//	                  %laneid %warpid %nwarpid, addresses of variables, vector
//	                  pack/unpack {a,b} for .b16/.b32/.b64), ld ldu st (.param
//	                  .global .shared .local .const and generic; .nc .volatile and
//	                  cache/eviction hints ignored; .u8-.u64 .s8-.s64 .b8-.b64
//	                  .f16 .bf16 .f32 .f64, .v2 .v4), cvta and cvta.to (.global
//	                  .shared .local .const)
//	integer           add sub (.cc, addc, subc, .sat.s32) mul mad (.lo .hi .wide)
//	                  div rem min max abs neg, and or xor not cnot (also .pred), shl
//	                  shr (shift amounts >= width clamp), popc clz brev bfind
//	                  (.shiftamt) bfe bfi prmt (all modes) shf (.l .r .wrap .clamp)
//	compare/select    setp (eq ne lt le gt ge lo ls hi hs; equ neu ltu leu gtu geu
//	                  num nan; .and .or .xor with [!]%p; %p|%q), selp, testp
//	float             add sub mul fma mad div (.rn .rz .rm .rp, .full, .approx)
//	                  sqrt (.rn .rz .rm .rp .approx) rcp (same) rsqrt ex2 lg2 sin
//	                  cos tanh (.approx), neg abs min max (.NaN), copysign; .ftz
//	                  and .sat; .f32 and .f64
//	conversion        cvt between all integer types (extension, truncation, .sat),
//	                  integer <-> .f16 .bf16 .f32 .f64 (.rn .rz .rm .rp; .rni .rzi
//	                  .rmi .rpi), float <-> float (.rn .rz .rm .rp .rna, .rni ...
//	                  to integral, .ftz .sat .relu .satfinite), cvt.rn.f16x2.f32 and
//	                  cvt.rn.bf16x2.f32
//	control           bra (.uni), ret, exit, trap; bar.sync / barrier.sync (with an
//	                  optional thread count), bar.red (.popc.u32 .and.pred
//	                  .or.pred); bar.arrive, bar.warp.sync, membar, fence,
//	                  nanosleep, prefetch are no-ops
//
// Not supported, each rejected by LoadModule with its line: atomics
// (atom, red), warp-level instructions (shfl, vote, match, redux,
// activemask), device-function calls and indirect branches, textures and
// surfaces, tensor-core and asynchronous-copy instructions, f16/bf16
// arithmetic (conversions only), video instructions, mul24/mad24, set,
// slct, sad, lop3, clusters, other special registers (%clock, %smid, ...),
// and a PTX version or target newer than 8.x / sm_80.
//
// # Numerics
//
// Results are bit-exact where PTX defines them. f32 and f64 add, sub,
// mul, div, sqrt and rcp with .rn are correctly rounded (Go's float32
// and float64 arithmetic is); fma.rn.f32 is correctly rounded too (the
// float64 fma is made round-to-odd before rounding to float32, which
// avoids double rounding); the directed roundings .rz .rm .rp are exact
// (the round-to-nearest result is corrected by one ulp after an exact
// comparison in math/big). Conversions round with integer arithmetic, so
// f32/f64 to f16/bf16 is correct for every mode, subnormals and overflow
// included; float-to-integer conversions saturate and turn NaN into 0.
// .ftz flushes subnormal inputs and results to zero of the same sign;
// .sat clamps to [0, 1] with NaN to 0. min and max return the non-NaN
// operand (canonical NaN if both are NaN) and order -0 below +0.
// Arithmetic that produces a NaN gives the canonical NaN (0x7fffffff,
// 0x7fffffffffffffff), as NVIDIA GPUs do; neg, abs, copysign, mov and
// selp keep NaN bits.
//
// Approximate instructions (ex2, lg2, sin, cos, tanh, rsqrt, and the
// .approx forms of rcp, sqrt and div, and div.full) are computed in
// float64 and rounded to float32: more accurate than the hardware's
// documented error bounds, so a kernel that passes here can still differ
// from a GPU in the last bits of those results. Likewise add and mul
// without a rounding modifier are computed separately, each rounded,
// while ptxas may contract them into an fma on the GPU. Integer division
// by zero (unspecified in PTX) gives all ones for div and the dividend
// for rem.
//
// # Execution model
//
// Launch and the copies run synchronously, at the call, whatever the
// stream; Synchronize has nothing left to wait for and events record
// wall time. Blocks are independent and run in parallel, on a pool of
// Options.Workers goroutines (GOMAXPROCS by default). The threads of a
// block run one after another on one goroutine: each runs until it
// reaches a barrier or exits, then the next; when every thread that has
// not exited waits at a barrier, all go on. Threads that exited do not
// count, so a barrier after an early return is fine. Threads waiting at
// barriers with different ids (without thread counts) are reported as a
// deadlock, which is what they would be on a GPU; bar.sync's thread
// count is otherwise ignored (every barrier is block-wide).
//
// Where this differs from hardware: nothing is warp-synchronous (a kernel
// that relies on implicit warp lockstep, or on a race between the
// threads of a block, can behave differently from a GPU, usually by
// showing the race); atomics do not exist; memory is sequentially
// consistent. Shared and local memory start zeroed (or 0xFF with
// Options.Poison), registers start at zero, and allocations are zeroed
// (or poisoned). The first failing block, in block order, is the error of
// a launch; errors are not sticky (the context stays usable).
//
// Each thread has a register file of 64-bit slots: one per declared
// register, plus constants (every immediate and variable address is a
// slot filled before the thread starts) and the special registers the
// kernel reads; instructions are pre-decoded into a compact struct of
// slot indices, so execution is a switch over opcodes with no operand
// decoding: on the order of 100 to 200 million instructions per second
// per core (BenchmarkLoop: fma, add, setp, bra; BenchmarkReduce: shared
// memory, barriers, divergent branches).
//
// # Memory
//
// Allocation k lives at 1<<40 + k<<32 (at most 4 GiB each; addresses are
// never reused, so a use after Free is reported as such). Generic
// addresses of shared memory are the shared address plus 1<<36 (local:
// 1<<37); cvta adds and cvta.to subtracts that base. Every access is
// checked: in bounds of a live allocation (or the block's shared memory,
// or the thread's local memory, or the parameter buffer) and naturally
// aligned (vector accesses to their full size). Static shared variables
// are laid out in declaration order (module-scope ones a kernel uses
// first), and dynamic shared memory (every .extern .shared array) starts
// after them, aligned to 16 bytes or the array's alignment if larger.
// Launch lays the arguments out with cuda.PackParams and checks them
// against the kernel's .param list: the count, each size, and that
// float32/float64 arguments go to .f32/.f64 (or .b) parameters and
// integers to integer ones.
package ptx
