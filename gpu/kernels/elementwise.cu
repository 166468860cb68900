// elementwise.cu: element-wise kernels (tensor.Backend's Add, Mul, Scale,
// AddScaled, Copy between storage types, Dropout, SiLU, SwiGLU and their
// backward passes). One thread per element in a grid-stride loop; each is
// the CPU backend's float32 expression, so the exact ones (Add, Mul,
// Scale, casts, Dropout) match it bit for bit.
#include "common.cuh"

KERNEL add_f32(float* dst, const float* a, const float* b, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) dst[i] = a[i] + b[i];
}

KERNEL mul_f32(float* dst, const float* a, const float* b, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) dst[i] = a[i] * b[i];
}

KERNEL scale_f32(float* dst, const float* a, float s, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) dst[i] = s * a[i];
}

// axpy_f32: dst += s·a, two roundings as the CPU's d[i] += s*x[i].
KERNEL axpy_f32(float* dst, const float* a, float s, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) dst[i] = dst[i] + s * a[i];
}

// cast: dst (type dt) = src (type st), rounding to nearest even.
KERNEL cast(void* dst, i32 dt, const void* src, i32 st, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) store(dst, dt, i, load(src, st, i));
}

DEV u32 fmix32(u32 x) {
	x ^= x >> 16;
	x *= 0x85EBCA6Bu;
	x ^= x >> 13;
	x *= 0xC2B2AE35u;
	return x ^ (x >> 16);
}

// dropout_f32: element i (counted from base, the index of dst[0] in the
// mask) is dropped when its bits are below thresh (tensor.DropoutKeeps).
KERNEL dropout_f32(float* dst, const float* x, i64 n, i64 base, u32 thresh, float scale, u64 seed) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		u32 bits = fmix32(fmix32((u32)(base + i) * 0x9E3779B9u + (u32)seed) ^ (u32)(seed >> 32));
		dst[i] = bits < thresh ? 0.0f : x[i] * scale;
	}
}

KERNEL silu_f32(float* dst, const float* x, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		float v = x[i];
		dst[i] = v * sigmoidf_(v);
	}
}

// silu_backward_f32: dx = dy·(s + x·s·(1-s)), s = sigmoid(x).
KERNEL silu_backward_f32(float* dx, const float* dy, const float* x, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		float v = x[i], s = sigmoidf_(v);
		dx[i] = dy[i] * (s + v * s * (1.0f - s));
	}
}

KERNEL swiglu_f32(float* dst, const float* gate, const float* up, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		float g = gate[i];
		dst[i] = g * sigmoidf_(g) * up[i];
	}
}

// swiglu_backward_f32: dgate = dy·up·silu'(gate), dup = dy·silu(gate).
// dgate and dup may alias gate and up (each element is read before it is
// written, by the same thread).
KERNEL swiglu_backward_f32(float* dgate, float* dup, const float* dy, const float* gate, const float* up, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		float g = gate[i], u = up[i], d = dy[i], s = sigmoidf_(g);
		dgate[i] = d * u * (s + g * s * (1.0f - s));
		dup[i] = d * g * s;
	}
}

// adamw_f32: one AdamW update of every element (tensor.AdamWStep), then
// the gradient is zeroed; the CPU backend's float32 expressions.
KERNEL adamw_f32(float* w, float* g, float* m, float* v, i64 n, float clip, float b1, float b2, float step, float invbc2, float eps, float decay) {
	for (i64 i = gindex(); i < n; i += gstride()) {
		float gj = g[i] * clip;
		float mj = b1 * m[i] + (1.0f - b1) * gj;
		float vj = b2 * v[i] + (1.0f - b2) * gj * gj;
		m[i] = mj;
		v[i] = vj;
		float denom = __builtin_sqrtf(vj) * invbc2 + eps;
		w[i] = w[i] * decay - step * mj / denom;
		g[i] = 0.0f;
	}
}

// sum_squares_f64: part[b] = Σ x² over block b's chunk of chunk elements,
// in float64 (squares of float32 are exact in float64); the host adds the
// parts in block order.
KERNEL sum_squares_f64(double* part, const float* x, i64 n, i64 chunk) {
	__shared__ double buf[ROW_THREADS];
	i64 lo = (i64)ctaid_x() * chunk, hi = lo + chunk < n ? lo + chunk : n;
	double s = 0;
	for (i64 i = lo + tid_x(); i < hi; i += ntid_x()) s += (double)x[i] * (double)x[i];
	s = block_sum(s, buf);
	if (tid_x() == 0) part[ctaid_x()] = s;
}

// zero_u32: n words of p set to zero (Zeros; allocations are whole words).
KERNEL zero_u32(u32* p, i64 n) {
	for (i64 i = gindex(); i < n; i += gstride()) p[i] = 0;
}
