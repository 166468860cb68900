// common.cuh: what every kernel of mlbuild's CUDA backend shares.
//
// The kernels are compiled by clang's CUDA device-only mode without
// NVIDIA's headers or libdevice (-nocudainc -nocudalib, see the Makefile's
// kernels target), so the CUDA keywords and the few intrinsics they use are
// defined here, and the math functions they need (exp, log) are written out
// below from fused multiply-adds, so that their results are defined by the
// PTX alone: the PTX interpreter (gpu/ptx) computes them bit for bit as a
// GPU does.
//
// Conventions of every kernel:
//   - storage types are passed as the tensor.DType codes (0 F32, 1 BF16,
//     2 F16); arithmetic is float32, reductions float32 in a fixed tree
//     (or float64 where the CPU backend's result is float64);
//   - every output element is written by one thread in a fixed order: no
//     atomics, so results do not depend on scheduling;
//   - -ffp-contract=off: a*b+c is two roundings unless a kernel calls fmaf,
//     as in the CPU backend's Go code.
#pragma once

#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))
#define __forceinline__ __attribute__((always_inline)) inline
#define KERNEL extern "C" __global__ void
#define DEV static __device__ __forceinline__

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;

enum { F32 = 0, BF16 = 1, F16 = 2 };

DEV u32 tid_x() { return __nvvm_read_ptx_sreg_tid_x(); }
DEV u32 ntid_x() { return __nvvm_read_ptx_sreg_ntid_x(); }
DEV u32 ctaid_x() { return __nvvm_read_ptx_sreg_ctaid_x(); }
DEV u32 ctaid_y() { return __nvvm_read_ptx_sreg_ctaid_y(); }
DEV u32 nctaid_x() { return __nvvm_read_ptx_sreg_nctaid_x(); }

// Grid-stride loops: for (i64 i = gindex(); i < n; i += gstride()).
DEV i64 gindex() { return (i64)ctaid_x() * ntid_x() + tid_x(); }
DEV i64 gstride() { return (i64)nctaid_x() * ntid_x(); }

DEV u32 f2u(float f) { return __builtin_bit_cast(u32, f); }
DEV float u2f(u32 u) { return __builtin_bit_cast(float, u); }

// bfloat16: widening is exact; narrowing rounds to nearest even, NaN
// becomes 0x7FC0 (safetensors.F32ToBF16).
DEV float bf16_to_f32(u16 h) { return u2f((u32)h << 16); }
DEV u16 f32_to_bf16(float f) {
	u32 b = f2u(f);
	if (f != f) return 0x7FC0;
	b += 0x7FFF + ((b >> 16) & 1);
	return (u16)(b >> 16);
}

// IEEE binary16, both ways in integer arithmetic (safetensors.F32ToF16 and
// tensor.F16ToFloat32): round to nearest even, subnormals, ±Inf beyond
// 65504, a quiet NaN keeping the sign.
DEV float f16_to_f32(u16 h) {
	u32 sign = (u32)(h >> 15) << 31;
	u32 exp = (h >> 10) & 0x1F, man = h & 0x3FF;
	if (exp == 0x1F) return u2f(sign | 0x7F800000 | (man << 13));
	if (exp == 0) {
		if (man == 0) return u2f(sign);
		float v = (float)man * (1.0f / 16777216.0f); // man·2⁻²⁴, exact
		return sign ? -v : v;
	}
	return u2f(sign | ((exp + 112) << 23) | (man << 13));
}
DEV u16 f32_to_f16(float f) {
	u32 b = f2u(f);
	u16 sign = (u16)((b >> 16) & 0x8000);
	i32 exp = (b >> 23) & 0xFF;
	u32 man = b & 0x7FFFFF;
	if (exp == 0xFF) return man ? (sign | 0x7E00) : (sign | 0x7C00);
	if (exp == 0) return sign;
	i32 e = exp - 127 + 15;
	if (e >= 0x1F) return sign | 0x7C00;
	if (e <= 0) {
		u32 m = man | 0x800000, shift = (u32)(126 - exp);
		if (shift > 24) return sign;
		u32 q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (q & 1))) q++;
		return sign | (u16)q;
	}
	u32 q = ((u32)e << 10) | (man >> 13), rem = man & 0x1FFF;
	if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
	return sign | (u16)q;
}

// load reads element i of a tensor of storage type dt as float32.
DEV float load(const void* p, i32 dt, i64 i) {
	if (dt == BF16) return bf16_to_f32(((const u16*)p)[i]);
	if (dt == F16) return f16_to_f32(((const u16*)p)[i]);
	return ((const float*)p)[i];
}

// store writes v as element i of a tensor of storage type dt.
DEV void store(void* p, i32 dt, i64 i, float v) {
	if (dt == BF16) ((u16*)p)[i] = f32_to_bf16(v);
	else if (dt == F16) ((u16*)p)[i] = f32_to_f16(v);
	else ((float*)p)[i] = v;
}

// expf_ (e^x) to about 1 ulp: x = k·ln2 + r with ln2 split in two (Cody and
// Waite), e^r by a degree-7 polynomial on |r| <= ln2/2, then 2^k by the
// exponent bits in two steps (so that k down to -149 gives subnormals).
DEV float expf_(float x) {
	if (x != x) return x;
	if (x > 88.72284f) return u2f(0x7F800000);
	if (x < -103.97208f) return 0.0f;
	float k = __builtin_rintf(x * 1.44269504f);
	float r = __builtin_fmaf(k, -0.693145752f, x);
	r = __builtin_fmaf(k, -1.42860677e-6f, r);
	float p = 1.98412698e-4f;
	p = __builtin_fmaf(p, r, 1.38888889e-3f);
	p = __builtin_fmaf(p, r, 8.33333333e-3f);
	p = __builtin_fmaf(p, r, 4.16666667e-2f);
	p = __builtin_fmaf(p, r, 1.66666667e-1f);
	p = __builtin_fmaf(p, r, 0.5f);
	p = __builtin_fmaf(p, r, 1.0f);
	p = __builtin_fmaf(p, r, 1.0f);
	i32 ki = (i32)k;
	i32 k1 = ki / 2, k2 = ki - k1;
	return p * u2f((u32)(k1 + 127) << 23) * u2f((u32)(k2 + 127) << 23);
}

// logf_ (natural logarithm) of a positive normal x to a few ulp: x = m·2^e
// with m in [√½, √2), log m = 2·atanh(s), s = (m-1)/(m+1), by its series.
DEV float logf_(float x) {
	if (!(x > 0.0f)) return x == 0.0f ? -u2f(0x7F800000) : u2f(0x7FC00000);
	if (x == u2f(0x7F800000)) return x;
	i32 e = 0;
	if (x < 1.17549435e-38f) { x *= 16777216.0f; e = -24; } // subnormal
	u32 b = f2u(x);
	e += (i32)((b >> 23) & 0xFF) - 127;
	float m = u2f((b & 0x7FFFFF) | 0x3F800000);
	if (m > 1.41421356f) { m *= 0.5f; e++; }
	float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
	float p = 0.142857143f;
	p = __builtin_fmaf(p, s2, 0.2f);
	p = __builtin_fmaf(p, s2, 0.333333333f);
	p = __builtin_fmaf(p, s2, 1.0f);
	float lm = 2.0f * s * p;
	return __builtin_fmaf((float)e, 0.693147182f, lm);
}

// sigmoid in float32 from expf_.
DEV float sigmoidf_(float x) { return 1.0f / (1.0f + expf_(-x)); }

// Block-wide reductions over a power-of-two block (the backend launches
// these kernels with 256 threads): a fixed tree in shared memory, so the
// order of the additions depends only on the block size. Every thread gets
// the result. buf holds ntid_x() values (float or double for the sum).
template <typename T> DEV T block_sum(T v, T* buf) {
	u32 t = tid_x(), n = ntid_x();
	buf[t] = v;
	__syncthreads();
	for (u32 s = n / 2; s > 0; s >>= 1) {
		if (t < s) buf[t] += buf[t + s];
		__syncthreads();
	}
	T r = buf[0];
	__syncthreads();
	return r;
}

DEV float block_max(float v, float* buf) {
	u32 t = tid_x(), n = ntid_x();
	buf[t] = v;
	__syncthreads();
	for (u32 s = n / 2; s > 0; s >>= 1) {
		if (t < s) buf[t] = __builtin_fmaxf(buf[t], buf[t + s]);
		__syncthreads();
	}
	float r = buf[0];
	__syncthreads();
	return r;
}

// The block size every row-wise kernel is launched with (a power of two).
#define ROW_THREADS 256

// expd_ (e^x in float64) to about 1 ulp, for the few results the CPU
// backend computes in float64: x = k·ln2 + r, e^r by its Taylor series to
// degree 13 on |r| <= ln2/2, 2^k by the exponent bits in two steps.
DEV double expd_(double x) {
	if (x != x) return x;
	if (x > 709.78) return __builtin_bit_cast(double, 0x7FF0000000000000ull);
	if (x < -745.2) return 0.0;
	double k = __builtin_rint(x * 1.4426950408889634);
	double r = __builtin_fma(k, -6.93147180369123816490e-01, x);
	r = __builtin_fma(k, -1.90821492927058770002e-10, r);
	double p = 1.0 / 6227020800.0;
	p = __builtin_fma(p, r, 1.0 / 479001600.0);
	p = __builtin_fma(p, r, 1.0 / 39916800.0);
	p = __builtin_fma(p, r, 1.0 / 3628800.0);
	p = __builtin_fma(p, r, 1.0 / 362880.0);
	p = __builtin_fma(p, r, 1.0 / 40320.0);
	p = __builtin_fma(p, r, 1.0 / 5040.0);
	p = __builtin_fma(p, r, 1.0 / 720.0);
	p = __builtin_fma(p, r, 1.0 / 120.0);
	p = __builtin_fma(p, r, 1.0 / 24.0);
	p = __builtin_fma(p, r, 1.0 / 6.0);
	p = __builtin_fma(p, r, 0.5);
	p = __builtin_fma(p, r, 1.0);
	p = __builtin_fma(p, r, 1.0);
	i64 ki = (i64)k;
	i64 k1 = ki / 2, k2 = ki - k1;
	return p * __builtin_bit_cast(double, (u64)(k1 + 1023) << 52) * __builtin_bit_cast(double, (u64)(k2 + 1023) << 52);
}

// logd_ (natural logarithm in float64) of a positive normal x, from
// logf_ and one Newton step: y + x·e^-y − 1.
DEV double logd_(double x) {
	double y = (double)logf_((float)x);
	return y + x * expd_(-y) - 1.0;
}
